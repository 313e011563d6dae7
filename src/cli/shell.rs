//! `tabletsnap shell`: statements typed at a prompt (with line editing and
//! history), or read from stdin when it is not a terminal (`shell < script.sql`).

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use tabletsnap::exec::Session;
use tabletsnap::job::JobHandle;

use super::out::{error_line, is_broken_pipe, render, write_stdout, Style};
use super::script::{split, Terminator};
use super::{interrupt, jobs, EXIT_STATEMENT_FAILED};

/// Where lines come from.
enum Input {
    /// A terminal: line editing and history.
    Editor(Box<rustyline::DefaultEditor>),
    /// A pipe or file: plain lines, no prompt.
    Piped(std::io::StdinLock<'static>),
}

/// One read.
enum Line {
    Text(String),
    /// Ctrl-C at the prompt: drop the statement being typed.
    Interrupted,
    Eof,
}

impl Input {
    fn read(&mut self, prompt: &str) -> Result<Line> {
        match self {
            Input::Editor(rl) => match rl.readline(prompt) {
                Ok(l) => Ok(Line::Text(l)),
                Err(rustyline::error::ReadlineError::Interrupted) => Ok(Line::Interrupted),
                Err(rustyline::error::ReadlineError::Eof) => Ok(Line::Eof),
                Err(e) => Err(e).context("reading a line"),
            },
            Input::Piped(stdin) => {
                let mut line = String::new();
                match stdin.read_line(&mut line).context("reading stdin")? {
                    0 => Ok(Line::Eof),
                    _ => Ok(Line::Text(line.trim_end_matches(['\n', '\r']).to_string())),
                }
            }
        }
    }
}

/// `tabletsnap [d]> `, as the mysql client's `\d` prompt shows the database.
fn prompt(db: Option<&str>) -> String {
    format!("tabletsnap [{}]> ", db.unwrap_or("(none)"))
}

/// Whether a line alone ends the shell.
fn is_quit(line: &str) -> bool {
    let t = line.trim().trim_end_matches(';').trim_end();
    matches!(t.to_ascii_lowercase().as_str(), "quit" | "exit" | "\\q")
}

/// Where statements run: this process's session, or the server holding the home.
enum Target {
    Local(Session),
    Remote(super::remote::Remote),
}

impl Target {
    fn current_db(&self) -> Option<&str> {
        match self {
            Target::Local(s) => s.current_db(),
            Target::Remote(r) => r.current_db(),
        }
    }

