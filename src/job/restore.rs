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

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tabletsnap_engine::engine::now_ms;
use tabletsnap_transfer::SnapshotId;

use super::backup::task_control;
use super::meta::{BackupMeta, BackupPartition, BackupTable};
use super::{drive, per_backend, per_backend_each, JobHandle, JobRecord, JobStatus, Machine, Step};
use crate::backend::{RepoRef, RestoreTarget};
use crate::catalog::{Catalog, Partition, RestoredFrom, Table, TableSource, TabletInfo};
use crate::cluster::Cluster;

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

/// One table named in `ON (...)`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RestoreObj {
    /// Table name in the backup.
    pub table: String,
    /// Partitions to restore (empty: all in the backup).
    pub partitions: Vec<String>,
    /// Name to restore as.
    pub alias: Option<String>,
}

/// A partition in the plan.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartitionPlan {
    /// Name.
    pub name: String,
    /// Target partition id.
    pub partition_id: u64,
    /// Created by this job (dropped on cancel).
    pub created: bool,
    /// Version restored.
    pub version: u64,
    /// Rows expected.
    pub rows: u64,
    /// (source tablet, target tablet, replica backends), per bucket.
    pub tablets: Vec<(u64, u64, Vec<u32>)>,
    /// Bounds, for a created partition.
    pub lower: Option<tabletsnap_engine::Value>,
    /// Upper bound.
    pub upper: Option<tabletsnap_engine::Value>,
    /// Source partition id (recorded in the catalog at publish).
    #[serde(default)]
    pub source_partition_id: u64,
    /// Catch-up: the version the existing partition holds; only the
    /// versions above it are downloaded and appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up_from: Option<u64>,
}

/// A table in the plan.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TablePlan {
    /// Name in the backup.
    pub source: String,
    /// Name restored as.
    pub target: String,
    /// Target table id.
    pub table_id: u64,
    /// Created by this job (dropped on cancel).
    pub created: bool,
    /// Replicas per tablet.
    pub replication_num: u16,
    /// Partitions.
    pub partitions: Vec<PartitionPlan>,
    /// Source cluster id (recorded in the catalog at publish).
    #[serde(default)]
    pub source_cluster_id: u64,
    /// Source table id (recorded in the catalog at publish).
    #[serde(default)]
    pub source_table_id: u64,
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
    /// The plan, once made.
    pub plan: Option<Vec<TablePlan>>,
    /// Per backend, its replicas to fill.
    pub targets: Vec<(u32, Vec<RestoreTarget>)>,
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

/// Reads and checks the backup's info and meta.
pub fn read_backup_meta(repo: &RepoRef, label: &str, timestamp: &str) -> Result<BackupMeta> {
    let r = crate::repo::open_repository(&repo.name, &repo.location)?;
    let id = SnapshotId::new(label, timestamp)?;
    // read_info tells a missing backup (never committed) from a damaged or
    // newer-format one, so the user gets the real reason.
    if let Err(e) = crate::repo::with_retries(|| r.read_info(&id)) {
        if matches!(e, tabletsnap_transfer::Error::SnapshotNotFound { .. }) {
            bail!(
                "snapshot '{label}' with timestamp '{timestamp}' not found in repository '{}' (SHOW SNAPSHOT ON {} lists them)",
                repo.name,
                repo.name
            );
        }
        return Err(anyhow::Error::new(e).context(format!(
            "snapshot '{label}' at '{timestamp}' in repository '{}' cannot be read",
            repo.name
        )));
    }
    let bytes = crate::repo::with_retries(|| r.read_meta(&id))?;
    BackupMeta::decode(
        &bytes,
        &format!("snapshot {label}/{timestamp} in repository '{}'", repo.name),
    )
}

