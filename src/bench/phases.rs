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
use tabletsnap_transfer::{
    DownloadOptions, LocalFs, Repository, SnapshotId, SourceFile, UploadOptions, UploadSource,
};

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
        .map(|tablet_id| SnapshotRequest {
            tablet_id,
            version: None,
        })
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
        "== {name}: {} tablets x {} versions x {} segments, {} rows/version",
        spec.tablets, spec.versions, spec.segments_per_version, spec.rows_per_version
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
    let (mut plain, mut plain_cpu) = (Vec::new(), Vec::new());
    if load_baseline {
        let p = base.join("plain");
        let avg = (bytes / files.max(1)) as usize;
        let (c, t) = (self_cpu_s(), Instant::now());
        plain_write(&p, spec, avg.max(1))?;
        plain.push(t.elapsed());
        plain_cpu.push(self_cpu_s() - c);
        trash(&p, trash_dir, "plain")?;
    }
    rows.push(
        row(
            name,
            "load",
            &[load_t],
            "create+write",
            load_baseline.then_some(plain.as_slice()),
            (files, bytes),
            load_rss,
        )
        .with_cpu(&[load_cpu], load_baseline.then_some(plain_cpu.as_slice())),
    );
    println!("   load {:.2} s ({files} files)", secs(load_t));

    // Snapshot vs cp -al of the tablet dirs.
    let (mut ours, mut cpal, mut rss) = (Vec::new(), Vec::new(), 0f64);
    let (mut ours_cpu, mut cpal_cpu) = (Vec::new(), Vec::new());
    let mut kept = None;
    for r in 0..rounds {
        let (snaps, t, m, c) = timed_cpu(|| snapshot_all(&engine))?;
        ours.push(t);
        ours_cpu.push(c);
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
            cpal.push(t);
            cpal_cpu.push(c);
            trash(&dst, trash_dir, "cpal")?;
        }
        println!(
            "   snapshot round {r}: ours {:.2} s {:.2} CPU-s {}, cp -al {}",
            secs(t),
            ours_cpu.last().copied().unwrap_or_default(),
            last_window(),
            baseline_secs(cpal.last(), cpal_cpu.last())
        );
    }
    let snaps = kept.ok_or_else(|| anyhow!("no snapshot was kept"))?;
    let snap_files: u64 = snaps.iter().map(|s| s.files.len() as u64 + 1).sum();
    rows.push(
        row(
            name,
            "snapshot",
            &ours,
            "cp -al",
            Some(&cpal),
            (snap_files, 0),
            rss,
        )
        .with_cpu(&ours_cpu, Some(&cpal_cpu)),
    );

    // Upload vs cp -r and tar -cf of the snapshot tree.
    let top = snapshot_top(
        snaps
            .first()
            .ok_or_else(|| anyhow!("nothing was snapshotted"))?,
    )?;
    let srcs = sources(&snaps);
    let up_bytes: u64 = srcs.iter().map(UploadSource::total_bytes).sum();
    let (mut ours, mut cpr, mut tar, mut rss) = (Vec::new(), Vec::new(), Vec::new(), 0f64);
    let mut cpr_sync = Vec::new();
    let (mut ours_cpu, mut cpr_cpu, mut cpr_sync_cpu, mut tar_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let ts = "2026-01-01-00-00-00";
    let mut repo_dir = None;
    for r in 0..rounds {
        let dir = base.join(format!("repo{r}"));
        let (_, t, m, c) = timed_cpu(|| {
            let backend = LocalFs::with_durability(&dir, tabletsnap_transfer::Durability::Batched)?;
            let repo = Repository::open_or_create(Arc::new(backend), "bench")?;
            repo.backup("w", ts, &srcs, b"{}", &UploadOptions::default())?;
            Ok(())
        })?;
        ours.push(t);
        ours_cpu.push(c);
        rss = rss.max(m);
        if let Some(prev) = repo_dir.replace(dir) {
            trash(&prev, trash_dir, "repo")?;
        }
        let dst = base.join(format!("cpr{r}"));
        if have("cp") {
            let (t, c) = run_cmd_cpu(
                &[
                    "cp",
                    "-r",
                    &top.display().to_string(),
                    &dst.display().to_string(),
                ],
                None,
            )?;
            let (st, sc) = sync_sample();
            cpr.push(t);
            cpr_cpu.push(c);
            cpr_sync.push(t + st);
            cpr_sync_cpu.push(c + sc);
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
            tar.push(t);
            tar_cpu.push(c);
            trash(&tarf, trash_dir, "tar")?;
        }
        println!(
            "   upload round {r}: ours {:.2} s {:.2} CPU-s {}, cp -r {}, tar {}",
            secs(t),
            c,
            last_window(),
            baseline_secs(cpr.last(), cpr_cpu.last()),
            baseline_secs(tar.last(), tar_cpu.last())
        );
    }
    rows.push(
        row(
            name,
            "upload",
            &ours,
            "cp -r",
            Some(&cpr),
            (snap_files, up_bytes),
            rss,
        )
        .with_cpu(&ours_cpu, Some(&cpr_cpu)),
    );
    rows.push(
        row(
            name,
            "upload",
            &ours,
            "cp -r + sync",
            Some(&cpr_sync),
            (snap_files, up_bytes),
            rss,
        )
        .with_cpu(&ours_cpu, Some(&cpr_sync_cpu)),
    );
    rows.push(
        row(
            name,
            "upload",
            &ours,
            "tar -cf",
            Some(&tar),
            (snap_files, up_bytes),
            rss,
        )
        .with_cpu(&ours_cpu, Some(&tar_cpu)),
    );
    let repo_dir = repo_dir.ok_or_else(|| anyhow!("no repository was kept"))?;

    // Download and commit into a second engine vs cp -r of the repository back.
    let (mut down, mut commit, mut both, mut cpback, mut rss) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), 0f64);
    let mut cpback_sync = Vec::new();
    let (mut down_cpu, mut commit_cpu, mut both_cpu, mut cpback_cpu, mut cpback_sync_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let ids: Vec<(u64, u32)> = snaps.iter().map(|s| (s.tablet_id, s.schema_hash)).collect();
    let metas: HashMap<u64, (u64, u64)> = snaps
        .iter()
        .map(|s| (s.tablet_id, (s.meta.table_id, s.meta.partition_id)))
        .collect();
    for r in 0..rounds {
        let dst_store = base.join(format!("dst{r}"));
        let target = Engine::open(EngineOptions::new(vec![dst_store.clone()]))?;
        let repo = Repository::open(Arc::new(LocalFs::new(&repo_dir)?), "bench")?;
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
                &DownloadOptions::default(),
            )?;
            let loads = load_requests(&ids, &map, &metas);
            let (c, t) = (self_cpu_s(), Instant::now());
            tabletsnap_snapshot::load_snapshots(&target, &loads, Verify::SizeOnly)?;
            commit.push(t.elapsed());
            commit_cpu.push(self_cpu_s() - c);
            Ok(())
        })?;
        down.push(t1 - *commit.last().unwrap_or(&Duration::ZERO));
        down_cpu.push(c1 - commit_cpu.last().copied().unwrap_or(0.0));
        both.push(t1);
        both_cpu.push(c1);
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
            let (t, c) = run_cmd_cpu(
                &[
                    "cp",
                    "-r",
                    &copied.display().to_string(),
                    &dst.display().to_string(),
                ],
                None,
            )?;
            let (st, sc) = sync_sample();
            cpback.push(t);
            cpback_cpu.push(c);
            cpback_sync.push(t + st);
            cpback_sync_cpu.push(c + sc);
            trash(&dst, trash_dir, "cpback")?;
        }
        println!(
            "   download+commit round {r}: ours {:.2} s {c1:.2} CPU-s (commit {:.2} s) {}, cp -r {}",
            secs(t1),
            secs(*commit.last().unwrap_or(&Duration::ZERO)),
            last_window(),
            baseline_secs(cpback.last(), cpback_cpu.last())
        );
    }
    rows.push(
        row(
            name,
            "download",
            &down,
            "-",
            None,
            (snap_files, up_bytes),
            rss,
        )
        .with_cpu(&down_cpu, None),
    );
    rows.push(
        row(
            name,
            "commit",
            &commit,
            "-",
            None,
            (snap_files, up_bytes),
            rss,
        )
        .with_cpu(&commit_cpu, None),
    );
    rows.push(
        row(
            name,
            "download+commit",
            &both,
            "cp -r",
            Some(&cpback),
            (snap_files, up_bytes),
            rss,
        )
        .with_cpu(&both_cpu, Some(&cpback_cpu)),
    );
    rows.push(
        row(
            name,
            "download+commit",
            &both,
            "cp -r + sync",
            Some(&cpback_sync),
            (snap_files, up_bytes),
            rss,
        )
        .with_cpu(&both_cpu, Some(&cpback_sync_cpu)),
    );
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
    println!("   loaded in {:.2} s", secs(t.elapsed()));
    let (_, backup_t, backup_rss, backup_cpu) = timed_cpu(|| {
        sa.run_script("BACKUP SNAPSHOT snap TO r")?;
        sa.wait_for_jobs();
        Ok(())
    })?;
    let ts = match sa.started_jobs().last().map(|h| h.record()) {
        Some(crate::job::JobRecord::Backup(j)) if j.state.name() == "FINISHED" => j.timestamp,
        other => bail!("the backup did not finish: {other:?}"),
    };
    let b = Cluster::open(&base.join("b"), 3)?;
    let mut sb = Session::new(b, "root")?;
    sb.run_script(&format!("CREATE DATABASE d; USE d; {repo_sql}"))?;
    let (_, restore_t, restore_rss, restore_cpu) = timed_cpu(|| {
        sb.run_script(&format!(
            "RESTORE SNAPSHOT snap FROM r PROPERTIES (\"backup_timestamp\" = \"{ts}\")"
        ))?;
        sb.wait_for_jobs();
        Ok(())
    })?;
    let sum_a = sa.run_script("CHECKSUM TABLE t")?;
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
    drop((sa, sb));
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

/// A baseline's time in a round line: seconds, or "missing" when the tool
/// did not run.
fn baseline_secs(d: Option<&Duration>, cpu: Option<&f64>) -> String {
    match (d, cpu) {
        (Some(d), Some(c)) => format!("{:.2} s {c:.2} CPU-s", secs(*d)),
        (Some(d), None) => format!("{:.2} s", secs(*d)),
        (None, _) => "missing".to_string(),
    }
}
