//! Simulated process death, for crash tests and the fault harness.
//!
//! When a crash is simulated, every job thread stops at its next step
//! boundary without cleanup and without persisting anything more, as if the
//! process had died there; the test then drops the cluster and reopens the
//! home from disk. Process-global, like fail points: crash tests serialize.

use std::sync::atomic::{AtomicBool, Ordering};

static CRASHED: AtomicBool = AtomicBool::new(false);
static CRASH_ON_FAIL_POINT: AtomicBool = AtomicBool::new(false);

/// The process "dies" now: job threads stop without cleanup.
pub fn simulate_crash() {
    CRASHED.store(true, Ordering::SeqCst);
}

/// Whether a simulated crash happened (and was not yet recovered from).
pub fn crashed() -> bool {
    CRASHED.load(Ordering::SeqCst)
}

/// Clears the crash: call before reopening the home.
pub fn recover() {
    CRASHED.store(false, Ordering::SeqCst);
}

/// With `on`, any fail point error reaching a job is a simulated crash
/// rather than a task error to retry.
pub fn crash_on_fail_point(on: bool) {
    CRASH_ON_FAIL_POINT.store(on, Ordering::SeqCst);
}

/// Turns a fail point error into a crash when armed; true if the job must stop.
pub fn check(err: &anyhow::Error) -> bool {
    if CRASH_ON_FAIL_POINT.load(Ordering::SeqCst) && format!("{err:#}").contains("fail point") {
        simulate_crash();
    }
    crashed()
}
