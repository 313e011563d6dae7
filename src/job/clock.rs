//! The job layer's clock: wall time plus an offset that tests move forward,
//! so a timeout test need not sleep (deadlines, watchdogs and the
//! timed-out-while-down check all read this clock).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static OFFSET_MS: AtomicU64 = AtomicU64::new(0);

/// Milliseconds since the epoch, as jobs see them.
pub fn now_ms() -> u64 {
    tabletsnap_engine::engine::now_ms().saturating_add(OFFSET_MS.load(Ordering::SeqCst))
}

/// Moves the jobs' clock forward by `by` (process-wide; for tests).
pub fn advance(by: Duration) {
    let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
    let _ = OFFSET_MS.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |o| {
        Some(o.saturating_add(ms))
    });
}

/// Puts the jobs' clock back to wall time.
pub fn reset() {
    OFFSET_MS.store(0, Ordering::SeqCst);
}
