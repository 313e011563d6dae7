//! `tabletsnap verify`: checks a backup in a repository without restoring it.

use std::path::Path;

use anyhow::{bail, Context, Result};
use tabletsnap::sql::ast::SnapshotRef;

use super::out::{render, write_stdout, Style};

/// What `tabletsnap verify` was asked to check.
#[derive(Debug)]
pub struct VerifyArgs<'a> {
    /// A cluster home whose catalog names the repository.
    pub home: Option<&'a Path>,
    /// Or the repository's location (`file:///...`), without a home.
    pub location: Option<&'a str>,
    /// Repository name.
    pub repo: &'a str,
    /// Snapshot label.
    pub snapshot: &'a str,
    /// One backup of the label; all of them when absent.
    pub timestamp: Option<&'a str>,
    /// Presence and sizes only.
    pub quick: bool,
}

/// Verifies and prints one row per backup; exit status 2 when any is damaged.
pub fn run(a: &VerifyArgs<'_>) -> Result<u8> {
    let location = match (a.home, a.location) {
        (_, Some(l)) => tabletsnap::repo::parse_location(l)?,
        (Some(home), None) => {
            let cat = tabletsnap::catalog::Catalog::load(home).with_context(|| {
                format!(
                    "reading the catalog of {} (while a server holds it, pass --location instead)",
                    home.display()
                )
            })?;
            cat.repo(a.repo)?.location.clone()
        }
        (None, None) => {
            bail!("give --home (a cluster home) or --location (the repository's location)")
        }
    };
    let repo = tabletsnap::repo::open_repository(a.repo, &location)?;
    let r = SnapshotRef {
        label: a.snapshot.to_string(),
        repo: a.repo.to_string(),
        timestamp: a.timestamp.map(str::to_string),
    };
    let ids = tabletsnap::exec::snapshots::resolve(&repo, &r)?;
    let started = std::time::Instant::now();
    let rs = tabletsnap::exec::snapshots::verify_rows(&repo, &ids, a.quick)?;
    let damaged = rs
        .rows
        .iter()
        .any(|row| row.get(2).is_some_and(|s| s != "OK"));
    let out = tabletsnap::exec::Output::Rows(rs);
    let style = Style {
        batch: false,
        blank_line: false,
    };
    write_stdout(&render(&out, style, true, started.elapsed()))?;
    Ok(if damaged { 2 } else { 0 })
}
