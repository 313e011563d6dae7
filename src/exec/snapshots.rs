//! DROP SNAPSHOT, VERIFY SNAPSHOT and the repository retention property.

use std::time::Instant;

use crate::job::clock::now_ms;
use anyhow::{bail, Context, Result};
use tabletsnap_transfer::{
    verify_snapshot, Repository, SnapshotId, VerifyOptions, DEFAULT_GC_GRACE_MS,
};

use super::{Output, Session};
use crate::job::JobRecord;
use crate::sql::ast::{Properties, SnapshotRef};
use crate::sql::ResultSet;

/// The `"retention_count"` of CREATE REPOSITORY: keep the newest N backups
/// per label (N ≥ 1); `None` when not set.
pub(crate) fn retention_count(props: &Properties) -> Result<Option<usize>> {
    let Some((_, v)) = props.iter().find(|(k, _)| k == "retention_count") else {
        return Ok(None);
    };
    match v.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(Some(n)),
        _ => bail!(
            "invalid value \"{v}\" for property \"retention_count\": expected a whole number of backups to keep per label, at least 1"
        ),
    }
}

fn open(s: &Session, name: &str) -> Result<Repository> {
    let (repo_name, location) = {
        let cat = s.cluster.catalog();
        let r = cat.repo(name)?;
        (r.name.clone(), r.location.clone())
    };
    crate::repo::open_repository(&repo_name, &location)
}

/// The snapshots `r` names that have an `info` (committed or damaged); an
/// error naming the label (and timestamp) when there are none.
pub fn resolve(repo: &Repository, r: &SnapshotRef) -> Result<Vec<SnapshotId>> {
    if let Some(ts) = &r.timestamp {
        tabletsnap_transfer::names::validate_timestamp(ts)?;
    }
    let ids: Vec<SnapshotId> = crate::repo::with_retries(|| repo.list_snapshots_with_status())?
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| id.label == r.label && r.timestamp.as_ref().is_none_or(|t| *t == id.timestamp))
        .collect();
    if ids.is_empty() {
        let what = match &r.timestamp {
            Some(ts) => format!("snapshot '{}' at {ts}", r.label),
            None => format!("snapshot '{}'", r.label),
        };
        bail!(
            "{what} not found in repository '{}' (SHOW SNAPSHOT ON {} lists them)",
            r.repo,
            r.repo
        );
    }
    Ok(ids)
}

/// `DROP SNAPSHOT`: un-commits each named backup (its `info` first), then
/// runs one GC pass (two-phase: packs are deleted only by a pass a grace
/// period after they were found unreferenced).
pub(super) fn drop_snapshot(s: &Session, r: &SnapshotRef) -> Result<Output> {
    if s.cluster.catalog().repo(&r.repo)?.read_only {
        bail!(
            "repository '{}' is read only: DROP SNAPSHOT cannot delete from it (drop snapshots on the cluster that writes the repository)",
            r.repo
        );
    }
    let repo = open(s, &r.repo)?;
    let ids = resolve(&repo, r)?;
    for h in s.cluster.jobs().all() {
        if h.is_done() {
            continue;
        }
        if let JobRecord::Restore(j) = h.record() {
            if j.repo.name == r.repo
                && ids
                    .iter()
                    .any(|id| id.label == j.label && id.timestamp == j.timestamp)
            {
                bail!(
                    "snapshot '{}' at {} is being restored by job {}; drop it once the job ends",
                    j.label,
                    j.timestamp,
                    j.id
                );
            }
        }
    }
    for id in &ids {
        repo.drop_snapshot(id)
            .with_context(|| format!("dropping snapshot {id} from repository '{}'", r.repo))?;
    }
    let gc = repo
        .gc(now_ms(), DEFAULT_GC_GRACE_MS)
        .with_context(|| format!("collecting unreferenced packs of repository '{}'", r.repo))?;
    let manifests = if gc.manifests_marked + gc.manifests_deleted > 0 {
        format!(
            "; manifests of dropped backups: {} marked for deletion, {} deleted",
            gc.manifests_marked, gc.manifests_deleted
        )
    } else {
        String::new()
    };
    Ok(Output::Message(format!(
        "Query OK, {} snapshot(s) dropped; packs: {} marked for deletion, {} deleted{manifests}",
        ids.len(),
        gc.packs_marked,
        gc.packs_deleted
    )))
}

/// Runs retention and GC for `label` after a backup; returns what was dropped.
pub(crate) fn apply_retention(repo: &Repository, label: &str, keep: usize) -> Result<usize> {
    let dropped = repo.apply_retention(label, keep)?;
    repo.gc(now_ms(), DEFAULT_GC_GRACE_MS)?;
    Ok(dropped.len())
}

/// `VERIFY SNAPSHOT`: one row per backup; nothing is written.
pub(super) fn verify(s: &Session, r: &SnapshotRef, props: &Properties) -> Result<Output> {
    let mut quick = false;
    for (k, v) in props {
        match (k.as_str(), v.trim().to_ascii_lowercase().as_str()) {
            ("quick", "true") => quick = true,
            ("quick", "false") => quick = false,
            ("quick", _) => bail!(
                "invalid value \"{v}\" for property \"quick\": expected \"true\" or \"false\""
            ),
            _ => bail!("unknown property \"{k}\" for VERIFY (it accepts \"quick\")"),
        }
    }
    let repo = open(s, &r.repo)?;
    let ids = resolve(&repo, r)?;
    Ok(Output::Rows(verify_rows(&repo, &ids, quick)?))
}

/// Verifies each of `ids` and describes the outcome (also used by the CLI).
pub fn verify_rows(repo: &Repository, ids: &[SnapshotId], quick: bool) -> Result<ResultSet> {
    let mut rs = ResultSet::new([
        "Snapshot",
        "Timestamp",
        "Status",
        "Tablets",
        "Files",
        "Bytes",
        "BytesRead",
        "MB/s",
        "Damage",
    ]);
    for id in ids {
        let mut opts = VerifyOptions::default();
        opts.quick = quick;
        let start = Instant::now();
        let (status, cols, damage) = match verify_snapshot(repo, id, &opts) {
            Err(e) => (
                "DAMAGED".to_string(),
                [String::new(), String::new(), String::new(), String::new()],
                format!("{e}"),
            ),
            Ok(rep) => {
                let mut lines: Vec<String> = rep
                    .damaged
                    .iter()
                    .map(|d| format!("tablet {}: {}", d.tablet_id, d.problems.join("; ")))
                    .collect();
                if !rep.missing_packs.is_empty() {
                    lines.insert(
                        0,
                        format!("missing packs: {}", rep.missing_packs.join(", ")),
                    );
                }
                (
                    if rep.is_ok() { "OK" } else { "DAMAGED" }.to_string(),
                    [
                        rep.tablets.to_string(),
                        rep.files.to_string(),
                        rep.bytes.to_string(),
                        rep.bytes_read.to_string(),
                    ],
                    lines.join("\n"),
                )
            }
        };
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        let read: f64 = cols[3].parse().unwrap_or(0.0);
        let [tablets, files, bytes, bytes_read] = cols;
        rs.push_row([
            id.label.clone(),
            id.timestamp.clone(),
            status,
            tablets,
            files,
            bytes,
            bytes_read,
            format!("{:.0}", read / secs / 1e6),
            damage,
        ]);
    }
    Ok(rs)
}
