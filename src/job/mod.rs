//! Backup and restore jobs: persisted state machines driven by one thread per
//! job, talking to backends only through [`BackendTasks`](crate::backend::BackendTasks).
//!
//! A job's record is saved (atomically) after every state change, so a
//! restarted process resumes each unfinished job from its last completed
//! state. Task errors are retried a bounded number of times with capped
//! exponential backoff; past that, or past its timeout, a job is cancelled
//! and cleaned up. Once a restore reaches COMMITTING it only moves forward.

pub mod backup;
pub mod clock;
pub mod crash;
mod drive;
pub mod env;
pub mod meta;
pub mod restore;

use env::JobEnv;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tabletsnap_engine::{engine::now_ms, file};
use tabletsnap_transfer::CancelToken;

pub use backup::{BackupJob, BackupState};
pub use drive::commit_point;
pub(crate) use drive::{drive, is_permanent, per_backend, per_backend_each, Machine, Step};
pub use restore::{RestoreJob, RestoreState};

/// Fail points at every job state transition (active with the `failpoints` feature).
pub const FAIL_POINTS: &[&str] = &[
    "job::backup::PENDING",
    "job::backup::SNAPSHOTING",
    "job::backup::UPLOAD_SNAPSHOT",
    "job::backup::UPLOADING",
    "job::backup::SAVE_META",
    "job::backup::UPLOAD_INFO",
    "job::restore::PENDING",
    "job::restore::SNAPSHOTING",
    "job::restore::DOWNLOAD",
    "job::restore::DOWNLOADING",
    "job::restore::COMMIT",
    "job::restore::COMMITTING",
    "job::after_record_save",
    "job::backup::after_info_put",
    "job::backup::after_finished_save",
    "job::restore::after_catalog_apply",
    "job::restore::after_install",
    "job::restore::after_publish",
    "job::restore::after_release",
    "catalog::before_save",
    "catalog::after_save",
];

/// Every fail point of every layer, engine first, for harnesses to enumerate.
pub fn all_fail_points() -> Vec<&'static str> {
    let mut v = Vec::new();
    v.extend_from_slice(tabletsnap_engine::FAIL_POINTS);
    v.extend_from_slice(tabletsnap_snapshot::FAIL_POINTS);
    v.extend_from_slice(tabletsnap_transfer::FAIL_POINTS);
    v.extend_from_slice(FAIL_POINTS);
    v
}

/// Default job timeout (seconds), as in StarRocks.
pub const DEFAULT_TIMEOUT_SECS: u64 = 86_400;
/// Attempts per state before a job gives up.
pub const MAX_TASK_ATTEMPTS: u32 = 3;

/// A job as persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum JobRecord {
    /// A BACKUP job.
    Backup(BackupJob),
    /// A RESTORE job.
    Restore(RestoreJob),
}

impl JobRecord {
    /// Job id.
    pub fn id(&self) -> u64 {
        match self {
            JobRecord::Backup(j) => j.id,
            JobRecord::Restore(j) => j.id,
        }
    }
    /// Database the job runs in.
    pub fn db(&self) -> &str {
        match self {
            JobRecord::Backup(j) => &j.db,
            JobRecord::Restore(j) => &j.db,
        }
    }
    /// FINISHED or CANCELLED.
    pub fn is_done(&self) -> bool {
        match self {
            JobRecord::Backup(j) => j.state.is_done(),
            JobRecord::Restore(j) => j.state.is_done(),
        }
    }
    /// `BACKUP` or `RESTORE`.
    pub fn kind(&self) -> &'static str {
        match self {
            JobRecord::Backup(_) => "BACKUP",
            JobRecord::Restore(_) => "RESTORE",
        }
    }
    /// Errors, attempts and status.
    pub fn status(&self) -> &JobStatus {
        match self {
            JobRecord::Backup(j) => &j.status,
            JobRecord::Restore(j) => &j.status,
        }
    }
    fn status_mut(&mut self) -> &mut JobStatus {
        match self {
            JobRecord::Backup(j) => &mut j.status,
            JobRecord::Restore(j) => &mut j.status,
        }
    }
    /// The label.
    pub fn label(&self) -> &str {
        match self {
            JobRecord::Backup(j) => &j.label,
            JobRecord::Restore(j) => &j.label,
        }
    }
}

