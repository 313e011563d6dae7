//! The timed phases of one workload: load, snapshot, upload, download and
//! commit, each next to its baseline; and the whole BACKUP and RESTORE jobs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tabletsnap_engine::workload::{plain_write, populate};
use tabletsnap_engine::{Engine, EngineOptions, Verify, WorkloadSpec};
use tabletsnap_snapshot::{LoadSnapshotRequest, SnapshotInfo, SnapshotRequest};
use tabletsnap_transfer::{LocalFs, Repository, SnapshotId, SourceFile, UploadSource};

use super::measure::{
    have, last_window, median, run_cmd_cpu, self_cpu_s, sync_sample, timed_cpu, trash,
};
use super::{BenchOptions, Row};

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

pub(super) fn row(
    workload: &str,
    phase: &str,
    ours: &[Duration],
    baseline: &str,
    base: Option<&[Duration]>,
    (files, bytes): (u64, u64),
    rss: f64,
) -> Row {
    let o = secs(median(ours));
    let b = base.filter(|b| !b.is_empty()).map(|b| secs(median(b)));
    Row {
        workload: workload.into(),
        phase: phase.into(),
        ours_s: o,
        baseline: baseline.into(),
        baseline_s: b,
        ratio: b.map(|b| o / b.max(1e-9)),
        files,
        bytes,
        peak_rss_mib: rss,
        tablets: None,
        per_tablet_us: None,
        cpu_s: None,
        baseline_cpu_s: None,
        cpu_ratio: None,
    }
}

pub(super) fn snapshot_top(info: &SnapshotInfo) -> Result<PathBuf> {
    info.path
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow!("snapshot path {} has no top dir", info.path.display()))
}

pub(super) fn snapshot_all(engine: &Engine) -> Result<Vec<SnapshotInfo>> {
    let reqs: Vec<SnapshotRequest> = engine
        .tablet_ids()
        .into_iter()
        .map(SnapshotRequest::newest)
        .collect();
    tabletsnap_snapshot::make_snapshots(engine, &reqs, Duration::from_secs(3600))?
        .into_iter()
        .map(|r| r.map_err(anyhow::Error::from))
        .collect()
}

pub(super) fn sources(snaps: &[SnapshotInfo]) -> Vec<UploadSource> {
    snaps
        .iter()
        .map(|s| {
            let files: Vec<SourceFile> = s
                .all_files()
                .map(|f| SourceFile {
                    name: f.name,
                    size: f.size,
                    crc32: f.crc32,
                })
                .collect();
            UploadSource::new(s.tablet_id, s.path.clone(), files)
        })
        .collect()
}

