//! The `sql` and `shell` commands: running statements, printing results in
//! the mysql client's style, and waiting for the jobs they start.

pub mod interrupt;
pub mod jobs;
pub mod out;
pub mod remote;
pub mod script;
pub mod shell;
pub mod verify;

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use tabletsnap::cluster::Cluster;
use tabletsnap::exec::Session;

use out::{error_line, is_broken_pipe, render, write_stdout, Style};

/// The exit status after a statement failed.
pub const EXIT_STATEMENT_FAILED: u8 = 1;

/// What `tabletsnap sql` was asked to do.
#[derive(Debug)]
pub struct SqlArgs<'a> {
    /// The cluster home.
    pub home: &'a Path,
    /// User to run as.
    pub user: &'a str,
    /// The user's password.
    pub password: &'a tabletsnap::users::Password,
    /// Tab-separated output, no status lines.
    pub batch: bool,
    /// Backends for a new home.
    pub backends: u32,
    /// The statements.
    pub text: &'a str,
    /// Return after starting jobs instead of waiting for them.
    pub no_wait: bool,
}

/// Opens `home` for `sql` or `shell`; a new home's root password is
/// `TABLETSNAP_ROOT_PASSWORD` when set, else empty (as a new StarRocks
/// cluster's) until SET PASSWORD.
pub fn open_home(home: &Path, backends: u32) -> Result<std::sync::Arc<Cluster>> {
    let new_home = !Cluster::home_exists(home);
    let cluster = Cluster::open(home, backends)?;
    if new_home {
        if let Ok(pw) = std::env::var(tabletsnap::users::ROOT_PASSWORD_ENV) {
            tabletsnap::users::Passwords::load(home)?
                .set("root", &tabletsnap::users::Password::new(pw))?;
        }
    }
    Ok(cluster)
}

/// Runs the statements, stopping at the first error, then waits for the jobs
/// they started; returns the exit status. Errors opening the home or
/// parsing the text come back as `Err`; the rest is printed here.
pub fn sql(a: &SqlArgs<'_>) -> Result<u8> {
    if let Some(client) =
        tabletsnap::server::local::LocalClient::connect(a.home, a.user, a.password)
    {
        return remote::sql(a, client);
    }
    let cluster = open_home(a.home, a.backends)?;
    tabletsnap::users::authenticate(&cluster, a.user, a.password)?;
    // Jobs an earlier process left unfinished resumed at open: this process
    // drives them to the end too, or its exit would stop them again.
    let resumed: Vec<Arc<tabletsnap::job::JobHandle>> = cluster
        .jobs()
        .all()
        .into_iter()
        .filter(|j| !j.is_done())
        .collect();
    let mut session = Session::new(cluster, a.user)?;
    let (text, vertical) = script::normalize(a.text);
    let stmts = tabletsnap::sql::parse_statements(&text)?;
    let style = Style {
        batch: a.batch,
        blank_line: false,
    };
    // Caught from the first job on, so that Ctrl-C never kills a job silently;
    // a Ctrl-C during a later statement takes effect when it ends.
    let mut sigint = None;
    let mut status = 0;
    for (i, stmt) in stmts.into_iter().enumerate() {
        if interrupt::pressed() && sigint.is_some() {
            break;
        }
        let started = Instant::now();
        let jobs_before = session.started_jobs().len();
        let res = session.execute(stmt);
        if session.started_jobs().len() > jobs_before && sigint.is_none() && !a.no_wait {
            sigint = match interrupt::catch() {
                Ok(g) => Some(g),
                Err(e) => {
                    eprintln!("warning: Ctrl-C will end the process without asking: {e:#}");
                    None
                }
            };
        }
        let output = match res {
            Ok(o) => o,
            Err(e) => {
                eprintln!("{}", error_line(&e));
                status = EXIT_STATEMENT_FAILED;
                break;
            }
        };
        let vertical = vertical.get(i).copied().unwrap_or(false);
        if let Err(e) = write_stdout(&render(&output, style, vertical, started.elapsed())) {
            if is_broken_pipe(&e) {
                // The reader has gone (`| head`): a normal end; the jobs still finish.
                break;
            }
            return Err(e).context("writing results to stdout");
        }
    }
    let jobs = session.started_jobs();
    let waited = if a.no_wait {
        for j in jobs.iter().filter(|j| !j.is_done()) {
            eprintln!(
                "{} is running; --no-wait: it goes on whenever a process has the home open",
                jobs::describe(j)
            );
        }
        let mut waited = 0;
        for line in jobs.iter().filter_map(|j| jobs::cancelled_line(j)) {
            eprintln!("{line}");
            waited = jobs::EXIT_JOB_CANCELLED;
        }
        waited
    } else {
        let code = jobs::wait(jobs, !a.batch && std::io::stderr().is_terminal());
        let unfinished: Vec<_> = resumed.into_iter().filter(|j| !j.is_done()).collect();
        for j in &unfinished {
            eprintln!(
                "finishing {}, which an earlier process left unfinished",
                jobs::describe(j)
            );
        }
        // Their outcome is reported, but only the jobs started here set the exit status.
        let resumed_code = jobs::wait(&unfinished, !a.batch && std::io::stderr().is_terminal());
        if resumed_code == interrupt::EXIT_INTERRUPTED {
            resumed_code
        } else {
            code
        }
    };
    drop(sigint);
    Ok(match waited {
        interrupt::EXIT_INTERRUPTED => waited,
        _ if status != 0 => status,
        _ => waited,
    })
}
