//! The RESTORE job: PENDING → SNAPSHOTING → DOWNLOAD → DOWNLOADING → COMMIT →
//! COMMITTING → FINISHED, or CANCELLED (never from COMMITTING on).
//!
//! PENDING plans the restore and creates missing tables and partitions with
//! new ids (visible, not readable); SNAPSHOTING makes empty download dirs on
//! every target replica; DOWNLOADING fetches and verifies the files; COMMIT
//! checks every dir and fences the partitions being replaced; COMMITTING
//! installs every tablet (atomic and idempotent per tablet) and then publishes
//! the versions in the catalog. A crash in COMMITTING resumes COMMITTING, so a
//! table being overwritten is never left part old, part new once readable.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::job::clock;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tabletsnap_transfer::SnapshotId;

use super::backup::task_control;
use super::{drive, per_backend, per_backend_each, JobHandle, JobRecord, JobStatus, Machine, Step};
use crate::backend::{RepoRef, RestoreTarget};
use crate::catalog::{RestoredFrom, TableSource};
use crate::job::env::JobEnv;

mod catalog_ops;
mod plan;
mod split;

pub use catalog_ops::fence_loads;
use catalog_ops::{apply_plan, lift_fences};
pub use plan::{make_plan, read_backup_meta, PartitionPlan, RestoreObj, TablePlan};

/// States of a RESTORE job.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RestoreState {
    /// Created; tables and partitions being prepared.
    Pending,
    /// Download dirs being made on the target replicas.
    Snapshoting,
    /// Download tasks being prepared.
    Download,
    /// Backends download and verify.
    Downloading,
    /// Downloads checked; partitions fenced.
    Commit,
    /// Tablets installed and versions published.
    Committing,
    /// Done: restored tables are readable.
    Finished,
    /// Ended; what it created was dropped, existing data untouched.
    Cancelled,
}

impl RestoreState {
    /// FINISHED or CANCELLED.
    pub fn is_done(self) -> bool {
        matches!(self, RestoreState::Finished | RestoreState::Cancelled)
    }
    /// The SHOW spelling.
    pub fn name(self) -> &'static str {
        match self {
            RestoreState::Pending => "PENDING",
            RestoreState::Snapshoting => "SNAPSHOTING",
            RestoreState::Download => "DOWNLOAD",
            RestoreState::Downloading => "DOWNLOADING",
            RestoreState::Commit => "COMMIT",
            RestoreState::Committing => "COMMITTING",
            RestoreState::Finished => "FINISHED",
            RestoreState::Cancelled => "CANCELLED",
        }
    }
}

/// A RESTORE job's persisted record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreJob {
    /// Job id.
    pub id: u64,
    /// Snapshot label.
    pub label: String,
    /// Target database.
    pub db: String,
    /// Source repository.
    pub repo: RepoRef,
    /// Backup timestamp.
    pub timestamp: String,
    /// Current state.
    pub state: RestoreState,
    /// Timeout (s).
    pub timeout_s: u64,
    /// INSERT allowed into restoring tables (outside the restored partitions).
    pub allow_load: bool,
    /// Replicas for created tablets (`None`: as in the backup).
    pub replication_num: Option<u16>,
    /// What to restore (empty: everything in the backup).
    pub objs: Vec<RestoreObj>,
    /// Created (ms).
    pub create_time_ms: u64,
    /// PENDING ended (ms).
    pub meta_prepared_ms: Option<u64>,
    /// SNAPSHOTING ended (ms).
    pub snapshot_finished_ms: Option<u64>,
    /// DOWNLOADING ended (ms).
    pub download_finished_ms: Option<u64>,
    /// FINISHED or CANCELLED (ms).
    pub finished_ms: Option<u64>,
    /// The plan, once made. Shared, as `targets`: each step and each record
    /// update copies the record, and at 100k tablets these two are almost
    /// all of it (a copy of the lists per step was tens of MiB).
    pub plan: Option<Arc<Vec<TablePlan>>>,
    /// Per backend, its replicas to fill.
    pub targets: Arc<Vec<(u32, Vec<RestoreTarget>)>>,
    /// How far COMMITTING got: each sub-step is persisted, so a rerun after
    /// a crash finds what it needs (the download dirs until released).
    #[serde(default)]
    pub commit_step: CommitStep,
    /// `"catch_up" = "true"`: existing partitions get only the versions they
    /// lack, and must hold the same source's data at a version the backup extends.
    #[serde(default)]
    pub catch_up: bool,
    /// Errors and status.
    pub status: JobStatus,
}

