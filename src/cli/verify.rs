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
    /// With an `s3://` location: the repository's PROPERTIES (`KEY=VALUE`,
    /// CREATE REPOSITORY's names), the keys from the environment.
    pub properties: &'a [String],
}

/// Verifies and prints one row per backup; exit status 2 when any is damaged.
pub fn run(a: &VerifyArgs<'_>) -> Result<u8> {
    let props = a
        .properties
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => bail!(
                "--property '{kv}': give KEY=VALUE, e.g. aws.s3.endpoint=http://127.0.0.1:9000"
            ),
        })
        .collect::<Result<Vec<(String, String)>>>()?;
    if props
        .iter()
        .any(|(k, _)| k == tabletsnap_transfer::backend::s3::PROP_SECRET_KEY)
    {
        bail!(
            "--property {}: not on the command line (other users see it in the process list); set AWS_SECRET_ACCESS_KEY instead",
            tabletsnap_transfer::backend::s3::PROP_SECRET_KEY
        );
    }
    if !props.is_empty() && !a.location.is_some_and(tabletsnap::repo::is_s3) {
        bail!("--property gives an s3:// --location its settings; it does not apply here");
    }
    let location = match (a.home, a.location) {
        (_, Some(l)) => {
            let location = tabletsnap::repo::parse_location(l)?;
            if tabletsnap::repo::is_s3(&location) {
                tabletsnap::repo::register_s3(a.repo, &location, &props, None)?;
            }
            location
        }
        (Some(home), None) => {
            if !tabletsnap::meta_store::MetaStore::path(home).exists()
                && !tabletsnap::catalog::Catalog::path(home).exists()
            {
                bail!(
                    "{} is not a cluster home (it holds no metadata store); give the home a cluster was opened with, or --location",
                    home.display()
                );
            }
            let cat = tabletsnap::catalog::Catalog::load(home).with_context(|| {
                format!(
                    "reading the catalog of {} (while a server holds it, pass --location instead)",
                    home.display()
                )
            })?;
            let def = cat.repo(a.repo)?;
            tabletsnap::repo::register_catalog_repositories(home, [def])?;
            def.location.clone()
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
