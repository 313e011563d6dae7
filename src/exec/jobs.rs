//! Repository and job statements: CREATE/DROP/SHOW REPOSITORY, BACKUP,
//! RESTORE, SHOW BACKUP/RESTORE/SNAPSHOT, CANCEL.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use tabletsnap_engine::engine::now_ms;
use tabletsnap_transfer::{SnapshotId, SnapshotStatus};

use super::{Output, Session};
use crate::backend::{RepoRef, SnapshotTarget};
use crate::catalog::RepoDef;
use crate::job::meta::{BackupMeta, BackupPartition, BackupTable, BACKUP_META_VERSION};
use crate::job::restore::{fence_loads, make_plan, read_backup_meta, RestoreObj};
use crate::job::{
    fmt_time, repo_timestamp, BackupJob, BackupState, JobHandle, JobRecord, JobStatus, RestoreJob,
    RestoreState, DEFAULT_TIMEOUT_SECS,
};
use crate::sql::ast::{Backup, CreateRepository, Restore, SnapshotFilter};
use crate::sql::{BackupProps, RestoreProps, ResultSet};

pub(super) fn create_repository(s: &Session, cr: &CreateRepository) -> Result<Output> {
    let location = crate::repo::parse_location(&cr.location)?;
    super::snapshots::retention_count(&cr.properties)?;
    let s3 = crate::repo::is_s3(&location);
    if !s3 {
        // S3's properties are checked by its settings below. A broker's
        // credentials (StarRocks's "username", "password") are taken and
        // dropped: a local filesystem needs none, and a password is never
        // stored.
        if let Some((k, _)) = cr
            .properties
            .iter()
            .find(|(k, _)| !["retention_count", "username", "password"].contains(&k.as_str()))
        {
            bail!(
                "unknown property \"{k}\" for repository '{}' at {location}: a file:// or mem:// repository takes only \"retention_count\" (and ignores a broker's \"username\" and \"password\")",
                cr.name
            );
        }
    }
    if let Some(name) = cr.broker.as_ref().and_then(|b| b.name.as_ref()) {
        crate::broker::check(name, &location)?;
    }
    if s.cluster.catalog().repositories.contains_key(&cr.name) {
        bail!(
            "repository '{}' already exists (DROP REPOSITORY {} first)",
            cr.name,
            cr.name
        );
    }
    // An S3 secret key goes to the secret store (mode 0600), never into
    // the catalog, SHOW REPOSITORIES or job records.
    let secret_prop = tabletsnap_transfer::backend::s3::PROP_SECRET_KEY;
    let (properties, secret): (Vec<_>, Vec<_>) = cr
        .properties
        .iter()
        .cloned()
        .partition(|(k, _)| !k.eq_ignore_ascii_case(secret_prop));
    let properties: Vec<(String, String)> = if s3 {
        properties
    } else {
        properties
            .into_iter()
            .filter(|(k, _)| k == "retention_count")
            .collect()
    };
    let secret = secret
        .last()
        .map(|(_, v)| tabletsnap_transfer::Secret::new(v.clone()));
    if crate::repo::is_s3(&location) {
        crate::repo::register_s3(&cr.name, &location, &properties, secret.as_ref())?;
    }
    // Creates the location and the repository's info object, or checks an
    // existing one (another cluster's: that is how two clusters share a repository).
    crate::repo::create_repository(&cr.name, &location)?;
    if let Some(secret) = &secret {
        crate::secrets::set(s.cluster.home(), &cr.name, Some(secret))?;
    }
    s.cluster.update_catalog(|c| {
        c.repositories.insert(
            cr.name.clone(),
            RepoDef {
                name: cr.name.clone(),
                location: location.clone(),
                broker: cr
                    .broker
                    .as_ref()
                    .map(|b| b.name.clone().unwrap_or_default()),
                properties: properties.clone(),
                create_time_ms: now_ms(),
                read_only: cr.read_only,
            },
        );
        Ok(())
    })?;
    Ok(Output::Message("Query OK, 0 rows affected".into()))
}

