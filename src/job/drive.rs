//! The run loop every job shares: fail points at state boundaries, the
//! deadline and cancel checks, bounded retries with backoff (unbounded once
//! a job is past its point of no return), cancels that finish, and the
//! per-backend fan-out of tasks.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::{backoff, clock, crash, panic_message, JobHandle, JobRecord, MAX_TASK_ATTEMPTS};
use crate::job::env::JobEnv;

/// What a state step asks the run loop to do next.
pub(crate) enum Step {
    /// Moved to the next state; keep going.
    Next,
    /// The job ended (FINISHED or CANCELLED).
    Done,
}

/// A job's deadline; saturating, so no stored timeout can overflow it.
fn deadline_ms(create_ms: u64, timeout_s: u64) -> u64 {
    create_ms.saturating_add(timeout_s.saturating_mul(1000))
}

/// Checks the deadline and the cancel flag between steps.
pub(crate) fn interrupted(h: &JobHandle, create_ms: u64, timeout_s: u64) -> Option<String> {
    if let Some(r) = h.cancel_reason() {
        return Some(r);
    }
    if clock::now_ms() > deadline_ms(create_ms, timeout_s) {
        h.request_cancel(&format!(
            "timeout: the job ran longer than its timeout of {timeout_s} s"
        ));
        return h.cancel_reason();
    }
    None
}

/// Arms a watchdog that cancels the job's transfers at its deadline.
pub(crate) fn watchdog(h: &Arc<JobHandle>, create_ms: u64, timeout_s: u64) {
    let job = Arc::clone(h);
    let deadline = deadline_ms(create_ms, timeout_s);
    let _ = std::thread::Builder::new()
        .name(format!("job-{}-watchdog", h.id))
        .spawn(move || loop {
            if job.is_done() {
                return;
            }
            let now = clock::now_ms();
            if now >= deadline {
                job.request_cancel(&format!(
                    "timeout: the job ran longer than its timeout of {timeout_s} s"
                ));
                return;
            }
            std::thread::sleep(Duration::from_millis((deadline - now).min(200)));
        });
}

/// Fail point right after a commit-point write (compiled in with
/// `failpoints`): the process-kill harness aborts the process here.
pub fn commit_point(name: &str) -> Result<()> {
    state_fail_point(name)
}

/// Fail point at a job state transition (compiled in with `failpoints`).
pub(crate) fn state_fail_point(name: &str) -> Result<()> {
    #[cfg(feature = "failpoints")]
    {
        if let Some(action) = fail_eval(name) {
            if action == "crash" {
                crash::simulate_crash();
            }
            anyhow::bail!("fail point {name} fired ({action})");
        }
    }
    let _ = name;
    Ok(())
}

#[cfg(feature = "failpoints")]
fn fail_eval(name: &str) -> Option<String> {
    fail::eval(name, |a| a.unwrap_or_default())
}

/// What the generic run loop needs to know of a job kind.
pub(crate) struct Machine<'a> {
    /// The fail point prefix, e.g. `job::backup`.
    pub kind: &'static str,
    /// Current state: (SHOW name, ended, forward-only).
    pub state: &'a dyn Fn() -> Option<(&'static str, bool, bool)>,
    /// Runs the current state's step.
    pub step: &'a dyn Fn() -> Result<Step>,
    /// Cancels the job and cleans up.
    pub cancel: &'a dyn Fn(&str),
}

/// Drives a job: fail point, cancel and deadline checks, the step, and
/// bounded retries with backoff (unbounded once forward-only). A simulated
/// crash stops the loop where it is, without cleanup.
pub(crate) fn drive(
    c: &dyn JobEnv,
    h: &Arc<JobHandle>,
    create: u64,
    timeout: u64,
    m: &Machine<'_>,
) {
    if let Some(reason) = h.with_record(|r| r.status().cancelling.clone()) {
        cancel_until_done(h, m, &reason);
        return;
    }
    watchdog(h, create, timeout);
    loop {
        if crash::crashed() {
            return;
        }
        let Some((name, done, forward_only)) = (m.state)() else {
            return;
        };
        if done {
            return;
        }
        // The cancel check comes after the state's fail point: a cancel that
        // arrives while the job waits at a step boundary wins over the step.
        let started = std::time::Instant::now();
        let res = state_fail_point(&format!("{}::{name}", m.kind)).and_then(|()| {
            match (!forward_only)
                .then(|| interrupted(h, create, timeout))
                .flatten()
            {
                Some(reason) => {
                    cancel_until_done(h, m, &reason);
                    Ok(Step::Done)
                }
                None => (m.step)(),
            }
        });
        release_freed_heap();
        trace_step(h.id, name, started, &res);
        match res {
            Ok(Step::Next) => {
                // A save per step is a redb commit of the whole record (a
                // W1 backup's lists 10,000 snapshots): only when it changes.
                if h.with_record(|r| r.status().attempts) != 0 {
                    let _ = c.jobs().update(h, |r| r.status_mut().attempts = 0);
                }
            }
            Ok(Step::Done) => return,
            Err(e) => {
                if crash::check(&e) {
                    return;
                }
                let msg = crate::errcode::one_line(&e);
                let attempts = h.with_record(|r| r.status().attempts) + 1;
                let _ = c.jobs().update(h, |r| {
                    let st = r.status_mut();
                    st.task_err_msg = msg.clone();
                    st.attempts = attempts;
                });
                if forward_only {
                    // Past the point of no return: keep trying, with capped backoff.
                    std::thread::sleep(backoff(attempts));
                    continue;
                }
                if h.cancel.is_cancelled() {
                    continue;
                }
                if is_permanent(&e) {
                    cancel_until_done(h, m, &format!("{name} failed: {msg}"));
                    return;
                }
                if attempts >= MAX_TASK_ATTEMPTS {
                    cancel_until_done(h, m, &format!("{name} failed {attempts} times: {msg}"));
                    return;
                }
                // A cancel during the backoff ends the wait early.
                let _ = h.cancel.sleep(backoff(attempts));
            }
        }
    }
}

