//! The BACKUP job: PENDING → SNAPSHOTING → UPLOAD_SNAPSHOT → UPLOADING →
//! SAVE_META → UPLOAD_INFO → FINISHED, or CANCELLED. Data goes first, the
//! manifest and meta next, and the `info` object last: a backup exists for
//! readers only once whole.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::job::clock;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tabletsnap_transfer::{Borrowed, CommitState, Manifest, SnapshotId, StoredManifest};

use super::meta::BackupMeta;
use super::{drive, per_backend, per_backend_each, JobHandle, JobRecord, JobStatus, Machine, Step};
use crate::backend::{RepoRef, SnapshotMade, SnapshotTarget, TaskControl};
use crate::job::env::JobEnv;

/// States of a BACKUP job.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BackupState {
    /// Created; snapshot tasks planned.
    Pending,
    /// Backends make hard-link snapshots.
    Snapshoting,
    /// Upload tasks are being prepared.
    UploadSnapshot,
    /// Backends upload their snapshots.
    Uploading,
    /// The manifest and meta are assembled.
    SaveMeta,
    /// Manifest, meta, then info are written to the repository.
    UploadInfo,
    /// Done: the backup is visible in the repository.
    Finished,
    /// Ended without a backup; everything it made was removed.
    Cancelled,
}

impl BackupState {
    /// FINISHED or CANCELLED.
    pub fn is_done(self) -> bool {
        matches!(self, BackupState::Finished | BackupState::Cancelled)
    }
    /// The SHOW spelling.
    pub fn name(self) -> &'static str {
        match self {
            BackupState::Pending => "PENDING",
            BackupState::Snapshoting => "SNAPSHOTING",
            BackupState::UploadSnapshot => "UPLOAD_SNAPSHOT",
            BackupState::Uploading => "UPLOADING",
            BackupState::SaveMeta => "SAVE_META",
            BackupState::UploadInfo => "UPLOAD_INFO",
            BackupState::Finished => "FINISHED",
            BackupState::Cancelled => "CANCELLED",
        }
    }
}

/// A BACKUP job's persisted record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupJob {
    /// Job id.
    pub id: u64,
    /// Snapshot label.
    pub label: String,
    /// Database.
    pub db: String,
    /// Target repository.
    pub repo: RepoRef,
    /// Current state.
    pub state: BackupState,
    /// Timeout in seconds from creation.
    pub timeout_s: u64,
    /// BackupObjs for SHOW.
    pub objs: String,
    /// Repository timestamp of this backup.
    pub timestamp: String,
    /// Created (ms).
    pub create_time_ms: u64,
    /// SNAPSHOTING ended (ms).
    pub snapshot_finished_ms: Option<u64>,
    /// UPLOADING ended (ms).
    pub upload_finished_ms: Option<u64>,
    /// FINISHED or CANCELLED (ms).
    pub finished_ms: Option<u64>,
    /// What is backed up, at which versions.
    pub meta: Arc<BackupMeta>,
    /// Snapshot tasks per backend. Shared, as `meta` and `snapshots`: each
    /// step and each record update copies the record, and at 100k tablets
    /// these lists are almost all of it.
    pub assignments: Arc<Vec<(u32, Vec<SnapshotTarget>)>>,
    /// Snapshots made, per backend.
    pub snapshots: Arc<Vec<(u32, Vec<SnapshotMade>)>>,
    /// Errors and status.
    pub status: JobStatus,
    /// Reuse files earlier backups in the repository stored (the default);
    /// false for `"type" = "full"` and for records written before incremental backups.
    #[serde(default)]
    pub incremental: bool,
    /// The earlier backup (label, timestamp) whose entries unchanged tablets
    /// were carried from (the manifest borrows them): set with `snapshots`,
    /// read by SAVE_META.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carry_base: Option<(String, String)>,
    /// New and reused files and bytes, once committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataCounts>,
}

/// How much of a backup was uploaded and how much points into earlier backups.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DataCounts {
    /// Files uploaded by this backup.
    pub new_files: u64,
    /// Their bytes.
    pub new_bytes: u64,
    /// Files reused from earlier backups.
    pub reused_files: u64,
    /// Their bytes.
    pub reused_bytes: u64,
}

