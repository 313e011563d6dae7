//! Crash safety with real process death. For every fail point a job or a
//! load reaches, a child `tabletsnap sql` runs a BACKUP, an overwrite
//! RESTORE or an INSERT and aborts at that point (`TABLETSNAP_ABORT_AT`:
//! `std::process::abort`, no unwinding, no cleanup). This process then
//! inspects the home exactly as the crash left it, before any job resumes,
//! and again after reopening it resumes every job, and checks:
//!
//! - the source table never changes under a backup; an overwritten table is
//!   exactly old, exactly new, or fenced (unreadable), never a mix;
//! - an INSERT is either there whole or not at all;
//! - every job ends FINISHED or CANCELLED; a backup is listed in the
//!   repository if and only if it FINISHED, and then restores equal;
//! - no snapshot or download dir and no unreferenced segment file remains.
//!
//! It ends with a summary line counting the process kills.

#![cfg(feature = "failpoints")]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use tabletsnap::cluster::Cluster;
use tabletsnap::exec::Session;
use tabletsnap::job::JobRecord;

/// What the child runs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scenario {
    /// A full backup (`"type" = "full"`): every file is uploaded.
    Backup,
    /// The default backup, which reuses files earlier backups stored.
    BackupIncremental,
    Restore,
    Insert,
    /// DROP SNAPSHOT of a backup: un-commit it, mark its packs.
    DropMark,
    /// DROP SNAPSHOT run a grace period after an earlier drop marked packs:
    /// its GC pass deletes them.
    DropSweep,
}

impl Scenario {
    /// Fail points this scenario can reach (the others are not tried).
    fn reaches(self, point: &str) -> bool {
        let common = point.starts_with("catalog::") || point.starts_with("job::after_record_save");
        match self {
            Scenario::Backup | Scenario::BackupIncremental => {
                common
                    || point.starts_with("snapshot::make::")
                    || point.starts_with("upload::")
                    || point.starts_with("job::backup::")
            }
            Scenario::Restore => {
                common
                    || point.starts_with("engine::install::")
                    || point.starts_with("engine::after_meta_commit")
                    || point.starts_with("download::")
                    || point.starts_with("job::restore::")
                    || point.starts_with("snapshot::restore::")
                    || point.starts_with("engine::reserve::")
            }
            Scenario::Insert => {
                point.starts_with("engine::")
                    && !point.contains("install")
                    && !point.contains("reserve")
            }
            Scenario::DropMark | Scenario::DropSweep => point.starts_with("gc::"),
        }
    }
}

/// Fail points no scenario here reaches, and why.
const NOT_REACHED_BY_DESIGN: &[(&str, &str)] = &[
    (
        "engine::gc::before_meta",
        "explicit compaction GC only; covered in engine/tests/failpoints.rs",
    ),
    (
        "engine::load::tablet",
        "a per-tablet error injection point, not a step boundary",
    ),
    (
        "download::before_rename",
        "restores download in place (no temp name; download::after_in_place_write); \
         the rename path is covered in transfer/tests/failpoints.rs",
    ),
];

/// A prepared source home: table d.t at 5 versions, a backup `snap` of it
/// at 3 versions in repository r.
struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    src: PathBuf,
    timestamp: String,
    /// Checksum of t now (5 versions).
    now_sum: String,
    /// Checksum of t in the backup (3 versions).
    backup_sum: String,
    now_count: u64,
}