/// The persisted sub-steps of COMMITTING.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum CommitStep {
    /// Nothing installed yet (or not known to be).
    #[default]
    Started,
    /// Every replica installed (tablet metas swapped).
    Installed,
    /// Versions published and fences lifted in the catalog.
    Published,
    /// Download dirs released.
    Released,
}

impl RestoreJob {
    /// RestoreObjs for SHOW.
    pub fn objs_text(&self) -> String {
        match &self.plan {
            Some(p) => p
                .iter()
                .map(|t| {
                    let parts: Vec<&str> = t.partitions.iter().map(|p| p.name.as_str()).collect();
                    format!("{}({})", t.target, parts.join(","))
                })
                .collect::<Vec<_>>()
                .join(", "),
            None if self.objs.is_empty() => "*".into(),
            None => self
                .objs
                .iter()
                .map(|o| o.table.clone())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

fn with_job<T>(h: &JobHandle, f: impl FnOnce(&RestoreJob) -> T) -> Result<T> {
    h.with_record(|r| match r {
        JobRecord::Restore(j) => Ok(f(j)),
        JobRecord::Backup(_) => bail!("job {} is not a restore", h.id),
    })
}

fn update(c: &dyn JobEnv, h: &JobHandle, f: impl FnOnce(&mut RestoreJob)) -> Result<()> {
    c.jobs().update(h, |r| {
        if let JobRecord::Restore(j) = r {
            f(j)
        }
    })
}

/// Drives a restore job to FINISHED or CANCELLED.
pub fn run(c: &dyn JobEnv, h: &Arc<JobHandle>) {
    let Ok((create, timeout)) = with_job(h, |j| (j.create_time_ms, j.timeout_s)) else {
        return;
    };
    let state = || with_job(h, |j| j.state).ok();
    drive(
        c,
        h,
        create,
        timeout,
        &Machine {
            kind: "job::restore",
            state: &|| state().map(|s| (s.name(), s.is_done(), s == RestoreState::Committing)),
            step: &|| match state() {
                Some(s) => step(c, h, s),
                None => Ok(Step::Done),
            },
            cancel: &|reason| cancel(c, h, reason),
        },
    );
}

fn step(c: &dyn JobEnv, h: &Arc<JobHandle>, state: RestoreState) -> Result<Step> {
    let job = with_job(h, Clone::clone)?;
    match state {
        RestoreState::Pending => {
            let meta = read_backup_meta(&job.repo, &job.label, &job.timestamp)?;
            let plan = match job.plan.clone() {
                Some(p) => p,
                None => {
                    let live = c.live_backend_ids();
                    let plan =
                        Arc::new(c.update_catalog(|cat| make_plan(cat, &job, &meta, true, &live))?);
                    update(c, h, |j| j.plan = Some(plan.clone()))?;
                    plan
                }
            };
            c.update_catalog(|cat| apply_plan(cat, &job, &meta, &plan))?;
            super::commit_point("job::restore::after_catalog_apply")?;
            let schema_hash: std::collections::HashMap<&str, u32> = meta
                .tables
                .iter()
                .map(|t| (t.name.as_str(), t.schema.stable_hash()))
                .collect();
            let mut per_be: std::collections::BTreeMap<u32, Vec<RestoreTarget>> =
                Default::default();
            for tp in plan.iter() {
                for pp in &tp.partitions {
                    for (src, tid, replicas) in &pp.tablets {
                        for be in replicas {
                            per_be.entry(*be).or_default().push(RestoreTarget {
                                source_tablet_id: *src,
                                tablet_id: *tid,
                                schema_hash: schema_hash
                                    .get(tp.source.as_str())
                                    .copied()
                                    .unwrap_or(0),
                                table_id: tp.table_id,
                                partition_id: pp.partition_id,
                                overwrite: !pp.created && pp.catch_up_from.is_none(),
                                dir: None,
                                version: Some(pp.version),
                                catch_up_from: pp.catch_up_from,
                            });
                        }
                    }
                }
            }
            update(c, h, |j| {
                j.targets = Arc::new(per_be.into_iter().collect());
                j.meta_prepared_ms = Some(clock::now_ms());
                j.state = RestoreState::Snapshoting;
            })?;
        }
        RestoreState::Snapshoting => {
            release_dirs(c, &job.targets);
            let results = per_backend_each(c, &job.targets, |be, list| {
                let mut l = list.clone();
                be.prepare_restore(&mut l)?;
                Ok(l)
            });
            let mut prepared = Vec::with_capacity(results.len());
            let mut first_err = None;
            for (be, r) in results {
                match r {
                    Ok(l) => prepared.push((be, l)),
                    Err(e) => {
                        first_err.get_or_insert(e.context(format!("SNAPSHOTING on backend {be}")));
                    }
                }
            }
            if let Some(e) = first_err {
                // Nothing records the dirs the other backends made: remove them now.
                release_dirs(c, &prepared);
                return Err(e);
            }
            let targets = Arc::new(prepared);
            update(c, h, |j| {
                j.targets = targets;
                j.snapshot_finished_ms = Some(clock::now_ms());
                j.state = RestoreState::Download;
            })?;
        }
        RestoreState::Download => {
            let repo = crate::repo::open_repository(&job.repo.name, &job.repo.location)?;
            let id = SnapshotId::new(&job.label, &job.timestamp)?;
            let manifest = crate::repo::with_retries(|| {
                repo.read_manifest_subset(&id, Some(&source_tablets(&job)))
            })?;
            let (mut files, mut bytes) = (0u64, 0u64);
            let by_tablet: std::collections::HashMap<u64, &tabletsnap_transfer::TabletEntry> =
                manifest.tablets.iter().map(|e| (e.tablet_id, e)).collect();
            for (_, list) in job.targets.iter() {
                for t in list {
                    let entry = by_tablet.get(&t.source_tablet_id).with_context(|| {
                        format!(
                            "tablet {} is missing from the backup manifest",
                            t.source_tablet_id
                        )
                    })?;
                    files += entry.files.len() as u64;
                    bytes += entry.files.iter().map(|f| f.size).sum::<u64>();
                }
            }
            h.progress.files_total.store(files, Ordering::Relaxed);
            h.progress.bytes_total.store(bytes, Ordering::Relaxed);
            update(c, h, |j| j.state = RestoreState::Downloading)?;
        }
        RestoreState::Downloading => {
            h.progress.files_done.store(0, Ordering::Relaxed);
            h.progress.bytes_done.store(0, Ordering::Relaxed);
            h.progress
                .unfinished_tasks
                .store(job.targets.len() as u64, Ordering::Relaxed);
            // One read of the manifest here; each backend gets only the
            // entries of its own tablets, as a coordinator sends file lists.
            let repo = crate::repo::open_repository(&job.repo.name, &job.repo.location)?;
            let id = SnapshotId::new(&job.label, &job.timestamp)?;
            let manifest = crate::repo::with_retries(|| {
                repo.read_manifest_subset(&id, Some(&source_tablets(&job)))
            })?;
            let work: Vec<(u32, (tabletsnap_transfer::Manifest, &[RestoreTarget]))> =
                split::split_manifest(manifest, &job.targets)
                    .into_iter()
                    .zip(job.targets.iter())
                    .map(|(part, (be, list))| (*be, (part, list.as_slice())))
                    .collect();
            per_backend(c, &work, |be, (part, list)| {
                let r = be.download(&job.repo, part, list, &task_control(h));
                h.progress.unfinished_tasks.fetch_sub(1, Ordering::Relaxed);
                r
            })?;
            // The manifest's parts go before the record is encoded and saved
            // (each tens of MiB at 100k tablets).
            drop(work);
            if job
                .targets
                .iter()
                .flat_map(|(_, l)| l)
                .any(|t| t.catch_up_from.is_some())
            {
                // The totals counted whole tablets; a catch-up fetched only
                // the new versions' files (and each tablet's meta).
                for (done, total) in [
                    (&h.progress.files_done, &h.progress.files_total),
                    (&h.progress.bytes_done, &h.progress.bytes_total),
                ] {
                    total.store(done.load(Ordering::Relaxed), Ordering::Relaxed);
                }
            }
            update(c, h, |j| {
                j.download_finished_ms = Some(clock::now_ms());
                j.state = RestoreState::Commit;
            })?;
        }
        RestoreState::Commit => {
            let plan = job.plan.clone().unwrap_or_default();
            // Each node checked its downloaded metas against the backup's
            // versions (`RestoreTarget::version`) where the files are.
            // Fence the partitions about to be replaced: unreadable until FINISHED.
            c.update_catalog(|cat| {
                let db = cat.db_mut(&job.db)?;
                for tp in plan.iter() {
                    if let Some(t) = db.tables.get_mut(&tp.target).map(Arc::make_mut) {
                        let ids: std::collections::HashSet<u64> =
                            tp.partitions.iter().map(|pp| pp.partition_id).collect();
                        for p in t.partitions.iter_mut() {
                            if ids.contains(&p.id) {
                                Arc::make_mut(p).restoring_job = Some(job.id);
                            }
                        }
                    }
                }
                Ok(())
            })?;
            update(c, h, |j| j.state = RestoreState::Committing)?;
        }
        RestoreState::Committing => {
            let plan = job.plan.clone().unwrap_or_default();
            if job.commit_step < CommitStep::Installed {
                h.progress
                    .unfinished_tasks
                    .store(job.targets.len() as u64, Ordering::Relaxed);
                per_backend(c, &job.targets, |be, list| {
                    let r = be.commit(list);
                    h.progress.unfinished_tasks.fetch_sub(1, Ordering::Relaxed);
                    r
                })?;
                super::commit_point("job::restore::after_install")?;
                update(c, h, |j| j.commit_step = CommitStep::Installed)?;
            }
            if job.commit_step < CommitStep::Published {
                c.update_catalog(|cat| {
                    let db = cat.db_mut(&job.db)?;
                    for tp in plan.iter() {
                        let Some(t) = db.tables.get_mut(&tp.target).map(Arc::make_mut) else {
                            continue;
                        };
                        let plans: std::collections::HashMap<u64, &PartitionPlan> = tp
                            .partitions
                            .iter()
                            .map(|pp| (pp.partition_id, pp))
                            .collect();
                        // Plans made before the source was recorded say 0.
                        let known = tp.source_table_id != 0;
                        for p in t.partitions.iter_mut() {
                            if let Some(pp) = plans.get(&p.id) {
                                let p = Arc::make_mut(p);
                                p.visible_version = pp.version;
                                p.restored_from = known.then_some(RestoredFrom {
                                    cluster_id: tp.source_cluster_id,
                                    table_id: tp.source_table_id,
                                    partition_id: pp.source_partition_id,
                                    version: pp.version,
                                    lineage: pp.source_lineage,
                                });
                                // A catch-up appends to the data it found;
                                // anything else replaced it.
                                if pp.catch_up_from.is_none() {
                                    p.lineage = job.id;
                                }
                            }
                        }
                        if known {
                            t.restored_from = Some(TableSource {
                                cluster_id: tp.source_cluster_id,
                                table_id: tp.source_table_id,
                            });
                        }
                    }
                    lift_fences(cat, &job.db, job.id)
                })?;
                super::commit_point("job::restore::after_publish")?;
                update(c, h, |j| j.commit_step = CommitStep::Published)?;
            }
            if job.commit_step < CommitStep::Released {
                release_dirs(c, &job.targets);
                super::commit_point("job::restore::after_release")?;
                update(c, h, |j| j.commit_step = CommitStep::Released)?;
            }
            update(c, h, |j| {
                j.finished_ms = Some(clock::now_ms());
                j.state = RestoreState::Finished;
                j.status.status = "OK".into();
            })?;
            return Ok(Step::Done);
        }
        RestoreState::Finished | RestoreState::Cancelled => return Ok(Step::Done),
    }
    Ok(Step::Next)
}

fn release_dirs(c: &dyn JobEnv, targets: &[(u32, Vec<RestoreTarget>)]) {
    for (be, list) in targets {
        if let Ok(node) = c.backend(*be) {
            let paths: Vec<PathBuf> = list.iter().filter_map(|t| t.dir.clone()).collect();
            let _ = node.release(&paths);
        }
    }
}

/// Cancels (not from COMMITTING on): removes download dirs, drops the tables
/// and partitions this job created, unfences existing tables. Existing data is
/// never touched: nothing was installed before COMMITTING. The reason is
/// persisted first; if the catalog cannot be updated the job is not marked
/// CANCELLED (the caller retries, or the next process finishes the cancel).
pub fn cancel(c: &dyn JobEnv, h: &Arc<JobHandle>, reason: &str) {
    let Ok(job) = with_job(h, Clone::clone) else {
        return;
    };
    if job.state.is_done() || job.state == RestoreState::Committing {
        return;
    }
    if job.status.cancelling.is_none()
        && update(c, h, |j| j.status.cancelling = Some(reason.to_string())).is_err()
    {
        return;
    }
    release_dirs(c, &job.targets);
    let mut created_tablets: Vec<(u32, u64)> = Vec::new();
    if let Some(plan) = &job.plan {
        for tp in plan.iter() {
            for pp in tp.partitions.iter().filter(|p| p.created) {
                for (_, tid, replicas) in &pp.tablets {
                    created_tablets.extend(replicas.iter().map(|b| (*b, *tid)));
                }
            }
        }
    }
    let res = c.update_catalog(|cat| {
        if let Some(plan) = &job.plan {
            let db = cat.db_mut(&job.db)?;
            for tp in plan.iter() {
                if tp.created {
                    if db
                        .tables
                        .get(&tp.target)
                        .is_some_and(|t| t.id == tp.table_id)
                    {
                        db.tables.remove(&tp.target);
                    }
                } else if let Some(t) = db.tables.get_mut(&tp.target).map(Arc::make_mut) {
                    let created: std::collections::HashSet<u64> = tp
                        .partitions
                        .iter()
                        .filter(|p| p.created)
                        .map(|p| p.partition_id)
                        .collect();
                    t.partitions.retain(|p| !created.contains(&p.id));
                }
            }
        }
        // Fences set at acceptance exist even without a plan in the record.
        if cat.databases.contains_key(&job.db) {
            lift_fences(cat, &job.db, job.id)?;
        }
        Ok(())
    });
    if let Err(e) = res {
        let msg = format!(
            "cancelling: the catalog could not be updated: {}",
            crate::errcode::one_line(&e)
        );
        let _ = update(c, h, |j| j.status.task_err_msg = msg);
        return;
    }
    let mut per_be: std::collections::BTreeMap<u32, Vec<u64>> = Default::default();
    for (be, tid) in created_tablets {
        per_be.entry(be).or_default().push(tid);
    }
    for (be, tids) in per_be {
        if let Ok(node) = c.backend(be) {
            let _ = node.drop_tablets(&tids);
        }
    }
    let _ = update(c, h, |j| {
        j.state = RestoreState::Cancelled;
        j.finished_ms = Some(clock::now_ms());
        j.status.status = format!("[CANCELLED] {reason}");
        j.status.cancelling = None;
    });
}

/// The source tablets the restore's targets need: only their entries are
/// read (a catch-up restore of one changed partition reads its own tablets'
/// entries, not the entries an incremental backup borrows for the rest).
fn source_tablets(job: &RestoreJob) -> std::collections::HashSet<u64> {
    job.targets
        .iter()
        .flat_map(|(_, l)| l)
        .map(|t| t.source_tablet_id)
        .collect()
}