impl DataCounts {
    /// `new: F files, B bytes; reused: F files, B bytes` for SHOW.
    pub fn describe(&self) -> String {
        format!(
            "new: {} files, {} bytes; reused: {} files, {} bytes",
            self.new_files, self.new_bytes, self.reused_files, self.reused_bytes
        )
    }
}

impl From<tabletsnap_transfer::ReuseStats> for DataCounts {
    fn from(s: tabletsnap_transfer::ReuseStats) -> Self {
        Self {
            new_files: s.new_files,
            new_bytes: s.new_bytes,
            reused_files: s.reused_files,
            reused_bytes: s.reused_bytes,
        }
    }
}

/// Age past which a repository temp object is a leftover, not a put in flight.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// The pack dir of one backend's part: cluster and job in the name, so two
/// clusters (or two jobs) writing the same label in the same second never
/// touch each other's packs.
fn part_name(job: &BackupJob, backend: u32) -> String {
    format!("{}-be{backend}", part_prefix(job))
}

fn part_prefix(job: &BackupJob) -> String {
    format!("{:016x}-{}", job.meta.cluster_id, job.id)
}

impl BackupJob {
    fn snapshot_id(&self) -> Result<SnapshotId> {
        Ok(SnapshotId::new(&self.label, &self.timestamp)?)
    }
}

fn with_job<T>(h: &JobHandle, f: impl FnOnce(&BackupJob) -> T) -> Result<T> {
    h.with_record(|r| match r {
        JobRecord::Backup(j) => Ok(f(j)),
        JobRecord::Restore(_) => bail!("job {} is not a backup", h.id),
    })
}

fn update(c: &dyn JobEnv, h: &JobHandle, f: impl FnOnce(&mut BackupJob)) -> Result<()> {
    c.jobs().update(h, |r| {
        if let JobRecord::Backup(j) = r {
            f(j)
        }
    })
}

/// Drives a backup job to FINISHED or CANCELLED.
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
            kind: "job::backup",
            state: &|| state().map(|s| (s.name(), s.is_done(), false)),
            step: &|| match state() {
                Some(s) => step(c, h, s),
                None => Ok(Step::Done),
            },
            cancel: &|reason| cancel(c, h, reason),
        },
    );
}