fn prepare() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let src = root.join("src");
    let mut s = open(&src);
    make_db_and_table(&mut s, "d", "t", 3);
    let loc = file_location(&root.join("repo"));
    sql(
        &mut s,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    let backup_sum = checksum(&mut s, "t");
    let h = backup(&mut s, "BACKUP SNAPSHOT d.snap TO r");
    let timestamp = common::timestamp(&h);
    sql(
        &mut s,
        "INSERT INTO t GENERATE 12 ROWS SEED 77; INSERT INTO t GENERATE 12 ROWS SEED 78",
    );
    let now_sum = checksum(&mut s, "t");
    let now_count = count(&mut s, "t");
    // A full backup sharing no pack with `snap`, for the drop scenarios.
    backup(
        &mut s,
        "BACKUP SNAPSHOT d.snap2 TO r PROPERTIES (\"type\" = \"full\")",
    );
    assert_ne!(now_sum, backup_sum);
    drop(h);
    drop(s);
    Fixture {
        _tmp: tmp,
        root,
        src,
        timestamp,
        now_sum,
        backup_sum,
        now_count,
    }
}

fn copy_home(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

/// How a child ended.
enum Ended {
    Aborted,
    Finished,
}

fn run_child(
    home: &Path,
    point: &str,
    statements: &str,
    clock_offset_s: u64,
) -> Result<Ended, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_tabletsnap"))
        .args(["sql", "--batch", "--home"])
        .arg(home)
        .args(["-e", statements])
        .env("TABLETSNAP_ABORT_AT", point)
        .env(
            tabletsnap::job::clock::OFFSET_ENV,
            clock_offset_s.to_string(),
        )
        .output()
        .map_err(|e| format!("starting the child: {e}"))?;
    if out.status.signal() == Some(nix::sys::signal::Signal::SIGABRT as i32) {
        return Ok(Ended::Aborted);
    }
    if out.status.success() {
        return Ok(Ended::Finished);
    }
    Err(format!(
        "the child neither finished nor aborted ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Opens `home` without resuming jobs, as the crash left it.
fn inspect(home: &Path) -> Result<Session, String> {
    let c = Cluster::open_with(home, BACKENDS, false)
        .map_err(|e| format!("reopening after the crash: {e:#}"))?;
    Session::new(c, "root").map_err(|e| format!("{e:#}"))
}

fn try_rows(s: &mut Session, text: &str) -> Result<tabletsnap::sql::ResultSet, String> {
    let out = s.run_script(text).map_err(|e| format!("{e:#}"))?;
    out.into_iter()
        .rev()
        .find_map(|o| match o {
            tabletsnap::exec::Output::Rows(r) => Some(r),
            tabletsnap::exec::Output::Message(_) => None,
        })
        .ok_or_else(|| format!("{text:?} returned no rows"))
}

fn table_sum(s: &mut Session) -> Result<Option<String>, String> {
    match try_rows(s, "USE d; CHECKSUM TABLE t") {
        Ok(rs) => Ok(Some(only(&rs, "Checksum"))),
        Err(e) if e.contains("not readable") => Ok(None),
        Err(e) => Err(format!("reading t: {e}")),
    }
}

/// Segment files on disk that no tablet meta names, per backend.
fn unreferenced_segments(s: &Session) -> Vec<String> {
    let mut out = Vec::new();
    for node in s.cluster().backends() {
        let engine = node.engine();
        let mut live = std::collections::HashSet::new();
        for id in engine.tablet_ids() {
            if let Ok(m) = engine.tablet_meta(id) {
                for rs in &m.rowsets {
                    for i in 0..rs.segments.len() {
                        live.insert(rs.segment_file_name(i));
                    }
                }
            }
        }
        for store in engine.stores() {
            for f in files_containing(&store.data_dir(), ".dat") {
                let name = f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !live.contains(&name) {
                    out.push(f.display().to_string());
                }
            }
        }
    }
    out
}

fn wait_all(s: &Session) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    for h in s.cluster().jobs().all() {
        while !h.is_done() {
            if Instant::now() > deadline {
                return Err(format!("job {} did not end after the restart", h.id));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

/// Runs one scenario killed at `point`; returns whether the child was killed.
fn one(fx: &Fixture, run: usize, sc: Scenario, point: &str) -> Result<bool, String> {
    let home = fx.root.join(format!("run{run}"));
    copy_home(&fx.src, &home);
    let label = format!("k{run}");
    if matches!(sc, Scenario::DropMark | Scenario::DropSweep) {
        // Drops change the repository: each run gets its own copy.
        let repo = fx.root.join(format!("repo{run}"));
        copy_home(&fx.root.join("repo"), &repo);
        let mut s = Session::new(
            Cluster::open(&home, BACKENDS).map_err(|e| format!("{e:#}"))?,
            "root",
        )
        .map_err(|e| format!("{e:#}"))?;
        let mut pre = format!(
            "USE d; DROP REPOSITORY r; CREATE REPOSITORY r ON LOCATION \"file://{}\"",
            repo.display()
        );
        if sc == Scenario::DropSweep {
            pre.push_str(&format!(
                "; DROP SNAPSHOT snap ON r WHERE TIMESTAMP = \"{}\"",
                fx.timestamp
            ));
        }
        s.run_script(&pre).map_err(|e| format!("{pre}: {e:#}"))?;
    }
    let stmt = match sc {
        Scenario::Backup => {
            format!("USE d; BACKUP SNAPSHOT d.{label} TO r PROPERTIES (\"type\" = \"full\")")
        }
        Scenario::BackupIncremental => format!("USE d; BACKUP SNAPSHOT d.{label} TO r"),
        Scenario::Restore => format!(
            "USE d; RESTORE SNAPSHOT d.snap FROM r ON (t) PROPERTIES (\"backup_timestamp\" = \"{}\")",
            fx.timestamp
        ),
        Scenario::Insert => "USE d; INSERT INTO t VALUES (1, 1, 'one')".to_string(),
        Scenario::DropMark => format!(
            "USE d; DROP SNAPSHOT snap ON r WHERE TIMESTAMP = \"{}\"",
            fx.timestamp
        ),
        Scenario::DropSweep => "USE d; DROP SNAPSHOT snap2 ON r".to_string(),
    };
    // The sweep runs "later": past the GC grace period of the first drop.
    let offset = if sc == Scenario::DropSweep {
        32 * 86_400
    } else {
        0
    };
    let killed = match run_child(&home, point, &stmt, offset)? {
        Ended::Aborted => true,
        Ended::Finished => false,
    };

    // As the crash left it, before anything resumes.
    {
        let mut s = inspect(&home)?;
        let sum = table_sum(&mut s)?;
        match sc {
            Scenario::DropMark | Scenario::DropSweep => {}
            Scenario::Backup | Scenario::BackupIncremental | Scenario::Insert => {
                if sc != Scenario::Insert && sum.as_deref() != Some(fx.now_sum.as_str()) {
                    return Err(format!("the source table changed under a backup: {sum:?}"));
                }
                if sc == Scenario::Insert {
                    let n: u64 = only(&try_rows(&mut s, "SELECT COUNT(*) FROM t")?, "count(*)")
                        .parse()
                        .map_err(|e| format!("count: {e}"))?;
                    if n != fx.now_count && n != fx.now_count + 1 {
                        return Err(format!("after a crashed INSERT t has {n} rows"));
                    }
                }
            }
            Scenario::Restore => {
                if let Some(sum) = &sum {
                    if sum != &fx.now_sum && sum != &fx.backup_sum {
                        return Err(format!(
                            "the overwritten table is neither old nor new before resuming: {sum}"
                        ));
                    }
                }
            }
        }
    }

    // Reopened: every job resumes or cancels, and ends.
    let mut s = Session::new(
        Cluster::open(&home, BACKENDS).map_err(|e| format!("reopening: {e:#}"))?,
        "root",
    )
    .map_err(|e| format!("{e:#}"))?;
    wait_all(&s)?;
    let listed = try_rows(&mut s, "SHOW SNAPSHOT ON r")?;
    let labels = column(&listed, "Snapshot");
    for st in column(&listed, "Status") {
        if st != "OK" {
            return Err(format!("the repository lists a damaged backup: {st}"));
        }
    }
    // Every listed backup is whole: each pack it names is there and reads back.
    let listed_ts = column(&listed, "Timestamp");
    for (l, ts) in labels.iter().zip(&listed_ts) {
        let v = try_rows(
            &mut s,
            &format!("VERIFY SNAPSHOT {l} ON r WHERE TIMESTAMP = \"{ts}\""),
        )?;
        for (st, damage) in column(&v, "Status").iter().zip(column(&v, "Damage")) {
            if st != "OK" {
                return Err(format!("listed backup {l} at {ts} is {st}: {damage}"));
            }
        }
    }
    for h in s.cluster().jobs().all() {
        let rec = h.record();
        let state = common::state(&h);
        if state != "FINISHED" && state != "CANCELLED" {
            return Err(format!("job {} ended in {state}", h.id));
        }
        match rec {
            JobRecord::Backup(j) if j.label == label => {
                let is_listed = labels.contains(&label);
                if (state == "FINISHED") != is_listed {
                    return Err(format!(
                        "backup {label} is {state} but listed={is_listed} ({})",
                        j.status.status
                    ));
                }
            }
            JobRecord::Restore(_) => {
                let sum = table_sum(&mut s)?;
                let want = if state == "FINISHED" {
                    &fx.backup_sum
                } else {
                    &fx.now_sum
                };
                if sum.as_ref() != Some(want) {
                    return Err(format!("restore ended {state} but t has checksum {sum:?}"));
                }
            }
            _ => {}
        }
    }
    let left = snapshot_leftovers(&home);
    if !left.is_empty() {
        return Err(format!("snapshot or download dirs remain: {left:?}"));
    }
    let orphans = unreferenced_segments(&s);
    if !orphans.is_empty() {
        return Err(format!(
            "{} segment files no meta references remain, e.g. {}",
            orphans.len(),
            orphans[0]
        ));
    }
    drop(s);
    let _ = std::fs::remove_dir_all(&home);
    Ok(killed)
}

#[test]
fn process_kill_at_every_fail_point() {
    let fx = prepare();
    let mut points: Vec<String> = tabletsnap::job::all_fail_points()
        .into_iter()
        .map(String::from)
        .collect();
    // The job record is saved at every state change: kill after each of the first saves.
    points.retain(|p| p != "job::after_record_save");
    points.extend((1..=7).map(|n| format!("job::after_record_save@{n}")));
    points.extend((1..=3).map(|n| format!("catalog::after_save@{n}")));
    points.retain(|p| p != "catalog::after_save");

    let (mut runs, mut kills, mut violations) = (0usize, 0usize, Vec::new());
    let mut reached = std::collections::HashSet::new();
    for sc in [
        Scenario::Backup,
        Scenario::BackupIncremental,
        Scenario::Restore,
        Scenario::Insert,
        Scenario::DropMark,
        Scenario::DropSweep,
    ] {
        for p in points.iter().filter(|p| sc.reaches(p)) {
            runs += 1;
            match one(&fx, runs, sc, p) {
                Ok(true) => {
                    kills += 1;
                    reached.insert(p.split('@').next().unwrap_or(p).to_string());
                }
                Ok(false) => {}
                Err(e) => violations.push(format!("{sc:?} killed at {p}: {e}")),
            }
        }
    }
    let unreached: Vec<&str> = tabletsnap::job::all_fail_points()
        .into_iter()
        .filter(|p| !reached.contains(*p))
        .filter(|p| !NOT_REACHED_BY_DESIGN.iter().any(|(n, _)| n == p))
        .collect();
    println!(
        "fault harness (process kills): {runs} runs over {} fail points, {kills} process kills: {} invariant violations",
        points.len(),
        violations.len()
    );
    for v in &violations {
        println!("  violation: {v}");
    }
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(
        unreached.is_empty(),
        "no scenario killed the process at {unreached:?}"
    );
}
