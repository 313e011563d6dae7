//! Crash points between every step of load_snapshot and make_snapshots.
//! A "crash" is a fail point that either returns an error (the engine's
//! error path runs) or panics (no cleanup code runs at all); then the engine
//! is dropped and reopened from disk. Whatever the point, the target is
//! absent (or, when overwriting, the old tablet is intact) or complete, never
//! a mix, and re-running the load completes it. Fail points are process-wide,
//! so every test holds a `FailScenario`, which serializes them.
#![cfg(feature = "failpoints")]

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Duration;

use common::*;
use tabletsnap_engine::{Engine, TabletChecksum};
use tabletsnap_snapshot::{
    load_snapshot, make_snapshots, Error, InstallOutcome, SnapshotInfo, SnapshotRequest,
    FAIL_POINTS,
};

const INSTALL_POINTS: &[&str] = &[
    "engine::install::before_link",
    "engine::install::after_link",
    "engine::install::before_meta_swap",
    "engine::install::after_meta_swap",
    "engine::install::before_gc",
];

/// Points after which the new meta is durable: a crash there keeps the new tablet.
fn committed(point: &str) -> bool {
    matches!(
        point,
        "engine::install::after_meta_swap" | "engine::install::before_gc"
    )
}

fn snap(a: &Engine, id: u64, v: u64) -> Result<SnapshotInfo, Box<dyn std::error::Error>> {
    Ok(make_snapshots(
        a,
        &[SnapshotRequest {
            tablet_id: id,
            version: Some(v),
        }],
        Duration::from_secs(600),
    )?
    .remove(0)?)
}

/// Files in the tablet dir that its meta does not account for (a mix of old and new).
fn strays(e: &Engine, id: u64) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let t = e.tablet(id)?;
    let meta = t.meta();
    let live: std::collections::HashSet<String> = meta
        .rowsets
        .iter()
        .chain(meta.stale_rowsets.iter().map(|s| &s.rowset))
        .flat_map(|r| r.files().map(|(n, _)| n).collect::<Vec<_>>())
        .collect();
    Ok(std::fs::read_dir(t.dir())?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "tablet.meta" && !live.contains(n))
        .collect())
}

/// Runs one crash at `point` (`return` or `panic`), reopens and checks.
fn crash_during_load(point: &str, action: &str, overwrite: bool) -> TestResult {
    let (_a_dir, a, ids) = populated(2)?;
    let new = snap(&a, ids[0], 6)?;
    let want_new = a.checksum(ids[0], Some(6))?;
    let b_dir = tempfile::tempdir()?;
    let mut b = open(b_dir.path())?;
    let target = 4_242;
    let want_old: Option<TabletChecksum> = if overwrite {
        let old = snap(&a, ids[1], 3)?;
        Some(restore(&b, &old, target)?)
    } else {
        None
    };
    let dir = download(&b, &new, target)?;
    let req = load_req(target, new.schema_hash, overwrite);

    fail::cfg(point, action)?;
    let out = catch_unwind(AssertUnwindSafe(|| load_snapshot(&b, &dir, &req)));
    fail::remove(point);
    match (&out, action) {
        (Ok(Err(Error::FailPoint(p))), "return") => assert_eq!(p, point),
        (Err(_), "panic") => {}
        _ => return Err(format!("{point}/{action}: unexpected outcome {out:?}").into()),
    }
    if action == "return" {
        // The engine carries on after an error: its in-memory view must already
        // be one of the two, with nothing of the failed attempt left on disk.
        check_one_or_other(&b, target, point, want_old, want_new)?;
        if b.tablet(target).is_ok() {
            assert!(
                strays(&b, target)?.is_empty(),
                "{point}: stray files in process"
            );
        } else {
            let dir = b.stores()[0].tablet_dir(target, new.schema_hash);
            assert!(
                !dir.exists() || std::fs::read_dir(&dir)?.next().is_none(),
                "{point}: uncommitted files left in process"
            );
        }
    }
    drop(b);
    b = open(b_dir.path())?;
    check_one_or_other(&b, target, point, want_old, want_new)?;
    if b.tablet(target).is_ok() {
        assert!(
            strays(&b, target)?.is_empty(),
            "{point}: stray files after reopen"
        );
    } else {
        // The restore dir's reservation keeps the (empty) target dir through
        // recovery, without a meta: no tablet.
        let store = &b.stores()[0];
        let tdir = store.tablet_dir(target, new.schema_hash);
        assert!(
            !tdir.exists() || std::fs::read_dir(&tdir)?.next().is_none(),
            "{point}: an uncommitted tablet dir kept files through recovery"
        );
    }

    // Re-running completes the install, or finds it done.
    let again = load_snapshot(&b, &dir, &req)?;
    if committed(point) {
        assert_eq!(again, InstallOutcome::AlreadyInstalled, "{point}");
    } else {
        assert!(matches!(again, InstallOutcome::Installed { .. }), "{point}");
    }
    assert_eq!(b.checksum(target, None)?, want_new, "{point}");
    assert_eq!(
        load_snapshot(&b, &dir, &req)?,
        InstallOutcome::AlreadyInstalled
    );
    // Replaced rowsets are garbage once the new meta is durable; GC frees them.
    b.gc()?;
    assert!(b.tablet_meta(target)?.stale_rowsets.is_empty(), "{point}");
    assert!(strays(&b, target)?.is_empty(), "{point}");
    drop(b);
    let b = open(b_dir.path())?;
    assert_eq!(b.checksum(target, None)?, want_new, "{point}");
    Ok(())
}

