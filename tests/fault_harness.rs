//! The fault-injection harness: crash at every fail point of a backup job, a
//! restore into new tables and an overwrite restore; seeded random schedules
//! against faulty repositories; tampered backups. Checks the invariants:
//!   1. source tables' checksums unchanged;
//!   2. the repository never lists an incomplete backup;
//!   3. the resumed or re-run job completes and restores a checksum-equal table;
//!   4. an interrupted overwrite restore leaves the table exactly old or exactly new;
//!   5. after the job and the expiry sweeper, no snapshot dirs, temp files or
//!      orphan segment files remain on any backend.
//!
//! `cargo test --features failpoints --test fault_harness -- --nocapture`
//! Soak: `TABLETSNAP_SOAK=500 cargo test --release --features failpoints --test fault_harness -- --nocapture`
//! Replay one schedule: `TABLETSNAP_SEED=<seed> cargo test --features failpoints --test fault_harness -- --nocapture`
#![cfg(feature = "failpoints")]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use tabletsnap::cluster::Cluster;
use tabletsnap::exec::{Output, Session};
use tabletsnap::job::{crash, JobHandle, JobRecord};
use tabletsnap_transfer::{Backend, FaultConfig, Faulty, LocalFs, Manifest, Repository};

static SERIAL: Mutex<()> = Mutex::new(());

