//! The job layer's clock: wall time plus an offset that tests move forward,
//! so a timeout test need not sleep (deadlines, watchdogs, the
//! timed-out-while-down check and the repository GC's grace period all
//! read this clock). A child process of a crash test gets its offset from
//! [`OFFSET_ENV`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::Duration;

static OFFSET_MS: AtomicU64 = AtomicU64::new(0);
static FROM_ENV: Once = Once::new();

/// Environment variable: seconds to add to the jobs' clock in this process
/// (crash tests run a child "later" to reach a GC sweep).
pub const OFFSET_ENV: &str = "TABLETSNAP_CLOCK_OFFSET_S";

/// Milliseconds since the epoch, as jobs see them.
pub fn now_ms() -> u64 {
    FROM_ENV.call_once(|| {
        if let Some(s) = std::env::var(OFFSET_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            advance(Duration::from_secs(s));
        }
    });
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