    /// Jobs to wait for at exit: the server's own jobs are its business.
    fn started_jobs(&self) -> &[Arc<JobHandle>] {
        match self {
            Target::Local(s) => s.started_jobs(),
            Target::Remote(_) => &[],
        }
    }
}

/// The shell; returns the exit status.
pub fn shell(
    home: &Path,
    user: &str,
    password: &tabletsnap::users::Password,
    backends: u32,
) -> Result<u8> {
    let mut session = match tabletsnap::server::local::LocalClient::connect(home, user, password) {
        Some(client) => Target::Remote(super::remote::Remote::new(client)),
        None => {
            let cluster = super::open_home(home, backends)?;
            tabletsnap::users::authenticate(&cluster, user, password)?;
            Target::Local(Session::new(cluster, user)?)
        }
    };
    let interactive = std::io::stdin().is_terminal();
    let history = home.join(".tabletsnap_history");
    let mut input = if interactive {
        let mut rl = rustyline::DefaultEditor::new().context("starting the line editor")?;
        let _ = rl.load_history(&history);
        println!(
            "tabletsnap shell on {} as {user}; end statements with ';' (or \\G for vertical rows), exit with quit or Ctrl-D",
            home.display()
        );
        Input::Editor(Box::new(rl))
    } else {
        Input::Piped(std::io::stdin().lock())
    };
    let style = Style {
        batch: false,
        blank_line: interactive,
    };
    let mut reported = BTreeSet::new();
    let mut status = 0;
    let mut buf = String::new();
    let mut eof = false;
    'lines: while !eof {
        status = status.max(report_ended(session.started_jobs(), &mut reported));
        let first = prompt(session.current_db());
        let p = if buf.trim().is_empty() {
            first
        } else {
            format!("{:>width$}", "-> ", width = first.len())
        };
        let line = match input.read(&p)? {
            Line::Text(l) => l,
            Line::Interrupted => {
                buf.clear();
                continue;
            }
            Line::Eof if interactive => break,
            Line::Eof => {
                // A last statement without a terminator still runs, as with `mysql < file`.
                eof = true;
                ";".to_string()
            }
        };
        if !eof && buf.trim().is_empty() && is_quit(&line) {
            break;
        }
        buf.push_str(&line);
        buf.push('\n');
        let pieces = split(&buf);
        let Some((rest, complete)) = pieces.split_last() else {
            continue;
        };
        for piece in complete.iter().filter(|p| p.has_content) {
            let vertical = piece.terminator == Some(Terminator::Vertical);
            if let Input::Editor(rl) = &mut input {
                let end = if vertical { "\\G" } else { ";" };
                let _ = rl.add_history_entry(format!("{}{end}", piece.text.trim()));
            }
            match run(&mut session, piece.text, vertical, style) {
                Ok(true) => {}
                Ok(false) if interactive => {}
                // Piped input stops at the first error, as `mysql < file` does.
                Ok(false) => {
                    status = EXIT_STATEMENT_FAILED;
                    break 'lines;
                }
                Err(e) if is_broken_pipe(&e) => break 'lines,
                Err(e) => return Err(e).context("writing results to stdout"),
            }
        }
        if eof && rest.has_content {
            // An unclosed quote or comment: let the parser say what is open.
            if !run(&mut session, rest.text, false, style)? {
                status = EXIT_STATEMENT_FAILED;
            }
        }
        // What follows the last terminator on its line is kept; a bare line
        // end is not, so the next statement's errors count lines from its own.
        buf = if rest.has_content {
            rest.text.to_string()
        } else {
            String::new()
        };
    }
    if let Input::Editor(rl) = &mut input {
        let _ = rl.save_history(&history);
    }
    let running: Vec<Arc<JobHandle>> = session
        .started_jobs()
        .iter()
        .filter(|j| !j.is_done())
        .cloned()
        .collect();
    if !running.is_empty() {
        eprintln!("waiting for {} running job(s) to finish", running.len());
        let _sigint = interrupt::catch();
        let waited = jobs::wait(&running, std::io::stderr().is_terminal());
        for j in &running {
            reported.insert(j.id);
        }
        status = status.max(waited);
    }
    Ok(status.max(report_ended(session.started_jobs(), &mut reported)))
}

/// Runs one statement's text; `Ok(false)` when it failed (the error is printed).
fn run(target: &mut Target, text: &str, vertical: bool, style: Style) -> std::io::Result<bool> {
    let started = Instant::now();
    let session = match target {
        Target::Local(s) => s,
        Target::Remote(r) => {
            let (outs, err) = match r.run(text) {
                Ok(x) => x,
                Err(e) => (Vec::new(), Some(e)),
            };
            for out in &outs {
                write_stdout(&render(out, style, vertical, started.elapsed()))?;
            }
            if let Some(e) = err {
                eprintln!("{}", error_line(&e));
                return Ok(false);
            }
            return Ok(true);
        }
    };
    let stmts = match tabletsnap::sql::parse_statements(text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}", error_line(&e.into()));
            return Ok(false);
        }
    };
    for s in stmts {
        match session.execute(s) {
            Ok(out) => write_stdout(&render(&out, style, vertical, started.elapsed()))?,
            Err(e) => {
                eprintln!("{}", error_line(&e));
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Says how each job that ended since the last call ended; returns
/// [`jobs::EXIT_JOB_CANCELLED`] if one was cancelled.
fn report_ended(started: &[Arc<JobHandle>], reported: &mut BTreeSet<u64>) -> u8 {
    let mut status = 0;
    for j in started.iter().filter(|j| j.is_done()) {
        if !reported.insert(j.id) {
            continue;
        }
        match jobs::cancelled_line(j) {
            Some(line) => {
                eprintln!("{line}");
                status = jobs::EXIT_JOB_CANCELLED;
            }
            None => eprintln!("{} FINISHED", jobs::describe(j)),
        }
    }
    status
}
