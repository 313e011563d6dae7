//! Ctrl-C while jobs run: the first SIGINT is only noted, for the waiting
//! loop to ask what to do with the jobs; a second one ends the process at
//! once, leaving the jobs to resume when the home is next opened.

use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result};
use nix::libc;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// The exit status of a command ended by Ctrl-C, as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;

static COUNT: AtomicU32 = AtomicU32::new(0);

const SECOND: &[u8] =
    b"\nCtrl-C again: jobs left running; they resume when the home is next opened\n";

extern "C" fn on_sigint(_: libc::c_int) {
    if COUNT.fetch_add(1, Ordering::SeqCst) >= 1 {
        // Only async-signal-safe calls here: write(2) and _exit(2).
        // SAFETY: the buffer is a valid static slice; _exit never returns.
        unsafe {
            libc::write(2, SECOND.as_ptr().cast(), SECOND.len());
            libc::_exit(libc::c_int::from(EXIT_INTERRUPTED));
        }
    }
}

/// While alive, SIGINT is noted instead of killing the process; dropping it
/// puts the previous disposition back.
#[derive(Debug)]
pub struct Guard {
    previous: SigAction,
}

/// Catches SIGINT until the guard is dropped.
pub fn catch() -> Result<Guard> {
    COUNT.store(0, Ordering::SeqCst);
    // No SA_RESTART: a blocking read of the answer sees the second Ctrl-C too,
    // although the handler ends the process before that matters.
    let action = SigAction::new(
        SigHandler::Handler(on_sigint),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only touches an atomic and calls write/_exit.
    let previous =
        unsafe { sigaction(Signal::SIGINT, &action) }.context("installing the Ctrl-C handler")?;
    Ok(Guard { previous })
}

/// Whether Ctrl-C was pressed since [`catch`].
pub fn pressed() -> bool {
    COUNT.load(Ordering::SeqCst) > 0
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: restores the disposition sigaction returned.
        let _ = unsafe { sigaction(Signal::SIGINT, &self.previous) };
    }
}

/// Lets SIGPIPE kill the process, for commands whose output is printed by
/// library code with `println!` (which panics on a closed pipe).
pub fn default_sigpipe() {
    // SAFETY: SIG_DFL is always a valid disposition.
    let _ = unsafe { nix::sys::signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}