pub(super) fn drop_repository(s: &Session, name: &str) -> Result<Output> {
    let busy = s.cluster.jobs().all().into_iter().any(|h| {
        !h.is_done()
            && match h.record() {
                JobRecord::Backup(j) => j.repo.name == name,
                JobRecord::Restore(j) => j.repo.name == name,
            }
    });
    if busy {
        bail!("repository '{name}' is used by a running job");
    }
    s.cluster.update_catalog(|c| {
        c.repositories
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| anyhow!("unknown repository '{name}' (SHOW REPOSITORIES lists them)"))
    })?;
    crate::secrets::set(s.cluster.home(), name, None)?;
    Ok(Output::Message(
        "Query OK, 0 rows affected (the repository's data is kept)".into(),
    ))
}

pub(super) fn show_repositories(s: &Session) -> Result<Output> {
    let mut rs = ResultSet::new([
        "RepoName",
        "CreateTime",
        "IsReadOnly",
        "Location",
        "Broker",
        "ErrMsg",
    ]);
    for r in s.cluster.catalog().repositories.values() {
        let err = crate::repo::open_repository(&r.name, &r.location)
            .err()
            .map(|e| crate::errcode::one_line(&e))
            .unwrap_or_else(|| "NULL".into());
        rs.push_row([
            r.name.clone(),
            fmt_time(Some(r.create_time_ms)),
            r.read_only.to_string(),
            r.location.clone(),
            r.broker
                .clone()
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| "-".into()),
            err,
        ]);
    }
    Ok(Output::Rows(rs))
}

/// The timestamp for a new backup of `label`: now, or the next second when
/// a backup of the label already has this one (timestamps have whole
/// seconds, and two backups of a label in one second would collide: the
/// second was cancelled when it found the first committed). Checks this
/// cluster's jobs and whether the repository holds that backup's `info` (one
/// read per candidate, not a listing of every backup); if the repository
/// cannot be read now, the job's own check before uploading says so.
fn unused_timestamp(s: &Session, repo: &RepoRef, label: &str) -> String {
    let repository = crate::repo::open_repository(&repo.name, &repo.location).ok();
    let committed = |ts: &str| {
        let (Some(r), Ok(id)) = (&repository, tabletsnap_transfer::SnapshotId::new(label, ts))
        else {
            return false;
        };
        matches!(
            r.commit_state(&id),
            tabletsnap_transfer::CommitState::Committed(_)
        )
    };
    let taken = |ts: &str| {
        committed(ts)
            || s.cluster.jobs().all().iter().any(|h| {
                h.with_record(|r| match r {
                    JobRecord::Backup(j) => {
                        j.label == label
                            && j.repo == *repo
                            && j.timestamp == ts
                            && j.state != BackupState::Cancelled
                    }
                    JobRecord::Restore(_) => false,
                })
            })
    };
    let mut ts = repo_timestamp();
    // Two waits at most: the clock moves on by then.
    for _ in 0..2 {
        if !taken(&ts) {
            break;
        }
        let now = crate::job::clock::now_ms();
        std::thread::sleep(std::time::Duration::from_millis(1000 - now % 1000));
        ts = repo_timestamp();
    }
    ts
}

fn repo_ref(s: &Session, name: &str) -> Result<RepoRef> {
    let cat = s.cluster.catalog();
    let r = cat.repo(name)?;
    Ok(RepoRef {
        name: r.name.clone(),
        location: r.location.clone(),
    })
}