/// For a catch-up of partition `p` of table `target` from backup partition
/// `bp` (of table `table_id` on cluster `cluster_id`): the version `p`
/// holds, above which the backup's versions are appended; `None` when it
/// already holds the backup's version. Refuses, saying why and what to do,
/// a partition that does not hold the same source's data at exactly its
/// restored version.
fn catch_up_base(
    target: &str,
    p: &Partition,
    cluster_id: u64,
    table_id: u64,
    bp: &BackupPartition,
) -> Result<Option<u64>> {
    let what = format!("partition '{}' of table '{target}'", p.name);
    let overwrite = "restore without \"catch_up\" to overwrite it";
    let Some(r) = p.restored_from else {
        bail!(
            "{what} has no restore record (it was not made by a RESTORE, or by one older than catch-up restores), so no backup chain leads to it: {overwrite}"
        );
    };
    if (r.cluster_id, r.table_id, r.partition_id) != (cluster_id, table_id, bp.id) {
        bail!(
            "{what} was restored from table {} partition {} of cluster {:016x}, the snapshot holds table {table_id} partition {} of cluster {cluster_id:016x}: not the same source, a catch-up would mix data; {overwrite}",
            r.table_id,
            r.partition_id,
            r.cluster_id,
            bp.id
        );
    }
    if p.visible_version != r.version {
        bail!(
            "{what} was loaded since it was restored (version {}, restored at {}): a catch-up would drop those loads; {overwrite}",
            p.visible_version,
            r.version
        );
    }
    if bp.version < r.version {
        bail!(
            "the snapshot holds version {} of {what}, older than the version {} restored: catch up from a later snapshot (SHOW SNAPSHOT lists them)",
            bp.version,
            r.version
        );
    }
    Ok((bp.version > r.version).then_some(r.version))
}

fn same_shape(existing: &Table, b: &BackupTable) -> Result<()> {
    if existing.schema != b.schema {
        bail!(
            "table '{}' exists with a different schema than in the backup; restore it AS another name or drop it first",
            existing.name
        );
    }
    if existing.partition_column != b.partition_column || existing.buckets != b.buckets {
        bail!(
            "table '{}' exists with a different partitioning or bucket count than in the backup",
            existing.name
        );
    }
    Ok(())
}

/// Builds the plan against the catalog. With `alloc`, new ids are taken from
/// `cat` (the caller saves it); without, ids are placeholders (validation only).
/// New replicas go to the `live` backends only.
pub fn make_plan(
    cat: &mut Catalog,
    job: &RestoreJob,
    meta: &BackupMeta,
    alloc: bool,
    live: &[u32],
) -> Result<Vec<TablePlan>> {
    let objs: Vec<RestoreObj> = if job.objs.is_empty() {
        meta.tables
            .iter()
            .map(|t| RestoreObj {
                table: t.name.clone(),
                partitions: Vec::new(),
                alias: None,
            })
            .collect()
    } else {
        job.objs.clone()
    };
    let backends = u32::try_from(live.len()).unwrap_or(u32::MAX);
    if backends == 0 {
        bail!("no live backend to restore onto (SHOW BACKENDS says why)");
    }
    let mut next_replica = 0u32;
    let mut plans = Vec::new();
    let mut targets_seen = std::collections::HashSet::new();
    for o in &objs {
        let b = meta.table(&o.table).with_context(|| {
            format!("table '{}' is not in snapshot '{}' (SHOW SNAPSHOT ... WHERE SNAPSHOT = \"{}\" lists its contents)", o.table, job.label, job.label)
        })?;
        let target = o.alias.clone().unwrap_or_else(|| o.table.clone());
        if !targets_seen.insert(target.clone()) {
            bail!("table '{target}' is restored twice in one job");
        }
        for p in &o.partitions {
            if !b.partitions.iter().any(|bp| &bp.name == p) {
                bail!(
                    "partition '{p}' of table '{}' is not in snapshot '{}'",
                    o.table,
                    job.label
                );
            }
        }
        let wanted: Vec<_> = b
            .partitions
            .iter()
            .filter(|p| o.partitions.is_empty() || o.partitions.contains(&p.name))
            .collect();
        let existing = cat
            .db(&job.db)
            .ok()
            .and_then(|d| d.tables.get(&target))
            .cloned();
        if existing.is_none() && job.catch_up {
            bail!(
                "table '{target}' does not exist: a catch-up restore appends to tables an earlier RESTORE made; restore without \"catch_up\" first"
            );
        }
        if let Some(t) = &existing {
            same_shape(t, b)?;
            if t.restoring_job.is_some_and(|j| j != job.id) {
                bail!("table '{target}' is being restored by another job");
            }
        }
        let replication_num = match &existing {
            Some(t) => t.replication_num,
            None => job.replication_num.unwrap_or(b.replication_num),
        };
        if u32::from(replication_num) > backends {
            bail!("replication_num {replication_num} is more than the {backends} backends of this cluster");
        }
        let alloc_id = |cat: &mut Catalog| if alloc { cat.alloc_id() } else { 0 };
        let table_id = existing.as_ref().map_or_else(|| alloc_id(cat), |t| t.id);
        let mut parts = Vec::new();
        for bp in wanted {
            let ex_part = existing.as_ref().and_then(|t| {
                t.partitions
                    .iter()
                    .position(|p| p.name == bp.name)
                    .map(|i| (t, i))
            });
            let mut catch_up_from = None;
            let (partition_id, created, tablets) = match ex_part {
                Some((t, i)) => {
                    let lower = t.lower_bound(i).cloned();
                    if lower != bp.lower || t.partitions[i].upper != bp.upper {
                        bail!(
                            "partition '{}' of table '{target}' has a different range than in the backup",
                            bp.name
                        );
                    }
                    if job.catch_up {
                        match catch_up_base(&target, &t.partitions[i], meta.cluster_id, b.id, bp)?
                        {
                            Some(v) => catch_up_from = Some(v),
                            // Already at the backup's version: nothing to do.
                            None => continue,
                        }
                    }
                    let tablets = t.partitions[i]
                        .tablets
                        .iter()
                        .zip(&bp.tablets)
                        .map(|(ti, src)| (*src, ti.id, ti.replicas.clone()))
                        .collect();
                    (t.partitions[i].id, false, tablets)
                }
                None => {
                    if let Some(t) = &existing {
                        if ranges_overlap(t, bp.lower.as_ref(), bp.upper.as_ref()) {
                            bail!("partition '{}' of the backup overlaps an existing partition of table '{target}'", bp.name);
                        }
                    }
                    let pid = alloc_id(cat);
                    let tablets = bp
                        .tablets
                        .iter()
                        .map(|src| {
                            let replicas = (0..u32::from(replication_num))
                                .map(|k| live[((next_replica + k) % backends) as usize])
                                .collect();
                            next_replica = (next_replica + 1) % backends;
                            (*src, alloc_id(cat), replicas)
                        })
                        .collect();
                    (pid, true, tablets)
                }
            };
            parts.push(PartitionPlan {
                name: bp.name.clone(),
                partition_id,
                created,
                version: bp.version,
                rows: bp.rows,
                tablets,
                lower: bp.lower.clone(),
                upper: bp.upper.clone(),
                source_partition_id: bp.id,
                catch_up_from,
            });
        }
        if parts.is_empty() && job.catch_up {
            continue;
        }
        plans.push(TablePlan {
            source: o.table.clone(),
            target,
            table_id,
            created: existing.is_none(),
            replication_num,
            partitions: parts,
            source_cluster_id: meta.cluster_id,
            source_table_id: b.id,
        });
    }
    Ok(plans)
}