fn step(c: &dyn JobEnv, h: &Arc<JobHandle>, state: BackupState) -> Result<Step> {
    let job = with_job(h, Clone::clone)?;
    match state {
        BackupState::Pending => {
            update(c, h, |j| j.state = BackupState::Snapshoting)?;
        }
        BackupState::Snapshoting => {
            h.progress
                .unfinished_tasks
                .store(job.assignments.len() as u64, Ordering::Relaxed);
            let timeout = Duration::from_secs(job.timeout_s.max(1));
            // A retry after a partial failure starts from a clean slate.
            release_all(c, &job.snapshots);
            let (carry, assignments) = if job.incremental {
                let repo = crate::repo::open_repository(&job.repo.name, &job.repo.location)?;
                let bases = Arc::new(own_reuse_bases(&repo, &job)?);
                let (base, assignments, summary) = carry_candidates(&job, &repo, &bases)?;
                h.stage_backup(super::BackupStage {
                    bases: Some(bases),
                    carry: base.clone().zip(summary),
                });
                (base, assignments)
            } else {
                (None, job.assignments.clone())
            };
            let results = per_backend_each(c, &assignments, |be, targets| {
                let r = be.make_snapshots(targets, timeout);
                h.progress.unfinished_tasks.fetch_sub(1, Ordering::Relaxed);
                r
            });
            let mut made = Vec::with_capacity(results.len());
            let mut first_err = None;
            for (be, r) in results {
                match r {
                    Ok(m) => made.push((be, m)),
                    Err(e) => {
                        first_err.get_or_insert(e.context(format!("SNAPSHOTING on backend {be}")));
                    }
                }
            }
            if let Some(e) = first_err {
                // The backends that succeeded hold snapshot dirs nobody will
                // upload: release them now, not at the job timeout.
                release_all(c, &made);
                return Err(e);
            }
            let carried_any = made.iter().flat_map(|(_, m)| m).any(|s| s.carried);
            let carry_base = carry
                .filter(|_| carried_any)
                .map(|b| (b.label, b.timestamp));
            update(c, h, |j| {
                j.snapshots = Arc::new(made);
                // Only SNAPSHOTING reads the targets, and the job never goes
                // back to it: every later save of the record is the smaller.
                j.assignments = Arc::default();
                j.carry_base = carry_base;
                j.snapshot_finished_ms = Some(clock::now_ms());
                j.state = BackupState::UploadSnapshot;
            })?;
        }
        BackupState::UploadSnapshot => {
            let repo = crate::repo::open_repository(&job.repo.name, &job.repo.location)?;
            // Temp objects a crashed or failed put left behind (an hour is
            // far longer than any single put takes).
            let _ = repo.sweep_stale_temp(STALE_TEMP_AGE);
            let id = job.snapshot_id()?;
            // One read of this backup's own `info`, not of every backup's:
            // the check costs the same in a repository of ten thousand.
            if matches!(repo.commit_state(&id), CommitState::Committed(_)) {
                bail!(
                    "repository '{}' already holds snapshot {} at {}",
                    job.repo.name,
                    job.label,
                    job.timestamp
                );
            }
            let to_upload = || {
                job.snapshots
                    .iter()
                    .flat_map(|(_, s)| s)
                    .filter(|s| !s.carried)
            };
            let files: u64 = to_upload().map(|s| s.files).sum();
            let bytes: u64 = to_upload().map(|s| s.bytes).sum();
            h.progress.files_total.store(files, Ordering::Relaxed);
            h.progress.bytes_total.store(bytes, Ordering::Relaxed);
            update(c, h, |j| j.state = BackupState::Uploading)?;
        }
        BackupState::Uploading => {
            h.progress.files_done.store(0, Ordering::Relaxed);
            h.progress.bytes_done.store(0, Ordering::Relaxed);
            h.progress
                .unfinished_tasks
                .store(job.snapshots.len() as u64, Ordering::Relaxed);
            let mut ctl = task_control(h);
            if job.incremental {
                let repo = crate::repo::open_repository(&job.repo.name, &job.repo.location)?;
                // The bases SNAPSHOTING read, or (after a restart or in a
                // retry of this step) read again.
                let bases = match h.with_backup_stage(|s| s.bases.take()) {
                    Some(b) => b,
                    None => Arc::new(own_reuse_bases(&repo, &job)?),
                };
                ctl.reuse_from = bases.iter().map(|(id, _)| id.clone()).collect();
                let in_process = job
                    .snapshots
                    .iter()
                    .all(|(be, _)| c.backend(*be).is_ok_and(|b| b.shares_memory()));
                if !bases.is_empty() {
                    let newest = Arc::new(newest_bases(&job, &bases));
                    ctl.reuse_newest = Some(Arc::clone(&newest));
                    if in_process {
                        // One read of what the tablets to upload need, for
                        // all backends (markers first, inside the load).
                        let per_base =
                            crate::backend::reuse_per_base(&ctl, &newest, newest.keys().copied());
                        let index = crate::repo::with_retries(|| {
                            tabletsnap_transfer::ReuseIndex::load_per_base(&repo, &per_base)
                        })
                        .with_context(|| {
                            format!("reading earlier backups of repository '{}'", job.repo.name)
                        })?;
                        ctl.reuse_index = Some(Arc::new(index));
                    }
                }
            }
            let parts = per_backend(c, &job.snapshots, |be, snaps| {
                let snaps: Vec<SnapshotMade> =
                    snaps.iter().filter(|s| !s.carried).cloned().collect();
                if snaps.is_empty() {
                    // Every tablet of this backend is carried over.
                    h.progress.unfinished_tasks.fetch_sub(1, Ordering::Relaxed);
                    return Ok(Manifest::default());
                }
                let snaps = &snaps;
                let r = be.upload(
                    &job.repo,
                    &job.label,
                    &job.timestamp,
                    &part_name(&job, be.id()),
                    snaps,
                    &ctl,
                );
                h.progress.unfinished_tasks.fetch_sub(1, Ordering::Relaxed);
                r
            })?;
            let dir = c.jobs().scratch_dir(job.id);
            tabletsnap_engine::file::create_dir_all_durable(&dir)?;
            for (be, m) in &parts {
                tabletsnap_engine::file::write_atomic(
                    &dir.join(format!("be{be}.manifest")),
                    &m.encode(),
                )?;
            }
            update(c, h, |j| {
                j.upload_finished_ms = Some(clock::now_ms());
                j.state = BackupState::SaveMeta;
            })?;
        }
        BackupState::SaveMeta => {
            let dir = c.jobs().scratch_dir(job.id);
            let manifest = Manifest::merge(read_parts(&dir, &job)?)?;
            let borrowed = borrowed_entries(&job, h)?;
            let stored = StoredManifest {
                entries: manifest,
                borrowed,
            };
            let held: std::collections::HashSet<u64> = stored.tablet_ids().collect();
            for t in job
                .meta
                .tables
                .iter()
                .flat_map(|t| &t.partitions)
                .flat_map(|p| &p.tablets)
            {
                if !held.contains(t) {
                    bail!("SAVE_META: tablet {t} is missing from the uploaded manifest");
                }
            }
            stored.validate_named("the merged manifest")?;
            tabletsnap_engine::file::write_atomic(&dir.join("manifest"), &stored.encode())?;
            let meta = meta_with_digests(&job);
            tabletsnap_engine::file::write_atomic(&dir.join("meta"), &meta.encode()?)?;
            update(c, h, |j| j.state = BackupState::UploadInfo)?;
            h.stage_manifest(stored);
        }
        BackupState::UploadInfo => {
            let dir = c.jobs().scratch_dir(job.id);
            let stored = match h.take_staged_manifest() {
                Some(m) => m,
                None => StoredManifest::decode_filtered(
                    &std::fs::read(dir.join("manifest")).context("reading the saved manifest")?,
                    "the saved manifest",
                    None,
                )?,
            };
            let meta = std::fs::read(dir.join("meta")).context("reading the saved meta")?;
            let repo = crate::repo::open_repository(&job.repo.name, &job.repo.location)?;
            // Repository GC relies on no backup committing past its
            // deadline (see docs/design.md, Repository GC).
            let deadline = job
                .create_time_ms
                .saturating_add(job.timeout_s.saturating_mul(1000));
            if clock::now_ms() > deadline
                && repo.commit_state(&job.snapshot_id()?) == CommitState::Absent
            {
                bail!(
                    "backup passed its timeout of {} s before committing",
                    job.timeout_s
                );
            }
            let mut counts = DataCounts::from(stored.entries.reuse_stats(
                &tabletsnap_transfer::Repository::snapshot_dir(&job.snapshot_id()?),
            ));
            let (files, bytes) = tabletsnap_transfer::manifest::borrowed_totals(&stored.borrowed);
            counts.reused_files = counts.reused_files.saturating_add(files);
            counts.reused_bytes = counts.reused_bytes.saturating_add(bytes);
            repo.commit_backup_borrowing(
                &job.snapshot_id()?,
                &stored.entries,
                &stored.borrowed,
                &meta,
            )
            .with_context(|| {
                format!(
                    "committing backup {} to repository '{}'",
                    job.label, job.repo.name
                )
            })?;
            super::commit_point("job::backup::after_info_put")?;
            release_all(c, &job.snapshots);
            // The scratch manifest and meta outlive the FINISHED record: a
            // rerun of this step after a crash here commits again (a no-op
            // for the same manifest) and needs them.
            update(c, h, |j| {
                j.finished_ms = Some(clock::now_ms());
                j.data = Some(counts);
                j.state = BackupState::Finished;
                j.status.status = "OK".into();
                j.snapshots = Default::default();
            })?;
            super::commit_point("job::backup::after_finished_save")?;
            let _ = std::fs::remove_dir_all(&dir);
            apply_retention(c, &job, &repo);
            return Ok(Step::Done);
        }
        BackupState::Finished | BackupState::Cancelled => return Ok(Step::Done),
    }
    Ok(Step::Next)
}