/// With `TABLETSNAP_TRACE_STEPS` set, prints each job step's wall time to
/// stderr (`job 7: SNAPSHOTING 41.2 ms ok`): where a job's time goes,
/// step by step, without a profiler.
fn trace_step(job: u64, state: &str, started: std::time::Instant, res: &Result<Step>) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("TABLETSNAP_TRACE_STEPS").is_some()) {
        eprintln!(
            "job {job}: {state} {:.1} ms {}",
            started.elapsed().as_secs_f64() * 1000.0,
            if res.is_ok() { "ok" } else { "failed" }
        );
    }
}

/// Hands the heap a step freed back to the OS. A step's lists are per
/// tablet (targets, manifest parts, staged metas), built on many threads, so
/// glibc keeps their pages in per-thread arenas after they are freed, and
/// the next step's peak would stack on top of them.
fn release_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of glibc's own arenas.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// Whether a step error cannot go away by trying again: the repository's
/// data is missing, damaged or of a newer format, or its settings are
/// incomplete in this process (no credentials). Such a job fails at once
/// instead of retrying (the transfer layer already re-read what might have
/// been corrupted in transit). A store's refusal (403, 400) is retried a
/// bounded number of times: a bucket policy or a key can be fixed while the
/// job backs off (tests/task_errors_are_retried.rs).
pub(crate) fn is_permanent(e: &anyhow::Error) -> bool {
    use tabletsnap_transfer::Error as E;
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<E>(),
            Some(
                E::NotFound { .. }
                    | E::ChecksumMismatch { .. }
                    | E::SizeMismatch { .. }
                    | E::Corrupt { .. }
                    | E::UnsupportedVersion { .. }
                    | E::RepositoryNotFound { .. }
                    | E::SnapshotNotFound { .. }
                    | E::InvalidKey { .. }
                    | E::InvalidName { .. }
                    | E::Config(_)
                    | E::SymlinkRefused { .. }
            )
        ) || matches!(
            // A backup that cannot extend a replica stays so.
            c.downcast_ref::<tabletsnap_engine::Error>(),
            Some(tabletsnap_engine::Error::CatchUpRefused { .. })
        )
    })
}

/// Cancels, retrying with capped backoff while the cleanup cannot finish
/// (a catalog save that fails): a job is never marked CANCELLED with its
/// tables still fenced, and a process that dies meanwhile finishes the
/// cancel at its next start (the reason is persisted first).
fn cancel_until_done(h: &Arc<JobHandle>, m: &Machine<'_>, reason: &str) {
    let mut attempt = 0;
    loop {
        if crash::crashed() {
            return;
        }
        (m.cancel)(reason);
        if h.with_record(JobRecord::is_done) || (m.state)().is_some_and(|(_, _, fwd)| fwd) {
            return;
        }
        attempt += 1;
        std::thread::sleep(backoff(attempt));
    }
}

/// Runs `f` for every (backend, work item) on its own thread, all at once;
/// the first error wins.
pub(crate) fn per_backend<T: Send, I: Sync>(
    c: &dyn JobEnv,
    work: &[(u32, I)],
    f: impl Fn(&dyn crate::backend::BackendTasks, &I) -> Result<T> + Sync,
) -> Result<Vec<(u32, T)>> {
    per_backend_each(c, work, f)
        .into_iter()
        .map(|(be, r)| r.map(|t| (be, t)))
        .collect()
}

/// Like [`per_backend`], but returns every backend's own result, so a caller
/// can undo what the backends that succeeded made when another one failed.
pub(crate) fn per_backend_each<T: Send, I: Sync>(
    c: &dyn JobEnv,
    work: &[(u32, I)],
    f: impl Fn(&dyn crate::backend::BackendTasks, &I) -> Result<T> + Sync,
) -> Vec<(u32, Result<T>)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = work
            .iter()
            .map(|(be, item)| {
                let f = &f;
                let h = s.spawn(move || -> Result<T> {
                    let node = c.backend(*be)?;
                    f(node.as_ref(), item)
                });
                (*be, h)
            })
            .collect();
        handles
            .into_iter()
            .map(|(be, h)| {
                let r = h.join().unwrap_or_else(|p| {
                    Err(anyhow::anyhow!(
                        "a task on backend {be} panicked: {}",
                        panic_message(&*p)
                    ))
                });
                (be, r)
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::is_permanent;
    use tabletsnap_transfer::Error as E;

    #[test]
    fn missing_settings_are_permanent_and_refusals_and_outages_are_retried() {
        let wrapped = |e: E| anyhow::Error::new(e).context("BACKUP step UPLOADING");
        let store = |transient: bool, message: &str| E::Backend {
            op: "put",
            key: "k".into(),
            transient,
            message: message.into(),
        };
        let denied = store(false, "access denied to repository 'r'");
        let slow = store(true, "503 SlowDown");
        assert!(!is_permanent(&wrapped(denied)));
        assert!(is_permanent(&wrapped(E::Config("no credentials".into()))));
        assert!(is_permanent(&wrapped(E::SymlinkRefused {
            key: "k".into(),
            path: "/r/x".into(),
            root: "/r".into(),
        })));
        assert!(!is_permanent(&wrapped(slow)));
        assert!(!is_permanent(&anyhow::anyhow!("backend 2 is unreachable")));
    }
}