const TABLE_DDL: &str = "CREATE TABLE t (id BIGINT, k INT, v VARCHAR(16)) DUPLICATE KEY(id)
    PARTITION BY RANGE(k) (PARTITION p1 VALUES LESS THAN (\"1000\"), PARTITION p2 VALUES LESS THAN MAXVALUE)
    DISTRIBUTED BY HASH(id) BUCKETS 3 PROPERTIES (\"replication_num\" = \"1\")";

fn sql(s: &mut Session, text: &str) -> Result<Vec<Output>> {
    s.run_script(text)
        .with_context(|| format!("running {text}"))
}

fn checksum(s: &mut Session, table: &str) -> Result<String> {
    let out = sql(s, &format!("CHECKSUM TABLE {table}"))?;
    match out.last() {
        Some(Output::Rows(r)) => r
            .rows
            .first()
            .map(|row| row[1].clone())
            .ok_or_else(|| anyhow!("no checksum row")),
        _ => bail!("CHECKSUM returned no rows"),
    }
}

fn last_job(s: &Session) -> Result<Arc<JobHandle>> {
    s.started_jobs()
        .last()
        .cloned()
        .ok_or_else(|| anyhow!("no job started"))
}

fn state(rec: &JobRecord) -> &'static str {
    match rec {
        JobRecord::Backup(j) => j.state.name(),
        JobRecord::Restore(j) => j.state.name(),
    }
}

fn status(rec: &JobRecord) -> String {
    match rec {
        JobRecord::Backup(j) => j.status.status.clone(),
        JobRecord::Restore(j) => j.status.status.clone(),
    }
}

/// A source home with table `d.t` (two partitions, three versions) and repository `r`.
struct Source {
    home: PathBuf,
    repo_loc: String,
    sum: String,
    timestamp: Option<String>,
}

fn make_source(root: &Path, seed: u64) -> Result<Source> {
    let home = root.join("src");
    let repo_dir = root.join("repo");
    std::fs::create_dir_all(&repo_dir)?;
    let repo_loc = format!("file://{}", repo_dir.display());
    let c = Cluster::open(&home, 3)?;
    let mut s = Session::new(c, "root")?;
    sql(
        &mut s,
        &format!(
            "CREATE DATABASE d; USE d; {TABLE_DDL}; CREATE REPOSITORY r ON LOCATION \"{repo_loc}\""
        ),
    )?;
    for i in 0..3 {
        sql(
            &mut s,
            &format!("INSERT INTO t GENERATE 120 ROWS SEED {}", seed * 10 + i),
        )?;
    }
    let sum = checksum(&mut s, "t")?;
    Ok(Source {
        home,
        repo_loc,
        sum,
        timestamp: None,
    })
}

fn backup_now(src: &mut Source, label: &str) -> Result<()> {
    let c = Cluster::open(&src.home, 3)?;
    let mut s = Session::new(c, "root")?;
    sql(
        &mut s,
        &format!("USE d; BACKUP SNAPSHOT {label} TO r ON (t)"),
    )?;
    s.wait_for_jobs();
    let rec = last_job(&s)?.record();
    if state(&rec) != "FINISHED" {
        bail!("setup backup ended {}: {}", state(&rec), status(&rec));
    }
    if let JobRecord::Backup(j) = rec {
        src.timestamp = Some(j.timestamp);
    }
    Ok(())
}

/// Invariant 2: every listed backup has a readable manifest and meta and all its packs.
fn check_repository(repo_loc: &str, v: &mut Vec<String>, ctx: &str) {
    let path = repo_loc.trim_start_matches("file://");
    let repo = match LocalFs::new(path)
        .map_err(anyhow::Error::from)
        .and_then(|b| Repository::open(Arc::new(b), "r").map_err(anyhow::Error::from))
    {
        Ok(r) => r,
        Err(e) => return v.push(format!("{ctx}: repository unreadable: {e:#}")),
    };
    let Ok(ids) = repo.list_snapshots() else {
        return v.push(format!("{ctx}: cannot list snapshots"));
    };
    for id in ids {
        match repo.read_manifest(&id) {
            Ok(m) => {
                for p in &m.packs {
                    if !matches!(repo.backend().head(&repo.key(p)), Ok(Some(_))) {
                        v.push(format!("{ctx}: listed backup {} lacks pack {p}", id.label));
                    }
                }
            }
            Err(e) => v.push(format!(
                "{ctx}: listed backup {} has no valid manifest: {e}",
                id.label
            )),
        }
        if repo.read_meta(&id).is_err() {
            v.push(format!(
                "{ctx}: listed backup {} has no valid meta",
                id.label
            ));
        }
    }
}

/// Invariant 5, after the expiry sweeper has run far in the future.
fn check_clean(c: &Cluster, v: &mut Vec<String>, ctx: &str) {
    let later = SystemTime::now() + Duration::from_secs(10 * 86_400);
    for be in c.backends() {
        let e = be.engine();
        if let Err(err) = tabletsnap_snapshot::sweep_expired(e, later) {
            v.push(format!("{ctx}: sweep failed: {err}"));
        }
        for store in e.stores() {
            if let Ok(rd) = std::fs::read_dir(store.snapshot_dir()) {
                for entry in rd.flatten() {
                    v.push(format!(
                        "{ctx}: snapshot dir left behind: {}",
                        entry.path().display()
                    ));
                }
            }
        }
        for id in e.tablet_ids() {
            let Ok(t) = e.tablet(id) else { continue };
            let m = t.meta();
            let live: std::collections::HashSet<String> = m
                .rowsets
                .iter()
                .chain(m.stale_rowsets.iter().map(|s| &s.rowset))
                .flat_map(|r| r.files().map(|(n, _)| n).collect::<Vec<_>>())
                .collect();
            if let Ok(rd) = std::fs::read_dir(t.dir()) {
                for entry in rd.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name != "tablet.meta" && !live.contains(&name) {
                        v.push(format!("{ctx}: stray file {}", entry.path().display()));
                    }
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum JobKind {
    Backup,
    RestoreNew,
    RestoreOverwrite,
}

/// Arms `point` so that reaching it is a process crash.
fn arm(point: &str) -> Result<()> {
    if point.starts_with("job::") {
        fail::cfg(point, "return(crash)").map_err(|e| anyhow!(e))
    } else {
        crash::crash_on_fail_point(true);
        fail::cfg(point, "return").map_err(|e| anyhow!(e))
    }
}

fn disarm(point: &str) {
    fail::remove(point);
    crash::crash_on_fail_point(false);
    crash::recover();
}

/// Starts a job with `point` armed, lets it crash (or finish), reopens the
/// home and lets the resumed job end. Returns whether the point was reached.
fn crash_and_resume(
    home: &Path,
    text: &str,
    point: &str,
    v: &mut Vec<String>,
    ctx: &str,
) -> Result<(bool, JobRecord)> {
    let c = Cluster::open(home, 3)?;
    let mut s = Session::new(c, "root")?;
    arm(point)?;
    let started = sql(&mut s, text);
    let job = s.started_jobs().last().cloned();
    if let Some(j) = &job {
        j.wait();
    }
    let crashed = crash::crashed();
    disarm(point);
    started?;
    let id = job.ok_or_else(|| anyhow!("{ctx}: no job"))?.id;
    drop(s);
    // The process died: reopen from disk; the job resumes on its own.
    let c = Cluster::open(home, 3)?;
    let h = c
        .jobs()
        .get(id)
        .ok_or_else(|| anyhow!("{ctx}: job {id} lost after restart"))?;
    h.wait();
    let rec = h.record();
    check_clean(&c, v, ctx);
    Ok((crashed, rec))
}

fn run_scenario(kind: JobKind, point: &str, root: &Path, v: &mut Vec<String>) -> Result<bool> {
    let ctx = format!("{kind:?} @ {point}");
    let mut src = make_source(root, 7)?;
    let target = root.join("dst");
    let reached;
    match kind {
        JobKind::Backup => {
            let (r, rec) = crash_and_resume(
                &src.home,
                "USE d; BACKUP SNAPSHOT snap TO r ON (t)",
                point,
                v,
                &ctx,
            )?;
            reached = r;
            check_repository(&src.repo_loc, v, &ctx);
            if state(&rec) != "FINISHED" {
                v.push(format!(
                    "{ctx}: resumed backup ended {}: {}",
                    state(&rec),
                    status(&rec)
                ));
                return Ok(reached);
            }
            let ts = match rec {
                JobRecord::Backup(j) => j.timestamp,
                _ => bail!("not a backup"),
            };
            let c = Cluster::open(&src.home, 3)?;
            let mut s = Session::new(c, "root")?;
            if checksum(&mut s, "d.t")? != src.sum {
                v.push(format!("{ctx}: source table changed"));
            }
            drop(s);
            // The backup restores to an equal table elsewhere.
            let c = Cluster::open(&target, 3)?;
            let mut s = Session::new(c, "root")?;
            sql(
                &mut s,
                &format!(
                    "CREATE DATABASE d; USE d; CREATE REPOSITORY r ON LOCATION \"{}\"",
                    src.repo_loc
                ),
            )?;
            sql(&mut s, &format!("RESTORE SNAPSHOT snap FROM r ON (t) PROPERTIES (\"backup_timestamp\" = \"{ts}\")"))?;
            s.wait_for_jobs();
            if checksum(&mut s, "t").ok().as_deref() != Some(src.sum.as_str()) {
                v.push(format!("{ctx}: restore of the resumed backup differs"));
            }
        }
        JobKind::RestoreNew | JobKind::RestoreOverwrite => {
            backup_now(&mut src, "snap")?;
            let ts = src.timestamp.clone().unwrap_or_default();
            let c = Cluster::open(&target, 3)?;
            let mut s = Session::new(c, "root")?;
            sql(
                &mut s,
                &format!(
                    "CREATE DATABASE d; USE d; CREATE REPOSITORY r ON LOCATION \"{}\"",
                    src.repo_loc
                ),
            )?;
            let mut old = None;
            if kind == JobKind::RestoreOverwrite {
                sql(
                    &mut s,
                    &format!("{TABLE_DDL}; INSERT INTO t GENERATE 50 ROWS SEED 99"),
                )?;
                old = Some(checksum(&mut s, "t")?);
            }
            drop(s);
            let text = format!("USE d; RESTORE SNAPSHOT snap FROM r ON (t) PROPERTIES (\"backup_timestamp\" = \"{ts}\")");
            let (r, rec) = crash_and_resume(&target, &text, point, v, &ctx)?;
            reached = r;
            let c = Cluster::open(&target, 3)?;
            let mut s = Session::new(c, "root")?;
            let now = checksum(&mut s, "d.t");
            match (state(&rec), kind) {
                ("FINISHED", _) => {
                    if now.as_deref().ok() != Some(src.sum.as_str()) {
                        v.push(format!(
                            "{ctx}: restored table differs from the source: {now:?}"
                        ));
                    }
                }
                ("CANCELLED", JobKind::RestoreOverwrite) => {
                    if now.as_deref().ok() != old.as_deref() {
                        v.push(format!(
                            "{ctx}: cancelled overwrite left neither old nor new data: {now:?}"
                        ));
                    }
                    v.push(format!(
                        "{ctx}: resumed restore was cancelled: {}",
                        status(&rec)
                    ));
                }
                (st, _) => v.push(format!(
                    "{ctx}: resumed restore ended {st}: {}",
                    status(&rec)
                )),
            }
            drop(s);
            let c = Cluster::open(&src.home, 3)?;
            let mut s = Session::new(c, "root")?;
            if checksum(&mut s, "d.t")? != src.sum {
                v.push(format!("{ctx}: source table changed"));
            }
        }
    }
    Ok(reached)
}

fn fail_points_for(kind: JobKind) -> Vec<&'static str> {
    tabletsnap::job::all_fail_points()
        .into_iter()
        // Right after a commit-point write, an error return is not a crash:
        // those points are for tests/process_kill_harness.rs, which aborts
        // the process there.
        .filter(|p| !is_after_commit_point(p))
        .filter(|p| match kind {
            JobKind::Backup => !p.starts_with("job::restore::"),
            _ => !p.starts_with("job::backup::"),
        })
        .collect()
}

fn is_after_commit_point(p: &str) -> bool {
    p.starts_with("catalog::")
        || p == "engine::after_meta_commit"
        || p == "job::after_record_save"
        || p.starts_with("job::backup::after_")
        || p.starts_with("job::restore::after_")
}

/// Part 1: returns (fail points, jobs, runs, points reached).
fn crash_at_every_fail_point(v: &mut Vec<String>) -> Result<(usize, usize, usize, usize)> {
    let scenario = fail::FailScenario::setup();
    let (mut runs, mut reached) = (0, 0);
    let kinds = [
        JobKind::Backup,
        JobKind::RestoreNew,
        JobKind::RestoreOverwrite,
    ];
    for kind in kinds {
        for point in fail_points_for(kind) {
            let dir = tempfile::tempdir()?;
            runs += 1;
            match run_scenario(kind, point, dir.path(), v) {
                Ok(true) => reached += 1,
                Ok(false) => {}
                Err(e) => v.push(format!("{kind:?} @ {point}: scenario error: {e:#}")),
            }
        }
    }
    scenario.teardown();
    let points = tabletsnap::job::all_fail_points()
        .into_iter()
        .filter(|p| !is_after_commit_point(p))
        .count();
    println!("crashes: {runs} runs over {points} fail points x {} jobs, {reached} crashed at their point", kinds.len());
    if reached < 30 {
        v.push(format!(
            "only {reached} fail points were reached: the harness is not exercising the jobs"
        ));
    }
    Ok((points, kinds.len(), runs, reached))
}

fn restore_text(ts: &str) -> String {
    format!(
        "USE d; RESTORE SNAPSHOT snap FROM r ON (t) PROPERTIES (\"backup_timestamp\" = \"{ts}\")"
    )
}

/// Target home `dst` with database `d` and repository `r` at `repo_loc`.
fn target_session(root: &Path, repo_loc: &str) -> Result<Session> {
    let c = Cluster::open(&root.join("dst"), 3)?;
    let mut s = Session::new(c, "root")?;
    sql(
        &mut s,
        &format!("CREATE DATABASE d; USE d; CREATE REPOSITORY r ON LOCATION \"{repo_loc}\""),
    )?;
    Ok(s)
}

/// One seeded schedule: backup and restore through a faulty repository.
fn random_schedule(seed: u64, v: &mut Vec<String>) -> Result<(bool, bool)> {
    let dir = tempfile::tempdir()?;
    let mut rng = tabletsnap_engine::workload::Rng::new(seed);
    let mut src = make_source(dir.path(), seed)?;
    let mut cfg = FaultConfig::transient(seed, [0.0, 0.02, 0.05][rng.below(3) as usize]);
    cfg.latency = Duration::from_micros(rng.below(500));
    cfg.torn_put_rate = [0.0, 0.03][rng.below(2) as usize];
    cfg.corrupt_get_rate = [0.0, 0.03][rng.below(2) as usize];
    let path = src.repo_loc.trim_start_matches("file://").to_string();
    let faulty = Faulty::new(LocalFs::new(&path)?, cfg);
    tabletsnap::repo::set_backend_override(&src.repo_loc, Arc::new(faulty));
    let ctx = format!("schedule {seed}");
    let result = (|| -> Result<(bool, bool)> {
        let c = Cluster::open(&src.home, 3)?;
        let mut s = Session::new(c, "root")?;
        sql(&mut s, "USE d; BACKUP SNAPSHOT snap TO r ON (t)")?;
        s.wait_for_jobs();
        let rec = last_job(&s)?.record();
        if checksum(&mut s, "t")? != src.sum {
            v.push(format!("{ctx}: source table changed"));
        }
        check_clean(s.cluster(), v, &ctx);
        drop(s);
        check_repository(&src.repo_loc, v, &ctx);
        let JobRecord::Backup(b) = rec else {
            bail!("not a backup")
        };
        if b.state.name() != "FINISHED" {
            return Ok((false, false));
        }
        src.timestamp = Some(b.timestamp.clone());
        let mut t = target_session(dir.path(), &src.repo_loc)?;
        sql(&mut t, &restore_text(&b.timestamp))?;
        t.wait_for_jobs();
        let rec = last_job(&t)?.record();
        match state(&rec) {
            "FINISHED" => {
                if checksum(&mut t, "t").ok().as_deref() != Some(src.sum.as_str()) {
                    v.push(format!("{ctx}: restored table differs"));
                }
            }
            _ => {
                if !matches!(sql(&mut t, "SHOW TABLES").ok().as_deref(), Some([Output::Rows(r)]) if r.rows.is_empty())
                {
                    v.push(format!("{ctx}: a cancelled restore left its table behind"));
                }
            }
        }
        check_clean(t.cluster(), v, &ctx);
        Ok((true, state(&rec) == "FINISHED"))
    })();
    tabletsnap::repo::clear_backend_override(&src.repo_loc);
    result
}

/// Part 2: returns the number of schedules run.
fn random_schedules_against_faulty_repositories(v: &mut Vec<String>) -> Result<usize> {
    let seeds: Vec<u64> = match std::env::var("TABLETSNAP_SEED") {
        Ok(s) => vec![s.parse().context("TABLETSNAP_SEED must be a number")?],
        Err(_) => {
            let n: u64 = std::env::var("TABLETSNAP_SOAK")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(8);
            (1..=n)
                .map(|i| tabletsnap_engine::workload::splitmix64(i) % 1_000_000)
                .collect()
        }
    };
    let (mut backups, mut restores) = (0, 0);
    for seed in &seeds {
        let before = v.len();
        match random_schedule(*seed, v) {
            Ok((b, r)) => {
                backups += usize::from(b);
                restores += usize::from(r);
            }
            Err(e) => v.push(format!("schedule {seed}: error: {e:#}")),
        }
        if v.len() > before {
            println!(
                "schedule {seed} failed; replay: TABLETSNAP_SEED={seed} cargo test --features failpoints --test fault_harness -- --nocapture"
            );
        }
    }
    println!(
        "random schedules: {} run, {backups} backups and {restores} restores finished",
        seeds.len()
    );
    if backups * 2 < seeds.len() {
        v.push(format!(
            "only {backups} of {} schedules finished their backup despite only transient faults",
            seeds.len()
        ));
    }
    Ok(seeds.len())
}

/// The files of the one backup in `repo_dir`.
fn backup_dir(repo_dir: &Path) -> Result<PathBuf> {
    let ss = repo_dir.join("__tabletsnap_repository_r").join("__ss_snap");
    let ts = std::fs::read_dir(&ss)?
        .flatten()
        .next()
        .ok_or_else(|| anyhow!("no backup dir"))?;
    Ok(ts.path())
}

fn first_pack(dir: &Path) -> Result<PathBuf> {
    let mut stack = vec![dir.join("packs")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pack") {
                return Ok(p);
            }
        }
    }
    bail!("no pack in {}", dir.display())
}

fn rewrite_manifest(dir: &Path, f: impl FnOnce(&mut Manifest)) -> Result<()> {
    let mut m = Manifest::decode(&std::fs::read(dir.join("manifest"))?)?;
    f(&mut m);
    let bytes = m.encode();
    std::fs::write(dir.join("manifest"), &bytes)?;
    let mut info =
        tabletsnap_transfer::SnapshotInfo::decode(&std::fs::read(dir.join("info"))?, "info")?;
    info.manifest_len = bytes.len() as u64;
    info.manifest_crc = crc32fast::hash(&bytes);
    std::fs::write(dir.join("info"), info.encode())?;
    Ok(())
}

fn flip(path: &Path, at: usize) -> Result<()> {
    let mut b = std::fs::read(path)?;
    let i = at.min(b.len().saturating_sub(1));
    b[i] ^= 0x40;
    std::fs::write(path, b)?;
    Ok(())
}

type Tamper = (
    &'static str,
    &'static [&'static str],
    fn(&Path) -> Result<()>,
);

/// Part 3: returns the number of tamperings tried (bad labels included).
fn tampered_backups_are_refused_before_anything_is_readable(v: &mut Vec<String>) -> Result<usize> {
    let tamperings: Vec<Tamper> = vec![
        ("deleted pack", &[".pack"], |d| {
            Ok(std::fs::remove_file(first_pack(d)?)?)
        }),
        ("truncated manifest", &["manifest"], |d| {
            let b = std::fs::read(d.join("manifest"))?;
            Ok(std::fs::write(d.join("manifest"), &b[..b.len() / 2])?)
        }),
        ("flipped byte in a pack", &["checksum", "tablet"], |d| {
            flip(&first_pack(d)?, 3)
        }),
        ("flipped byte in the manifest", &["manifest"], |d| {
            flip(&d.join("manifest"), 40)
        }),
        ("manifest path with ../", &[".."], |d| {
            rewrite_manifest(d, |m| m.tablets[0].files[0].path = "../escaped".into())
        }),
        (
            "manifest with an absolute path",
            &["/etc/x", "absolute"],
            |d| rewrite_manifest(d, |m| m.tablets[0].files[0].path = "/etc/x".into()),
        ),
        (
            "info from a newer format version",
            &["newer", "version"],
            |d| {
                let mut b = std::fs::read(d.join("info"))?;
                b[8] = b[8].wrapping_add(1);
                let n = b.len() - 4;
                let crc = crc32fast::hash(&b[..n]);
                b[n..].copy_from_slice(&crc.to_le_bytes());
                Ok(std::fs::write(d.join("info"), b)?)
            },
        ),
        ("missing info", &["not found"], |d| {
            Ok(std::fs::remove_file(d.join("info"))?)
        }),
    ];
    for (name, expect, tamper) in &tamperings {
        let dir = tempfile::tempdir()?;
        let mut src = make_source(dir.path(), 3)?;
        backup_now(&mut src, "snap")?;
        let repo_dir = PathBuf::from(src.repo_loc.trim_start_matches("file://"));
        tamper(&backup_dir(&repo_dir)?)?;
        let mut t = target_session(dir.path(), &src.repo_loc)?;
        let ts = src.timestamp.clone().unwrap_or_default();
        let msg = match sql(&mut t, &restore_text(&ts)) {
            Err(e) => format!("{e:#}"),
            Ok(_) => {
                t.wait_for_jobs();
                let rec = last_job(&t)?.record();
                if state(&rec) != "CANCELLED" {
                    v.push(format!(
                        "{name}: restore ended {} instead of being refused",
                        state(&rec)
                    ));
                }
                status(&rec)
            }
        };
        if !expect.iter().any(|w| msg.contains(w)) {
            v.push(format!(
                "{name}: the error does not say what is wrong (expected one of {expect:?}): {msg}"
            ));
        }
        if sql(&mut t, "SELECT COUNT(*) FROM t").is_ok() {
            v.push(format!("{name}: the tampered restore became readable"));
        }
        if dir.path().join("dst").join("escaped").exists() || repo_dir.join("escaped").exists() {
            v.push(format!("{name}: a file was written outside its target dir"));
        }
        check_clean(t.cluster(), v, name);
        println!(
            "tampering '{name}' refused: {}",
            msg.lines().next().unwrap_or_default()
        );
    }
    // Labels with path characters never reach the repository.
    let dir = tempfile::tempdir()?;
    let src = make_source(dir.path(), 4)?;
    let c = Cluster::open(&src.home, 3)?;
    let mut s = Session::new(c, "root")?;
    let mut labels = 0;
    for label in ["`../x`", "`a/b`"] {
        labels += 1;
        for stmt in [
            format!("USE d; BACKUP SNAPSHOT {label} TO r ON (t)"),
            format!("USE d; RESTORE SNAPSHOT {label} FROM r PROPERTIES (\"backup_timestamp\" = \"2026-01-01-00-00-00\")"),
        ] {
            match sql(&mut s, &stmt) {
                Ok(_) => v.push(format!("label {label} accepted: {stmt}")),
                Err(e) if !format!("{e:#}").contains("label") => v.push(format!("label {label}: unclear error {e:#}")),
                Err(_) => {}
            }
        }
    }
    Ok(tamperings.len() + labels)
}

#[test]
fn fault_harness() -> Result<()> {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut v = Vec::new();
    if std::env::var("TABLETSNAP_SEED").is_ok() {
        let n = random_schedules_against_faulty_repositories(&mut v)?;
        println!(
            "fault harness: 1 replayed schedule of {n}: {} invariant violations",
            v.len()
        );
        assert!(v.is_empty(), "invariant violations:\n{}", v.join("\n"));
        return Ok(());
    }
    let (points, jobs, _, _) = crash_at_every_fail_point(&mut v)?;
    let schedules = random_schedules_against_faulty_repositories(&mut v)?;
    let tamperings = tampered_backups_are_refused_before_anything_is_readable(&mut v)?;
    println!(
        "fault harness: {points} fail points x {jobs} jobs, {schedules} random schedules, {tamperings} tamperings: {} invariant violations",
        v.len()
    );
    assert!(v.is_empty(), "invariant violations:\n{}", v.join("\n"));
    Ok(())
}
