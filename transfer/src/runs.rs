//! Which pieces of a pack are read together, shared by download and VERIFY:
//! neighbours in one read (a gap is read and dropped), and a transfer's
//! worker pool sized for its store.

use crate::backend::Backend;

/// Pieces at most this far apart in a pack are read in one request (the gap
/// is read and dropped): fewer requests for a few bytes.
pub(crate) const MAX_GAP: u64 = 1 << 20;

/// One local read of a run spans at most this much (or one piece, if
/// larger): it bounds a worker's buffer and spreads one large pack over
/// every core. A remote store's runs are not capped (one request each).
pub(crate) const MAX_RUN: u64 = 16 << 20;

/// How many of `spans` (each piece's offset and length, sorted by offset)
/// to read in one request: neighbours no more than [`MAX_GAP`] apart,
/// spanning at most `max_run` bytes (or one piece, if larger).
pub(crate) fn run_len(spans: impl IntoIterator<Item = (u64, u64)>, max_run: u64) -> usize {
    let mut spans = spans.into_iter();
    let Some((start, len)) = spans.next() else {
        return 0;
    };
    let mut end = start.saturating_add(len);
    let mut n = 1;
    for (offset, len) in spans {
        let new_end = end.max(offset.saturating_add(len));
        if offset > end.saturating_add(MAX_GAP) || new_end - start > max_run {
            break;
        }
        end = new_end;
        n += 1;
    }
    n
}

/// The worker pool of a read from `backend` with `threads` workers asked
/// for: a remote store's requests mostly wait on the network and the
/// server, so it gets as many workers as it wants requests in flight when
/// that is more. Also says whether the store is remote (`requests_in_flight`).
pub(crate) fn reading_pool(
    threads: usize,
    backend: &dyn Backend,
) -> crate::Result<(rayon::ThreadPool, bool)> {
    let in_flight = backend.requests_in_flight();
    let pool = crate::options::pool(threads.max(in_flight.unwrap_or(0)))?;
    Ok((pool, in_flight.is_some()))
}
