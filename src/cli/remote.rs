//! `sql` and `shell` on a home that `tabletsnap serve` holds: statements go
//! to the server over `<home>/serve.sock`, and `sql` waits for the jobs it
//! started by polling SHOW BACKUP/RESTORE until they are FINISHED or CANCELLED.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tabletsnap::exec::Output;
use tabletsnap::server::local::{response_error, LocalClient, StartedJob};

use super::out::{error_line, is_broken_pipe, render, write_stdout, Style};
use super::{script, SqlArgs, EXIT_STATEMENT_FAILED};

/// How often a waiting `sql` polls the server.
const POLL: Duration = Duration::from_millis(200);

/// A session on the server.
#[derive(Debug)]
pub struct Remote {
    client: LocalClient,
    db: Option<String>,
    /// Jobs started through this session.
    pub started: Vec<StartedJob>,
}

impl Remote {
    /// Wraps a connected client.
    pub fn new(client: LocalClient) -> Remote {
        Remote {
            client,
            db: None,
            started: Vec::new(),
        }
    }

    /// The session's database.
    pub fn current_db(&self) -> Option<&str> {
        self.db.as_deref()
    }

    /// Runs `text` on the server: the outputs, and the error that stopped it.
    pub fn run(&mut self, text: &str) -> Result<(Vec<Output>, Option<anyhow::Error>)> {
        let resp = self.client.run(text)?;
        self.db = resp.db.clone();
        self.started.extend(resp.started);
        let outs = resp.outputs.into_iter().map(|o| o.into_output()).collect();
        Ok((outs, resp.error.map(|(code, m)| response_error(code, &m))))
    }

    /// The State of job `j` (and why, when CANCELLED) from SHOW BACKUP/RESTORE.
    fn state(&mut self, j: &StartedJob) -> Result<(String, String)> {
        let text = format!("SHOW {} FROM `{}`", j.kind, j.db.replace('`', "``"));
        let (outs, err) = self.run(&text)?;
        if let Some(e) = err {
            return Err(e);
        }
        let Some(Output::Rows(rs)) = outs.into_iter().next() else {
            anyhow::bail!("SHOW {} returned no rows", j.kind);
        };
        let col = |name: &str| rs.columns.iter().position(|c| c == name);
        let (Some(id), Some(state), status) = (col("JobId"), col("State"), col("Status")) else {
            anyhow::bail!("SHOW {} has no JobId or State column", j.kind);
        };
        let id_text = j.id.to_string();
        let row = rs
            .rows
            .iter()
            .find(|r| r.get(id) == Some(&id_text))
            .with_context(|| format!("job {} is not in SHOW {}", j.id, j.kind))?;
        let why = status.and_then(|i| row.get(i)).cloned().unwrap_or_default();
        Ok((row.get(state).cloned().unwrap_or_default(), why))
    }
}

/// `tabletsnap sql` through the server; returns the exit status.
pub fn sql(a: &SqlArgs<'_>, client: LocalClient) -> Result<u8> {
    let mut remote = Remote::new(client);
    let (text, vertical) = script::normalize(a.text);
    let style = Style {
        batch: a.batch,
        blank_line: false,
    };
    let mut status = 0;
    let pieces = script::split(&text);
    'pieces: for (i, piece) in pieces.iter().filter(|p| p.has_content).enumerate() {
        let started = Instant::now();
        let (outs, err) = remote.run(piece.text)?;
        let vertical = vertical.get(i).copied().unwrap_or(false);
        for out in &outs {
            if let Err(e) = write_stdout(&render(out, style, vertical, started.elapsed())) {
                if is_broken_pipe(&e) {
                    break 'pieces;
                }
                return Err(e).context("writing results to stdout");
            }
        }
        if let Some(e) = err {
            eprintln!("{}", error_line(&e));
            status = EXIT_STATEMENT_FAILED;
            break;
        }
    }
    let jobs = remote.started.clone();
    if a.no_wait {
        for j in &jobs {
            eprintln!(
                "job {} ({} {}) runs in the server; --no-wait: SHOW {} FROM {} follows it",
                j.id, j.kind, j.label, j.kind, j.db
            );
        }
        return Ok(status);
    }
    for j in &jobs {
        loop {
            let (state, why) = remote.state(j)?;
            match state.as_str() {
                "FINISHED" => break,
                "CANCELLED" => {
                    eprintln!(
                        "ERROR 1105 (HY000): {} {} (JobId {}) was CANCELLED: {}",
                        j.kind,
                        j.label,
                        j.id,
                        why.strip_prefix("[CANCELLED] ").unwrap_or(&why)
                    );
                    status = status.max(super::jobs::EXIT_JOB_CANCELLED);
                    break;
                }
                _ => std::thread::sleep(POLL),
            }
        }
    }
    Ok(status)
}