pub(super) fn backup(s: &Session, b: &Backup) -> Result<Arc<JobHandle>> {
    let db = s.db_name(b.label.db.as_ref())?;
    let label = b.label.name.clone();
    tabletsnap_transfer::names::validate_label(&label)?;
    let props = BackupProps::from_properties(&b.properties)?;
    let repo = repo_ref(s, &b.repo)?;
    if s.cluster.catalog().repo(&b.repo)?.read_only {
        bail!(
            "repository '{}' is read only: BACKUP cannot write into it (RESTORE can read from it)",
            b.repo
        );
    }
    s.cluster.catalog().db(&db)?;
    // Before anything else about the tables: a restore running in the
    // database is the reason, not the table it is filling.
    s.cluster.jobs().ensure_idle(&db)?;
    let mut seen = std::collections::HashSet::new();
    for t in &b.tables {
        if !seen.insert(t.name.as_str()) {
            bail!("table '{}' is listed twice in BACKUP ... ON", t.name);
        }
        if t.alias.is_some() {
            bail!("BACKUP does not take AS aliases (table '{}')", t.name);
        }
    }
    let timestamp = unused_timestamp(s, &repo, &label);
    let (meta, assignments) = {
        let cat = s.cluster.catalog();
        let d = cat.db(&db)?;
        for t in &b.exclude {
            if !d.tables.contains_key(t) {
                bail!("unknown table '{db}.{t}' in EXCLUDE (SHOW TABLES FROM {db} lists them)");
            }
        }
        let names: Vec<(String, Vec<String>)> = if b.tables.is_empty() {
            d.tables
                .keys()
                .filter(|n| !b.exclude.contains(n))
                .map(|n| (n.clone(), Vec::new()))
                .collect()
        } else {
            b.tables
                .iter()
                .map(|t| (t.name.clone(), t.partitions.clone()))
                .collect()
        };
        if names.is_empty() {
            bail!("database '{db}' has no tables to back up");
        }
        let mut tables: Vec<BackupTable> = Vec::new();
        let mut per_be: BTreeMap<u32, Vec<SnapshotTarget>> = BTreeMap::new();
        let mut stats_asks: BTreeMap<u32, StatsAsk> = BTreeMap::new();
        for (name, parts) in &names {
            let t = cat.table(&db, name)?;
            if let Some(j) = t.restoring_job {
                bail!(
                    "table '{db}.{name}' is being restored by job {j} and cannot be backed up now"
                );
            }
            for p in parts {
                if t.partition(p).is_none() {
                    bail!("unknown partition '{p}' of table '{db}.{name}' (SHOW PARTITIONS FROM {name} lists them)");
                }
            }
            let mut partitions = Vec::new();
            for (i, p) in t.partitions.iter().enumerate() {
                if !parts.is_empty() && !parts.contains(&p.name) {
                    continue;
                }
                for (k, tab) in p.tablets.iter().enumerate() {
                    let be = tab.replicas[k % tab.replicas.len().max(1)];
                    per_be.entry(be).or_default().push(SnapshotTarget {
                        tablet_id: tab.id,
                        version: p.visible_version,
                        carry_digest: None,
                    });
                }
                // Rows are counted below with one stats call per backend
                // for the whole backup: a node process is a round trip away.
                for tab in &p.tablets {
                    if let Some(be) = tab.replicas.first() {
                        let ask = stats_asks.entry(*be).or_default();
                        ask.ids.push(tab.id);
                        ask.at.push(p.visible_version);
                        ask.partition.push((tables.len(), partitions.len()));
                    }
                }
                partitions.push(BackupPartition {
                    id: p.id,
                    name: p.name.clone(),
                    lower: t.lower_bound(i).cloned(),
                    upper: p.upper.clone(),
                    version: p.visible_version,
                    tablets: p.tablets.iter().map(|x| x.id).collect(),
                    // Filled from the snapshots at SAVE_META.
                    digests: Vec::new(),
                    rows: 0,
                    lineage: p.lineage,
                });
            }
            tables.push(BackupTable {
                id: t.id,
                name: t.name.clone(),
                schema: t.schema.clone(),
                partition_column: t.partition_column.clone(),
                distribution: t.distribution.clone(),
                buckets: t.buckets,
                replication_num: t.replication_num,
                partitions,
            });
        }
        for (be, ask) in &stats_asks {
            let stats = s.cluster.backend(*be)?.tablet_stats_at(&ask.ids, &ask.at)?;
            for (st, (ti, pi)) in stats.iter().zip(&ask.partition) {
                if let Some(p) = tables.get_mut(*ti).and_then(|t| t.partitions.get_mut(*pi)) {
                    p.rows += st.as_ref().map_or(0, |st| st.rows_at);
                }
            }
        }
        let meta = BackupMeta {
            format_version: BACKUP_META_VERSION,
            cluster_id: cat.cluster_id,
            db: db.clone(),
            label: label.clone(),
            timestamp,
            create_time_ms: now_ms(),
            tables,
        };
        (meta, per_be.into_iter().collect::<Vec<_>>())
    };
    // Only now, once the statement is known good: a refused one writes nothing.
    let id = s.cluster.update_catalog(|c| Ok(c.alloc_id()))?;
    let objs = meta
        .tables
        .iter()
        .map(|t| {
            format!(
                "{}({})",
                t.name,
                t.partitions
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let job = BackupJob {
        id,
        label,
        db,
        repo,
        state: BackupState::Pending,
        timeout_s: props.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS),
        objs,
        timestamp: meta.timestamp.clone(),
        create_time_ms: meta.create_time_ms,
        snapshot_finished_ms: None,
        upload_finished_ms: None,
        finished_ms: None,
        meta: Arc::new(meta),
        assignments: Arc::new(assignments),
        snapshots: Default::default(),
        status: JobStatus {
            status: "OK".into(),
            ..Default::default()
        },
        incremental: props.backup_type == crate::sql::props::BackupType::Incremental,
        carry_base: None,
        data: None,
    };
    s.cluster.jobs().start(&s.cluster, JobRecord::Backup(job))
}

pub(super) fn restore(s: &Session, r: &Restore) -> Result<Arc<JobHandle>> {
    let db = s.db_name(r.label.db.as_ref())?;
    let label = r.label.name.clone();
    tabletsnap_transfer::names::validate_label(&label)?;
    let props = RestoreProps::from_properties(&r.properties)?;
    let repo = repo_ref(s, &r.repo)?;
    if s.cluster.catalog().db(&db).is_err() {
        // Say which side is meant: the target, not the backup's source.
        return Err(crate::errcode::coded(
            crate::errcode::ErrorCode::BadDb,
            format!(
                "unknown database '{db}': RESTORE writes into it (DATABASE src [AS db], else the current database); CREATE DATABASE {db} first"
            ),
        ));
    }
    s.cluster.jobs().ensure_idle(&db)?;
    let objs: Vec<RestoreObj> = r
        .tables
        .iter()
        .map(|t| RestoreObj {
            table: t.name.clone(),
            partitions: t.partitions.clone(),
            alias: t.alias.clone(),
        })
        .collect();
    let meta = read_backup_meta(&repo, &label, &props.backup_timestamp)?;
    if let Some(src) = r.source_db.as_ref().filter(|src| **src != meta.db) {
        bail!(
            "snapshot '{label}' ({}) was taken from database '{}', not '{src}'",
            props.backup_timestamp,
            meta.db
        );
    }
    let id = s.cluster.update_catalog(|c| Ok(c.alloc_id()))?;
    let job = RestoreJob {
        id,
        label,
        db,
        repo,
        timestamp: props.backup_timestamp.clone(),
        state: RestoreState::Pending,
        timeout_s: props.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS),
        allow_load: props.allow_load,
        replication_num: props.replication_num,
        objs,
        create_time_ms: now_ms(),
        meta_prepared_ms: None,
        snapshot_finished_ms: None,
        download_finished_ms: None,
        finished_ms: None,
        plan: None,
        targets: Default::default(),
        commit_step: Default::default(),
        catch_up: props.catch_up,
        status: JobStatus {
            status: "OK".into(),
            ..Default::default()
        },
    };
    // Refuse a different schema or range now, before anything changes.
    let mut dry = s.cluster.catalog().clone();
    let plan = make_plan(&mut dry, &job, &meta, false, &s.cluster.live_backend_ids())?;
    drop(dry);
    let fence_job = job.clone();
    // From the moment the statement returns, loads into what the restore
    // replaces are refused (PENDING fences again, for a crash before this).
    s.cluster
        .jobs()
        .start_with(&s.cluster, JobRecord::Restore(job), || {
            s.cluster
                .update_catalog(|c| fence_loads(c, &fence_job, &plan))
        })
}

fn jobs_in(s: &Session, db: Option<&String>, kind: &str) -> Result<Vec<Arc<JobHandle>>> {
    let db = s.db_name(db)?;
    s.cluster.catalog().db(&db)?;
    Ok(s.cluster
        .jobs()
        .all()
        .into_iter()
        .filter(|h| {
            let r = h.record();
            r.db() == db && r.kind() == kind
        })
        .collect())
}

pub(super) fn show_backup(s: &Session, db: Option<&String>) -> Result<Output> {
    let mut rs = ResultSet::new([
        "JobId",
        "SnapshotName",
        "DbName",
        "State",
        "BackupObjs",
        "CreateTime",
        "SnapshotFinishedTime",
        "UploadFinishedTime",
        "FinishedTime",
        "UnfinishedTasks",
        "Progress",
        "TaskErrMsg",
        "Status",
        "Timeout",
        "Data",
    ]);
    for h in jobs_in(s, db, "BACKUP")? {
        if let JobRecord::Backup(j) = h.record() {
            let running = !j.state.is_done();
            rs.push_row([
                j.id.to_string(),
                j.label.clone(),
                j.db.clone(),
                j.state.name().to_string(),
                j.objs.clone(),
                fmt_time(Some(j.create_time_ms)),
                fmt_time(j.snapshot_finished_ms),
                fmt_time(j.upload_finished_ms),
                fmt_time(j.finished_ms),
                if running {
                    h.progress
                        .unfinished_tasks
                        .load(Ordering::Relaxed)
                        .to_string()
                } else {
                    "0".into()
                },
                if running {
                    h.progress.describe()
                } else {
                    String::new()
                },
                j.status.task_err_msg.clone(),
                j.status.status.clone(),
                j.timeout_s.to_string(),
                j.data.map(|d| d.describe()).unwrap_or_default(),
            ]);
        }
    }
    Ok(Output::Rows(rs))
}

pub(super) fn show_restore(s: &Session, db: Option<&String>) -> Result<Output> {
    let mut rs = ResultSet::new([
        "JobId",
        "Label",
        "Timestamp",
        "DbName",
        "State",
        "AllowLoad",
        "ReplicationNum",
        "RestoreObjs",
        "CreateTime",
        "MetaPreparedTime",
        "SnapshotFinishedTime",
        "DownloadFinishedTime",
        "FinishedTime",
        "UnfinishedTasks",
        "Progress",
        "TaskErrMsg",
        "Status",
        "Timeout",
    ]);
    for h in jobs_in(s, db, "RESTORE")? {
        if let JobRecord::Restore(j) = h.record() {
            let running = !j.state.is_done();
            rs.push_row([
                j.id.to_string(),
                j.label.clone(),
                j.timestamp.clone(),
                j.db.clone(),
                j.state.name().to_string(),
                j.allow_load.to_string(),
                restore_replication(&j),
                j.objs_text(),
                fmt_time(Some(j.create_time_ms)),
                fmt_time(j.meta_prepared_ms),
                fmt_time(j.snapshot_finished_ms),
                fmt_time(j.download_finished_ms),
                fmt_time(j.finished_ms),
                if running {
                    h.progress
                        .unfinished_tasks
                        .load(Ordering::Relaxed)
                        .to_string()
                } else {
                    "0".into()
                },
                if running {
                    h.progress.describe()
                } else {
                    String::new()
                },
                j.status.task_err_msg.clone(),
                j.status.status.clone(),
                j.timeout_s.to_string(),
            ]);
        }
    }
    Ok(Output::Rows(rs))
}

pub(super) fn show_snapshot(
    s: &Session,
    repo: &str,
    filter: Option<&SnapshotFilter>,
) -> Result<Output> {
    let r = repo_ref(s, repo)?;
    let repository = crate::repo::open_repository(&r.name, &r.location)?;
    // Every info found, readable or not: a damaged one is listed with its
    // damage in Status rather than silently left out.
    let listed = repository.list_snapshots_with_status()?;
    let status_of = |st: &SnapshotStatus| match st {
        SnapshotStatus::Committed(_) => "OK".to_string(),
        SnapshotStatus::Damaged(why) => format!("DAMAGED: {why}"),
    };
    let Some(f) = filter else {
        let mut rs = ResultSet::new(["Snapshot", "Timestamp", "Status"]);
        for (id, st) in &listed {
            rs.push_row([id.label.clone(), id.timestamp.clone(), status_of(st)]);
        }
        return Ok(Output::Rows(rs));
    };
    let mut rs = ResultSet::new(["Snapshot", "Timestamp", "Status", "Database", "Details"]);
    for (id, st) in listed.iter().filter(|(id, _)| {
        id.label == f.snapshot && f.timestamp.as_ref().is_none_or(|t| t == &id.timestamp)
    }) {
        let (status, db, details) = match st {
            SnapshotStatus::Damaged(_) => (status_of(st), String::new(), String::new()),
            SnapshotStatus::Committed(_) => match snapshot_details(&repository, id) {
                Ok((db, d)) => ("OK".to_string(), db, d),
                Err(e) => (
                    format!("DAMAGED: {}", crate::errcode::one_line(&e)),
                    String::new(),
                    String::new(),
                ),
            },
        };
        rs.push_row([id.label.clone(), id.timestamp.clone(), status, db, details]);
    }
    Ok(Output::Rows(rs))
}

fn snapshot_details(
    repo: &tabletsnap_transfer::Repository,
    id: &SnapshotId,
) -> Result<(String, String)> {
    let meta = BackupMeta::decode(
        &repo.read_meta(id)?,
        &format!("snapshot {}/{}", id.label, id.timestamp),
    )?;
    let manifest = repo.read_manifest(id)?;
    let by_tablet: std::collections::HashMap<u64, &tabletsnap_transfer::TabletEntry> =
        manifest.tablets.iter().map(|e| (e.tablet_id, e)).collect();
    let mut out = format!("__ss_{}/{}/\n", id.label, id.timestamp);
    for t in &meta.tables {
        out.push_str(&format!("  {} (id {})\n", t.name, t.id));
        for p in &t.partitions {
            out.push_str(&format!(
                "    {} version {} rows {}\n",
                p.name, p.version, p.rows
            ));
            for tab in &p.tablets {
                if let Some(e) = by_tablet.get(tab) {
                    let bytes: u64 = e.files.iter().map(|f| f.size).sum();
                    out.push_str(&format!(
                        "      {tab}/ {} files {} bytes\n",
                        e.files.len(),
                        bytes
                    ));
                }
            }
        }
    }
    out.push_str(&format!("  packs: {}\n", manifest.packs.len()));
    let data = crate::job::backup::DataCounts::from(
        manifest.reuse_stats(&tabletsnap_transfer::Repository::snapshot_dir(id)),
    );
    out.push_str(&format!("  {}\n", data.describe()));
    Ok((meta.db, out.trim_end().to_string()))
}

pub(super) fn cancel(s: &Session, db: Option<&String>, kind: &str) -> Result<Output> {
    let db = s.db_name(db)?;
    s.cluster.catalog().db(&db)?;
    let Some(h) = s
        .cluster
        .jobs()
        .running_in(&db)
        .filter(|h| h.with_record(|r| r.kind() == kind))
    else {
        bail!("no running {kind} job in database '{db}'");
    };
    if let JobRecord::Restore(j) = h.record() {
        if j.state == RestoreState::Committing {
            bail!(
                "restore job {} is COMMITTING and will finish; it can no longer be cancelled",
                j.id
            );
        }
    }
    h.request_cancel("cancelled by user");
    h.wait();
    // A step that cannot be interrupted may complete the job first; say so
    // rather than report a cancel that did not happen.
    match h.record() {
        JobRecord::Restore(j) if j.state == RestoreState::Finished => bail!(
            "restore job {} reached COMMITTING before the cancel and finished",
            j.id
        ),
        JobRecord::Backup(j) if j.state == BackupState::Finished => bail!(
            "backup job {} finished before the cancel took effect; its snapshot '{}' is in repository '{}'",
            j.id,
            j.label,
            j.repo.name
        ),
        _ => {}
    }
    Ok(Output::Message(format!(
        "Query OK, {kind} job {} cancelled",
        h.id
    )))
}

/// The tablets a BACKUP asks one backend about: ids, the version to count
/// each one's rows at, and the (table, partition) of the backup meta the
/// rows go to.
#[derive(Default)]
struct StatsAsk {
    ids: Vec<u64>,
    at: Vec<u64>,
    partition: Vec<(usize, usize)>,
}

/// SHOW RESTORE's ReplicationNum: the property as given, else what the plan
/// chose per table (the backup's, or an existing table's), else "default"
/// before the plan is made.
fn restore_replication(j: &crate::job::RestoreJob) -> String {
    if let Some(n) = j.replication_num {
        return n.to_string();
    }
    let mut nums: Vec<u16> = j
        .plan
        .iter()
        .flat_map(|p| p.iter().map(|t| t.replication_num))
        .collect();
    if nums.is_empty() {
        return "default".into();
    }
    nums.sort_unstable();
    nums.dedup();
    nums.iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
