//! One batch's barrier, and its writeback started while the batch runs.
//!
//! A batch of small files (a restore writes hundreds of thousands of 4 KiB
//! segment files) leaves all of its data dirty in the page cache: far below
//! the kernel's background threshold, nothing writes it until the batch's one
//! barrier, and then everything waits for the disk. Measured on W1's restore
//! (2026-12-02, `perf record` on `tabletsnap bench --workload w1`), the
//! creation of 80,000 files kept ~1.5 cores busy for 2.2 s and the final
//! `syncfs` then waited 2.4 s more with the cores idle. [`Flusher`] overlaps
//! the two: a helper thread runs `syncfs` every `step` bytes the batch writes,
//! so the disk works while the files are being created and the final barrier
//! finds little left to write. The price: creation waits now and then for an
//! inode-table block under writeback, so the gain is smaller than the gap
//! (README, "Whole-system benchmark"). Data-only writeback was tried and
//! lost: the writers handed each small file, still open, to the helper,
//! which started its writeback (`sync_file_range`, no metadata, no journal
//! commit) and closed it. A block allocation and an I/O submission per 4 KiB
//! file cost more CPU than they saved waiting: W1's restore at `--scale 0.2`,
//! runs alternating, ran at a median 1.12x `cp -r` against 0.96x for these
//! `syncfs` steps (1.30x with both), its CPU 22–27% above the neighbouring
//! runs' (README, "Whole-system benchmark").
//!
//! [`Barrier`] opens each filesystem's handle *before* the batch writes:
//! `syncfs(2)` reports a writeback error that happened since its descriptor
//! was opened (Linux 5.8 and later), so a handle opened only at the end would
//! miss an error hit by earlier writeback (the flusher's, the kernel's, or a
//! large file's hinted writeback).

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::{At, IoError, Result};

/// The filesystems a batch writes to, each opened once before the batch:
/// [`Barrier::sync`] is the batch's barrier, one `syncfs` per filesystem.
#[derive(Debug)]
pub struct Barrier {
    handles: Vec<(PathBuf, File)>,
}

impl Barrier {
    /// Opens one handle per filesystem among `paths` (existing files or
    /// directories; two on the same device share one handle).
    pub fn open<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) -> Result<Barrier> {
        let mut devs = HashSet::new();
        let mut handles = Vec::new();
        for p in paths {
            let p = p.as_ref();
            let dev = std::fs::metadata(p).at(p)?.dev();
            if devs.insert(dev) {
                handles.push((p.to_path_buf(), File::open(p).at(p)?));
            }
        }
        Ok(Barrier { handles })
    }

    /// How many filesystems the batch spans.
    pub fn filesystems(&self) -> usize {
        self.handles.len()
    }

    /// `syncfs` on every filesystem: everything written to them so far is
    /// durable when this returns, or the first error names its filesystem.
    pub fn sync(&self) -> Result<()> {
        self.handles
            .iter()
            .try_for_each(|(path, f)| crate::syncfs_handle(path, f))
    }
}