fn ranges_overlap(
    t: &Table,
    lower: Option<&tabletsnap_engine::Value>,
    upper: Option<&tabletsnap_engine::Value>,
) -> bool {
    use crate::catalog::value_lt;
    (0..t.partitions.len()).any(|i| {
        let (l2, u2) = (t.lower_bound(i), t.partitions[i].upper.as_ref());
        // [l1,u1) and [l2,u2) overlap iff l1 < u2 and l2 < u1 (None = infinite).
        let a = match (lower, u2) {
            (_, None) | (None, _) => true,
            (Some(l), Some(u)) => value_lt(l, u),
        };
        let b = match (l2, upper) {
            (_, None) | (None, _) => true,
            (Some(l), Some(u)) => value_lt(l, u),
        };
        a && b
    })
}

/// Fences what a restore will replace against loads: the existing target
/// tables (all loads refused unless `allow_load`) and the existing
/// partitions it overwrites (loads always refused). Called when the job is
/// accepted and again in PENDING; idempotent. Fails if another restore
/// already holds a target table.
pub fn fence_loads(cat: &mut Catalog, job: &RestoreJob, plan: &[TablePlan]) -> Result<()> {
    let db = cat.db_mut(&job.db)?;
    for tp in plan {
        let Some(t) = db.tables.get_mut(&tp.target).map(Arc::make_mut) else {
            continue;
        };
        if let Some(other) = t.restoring_job.filter(|j| *j != job.id) {
            bail!(
                "table '{}.{}' is being restored by job {other}",
                job.db,
                tp.target
            );
        }
        t.restoring_job = Some(job.id);
        t.allow_load_while_restoring = job.allow_load;
        let replaced: std::collections::HashSet<u64> = tp
            .partitions
            .iter()
            .filter(|p| !p.created)
            .map(|p| p.partition_id)
            .collect();
        for p in t.partitions.iter_mut() {
            if replaced.contains(&p.id) && p.load_fence != Some(job.id) {
                Arc::make_mut(p).load_fence = Some(job.id);
            }
        }
    }
    Ok(())
}

