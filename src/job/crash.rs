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

/// Environment variable naming a fail point at which the process aborts
/// (no unwinding, no cleanup): the process-kill crash harness sets it on a
/// child `tabletsnap` built with the `failpoints` feature.
pub const ABORT_AT_ENV: &str = "TABLETSNAP_ABORT_AT";

/// Arms [`ABORT_AT_ENV`]: the named fail point (of any layer) aborts the
/// process when reached. `name@N` aborts at its N-th hit. Returns the point armed.
pub fn arm_abort_from_env() -> Option<String> {
    let spec = std::env::var(ABORT_AT_ENV).ok()?;
    #[cfg(feature = "failpoints")]
    {
        let (name, nth) = match spec.split_once('@') {
            Some((n, k)) => (n.to_string(), k.parse::<u64>().unwrap_or(1).max(1)),
            None => (spec.clone(), 1),
        };
        let hits = std::sync::atomic::AtomicU64::new(0);
        let r = fail::cfg_callback(name.clone(), move || {
            if hits.fetch_add(1, Ordering::SeqCst) + 1 >= nth {
                std::process::abort();
            }
        });
        if let Err(e) = r {
            eprintln!("ERROR: cannot arm {ABORT_AT_ENV}={spec}: {e}");
            std::process::exit(2);
        }
        Some(spec)
    }
    #[cfg(not(feature = "failpoints"))]
    {
        eprintln!("ERROR: {ABORT_AT_ENV}={spec} needs a build with `--features failpoints`");
        std::process::exit(2);
    }
}