/// Times every storage phase of one workload against its baselines.
pub fn workload(
    name: &str,
    spec: &WorkloadSpec,
    opts: &BenchOptions,
    trash_dir: &Path,
    load_baseline: bool,
) -> Result<Vec<Row>> {
    let base = opts.dir.join(name.replace(' ', "_"));
    trash(&base, trash_dir, "old")?;
    std::fs::create_dir_all(&base)?;
    println!(
        "== {name}: {} tablets x {} versions x {} segments, {} rows/version; {} transfer threads, download flush step {} MiB",
        spec.tablets,
        spec.versions,
        spec.segments_per_version,
        spec.rows_per_version,
        opts.transfer().threads,
        opts.download().flush_step >> 20
    );
    let mut rows = Vec::new();
    let rounds = opts.rounds.max(1);

    // Load: through the engine, then the same files with plain create+write.
    let store = base.join("src");
    let engine = Engine::open(EngineOptions::new(vec![store.clone()]))?;
    let (_, load_t, load_rss, load_cpu) = timed_cpu(|| Ok(populate(&engine, spec)?))?;
    let (files, bytes) =
        engine
            .tablet_ids()
            .iter()
            .try_fold((0u64, 0u64), |(f, b), id| -> Result<(u64, u64)> {
                let m = engine.tablet_meta(*id)?;
                Ok((
                    f + m
                        .rowsets
                        .iter()
                        .map(|r| r.segments.len() as u64)
                        .sum::<u64>(),
                    b + m.data_size(),
                ))
            })?;
    let mut plain = Series::default();
    if load_baseline {
        let p = base.join("plain");
        let avg = (bytes / files.max(1)) as usize;
        let (c, t) = (self_cpu_s(), Instant::now());
        plain_write(&p, spec, avg.max(1))?;
        plain.push(t.elapsed(), self_cpu_s() - c);
        trash(&p, trash_dir, "plain")?;
    }
    let mut load = Series::default();
    load.push(load_t, load_cpu);
    rows.push(series_row(
        name,
        "load",
        &load,
        "create+write",
        load_baseline.then_some(&plain),
        (files, bytes),
        load_rss,
    ));
    println!("   load {:.2} s ({files} files)", secs(load_t));

    // Snapshot vs cp -al of the tablet dirs.
    let (mut ours, mut cpal, mut rss) = (Series::default(), Series::default(), 0f64);
    let mut kept = None;
    for r in 0..rounds {
        let (snaps, t, m, c) = timed_cpu(|| snapshot_all(&engine))?;
        ours.push(t, c);
        rss = rss.max(m);
        if let Some(prev) = kept.replace(snaps) {
            if let Some(first) = prev.first() {
                trash(&snapshot_top(first)?, trash_dir, "snap")?;
            }
        }
        if have("cp") {
            let dst = base.join(format!("cpal{r}"));
            let (t, c) = run_cmd_cpu(
                &[
                    "cp",
                    "-al",
                    &store.join("data").display().to_string(),
                    &dst.display().to_string(),
                ],
                None,
            )?;
            cpal.push(t, c);
            trash(&dst, trash_dir, "cpal")?;
        }
        println!(
            "   snapshot round {r}: ours {} {}, cp -al {}",
            ours.last(),
            last_window(),
            cpal.last()
        );
    }
    let snaps = kept.ok_or_else(|| anyhow!("no snapshot was kept"))?;
    let snap_files: u64 = snaps.iter().map(|s| s.files.len() as u64 + 1).sum();
    rows.push(series_row(
        name,
        "snapshot",
        &ours,
        "cp -al",
        Some(&cpal),
        (snap_files, 0),
        rss,
    ));

    // Upload vs cp -r and tar -cf of the snapshot tree.
    let top = snapshot_top(
        snaps
            .first()
            .ok_or_else(|| anyhow!("nothing was snapshotted"))?,
    )?;
    let srcs = sources(&snaps);
    let up_bytes: u64 = srcs.iter().map(UploadSource::total_bytes).sum();
    let (mut ours, mut cpr, mut cpr_sync, mut tar, mut rss) = (
        Series::default(),
        Series::default(),
        Series::default(),
        Series::default(),
        0f64,
    );
    let ts = "2026-01-01-00-00-00";
    let mut repo_dir = None;
    for r in 0..rounds {
        let dir = base.join(format!("repo{r}"));
        let (_, t, m, c) = timed_cpu(|| {
            let backend = LocalFs::with_durability(&dir, tabletsnap_transfer::Durability::Batched)?;
            let repo = Repository::open_or_create(Arc::new(backend), "bench")?;
            repo.backup("w", ts, &srcs, b"{}", &opts.upload())?;
            Ok(())
        })?;
        ours.push(t, c);
        rss = rss.max(m);
        if let Some(prev) = repo_dir.replace(dir) {
            trash(&prev, trash_dir, "repo")?;
        }
        let dst = base.join(format!("cpr{r}"));
        if have("cp") {
            cp_r(&top, &dst, &mut cpr, &mut cpr_sync)?;
            // The first copy stays: it is what `cp -r` copies back in the download baseline.
            if r > 0 {
                trash(&dst, trash_dir, "cpr")?;
            }
        }
        let tarf = base.join(format!("t{r}.tar"));
        if have("tar") {
            let (t, c) = run_cmd_cpu(
                &[
                    "tar",
                    "-cf",
                    &tarf.display().to_string(),
                    "-C",
                    &top.display().to_string(),
                    ".",
                ],
                None,
            )?;
            tar.push(t, c);
            trash(&tarf, trash_dir, "tar")?;
        }
        println!(
            "   upload round {r}: ours {} {}, cp -r {}, tar {}",
            ours.last(),
            last_window(),
            cpr.last(),
            tar.last()
        );
    }
    let counts = (snap_files, up_bytes);
    for (baseline, series) in [
        ("cp -r", &cpr),
        ("cp -r + sync", &cpr_sync),
        ("tar -cf", &tar),
    ] {
        rows.push(series_row(
            name,
            "upload",
            &ours,
            baseline,
            Some(series),
            counts,
            rss,
        ));
    }
    let repo_dir = repo_dir.ok_or_else(|| anyhow!("no repository was kept"))?;

    // Download and commit into a second engine vs cp -r of the repository back.
    let (mut down, mut commit, mut both, mut rss) = (
        Series::default(),
        Series::default(),
        Series::default(),
        0f64,
    );
    let (mut cpback, mut cpback_sync) = (Series::default(), Series::default());
    let ids: Vec<(u64, u32)> = snaps.iter().map(|s| (s.tablet_id, s.schema_hash)).collect();
    let metas: HashMap<u64, (u64, u64)> = snaps
        .iter()
        .map(|s| (s.tablet_id, (s.meta.table_id, s.meta.partition_id)))
        .collect();
    for r in 0..rounds {
        let dst_store = base.join(format!("dst{r}"));
        let target = Engine::open(EngineOptions::new(vec![dst_store.clone()]))?;
        let repo = Repository::open(Arc::new(LocalFs::new(&repo_dir)?), "bench")?;
        let mut commit_t = (Duration::ZERO, 0.0);
        let ((), t1, m1, c1) = timed_cpu(|| {
            let dirs = tabletsnap_snapshot::prepare_restore_dirs(&target, &ids)?;
            let map: HashMap<u64, PathBuf> = ids.iter().map(|(id, _)| *id).zip(dirs).collect();
            // As a node restores: each file written once, in place.
            let manifest = repo.read_manifest(&SnapshotId::new("w", ts)?)?;
            crate::in_place::download_in_place(
                &target,
                &repo,
                &manifest,
                &map,
                &HashMap::new(),
                &HashMap::new(),
                &opts.download(),
            )?;
            let loads = load_requests(&ids, &map, &metas);
            let (c, t) = (self_cpu_s(), Instant::now());
            tabletsnap_snapshot::load_snapshots(&target, &loads, Verify::SizeOnly)?;
            commit_t = (t.elapsed(), self_cpu_s() - c);
            Ok(())
        })?;
        commit.push(commit_t.0, commit_t.1);
        down.push(t1 - commit_t.0, c1 - commit_t.1);
        both.push(t1, c1);
        rss = rss.max(m1);
        if let Some(id) = ids.first().map(|x| x.0) {
            if target.checksum(id, None)? != engine.checksum(id, None)? {
                bail!("{name}: restored tablet {id} differs from its source");
            }
        }
        drop(target);
        trash(&dst_store, trash_dir, "dst")?;
        let dst = base.join(format!("cpback{r}"));
        let copied = base.join("cpr0");
        if have("cp") && copied.exists() {
            cp_r(&copied, &dst, &mut cpback, &mut cpback_sync)?;
            trash(&dst, trash_dir, "cpback")?;
        }
        println!(
            "   download+commit round {r}: ours {} (commit {:.2} s) {}, cp -r {}",
            both.last(),
            secs(commit_t.0),
            last_window(),
            cpback.last()
        );
    }
    rows.push(series_row(name, "download", &down, "-", None, counts, rss));
    rows.push(series_row(name, "commit", &commit, "-", None, counts, rss));
    for (baseline, series) in [("cp -r", &cpback), ("cp -r + sync", &cpback_sync)] {
        rows.push(series_row(
            name,
            "download+commit",
            &both,
            baseline,
            Some(series),
            counts,
            rss,
        ));
    }
    drop(engine);
    trash(&base, trash_dir, name).context("moving the workload dir to the trash")?;
    Ok(rows)
}