/// Drops backups of the label beyond the repository's `"retention_count"`
/// and runs a GC pass. A failure leaves them for the next backup's pass.
fn apply_retention(c: &dyn JobEnv, job: &BackupJob, repo: &tabletsnap_transfer::Repository) {
    let keep = c.catalog().repositories.get(&job.repo.name).and_then(|r| {
        crate::exec::snapshots::retention_count(&r.properties)
            .ok()
            .flatten()
    });
    if let Some(keep) = keep {
        if let Err(e) = crate::exec::snapshots::apply_retention(repo, &job.label, keep) {
            eprintln!(
                "backup job {}: retention in repository '{}' failed (the next backup retries): {e:#}",
                job.id, job.repo.name
            );
        }
    }
}

/// Snapshot targets per backend.
type Assignments = Vec<(u32, Vec<SnapshotTarget>)>;

/// The carry base for an incremental backup and the assignments with the
/// tablets it holds at the very version to back up given the digest of
/// their files there: the newest committed backup of the label that this
/// cluster made (tablet ids are per cluster). Its meta (catalog objects, a
/// version per partition and a digest per tablet) is all the nodes need;
/// they compare digests. Nothing is carried from a base whose meta cannot
/// be read or has no digests, or whose manifest, borrowed-from manifests or
/// packs a pending-delete marker names: the markers are read before the
/// reference is decided (the GC protocol in docs/design.md).
fn carry_candidates(
    job: &BackupJob,
    repo: &tabletsnap_transfer::Repository,
    bases: &[(SnapshotId, BackupMeta)],
) -> Result<CarryCandidates> {
    let Some((base, meta)) = bases.first() else {
        return Ok((None, job.assignments.clone(), None));
    };
    let digests: std::collections::HashMap<u64, (u64, u64)> = meta
        .tables
        .iter()
        .flat_map(|t| &t.partitions)
        .flat_map(|p| {
            p.tablets
                .iter()
                .zip(&p.digests)
                .filter_map(move |(t, d)| d.map(|d| (*t, (p.version, d))))
        })
        .collect();
    if digests.is_empty() {
        return Ok((None, job.assignments.clone(), None));
    }
    let what = || {
        format!(
            "reading backup {base} of repository '{}' to carry unchanged tablets over",
            job.repo.name
        )
    };
    let excluded = crate::repo::with_retries(|| repo.pending_delete_packs()).with_context(what)?;
    let summary =
        crate::repo::with_retries(|| repo.read_manifest_summary(base)).with_context(what)?;
    let base_manifest = tabletsnap_transfer::Repository::manifest_key(base);
    let marked = std::iter::once(&base_manifest)
        .chain(&summary.packs)
        .chain(
            summary
                .borrowed
                .iter()
                .flat_map(|b| std::iter::once(&b.manifest).chain(&b.packs)),
        )
        .any(|k| excluded.contains(k));
    if marked {
        return Ok((None, job.assignments.clone(), None));
    }
    let mut assignments: Assignments = job.assignments.as_ref().clone();
    let mut any = false;
    for t in assignments.iter_mut().flat_map(|(_, ts)| ts) {
        t.carry_digest = match digests.get(&t.tablet_id) {
            Some((v, d)) if *v == t.version => Some(*d),
            _ => None,
        };
        any |= t.carry_digest.is_some();
    }
    Ok((
        any.then(|| base.clone()),
        Arc::new(assignments),
        Some(Arc::new(summary)),
    ))
}