/// Lifts every fence `job` set on `db` (tables, partitions, load fences).
fn lift_fences(cat: &mut Catalog, db: &str, job: u64) -> Result<()> {
    let db = cat.db_mut(db)?;
    // Only the tables and partitions the job fenced are copied and written.
    let fenced = |p: &Partition| p.restoring_job == Some(job) || p.load_fence == Some(job);
    for t in db.tables.values_mut() {
        if t.restoring_job != Some(job) && !t.partitions.iter().any(|p| fenced(p)) {
            continue;
        }
        let t = Arc::make_mut(t);
        if t.restoring_job == Some(job) {
            t.restoring_job = None;
        }
        for p in t.partitions.iter_mut().filter(|p| fenced(p)) {
            let p = Arc::make_mut(p);
            if p.restoring_job == Some(job) {
                p.restoring_job = None;
            }
            if p.load_fence == Some(job) {
                p.load_fence = None;
            }
        }
    }
    Ok(())
}

/// Applies a plan to the catalog: creates tables and partitions (restoring,
/// unreadable) and fences existing tables. Idempotent.
fn apply_plan(
    cat: &mut Catalog,
    job: &RestoreJob,
    meta: &BackupMeta,
    plan: &[TablePlan],
) -> Result<()> {
    let db = cat.db_mut(&job.db)?;
    for tp in plan {
        let b = meta
            .table(&tp.source)
            .with_context(|| format!("table '{}' vanished from the backup meta", tp.source))?;
        let entry = db.tables.entry(tp.target.clone()).or_insert_with(|| {
            Arc::new(Table {
                id: tp.table_id,
                name: tp.target.clone(),
                schema: b.schema.clone(),
                partition_column: b.partition_column.clone(),
                partitions: Vec::new(),
                distribution: b.distribution.clone(),
                buckets: b.buckets,
                replication_num: tp.replication_num,
                restoring_job: Some(job.id),
                allow_load_while_restoring: job.allow_load,
                restored_from: None,
            })
        });
        let present: std::collections::HashSet<u64> =
            entry.partitions.iter().map(|p| p.id).collect();
        let missing: Vec<&PartitionPlan> = tp
            .partitions
            .iter()
            .filter(|p| p.created && !present.contains(&p.partition_id))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let table = Arc::make_mut(entry);
        for pp in missing {
            let part = Partition {
                id: pp.partition_id,
                name: pp.name.clone(),
                upper: pp.upper.clone(),
                // Explicit: the partition before it may not be restored.
                lower: pp.lower.clone(),
                visible_version: 1,
                tablets: pp
                    .tablets
                    .iter()
                    .map(|(_, id, replicas)| TabletInfo {
                        id: *id,
                        replicas: replicas.clone(),
                    })
                    .collect(),
                restoring_job: Some(job.id),
                load_fence: None,
                restored_from: None,
            };
            // Keep range order: insert before the first partition whose upper is above ours.
            let pos = table
                .partitions
                .iter()
                .position(|p| match (&p.upper, &pp.upper) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(a), Some(b)) => crate::catalog::value_lt(b, a),
                })
                .unwrap_or(table.partitions.len());
            table.partitions.insert(pos, Arc::new(part));
        }
    }
    fence_loads(cat, job, plan)
}

fn with_job<T>(h: &JobHandle, f: impl FnOnce(&RestoreJob) -> T) -> Result<T> {
    h.with_record(|r| match r {
        JobRecord::Restore(j) => Ok(f(j)),
        JobRecord::Backup(_) => bail!("job {} is not a restore", h.id),
    })
}

fn update(c: &Cluster, h: &JobHandle, f: impl FnOnce(&mut RestoreJob)) -> Result<()> {
    c.jobs().update(h, |r| {
        if let JobRecord::Restore(j) = r {
            f(j)
        }
    })
}