/// Whole BACKUP and RESTORE jobs on 3-backend clusters holding a table with
/// the workload's tablet count and versions (a few rows per tablet version).
pub fn jobs(
    name: &str,
    spec: &WorkloadSpec,
    opts: &BenchOptions,
    trash_dir: &Path,
) -> Result<Vec<Row>> {
    use crate::cluster::Cluster;
    use crate::exec::Session;
    let base = opts.dir.join(name.replace(' ', "_"));
    trash(&base, trash_dir, "old")?;
    let (parts, buckets) = jobs_shape(spec);
    println!(
        "== {name}: BACKUP and RESTORE jobs, {parts} partitions x {buckets} buckets x {} versions",
        spec.versions
    );
    let repo = base.join("repo");
    std::fs::create_dir_all(&repo)?;
    let repo_sql = format!(
        "CREATE REPOSITORY r ON LOCATION \"file://{}\"",
        repo.display()
    );
    let a = Cluster::open(&base.join("a"), 3)?;
    let mut sa = Session::new(a, "root")?;
    let t = Instant::now();
    load_jobs_table(&mut sa, spec)?;
    sa.run_script(&repo_sql)?;
    println!(
        "   loaded in {:.2} s; {:.0} MiB resident at rest",
        secs(t.elapsed()),
        super::measure::rest_rss_mib()
    );
    let (_, backup_t, backup_rss, backup_cpu) = timed_cpu(|| {
        sa.run_script("BACKUP SNAPSHOT snap TO r")?;
        sa.wait_for_jobs();
        Ok(())
    })?;
    let ts = match sa.started_jobs().last().map(|h| h.record()) {
        Some(crate::job::JobRecord::Backup(j)) if j.state.name() == "FINISHED" => j.timestamp,
        other => bail!("the backup did not finish: {other:?}"),
    };
    // The restore runs on another cluster, as it would in production:
    // the source is closed first, so the restore's peak counts the target's
    // tablets and the job, not the source's 100k tablets beside them.
    let sum_a = sa.run_script("CHECKSUM TABLE t")?;
    drop(sa);
    // The backup released its hard-link snapshots (a rename into the trash)
    // and a background thread deletes them: let it finish before the
    // restore is timed, or the restore would share a core and the disk with
    // the backup's cleanup (at 100k tablets, 400k links; it took a third of
    // the restore's samples in a profile), and let the filesystem's
    // after-delete state pass.
    let t = Instant::now();
    tabletsnap_engine::wait_for_discards();
    let deleted = secs(t.elapsed());
    let settled = super::measure::settle_after_delete();
    println!(
        "   the backup's released snapshots deleted in the background in {deleted:.2} s more; {settled:.0} s of after-delete settling (both untimed)"
    );
    let b = Cluster::open(&base.join("b"), 3)?;
    let mut sb = Session::new(b, "root")?;
    sb.run_script(&format!("CREATE DATABASE d; USE d; {repo_sql}"))?;
    println!(
        "   {:.0} MiB resident at rest before the restore (source cluster closed)",
        super::measure::rest_rss_mib()
    );
    let (_, restore_t, restore_rss, restore_cpu) = timed_cpu(|| {
        sb.run_script(&format!(
            "RESTORE SNAPSHOT snap FROM r PROPERTIES (\"backup_timestamp\" = \"{ts}\")"
        ))?;
        sb.wait_for_jobs();
        Ok(())
    })?;
    let sum_b = sb.run_script("CHECKSUM TABLE t")?;
    if sum_a != sum_b {
        bail!("{name}: the restored table differs from the source");
    }
    let tablet_files = spec.tablets * spec.versions;
    println!(
        "   BACKUP {:.2} s ({backup_cpu:.2} CPU-s, {backup_rss:.0} MiB), RESTORE {:.2} s ({restore_cpu:.2} CPU-s, {restore_rss:.0} MiB)",
        secs(backup_t),
        secs(restore_t)
    );
    drop(sb);
    trash(&base, trash_dir, "jobs")?;
    Ok(vec![
        row(
            name,
            "BACKUP job",
            &[backup_t],
            "-",
            None,
            (tablet_files, 0),
            backup_rss,
        )
        .with_cpu(&[backup_cpu], None),
        row(
            name,
            "RESTORE job",
            &[restore_t],
            "-",
            None,
            (tablet_files, 0),
            restore_rss,
        )
        .with_cpu(&[restore_cpu], None),
    ])
}

