//! Progress reporting for progress bars.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counts of work done so far and in total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Files completed (including files skipped because already present).
    pub files_done: u64,
    /// Files in the transfer.
    pub files_total: u64,
    /// Bytes completed.
    pub bytes_done: u64,
    /// Bytes in the transfer.
    pub bytes_total: u64,
}

/// A progress callback; called from worker threads, so it must be cheap.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Thread-safe counters that feed a [`ProgressFn`].
pub(crate) struct ProgressTracker {
    files_done: AtomicU64,
    bytes_done: AtomicU64,
    files_total: u64,
    bytes_total: u64,
    callback: Option<ProgressFn>,
}

impl ProgressTracker {
    pub(crate) fn new(files_total: u64, bytes_total: u64, callback: Option<ProgressFn>) -> Self {
        Self {
            files_done: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            files_total,
            bytes_total,
            callback,
        }
    }

    pub(crate) fn add(&self, files: u64, bytes: u64) {
        let f = self.files_done.fetch_add(files, Ordering::Relaxed) + files;
        let b = self.bytes_done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if let Some(cb) = &self.callback {
            cb(Progress {
                files_done: f,
                files_total: self.files_total,
                bytes_done: b,
                bytes_total: self.bytes_total,
            });
        }
    }
}