/// Fields every job has for SHOW: errors, attempts, progress.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JobStatus {
    /// Last task error, shown as TaskErrMsg.
    pub task_err_msg: String,
    /// `OK` or `[CANCELLED] reason` / `[ERROR] reason`.
    pub status: String,
    /// Failed attempts of the current state.
    pub attempts: u32,
    /// A cancel that has begun but not finished cleaning up: a restarted
    /// process finishes it instead of resuming the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelling: Option<String>,
}

/// Live progress of a running job.
#[derive(Debug, Default)]
pub struct Progress {
    /// Tasks not yet finished.
    pub unfinished_tasks: AtomicU64,
    /// Files done.
    pub files_done: AtomicU64,
    /// Files in all.
    pub files_total: AtomicU64,
    /// Bytes done.
    pub bytes_done: AtomicU64,
    /// Bytes in all.
    pub bytes_total: AtomicU64,
}

impl Progress {
    /// `files a/b, bytes c/d` for SHOW.
    pub fn describe(&self) -> String {
        let ft = self.files_total.load(Ordering::Relaxed);
        if ft == 0 {
            return String::new();
        }
        format!(
            "{}/{} files, {}/{} bytes",
            self.files_done.load(Ordering::Relaxed),
            ft,
            self.bytes_done.load(Ordering::Relaxed),
            self.bytes_total.load(Ordering::Relaxed)
        )
    }
}

/// A job in memory: its record, its cancel token, completion signal and progress.
#[derive(Debug)]
pub struct JobHandle {
    /// Job id.
    pub id: u64,
    record: Mutex<JobRecord>,
    /// Cancels transfers and the state loop.
    pub cancel: CancelToken,
    cancel_reason: Mutex<Option<String>>,
    done: Mutex<bool>,
    done_cv: Condvar,
    /// Live progress.
    pub progress: Progress,
    /// A backup's merged manifest, handed from SAVE_META to UPLOAD_INFO in
    /// memory (the step after a restart reads the saved copy instead).
    staged: Mutex<Option<tabletsnap_transfer::StoredManifest>>,
    /// What a backup's SNAPSHOTING read of earlier backups, kept in memory
    /// for the later steps that need it (after a restart they read it again).
    backup_stage: Mutex<BackupStage>,
}

/// See `JobHandle::backup_stage`; each part is taken by the step that uses
/// it, so a retry of that step reads afresh.
#[derive(Debug, Default)]
pub(crate) struct BackupStage {
    /// The reuse bases, own label first, each with its meta (for UPLOADING).
    pub bases: Option<Arc<Vec<(tabletsnap_transfer::SnapshotId, meta::BackupMeta)>>>,
    /// The carry base and its manifest summary (for SAVE_META).
    pub carry: Option<(
        tabletsnap_transfer::SnapshotId,
        Arc<tabletsnap_transfer::ManifestSummary>,
    )>,
}

impl JobHandle {
    /// Keeps `m` for the next step of this job.
    pub(crate) fn stage_manifest(&self, m: tabletsnap_transfer::StoredManifest) {
        *self.staged.lock().unwrap_or_else(|e| e.into_inner()) = Some(m);
    }

    /// Keeps what SNAPSHOTING read of earlier backups for later steps.
    pub(crate) fn stage_backup(&self, s: BackupStage) {
        *self.backup_stage.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }

    /// Runs `f` on the staged backup state (to take a part of it).
    pub(crate) fn with_backup_stage<T>(&self, f: impl FnOnce(&mut BackupStage) -> T) -> T {
        f(&mut self.backup_stage.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The manifest the previous step staged, if this process ran it.
    pub(crate) fn take_staged_manifest(&self) -> Option<tabletsnap_transfer::StoredManifest> {
        self.staged.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Runs `f` on the record under its lock, without copying it (a W1
    /// backup's record lists 400k snapshot files).
    pub fn with_record<T>(&self, f: impl FnOnce(&JobRecord) -> T) -> T {
        f(&self.record.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A copy of the record.
    pub fn record(&self) -> JobRecord {
        self.record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Blocks until the job is FINISHED or CANCELLED.
    pub fn wait(&self) {
        let mut d = self.done.lock().unwrap_or_else(|e| e.into_inner());
        while !*d {
            d = self.done_cv.wait(d).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Whether the job has ended.
    pub fn is_done(&self) -> bool {
        *self.done.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mark_done(&self) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.done_cv.notify_all();
    }

    /// Asks the job to cancel with `reason`.
    pub fn request_cancel(&self, reason: &str) {
        let mut r = self.cancel_reason.lock().unwrap_or_else(|e| e.into_inner());
        if r.is_none() {
            *r = Some(reason.to_string());
        }
        self.cancel.cancel();
    }

    /// Why cancellation was asked for, if it was.
    pub fn cancel_reason(&self) -> Option<String> {
        self.cancel_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Owns job records (one key each in the home's metadata store) and the
/// running jobs; scratch files of a job live under `<home>/jobs/<id>/`.
#[derive(Debug)]
pub struct JobManager {
    dir: PathBuf,
    store: Arc<crate::meta_store::MetaStore>,
    jobs: Mutex<BTreeMap<u64, Arc<JobHandle>>>,
}

/// Reads the JSON job records of a home made before the metadata store.
pub fn load_legacy_records(dir: &std::path::Path) -> Result<Vec<JobRecord>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for e in rd {
        let p = e
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let bytes =
            std::fs::read(&p).with_context(|| format!("reading job record {}", p.display()))?;
        out.push(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("job record {} is damaged", p.display()))?,
        );
    }
    Ok(out)
}

/// Renames what an import into the metadata store replaced, so a later
/// open never imports it again: `catalog.json` and `jobs/*.json`.
pub fn retire_legacy_records(home: &std::path::Path) -> Result<()> {
    let dir = home.join("jobs");
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                file::remove_file_if_exists(&p)
                    .with_context(|| format!("removing imported {}", p.display()))?;
            }
        }
    }
    let cat = crate::catalog::Catalog::path(home);
    file::rename_durable(&cat, &home.join("catalog.json.imported"))
        .with_context(|| format!("retiring imported {}", cat.display()))?;
    Ok(())
}

impl JobManager {
    /// Loads every job record from `store`; scratch dirs go under `dir`.
    pub fn new(store: Arc<crate::meta_store::MetaStore>, dir: PathBuf) -> Result<JobManager> {
        file::create_dir_all_durable(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let mut jobs = BTreeMap::new();
        for rec in store.load_jobs()? {
            let done = rec.is_done();
            let h = Arc::new(JobHandle {
                id: rec.id(),
                record: Mutex::new(rec),
                cancel: CancelToken::new(),
                cancel_reason: Mutex::new(None),
                done: Mutex::new(done),
                done_cv: Condvar::new(),
                progress: Progress::default(),
                staged: Mutex::new(None),
                backup_stage: Mutex::new(BackupStage::default()),
            });
            jobs.insert(h.id, h);
        }
        Ok(JobManager {
            dir,
            store,
            jobs: Mutex::new(jobs),
        })
    }

    /// Per-job scratch dir (partial manifests, saved meta).
    pub fn scratch_dir(&self, id: u64) -> PathBuf {
        self.dir.join(id.to_string())
    }

    fn save(&self, rec: &JobRecord) -> Result<()> {
        self.store
            .save_job(rec)
            .with_context(|| format!("saving job {}", rec.id()))
    }

    /// Every job, oldest first.
    pub fn all(&self) -> Vec<Arc<JobHandle>> {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Job `id`.
    pub fn get(&self, id: u64) -> Option<Arc<JobHandle>> {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// The unfinished job of `db`, if any.
    pub fn running_in(&self, db: &str) -> Option<Arc<JobHandle>> {
        self.all()
            .into_iter()
            .find(|h| !h.is_done() && h.with_record(|r| r.db() == db))
    }

    /// Refuses a new job in `db` while another one runs there, naming it.
    pub fn ensure_idle(&self, db: &str) -> Result<()> {
        match self.running_in(db) {
            Some(h) => Err(busy(db, &h.record())),
            None => Ok(()),
        }
    }

    /// Registers and starts a new job (refused if `db` has a running job).
    pub fn start<E: JobEnv + 'static>(
        &self,
        env: &Arc<E>,
        rec: JobRecord,
    ) -> Result<Arc<JobHandle>> {
        self.start_with(env, rec, || Ok(()))
    }

    /// Like [`start`](Self::start), running `accept` after the record is
    /// saved and before the job's thread starts (a restore fences its tables
    /// there, so the fence exists from the moment the statement returns). If
    /// `accept` fails the job is recorded CANCELLED with that reason.
    pub fn start_with<E: JobEnv + 'static>(
        &self,
        env: &Arc<E>,
        rec: JobRecord,
        accept: impl FnOnce() -> Result<()>,
    ) -> Result<Arc<JobHandle>> {
        let h = {
            let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(r) = jobs
                .values()
                .find(|h| !h.is_done() && h.with_record(|r| r.db() == rec.db()))
            {
                return Err(busy(rec.db(), &r.record()));
            }
            self.save(&rec)?;
            let h = Arc::new(JobHandle {
                id: rec.id(),
                record: Mutex::new(rec),
                cancel: CancelToken::new(),
                cancel_reason: Mutex::new(None),
                done: Mutex::new(false),
                done_cv: Condvar::new(),
                progress: Progress::default(),
                staged: Mutex::new(None),
                backup_stage: Mutex::new(BackupStage::default()),
            });
            jobs.insert(h.id, Arc::clone(&h));
            h
        };
        if let Err(e) = accept() {
            let reason = crate::errcode::one_line(&e);
            let _ = self.update(&h, |r| {
                match r {
                    JobRecord::Backup(j) => j.state = BackupState::Cancelled,
                    JobRecord::Restore(j) => j.state = RestoreState::Cancelled,
                }
                r.status_mut().status = format!("[CANCELLED] {reason}");
            });
            h.mark_done();
            return Err(e);
        }
        spawn(Arc::clone(env) as Arc<dyn JobEnv>, &h)?;
        Ok(h)
    }

    /// Resumes every unfinished job after a restart.
    pub fn resume_all<E: JobEnv + 'static>(env: &Arc<E>) -> Result<()> {
        for h in env.jobs().all() {
            if !h.is_done() {
                spawn(Arc::clone(env) as Arc<dyn JobEnv>, &h)?;
            }
        }
        Ok(())
    }

    /// Updates a job's record in memory and on disk.
    pub fn update(&self, h: &JobHandle, f: impl FnOnce(&mut JobRecord)) -> Result<()> {
        let mut rec = h.record.lock().unwrap_or_else(|e| e.into_inner());
        let mut copy = rec.clone();
        f(&mut copy);
        self.save(&copy)?;
        *rec = copy;
        drop(rec);
        commit_point("job::after_record_save")
    }
}

fn busy(db: &str, other: &JobRecord) -> anyhow::Error {
    anyhow::anyhow!(
        "database '{db}' already has a running job: {} {} (JobId {}); wait for it or CANCEL it",
        other.kind(),
        other.label(),
        other.id()
    )
}

fn spawn(c: Arc<dyn JobEnv>, h: &Arc<JobHandle>) -> Result<()> {
    let job = Arc::clone(h);
    std::thread::Builder::new()
        .name(format!("job-{}", h.id))
        .spawn(move || {
            let kind = job.record();
            let run = std::panic::AssertUnwindSafe(|| match kind {
                JobRecord::Backup(_) => backup::run(&*c, &job),
                JobRecord::Restore(_) => restore::run(&*c, &job),
            });
            if let Err(panic) = std::panic::catch_unwind(run) {
                let msg = panic_message(&*panic);
                let reason = format!("internal error: the job thread panicked: {msg}");
                if !crash::crashed() {
                    // Cancel as any other failure would (a restore past its
                    // point of no return is left for the next open to resume).
                    let cancelled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        match job.record() {
                            JobRecord::Backup(_) => backup::cancel(&*c, &job, &reason),
                            JobRecord::Restore(_) => restore::cancel(&*c, &job, &reason),
                        }
                    }));
                    if cancelled.is_err() || !job.with_record(JobRecord::is_done) {
                        let _ = c.jobs().update(&job, |r| {
                            r.status_mut().task_err_msg = reason.clone();
                        });
                    }
                }
            }
            // A job cancelled between SAVE_META and UPLOAD_INFO leaves its
            // staged manifest behind: finished handles stay listed, so free it.
            drop(job.take_staged_manifest());
            job.stage_backup(BackupStage::default());
            // Let go of the cluster before anyone waiting is woken: they may
            // close the home and reopen it, which needs the lock released.
            drop(c);
            job.mark_done();
        })
        .context("starting a job thread")?;
    Ok(())
}

pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// Capped exponential backoff for attempt `n` (1-based): 0.5 s, 1 s, 2 s ... at most 8 s.
pub fn backoff(n: u32) -> Duration {
    Duration::from_millis((500u64 << n.saturating_sub(1).min(4)).min(8_000))
}

/// Current time as SHOW prints it: `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn fmt_time(ms: Option<u64>) -> String {
    match ms {
        None | Some(0) => "NULL".into(),
        Some(ms) => tabletsnap_engine::Value::DateTime((ms as i64) * 1000).to_string(),
    }
}

/// A repository timestamp for now: `YYYY-MM-DD-HH-MM-SS` (UTC).
pub fn repo_timestamp() -> String {
    let s = tabletsnap_engine::Value::DateTime((now_ms() as i64) * 1000).to_string();
    s.replace([' ', ':'], "-")
}