/// The carry base (if any tablet may be carried), the assignments with
/// their carry digests, and the base manifest's summary.
type CarryCandidates = (
    Option<SnapshotId>,
    Arc<Assignments>,
    Option<Arc<tabletsnap_transfer::ManifestSummary>>,
);

/// The backups an incremental backup reuses files from: the newest of each
/// label that this cluster made (another cluster's backups in a shared
/// repository hold other tablets, whose files never match ours; a backup
/// whose meta cannot be read is passed over), each with its meta, already
/// read to tell whose it is.
fn own_reuse_bases(
    repo: &tabletsnap_transfer::Repository,
    job: &BackupJob,
) -> Result<Vec<(SnapshotId, BackupMeta)>> {
    let mut metas: Vec<(SnapshotId, BackupMeta)> = Vec::new();
    crate::repo::with_retries(|| {
        metas.clear();
        repo.reuse_bases_where(&job.label, |id| {
            let ours = crate::repo::with_retries(|| repo.read_meta(id))
                .map_err(anyhow::Error::from)
                .and_then(|b| BackupMeta::decode(&b, &format!("backup {id}")))
                .ok()
                .filter(|m| m.cluster_id == job.meta.cluster_id);
            match ours {
                Some(m) => {
                    metas.push((id.clone(), m));
                    true
                }
                None => false,
            }
        })
    })?;
    Ok(metas)
}