/// Drives a restore job to FINISHED or CANCELLED.
pub fn run(c: &Arc<Cluster>, h: &Arc<JobHandle>) {
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

fn step(c: &Arc<Cluster>, h: &Arc<JobHandle>, state: RestoreState) -> Result<Step> {
    let job = with_job(h, Clone::clone)?;
    match state {
        RestoreState::Pending => {
            let meta = read_backup_meta(&job.repo, &job.label, &job.timestamp)?;
            let plan = match job.plan.clone() {
                Some(p) => p,
                None => {
                    let live = c.live_backend_ids();
                    let plan = c.update_catalog(|cat| make_plan(cat, &job, &meta, true, &live))?;
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
            for tp in &plan {
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
                                catch_up_from: pp.catch_up_from,
                            });
                        }
                    }
                }
            }
            update(c, h, |j| {
                j.targets = per_be.into_iter().collect();
                j.meta_prepared_ms = Some(now_ms());
                j.state = RestoreState::Snapshoting;
            })?;
        }
        RestoreState::Snapshoting => {
            release_dirs(c, &job.targets);
            let mut targets = job.targets.clone();
            let results = per_backend_each(c, &targets, |be, list| {
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
            targets = prepared;
            update(c, h, |j| {
                j.targets = targets;
                j.snapshot_finished_ms = Some(now_ms());
                j.state = RestoreState::Download;
            })?;
        }
        RestoreState::Download => {
            let repo = crate::repo::open_repository(&job.repo.name, &job.repo.location)?;
            let id = SnapshotId::new(&job.label, &job.timestamp)?;
            let manifest = crate::repo::with_retries(|| repo.read_manifest(&id))?;
            let (mut files, mut bytes) = (0u64, 0u64);
            let by_tablet: std::collections::HashMap<u64, &tabletsnap_transfer::TabletEntry> =
                manifest.tablets.iter().map(|e| (e.tablet_id, e)).collect();
            for (_, list) in &job.targets {
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
            let manifest = crate::repo::with_retries(|| repo.read_manifest(&id))?;
            let work: Vec<(u32, (tabletsnap_transfer::Manifest, Vec<RestoreTarget>))> = job
                .targets
                .iter()
                .map(|(be, list)| {
                    let ids = list.iter().map(|t| t.source_tablet_id).collect();
                    (*be, (manifest.subset(&ids), list.clone()))
                })
                .collect();
            drop(manifest);
            per_backend(c, &work, |be, (part, list)| {
                let r = be.download(&job.repo, part, list, &task_control(h));
                h.progress.unfinished_tasks.fetch_sub(1, Ordering::Relaxed);
                r
            })?;
            if job.targets.iter().flat_map(|(_, l)| l).any(|t| t.catch_up_from.is_some()) {
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
                j.download_finished_ms = Some(now_ms());
                j.state = RestoreState::Commit;
            })?;
        }
        RestoreState::Commit => {
            let plan = job.plan.clone().unwrap_or_default();
            let versions: std::collections::HashMap<u64, u64> = plan
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| (p.partition_id, p.version))
                .collect();
            for (_, list) in &job.targets {
                for t in list {
                    let dir = t
                        .dir
                        .as_ref()
                        .with_context(|| format!("tablet {} has no download dir", t.tablet_id))?;
                    let m = tabletsnap_snapshot::read_snapshot_meta(dir)?;
                    if Some(&m.max_version()) != versions.get(&t.partition_id) {
                        bail!(
                            "downloaded tablet {} is at version {}, the backup says {:?}",
                            t.source_tablet_id,
                            m.max_version(),
                            versions.get(&t.partition_id)
                        );
                    }
                }
            }
            // Fence the partitions about to be replaced: unreadable until FINISHED.
            c.update_catalog(|cat| {
                let db = cat.db_mut(&job.db)?;
                for tp in &plan {
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
                    for tp in &plan {
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
                                });
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
                j.finished_ms = Some(now_ms());
                j.state = RestoreState::Finished;
                j.status.status = "OK".into();
            })?;
            return Ok(Step::Done);
        }
        RestoreState::Finished | RestoreState::Cancelled => return Ok(Step::Done),
    }
    Ok(Step::Next)
}

fn release_dirs(c: &Cluster, targets: &[(u32, Vec<RestoreTarget>)]) {
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
pub fn cancel(c: &Arc<Cluster>, h: &Arc<JobHandle>, reason: &str) {
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
        for tp in plan {
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
            for tp in plan {
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
        j.finished_ms = Some(now_ms());
        j.status.status = format!("[CANCELLED] {reason}");
        j.status.cancelling = None;
    });
}
