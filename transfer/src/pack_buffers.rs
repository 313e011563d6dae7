//! The buffers packs are assembled in (upload) and fetched into (download),
//! shared by every transfer of the process: at most one per core are lent
//! at once (past that only to a thread that holds one already, see
//! [`Pool::take`]), each reused from pack to pack (no page-fault storm per
//! 64 MiB pack), and all of them freed when the last one comes back.
//!
//! A buffer per worker thread held `threads` x the buffer size per
//! transfer, and the in-process cluster runs one upload or download per
//! backend at once: three backends held up to 6 x 64 MiB on two cores,
//! where two buffers keep both cores busy.

use std::cell::Cell;
use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use crate::cancel::CancelToken;
use crate::error::Result;

thread_local! {
    /// Buffers this thread holds, from any pool.
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// A bounded set of reusable buffers.
pub(crate) struct Pool {
    state: Mutex<State>,
    returned: Condvar,
    cap: usize,
}

#[derive(Default)]
struct State {
    free: Vec<Vec<u8>>,
    lent: usize,
}

/// The process's pack buffers: as many as cores (at least 2).
pub(crate) fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        Pool::new(
            std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(2),
        )
    })
}

/// The buffers streamed reads of multi-piece files go through (one
/// [`crate::backend::STREAM_BLOCK`] at most each), and every read of a
/// download from a remote store ([`crate::Backend::requests_in_flight`]):
/// apart from the pack buffers, so such a download keeps more requests in
/// flight than there are cores, and bounded, so the transfers of several
/// backends at once cannot multiply them (at most `STREAMS` x 16 MiB).
pub(crate) fn stream_pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool::new(STREAMS))
}

/// Streamed reads in flight in the whole process, at most.
const STREAMS: usize = 8;

impl Pool {
    /// A pool lending at most `cap` buffers at once.
    pub(crate) fn new(cap: usize) -> Pool {
        Pool {
            state: Mutex::new(State::default()),
            returned: Condvar::new(),
            cap: cap.max(1),
        }
    }

    /// Waits for a free buffer (checking `cancel` while it waits); it comes
    /// back empty, with the capacity an earlier pack gave it.
    ///
    /// A thread that holds a buffer already never waits: it gets one past
    /// the cap. A worker holding a buffer while it waits for a parallel
    /// loop of its own runs other jobs of its pool meanwhile (rayon's work
    /// stealing), one of which may take a buffer; had that waited, every
    /// holder could end up waiting under its own held buffer, none of them
    /// returning one. Each such extra buffer is one nested job deep.
    pub(crate) fn take(&self, cancel: &CancelToken) -> Result<PackBuffer<'_>> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let holds = HELD.with(Cell::get) > 0;
        while st.lent >= self.cap && !holds {
            cancel.check()?;
            st = self
                .returned
                .wait_timeout(st, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        st.lent += 1;
        let mut buf = st.free.pop().unwrap_or_default();
        drop(st);
        buf.clear();
        HELD.with(|h| h.set(h.get() + 1));
        Ok(PackBuffer { pool: self, buf })
    }
}

/// A lent buffer; goes back to its pool on drop.
pub(crate) struct PackBuffer<'a> {
    pool: &'a Pool,
    buf: Vec<u8>,
}

impl Drop for PackBuffer<'_> {
    fn drop(&mut self) {
        HELD.with(|h| h.set(h.get().saturating_sub(1)));
        let mut st = self.pool.state.lock().unwrap_or_else(|e| e.into_inner());
        st.lent = st.lent.saturating_sub(1);
        if st.lent == 0 {
            // Nobody is assembling a pack: give the memory back.
            st.free = Vec::new();
        } else {
            st.free.push(std::mem::take(&mut self.buf));
        }
        drop(st);
        self.pool.returned.notify_one();
    }
}

impl Deref for PackBuffer<'_> {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.buf
    }
}

impl DerefMut for PackBuffer<'_> {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cancelled() -> CancelToken {
        let stop = CancelToken::default();
        stop.cancel();
        stop
    }

    /// Whether a take by another thread, holding no buffer, would wait: a
    /// cancelled one gives up instead of blocking.
    fn a_fresh_thread_waits(pool: &Pool) -> bool {
        std::thread::scope(|s| {
            s.spawn(|| pool.take(&cancelled()).is_err())
                .join()
                .expect("other thread")
        })
    }

    #[test]
    fn at_most_cap_buffers_are_lent_and_all_are_freed_when_idle() {
        let pool = Pool::new(2);
        let cancel = CancelToken::default();
        let mut a = pool.take(&cancel).expect("first buffer");
        let b = pool.take(&cancel).expect("second buffer");
        a.extend_from_slice(&[7u8; 4096]);
        // A third take (by a thread holding none) waits.
        assert!(a_fresh_thread_waits(&pool));
        // A returned buffer is lent again, cleared, its capacity kept.
        drop(a);
        let again = pool.take(&cancel).expect("returned buffer");
        assert!(again.is_empty() && again.capacity() >= 4096);
        // A waiter wakes when a buffer comes back.
        std::thread::scope(|s| {
            let waiter = s.spawn(|| pool.take(&cancel).map(|b| b.capacity()));
            drop(again);
            assert!(waiter.join().expect("waiter").is_ok());
        });
        drop(b);
        let st = pool.state.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(st.lent, 0);
        assert!(st.free.is_empty(), "an idle pool keeps no memory");
    }

    #[test]
    fn a_thread_holding_a_buffer_never_waits_for_another() {
        let pool = Pool::new(1);
        let cancel = CancelToken::default();
        let held = pool.take(&cancel).expect("first buffer");
        // The cap is reached: another thread waits.
        assert!(a_fresh_thread_waits(&pool), "another thread waits");
        // This thread, holding one, gets a second at once (a wait here could
        // never end if every holder did the same).
        let nested = pool
            .take(&cancelled())
            .expect("a holder gets one past the cap");
        drop(nested);
        drop(held);
        // With the extra buffer back, the cap holds again.
        let a = pool.take(&cancel).expect("buffer");
        assert!(a_fresh_thread_waits(&pool));
        drop(a);
        let st = pool.state.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(st.lent, 0);
    }
}
