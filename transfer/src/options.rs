//! Options shared by upload and download.

use crate::cancel::CancelToken;
use crate::progress::ProgressFn;
use crate::retry::RetryPolicy;

/// Parallelism, retries, cancellation, rate limit and progress of a transfer.
#[derive(Clone)]
#[non_exhaustive]
pub struct TransferOptions {
    /// Worker threads; also the number of packs in flight, so peak memory is
    /// about `threads x pack size`.
    pub threads: usize,
    /// Retry policy for every backend operation.
    pub retry: RetryPolicy,
    /// Cancellation token checked between pieces.
    pub cancel: CancelToken,
    /// Cap on payload bytes per second over all threads; `None` = unlimited.
    pub rate_limit: Option<u64>,
    /// Called after each pack with the running totals.
    pub progress: Option<ProgressFn>,
}

impl Default for TransferOptions {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(2, 16),
            retry: RetryPolicy::default(),
            cancel: CancelToken::new(),
            rate_limit: None,
            progress: None,
        }
    }
}

impl std::fmt::Debug for TransferOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferOptions")
            .field("threads", &self.threads)
            .field("retry", &self.retry)
            .field("cancelled", &self.cancel.is_cancelled())
            .field("rate_limit", &self.rate_limit)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Builds a rayon pool with `threads` workers.
pub(crate) fn pool(threads: usize) -> crate::Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("tabletsnap-transfer-{i}"))
        .build()
        .map_err(|e| crate::Error::InvalidInput(format!("cannot start worker threads: {e}")))
}