/// The jobs workload's table shape: (partitions, buckets) for its tablet count.
pub(super) fn jobs_shape(spec: &WorkloadSpec) -> (u64, u64) {
    let buckets = spec.tablets.clamp(1, 1000);
    (spec.tablets.div_ceil(buckets), buckets)
}

/// Creates database `d` (and makes it current) with table `t` of the jobs
/// workload: [`jobs_shape`] partitions x buckets, one replica, one INSERT
/// of 4 rows a tablet per version.
pub(super) fn load_jobs_table(s: &mut crate::exec::Session, spec: &WorkloadSpec) -> Result<()> {
    let (parts, buckets) = jobs_shape(spec);
    let partitions: Vec<String> = (0..parts)
        .map(|i| {
            if i + 1 == parts {
                format!("PARTITION p{i} VALUES LESS THAN MAXVALUE")
            } else {
                format!("PARTITION p{i} VALUES LESS THAN (\"{}\")", (i + 1) * 1000)
            }
        })
        .collect();
    s.run_script(&format!(
        "CREATE DATABASE d; USE d;
         CREATE TABLE t (id BIGINT, k INT, v VARCHAR(16)) DUPLICATE KEY(id) PARTITION BY RANGE(k) ({})
         DISTRIBUTED BY HASH(id) BUCKETS {buckets} PROPERTIES (\"replication_num\" = \"1\")",
        partitions.join(", ")
    ))?;
    for v in 0..spec.versions {
        s.run_script(&format!(
            "INSERT INTO t GENERATE {} ROWS SEED {v}",
            spec.tablets * 4
        ))?;
    }
    Ok(())
}

/// The install requests for downloaded snapshot dirs: each tablet's dir in
/// `map`, its table and partition from `metas`.
pub(super) fn load_requests(
    ids: &[(u64, u32)],
    map: &HashMap<u64, PathBuf>,
    metas: &HashMap<u64, (u64, u64)>,
) -> Vec<(PathBuf, LoadSnapshotRequest)> {
    ids.iter()
        .filter_map(|(id, hash)| {
            let (table_id, partition_id) = metas.get(id).copied().unwrap_or_default();
            let dir = map.get(id)?.clone();
            Some((
                dir,
                LoadSnapshotRequest {
                    tablet_id: *id,
                    schema_hash: *hash,
                    table_id,
                    partition_id,
                    overwrite: false,
                    in_place: true,
                },
            ))
        })
        .collect()
}

/// One side of a phase, a sample per round: wall time and CPU seconds.
#[derive(Default)]
struct Series {
    wall: Vec<Duration>,
    cpu: Vec<f64>,
}

impl Series {
    fn push(&mut self, wall: Duration, cpu: f64) {
        self.wall.push(wall);
        self.cpu.push(cpu);
    }

    /// The last round as a round line shows it, or "missing" when the
    /// baseline did not run.
    fn last(&self) -> String {
        match (self.wall.last(), self.cpu.last()) {
            (Some(d), Some(c)) => format!("{:.2} s {c:.2} CPU-s", secs(*d)),
            _ => "missing".to_string(),
        }
    }
}

/// [`row`] with the CPU seconds of both sides.
fn series_row(
    workload: &str,
    phase: &str,
    ours: &Series,
    baseline: &str,
    base: Option<&Series>,
    counts: (u64, u64),
    rss: f64,
) -> Row {
    row(
        workload,
        phase,
        &ours.wall,
        baseline,
        base.map(|b| b.wall.as_slice()),
        counts,
        rss,
    )
    .with_cpu(&ours.cpu, base.map(|b| b.cpu.as_slice()))
}

/// `cp -r src dst` as a baseline: its round into `plain`, and with the
/// `sync` right after it into `synced`.
fn cp_r(src: &Path, dst: &Path, plain: &mut Series, synced: &mut Series) -> Result<()> {
    let (t, c) = run_cmd_cpu(
        &[
            "cp",
            "-r",
            &src.display().to_string(),
            &dst.display().to_string(),
        ],
        None,
    )?;
    let (st, sc) = sync_sample();
    plain.push(t, c);
    synced.push(t + st, c + sc);
    Ok(())
}