/// Starts a batch's writeback while the batch runs: see the module comment.
/// The batch's writers call [`Flusher::wrote`]; a helper thread runs a
/// `syncfs` each time a step's bytes were written since its last one. Not a
/// barrier: the batch still ends with [`Barrier::sync`], after
/// [`Flusher::finish`]. Dropped without `finish`, it stops its helper too.
#[derive(Debug)]
pub struct Flusher {
    shared: Arc<Shared>,
    helper: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    barrier: Arc<Barrier>,
    step: u64,
    written: AtomicU64,
    state: Mutex<FlushState>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct FlushState {
    /// `written` when the last flush started.
    flushed: u64,
    done: bool,
    flushes: u64,
    error: Option<IoError>,
}

/// What a [`Flusher`]'s helper did.
#[derive(Debug)]
pub struct FlushReport {
    /// `syncfs` rounds the helper ran while the batch wrote.
    pub flushes: u64,
    /// The first error a helper's `syncfs` reported: the batch's data may
    /// not be on disk, so the batch must fail.
    pub error: Option<IoError>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, FlushState> {
        // Nothing panics while holding it; a poisoned state is still valid.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The helper: a `syncfs` whenever a step's bytes were written since the
    /// last one started, until the batch is done.
    fn run(&self) {
        loop {
            {
                let mut st = self.lock();
                loop {
                    if st.done {
                        return;
                    }
                    let now = self.written.load(Ordering::Relaxed);
                    if now.saturating_sub(st.flushed) >= self.step {
                        st.flushed = now;
                        st.flushes += 1;
                        break;
                    }
                    st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            }
            if let Err(e) = self.barrier.sync() {
                self.lock().error.get_or_insert(e);
            }
        }
    }
}

impl Flusher {
    /// Starts the helper over `barrier`'s filesystems, flushing every `step`
    /// bytes (at least 1 MiB). If no thread can be started the batch runs
    /// without overlap (its own barrier still holds): not an error.
    pub fn start(barrier: Arc<Barrier>, step: u64) -> Flusher {
        let shared = Arc::new(Shared {
            barrier,
            step: step.max(1 << 20),
            written: AtomicU64::new(0),
            state: Mutex::new(FlushState::default()),
            wake: Condvar::new(),
        });
        let for_helper = Arc::clone(&shared);
        let helper = std::thread::Builder::new()
            .name("tabletsnap-flush".into())
            .spawn(move || for_helper.run())
            .ok();
        Flusher { shared, helper }
    }

    /// Records `bytes` more written by the batch; wakes the helper each time
    /// the total crosses a multiple of the step (a lock only then).
    pub fn wrote(&self, bytes: u64) {
        let s = &self.shared;
        let before = s.written.fetch_add(bytes, Ordering::Relaxed);
        if before / s.step != before.saturating_add(bytes) / s.step {
            let _held = s.lock();
            s.wake.notify_one();
        }
    }

    /// Bytes the batch reported so far.
    pub fn written(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    fn stop(&mut self) {
        {
            let mut st = self.shared.lock();
            st.done = true;
            self.shared.wake.notify_one();
        }
        // It returns once it sees `done` (after a running syncfs ends).
        if let Some(h) = self.helper.take() {
            if h.join().is_err() {
                self.shared.lock().error.get_or_insert(IoError {
                    path: PathBuf::from("(flush helper)"),
                    source: std::io::Error::other("the flush helper panicked"),
                });
            }
        }
    }

    /// Stops the helper (waiting for a running `syncfs`) and says what it
    /// did. Call before the batch's [`Barrier::sync`]; fail the batch on
    /// [`FlushReport::error`].
    pub fn finish(mut self) -> FlushReport {
        self.stop();
        let mut st = self.shared.lock();
        FlushReport {
            flushes: st.flushes,
            error: st.error.take(),
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        if self.helper.is_some() {
            self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barrier_opens_one_handle_per_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        let barrier = Barrier::open([&a, &b, &a]).unwrap();
        assert_eq!(barrier.filesystems(), 1);
        barrier.sync().unwrap();
        let missing = dir.path().join("missing");
        let err = Barrier::open([&missing]).unwrap_err();
        assert_eq!(err.path, missing);
    }

    #[test]
    fn the_helper_flushes_once_per_step_written_and_stops_with_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let barrier = Arc::new(Barrier::open([dir.path()]).unwrap());
        let step = 1u64 << 20;
        let flusher = Flusher::start(Arc::clone(&barrier), step);
        for i in 0..3u64 {
            let path = dir.path().join(format!("f{i}"));
            std::fs::write(&path, vec![7u8; step as usize]).unwrap();
            flusher.wrote(step);
            // Each step wakes the helper; wait until it has taken this one,
            // so that every step is a flush of its own.
            while flusher.shared.lock().flushes <= i {
                std::thread::yield_now();
            }
        }
        assert_eq!(flusher.written(), 3 * step);
        let report = flusher.finish();
        assert_eq!(report.flushes, 3);
        assert!(report.error.is_none());
        // Below a step: no flush at all, and a dropped flusher stops.
        let flusher = Flusher::start(Arc::clone(&barrier), step);
        flusher.wrote(step - 1);
        assert_eq!(flusher.finish().flushes, 0);
        let flusher = Flusher::start(barrier, step);
        flusher.wrote(2 * step);
        drop(flusher);
    }
}