fn check_one_or_other(
    b: &Engine,
    target: u64,
    point: &str,
    old: Option<TabletChecksum>,
    new: TabletChecksum,
) -> TestResult {
    let now = b
        .tablet(target)
        .ok()
        .map(|_| b.checksum(target, None))
        .transpose()?;
    let expected = if committed(point) { Some(new) } else { old };
    assert_eq!(
        now, expected,
        "{point}: neither the old state nor the new one"
    );
    Ok(())
}

#[test]
fn crash_at_every_install_step_of_a_new_tablet() -> TestResult {
    let scenario = fail::FailScenario::setup();
    for point in INSTALL_POINTS {
        for action in ["return", "panic"] {
            crash_during_load(point, action, false)?;
        }
    }
    scenario.teardown();
    Ok(())
}

#[test]
fn crash_at_every_install_step_of_an_overwrite() -> TestResult {
    let scenario = fail::FailScenario::setup();
    for point in INSTALL_POINTS {
        for action in ["return", "panic"] {
            crash_during_load(point, action, true)?;
        }
    }
    scenario.teardown();
    Ok(())
}

fn dirs_under(root: &Path) -> Vec<String> {
    walk(root)
        .into_iter()
        .filter_map(|p| p.strip_prefix(root).ok().map(|r| r.display().to_string()))
        .collect()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(e.path());
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn make_fail_points_leave_nothing_unreported() -> TestResult {
    let scenario = fail::FailScenario::setup();
    assert_eq!(FAIL_POINTS.len(), 3);
    let (_a_dir, a, ids) = populated(3)?;
    let reqs: Vec<SnapshotRequest> = ids.iter().copied().map(SnapshotRequest::newest).collect();
    let root = a.stores()[0].snapshot_dir();

    // Failing before the barrier fails the batch, and nothing of it stays.
    fail::cfg("snapshot::make::before_barrier", "return")?;
    let e = make_snapshots(&a, &reqs, Duration::from_secs(60))
        .err()
        .ok_or("batch succeeded through a failed barrier")?;
    assert!(matches!(e, Error::FailPoint(_)), "{e}");
    assert!(dirs_under(&root).is_empty(), "{:?}", dirs_under(&root));
    fail::remove("snapshot::make::before_barrier");

    // Failing one tablet after its links exist removes its dir only.
    fail::cfg("snapshot::make::tablet", &format!("return({})", ids[1]))?;
    let out = make_snapshots(&a, &reqs, Duration::from_secs(60))?;
    fail::remove("snapshot::make::tablet");
    assert!(out[0].is_ok() && out[2].is_ok());
    assert!(
        matches!(&out[1], Err(Error::Tablet { tablet_id, .. }) if *tablet_id == ids[1]),
        "{:?}",
        out[1]
    );
    let left = dirs_under(&root);
    // A component equal to the tablet id (a substring match also hit the
    // top dir's timestamp: 2026-12-01 00:10 is "20261201001029").
    let failed = ids[1].to_string();
    assert!(
        !left.iter().any(|p| p.split('/').any(|c| c == failed)),
        "{left:?}"
    );
    for o in out.iter().flatten() {
        let b_dir = tempfile::tempdir()?;
        let b = open(b_dir.path())?;
        assert_eq!(restore(&b, o, 1)?, a.checksum(o.tablet_id, None)?);
    }
    scenario.teardown();
    Ok(())
}
