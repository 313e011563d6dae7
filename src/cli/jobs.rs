//! Waiting for the jobs a command started: progress bars on a terminal, the
//! outcome of each job at the end, and what Ctrl-C does meanwhile.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tabletsnap::job::{JobHandle, JobRecord};

use super::interrupt::{self, EXIT_INTERRUPTED};

/// The exit status when a job ended CANCELLED.
pub const EXIT_JOB_CANCELLED: u8 = 1;

/// How often the waiting loop looks at the jobs.
const POLL: Duration = Duration::from_millis(100);

/// `RESTORE nightly (JobId 10023)`.
pub fn describe(h: &JobHandle) -> String {
    h.with_record(|r| format!("{} {} (JobId {})", r.kind(), r.label(), r.id()))
}

/// The state's SHOW name and, for a cancelled job, why.
fn outcome(h: &JobHandle) -> (&'static str, Option<String>) {
    h.with_record(|r| {
        let state = match r {
            JobRecord::Backup(j) => j.state.name(),
            JobRecord::Restore(j) => j.state.name(),
        };
        let reason = (state == "CANCELLED").then(|| {
            let s = &r.status();
            let status = s.status.strip_prefix("[CANCELLED] ").unwrap_or(&s.status);
            if status.is_empty() {
                s.task_err_msg.clone()
            } else {
                status.to_string()
            }
        });
        (state, reason)
    })
}

/// The stderr line for a job that ended CANCELLED, if it did.
pub fn cancelled_line(h: &JobHandle) -> Option<String> {
    let (_, reason) = outcome(h);
    reason.map(|r| format!("ERROR 1105 (HY000): {} was CANCELLED: {r}", describe(h)))
}

/// Waits for `jobs`, with a progress bar each when `bars`. Ctrl-C meanwhile
/// asks, per running job, whether to cancel it or leave it running (when
/// stdin is a terminal; otherwise all are left running). Returns the exit
/// status: 0, [`EXIT_JOB_CANCELLED`] after printing why each cancelled job
/// ended so, or [`EXIT_INTERRUPTED`] after Ctrl-C. The caller catches
/// SIGINT ([`interrupt::catch`]) from the moment the first job starts.
pub fn wait(jobs: &[Arc<JobHandle>], bars: bool) -> u8 {
    if jobs.is_empty() {
        return 0;
    }
    let view = Bars::new(jobs, bars);
    loop {
        view.update();
        if jobs.iter().all(|j| j.is_done()) {
            break;
        }
        if interrupt::pressed() {
            let running: Vec<&Arc<JobHandle>> = jobs.iter().filter(|j| !j.is_done()).collect();
            let ask = std::io::stdin().is_terminal();
            let mut cancelled = Vec::new();
            for j in running {
                if ask && view.suspend(|| ask_cancel(j)) {
                    j.request_cancel("cancelled by user (Ctrl-C)");
                    cancelled.push(Arc::clone(j));
                } else {
                    view.suspend(|| {
                        eprintln!(
                            "{} left running; it resumes when the home is next opened",
                            describe(j)
                        )
                    });
                }
            }
            if cancelled.is_empty() {
                view.abandon();
                return EXIT_INTERRUPTED;
            }
            // Wait for the cancelled jobs only; the others are left as they are.
            while !cancelled.iter().all(|j| j.is_done()) {
                view.update();
                std::thread::sleep(POLL);
            }
            view.update();
            view.abandon();
            for j in &cancelled {
                let (state, reason) = outcome(j);
                eprintln!(
                    "{} ended {state}{}",
                    describe(j),
                    reason.map(|r| format!(": {r}")).unwrap_or_default()
                );
            }
            return EXIT_INTERRUPTED;
        }
        std::thread::sleep(POLL);
    }
    let mut status = 0;
    for j in jobs {
        if let Some(line) = cancelled_line(j) {
            eprintln!("{line}");
            status = EXIT_JOB_CANCELLED;
        }
    }
    status
}

/// Asks on the terminal whether to cancel `j`; end of input means no.
fn ask_cancel(j: &JobHandle) -> bool {
    let stdin = std::io::stdin();
    loop {
        eprint!(
            "cancel job {} ({}) (c) or leave it running (l)? ",
            j.id,
            describe(j)
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        match stdin.lock().read_line(&mut answer) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        match answer.trim().to_ascii_lowercase().as_str() {
            "c" | "cancel" => return true,
            "l" | "leave" => return false,
            _ => {}
        }
    }
}

/// A progress bar per job, or nothing.
struct Bars {
    multi: Option<indicatif::MultiProgress>,
    shown: Vec<(Arc<JobHandle>, indicatif::ProgressBar)>,
}

impl Bars {
    fn new(jobs: &[Arc<JobHandle>], bars: bool) -> Bars {
        if !bars {
            return Bars {
                multi: None,
                shown: Vec::new(),
            };
        }
        let multi = indicatif::MultiProgress::new();
        let style =
            indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} files {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> ");
        let shown = jobs
            .iter()
            .map(|j| {
                let pb = multi.add(indicatif::ProgressBar::new(0));
                pb.set_style(style.clone());
                pb.set_prefix(j.with_record(|r| format!("{} {}", r.kind(), r.label())));
                (Arc::clone(j), pb)
            })
            .collect();
        Bars {
            multi: Some(multi),
            shown,
        }
    }

    fn update(&self) {
        for (j, pb) in &self.shown {
            if pb.is_finished() {
                continue;
            }
            pb.set_length(j.progress.files_total.load(Relaxed));
            pb.set_position(j.progress.files_done.load(Relaxed));
            let (state, reason) = outcome(j);
            if j.is_done() {
                // The bar stays on screen: it must say how the job ended.
                pb.finish_with_message(match reason {
                    Some(r) => format!("{state}: {r}"),
                    None => state.to_string(),
                });
            } else {
                pb.set_message(state);
            }
        }
    }

    /// Runs `f` with the bars off the screen, so prompts and messages stay readable.
    fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.multi {
            Some(m) => m.suspend(f),
            None => f(),
        }
    }

    /// Leaves unfinished bars where they are.
    fn abandon(&self) {
        for (_, pb) in &self.shown {
            if !pb.is_finished() {
                pb.abandon();
            }
        }
    }
}