/// Per tablet to upload, the index (in `bases`) of the base that holds its
/// newest version, by the bases' metas: a file that only an older base holds
/// was compacted away, and rowset ids are never reused, so it can never
/// match again; a base no tablet needs is not read at all. Ties go to the
/// earlier base (the own label's). A tablet no base holds is absent.
fn newest_bases(
    job: &BackupJob,
    bases: &[(SnapshotId, BackupMeta)],
) -> std::collections::HashMap<u64, usize> {
    let tablets: std::collections::HashSet<u64> = job
        .snapshots
        .iter()
        .flat_map(|(_, s)| s)
        .filter(|s| !s.carried)
        .map(|s| s.tablet_id)
        .collect();
    let mut newest: std::collections::HashMap<u64, (u64, usize)> = std::collections::HashMap::new();
    for (i, (_, meta)) in bases.iter().enumerate() {
        for p in meta.tables.iter().flat_map(|t| &t.partitions) {
            for t in p.tablets.iter().filter(|t| tablets.contains(t)) {
                let e = newest.entry(*t).or_insert((p.version, i));
                if p.version > e.0 {
                    *e = (p.version, i);
                }
            }
        }
    }
    newest.into_iter().map(|(t, (_, i))| (t, i)).collect()
}

/// What the manifest borrows for the tablets the backends carried over:
/// each carried tablet's entry from the manifest that holds it, the carry
/// base's own or, where the base borrows it in turn, the same source (one
/// level: no chains). Reads the base manifest's summary, not its entries.
fn borrowed_entries(job: &BackupJob, h: &JobHandle) -> Result<Vec<Borrowed>> {
    let mut carried: Vec<u64> = job
        .snapshots
        .iter()
        .flat_map(|(_, s)| s)
        .filter(|s| s.carried)
        .map(|s| s.tablet_id)
        .collect();
    if carried.is_empty() {
        return Ok(Vec::new());
    }
    carried.sort_unstable();
    let Some((label, timestamp)) = &job.carry_base else {
        bail!("SAVE_META: tablets were carried over, but the job names no backup they came from");
    };
    let base = SnapshotId::new(label, timestamp)?;
    // The summary SNAPSHOTING read (the base's manifest is immutable, pinned
    // by its info); read again after a restart.
    let staged = h.with_backup_stage(|s| s.carry.take());
    let summary = match staged.filter(|(id, _)| *id == base) {
        Some((_, s)) => s,
        None => {
            let repo = crate::repo::open_repository(&job.repo.name, &job.repo.location)?;
            Arc::new(crate::repo::with_retries(|| repo.read_manifest_summary(&base))
                .with_context(|| {
                    format!(
                        "reading backup {base} of repository '{}', which this backup carries {} unchanged tablets from (if it was dropped meanwhile, run the backup again)",
                        job.repo.name,
                        carried.len()
                    )
                })?)
        }
    };
    // The base's own entries are source 0, its sources follow; the tablet
    // lists are filled below (never copied from the summary's).
    let mut sources: Vec<Borrowed> = std::iter::once(Borrowed {
        manifest: tabletsnap_transfer::Repository::manifest_key(&base),
        len: summary.len,
        crc32: summary.crc32,
        packs: summary.packs.clone(),
        tablets: Vec::new(),
    })
    .chain(summary.borrowed.iter().map(|b| Borrowed {
        manifest: b.manifest.clone(),
        len: b.len,
        crc32: b.crc32,
        packs: b.packs.clone(),
        tablets: Vec::new(),
    }))
    .collect();
    let mut at: std::collections::HashMap<u64, (usize, tabletsnap_transfer::BorrowedTablet)> =
        summary.own.iter().map(|t| (t.tablet_id, (0, *t))).collect();
    for (i, b) in summary.borrowed.iter().enumerate() {
        at.extend(b.tablets.iter().map(|t| (t.tablet_id, (i + 1, *t))));
    }
    for id in carried {
        let Some((src, t)) = at.get(&id) else {
            bail!("SAVE_META: backup {base} does not hold tablet {id}, which was carried from it");
        };
        if let Some(s) = sources.get_mut(*src) {
            s.tablets.push(*t);
        }
    }
    sources.retain(|s| !s.tablets.is_empty());
    Ok(sources)
}

/// The job's meta with each tablet's files digest from its snapshot.
fn meta_with_digests(job: &BackupJob) -> BackupMeta {
    let digests: std::collections::HashMap<u64, Option<u64>> = job
        .snapshots
        .iter()
        .flat_map(|(_, s)| s)
        .map(|s| (s.tablet_id, s.digest))
        .collect();
    let mut meta = job.meta.as_ref().clone();
    for p in meta.tables.iter_mut().flat_map(|t| &mut t.partitions) {
        p.digests = p
            .tablets
            .iter()
            .map(|t| digests.get(t).copied().flatten())
            .collect();
    }
    meta
}

fn read_parts(dir: &std::path::Path, job: &BackupJob) -> Result<Vec<Manifest>> {
    job.snapshots
        .iter()
        .map(|(be, _)| {
            let p = dir.join(format!("be{be}.manifest"));
            let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
            Ok(Manifest::decode(&bytes)?)
        })
        .collect()
}

/// A task's control block: the job's cancel token and a progress callback
/// that folds this task's cumulative counts into the job's totals.
pub(crate) fn task_control(h: &Arc<JobHandle>) -> TaskControl {
    let job = Arc::clone(h);
    let seen = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    TaskControl {
        cancel: h.cancel.clone(),
        progress: Some(Arc::new(move |p: tabletsnap_transfer::Progress| {
            let prev_f = seen.0.fetch_max(p.files_done, Ordering::Relaxed);
            let prev_b = seen.1.fetch_max(p.bytes_done, Ordering::Relaxed);
            job.progress
                .files_done
                .fetch_add(p.files_done.saturating_sub(prev_f), Ordering::Relaxed);
            job.progress
                .bytes_done
                .fetch_add(p.bytes_done.saturating_sub(prev_b), Ordering::Relaxed);
        })),
        rate_limit: None,
        reuse_from: Vec::new(),
        reuse_index: None,
        reuse_newest: None,
    }
}

fn release_all(c: &dyn JobEnv, snaps: &[(u32, Vec<SnapshotMade>)]) {
    for (be, list) in snaps {
        if let Ok(node) = c.backend(*be) {
            let paths: Vec<PathBuf> = list
                .iter()
                .filter(|s| !s.carried)
                .map(|s| s.path.clone())
                .collect();
            let _ = node.release(&paths);
        }
    }
}

/// Deletes this job's packs, and the manifest and meta if they are this
/// job's; objects of another writer of the same label and timestamp stay.
fn remove_own_objects(repo: &tabletsnap_transfer::Repository, id: &SnapshotId, job: &BackupJob) {
    let dir = tabletsnap_transfer::Repository::snapshot_dir(id);
    let backend = repo.backend();
    let prefix = part_prefix(job);
    if let Ok(m) = repo.read_manifest_uncommitted(id).map(|m| m.entries) {
        if !m.packs.is_empty()
            && m.packs
                .iter()
                .all(|p| p.starts_with(&format!("{dir}packs/{prefix}-")))
        {
            for name in ["manifest", "meta"] {
                let _ = backend.delete(&repo.key(&format!("{dir}{name}")));
            }
        }
    }
    if let Ok(keys) = backend.list(&repo.key(&format!("{dir}packs/{prefix}-"))) {
        for k in keys {
            let _ = backend.delete(&k);
        }
    }
    let _ = backend.barrier();
}

/// Cancels: releases snapshots on every backend, removes the uncommitted
/// backup's objects from the repository, and records why.
pub fn cancel(c: &dyn JobEnv, h: &Arc<JobHandle>, reason: &str) {
    let Ok(job) = with_job(h, Clone::clone) else {
        return;
    };
    if job.state.is_done() {
        return;
    }
    release_all(c, &job.snapshots);
    if let Ok(repo) = crate::repo::open_repository(&job.repo.name, &job.repo.location) {
        if let Ok(id) = job.snapshot_id() {
            // Only a definite "no info" is uncommitted: an info that cannot
            // be read may be a committed backup, whose objects must stay.
            if repo.commit_state(&id) == tabletsnap_transfer::CommitState::Absent {
                remove_own_objects(&repo, &id, &job);
            }
        }
    }
    let _ = std::fs::remove_dir_all(c.jobs().scratch_dir(job.id));
    let _ = update(c, h, |j| {
        j.state = BackupState::Cancelled;
        j.finished_ms = Some(clock::now_ms());
        j.status.status = format!("[CANCELLED] {reason}");
        j.snapshots = Default::default();
    });
}
