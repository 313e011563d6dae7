//! Incremental install (catch-up restore) appends the versions a restored
//! tablet lacks, atomically and idempotently, and refuses a snapshot that
//! cannot extend it.

mod common;

use std::path::Path;

use common::*;
use tabletsnap_engine::tablet_meta::META_FILE_NAME;
use tabletsnap_engine::{
    Engine, Error, IncrementalRequest, InstallOutcome, InstallRequest, Result, TabletMeta, Verify,
};

/// Copies a capture into `dst` the way a download would: the meta, and the
/// files of the rowsets above `from` only (what a catch-up downloads).
fn export(e: &Engine, tablet: u64, version: u64, from: u64, dst: &Path) -> Result<TabletMeta> {
    let cap = e.capture(tablet, Some(version))?;
    std::fs::create_dir_all(dst).expect("mkdir");
    for rs in cap.meta.rowsets.iter().filter(|r| r.start_version > from) {
        for (name, _) in rs.files() {
            std::fs::copy(cap.dir.join(&name), dst.join(&name)).expect("copy");
        }
    }
    std::fs::write(dst.join(META_FILE_NAME), cap.meta.encode()).expect("meta");
    Ok(cap.meta.clone())
}

fn restore(dst: &Engine, src: &Engine, id: u64, version: u64, x: &Path) -> Result<()> {
    let meta = export(src, 1, version, 0, x)?;
    dst.install_tablets(
        &[InstallRequest {
            src_dir: x.to_path_buf(),
            schema_hash: meta.schema_hash,
            source: meta,
            table_id: 70,
            partition_id: 80,
            tablet_id: id,
            overwrite: false,
            placed: None,
        }],
        Verify::Full,
    )?;
    Ok(())
}

fn inc(x: &Path, source: TabletMeta, id: u64, base: u64) -> IncrementalRequest {
    IncrementalRequest {
        src_dir: x.to_path_buf(),
        source,
        tablet_id: id,
        base_version: base,
        placed: None,
    }
}

/// Fail points are process-wide: the crash test arms them while the others
/// would run beside it, so every test here takes this lock.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn catch_up_appends_only_new_versions_and_is_idempotent() -> Result<()> {
    let _serial = serial();
    let dir = tmp();
    let src = open(&stores(&dir.path().join("a"), 1))?;
    let dst_stores = stores(&dir.path().join("b"), 1);
    let dst = open(&dst_stores)?;
    create(&src, 1)?;
    for v in 0..3 {
        src.load(1, &rows(v, 30))?;
    }
    restore(&dst, &src, 500, 4, &dst_stores[0].join("snapshot/full"))?;
    let before = dst.tablet_meta(500)?;
    for v in 3..6 {
        src.load(1, &rows(v, 30))?;
    }
    let x = dst_stores[0].join("snapshot/inc");
    let meta = export(&src, 1, 7, 4, &x)?;
    let out = dst.install_incremental(&[inc(&x, meta.clone(), 500, 4)], Verify::Full)?;
    assert_eq!(out[0], InstallOutcome::Installed { files: 3 });
    assert_eq!(dst.checksum(500, Some(7))?, src.checksum(1, Some(7))?);
    assert_eq!(dst.checksum(500, Some(4))?, src.checksum(1, Some(4))?);
    let after = dst.tablet_meta(500)?;
    // The rowsets it had are kept as they were, ids included.
    assert_eq!(after.rowsets[..before.rowsets.len()], before.rowsets[..]);
    assert_eq!((after.table_id, after.partition_id), (70, 80));
    let again = dst.install_incremental(&[inc(&x, meta, 500, 4)], Verify::Full)?;
    assert_eq!(again[0], InstallOutcome::AlreadyInstalled);
    drop(dst);
    let dst = open(&dst_stores)?;
    assert_eq!(dst.checksum(500, Some(7))?, src.checksum(1, Some(7))?);
    Ok(())
}

#[test]
fn unpublished_leftovers_above_the_base_are_replaced() -> Result<()> {
    let _serial = serial();
    let dir = tmp();
    let src = open(&stores(&dir.path().join("a"), 1))?;
    let dst_stores = stores(&dir.path().join("b"), 1);
    let dst = open(&dst_stores)?;
    create(&src, 1)?;
    src.load(1, &rows(1, 30))?;
    restore(&dst, &src, 500, 2, &dst_stores[0].join("snapshot/full"))?;
    // A load that reached this replica but was never made visible.
    dst.load(500, &rows(99, 10))?;
    let leftover: Vec<_> = dst.tablet_meta(500)?.rowsets[2]
        .files()
        .map(|(n, _)| dst.tablet(500).map(|t| t.dir().join(n)))
        .collect::<Result<_>>()?;
    src.load(1, &rows(2, 30))?;
    let x = dst_stores[0].join("snapshot/inc");
    let meta = export(&src, 1, 3, 2, &x)?;
    dst.install_incremental(&[inc(&x, meta, 500, 2)], Verify::SizeOnly)?;
    assert_eq!(dst.checksum(500, None)?, src.checksum(1, Some(3))?);
    let m = dst.tablet_meta(500)?;
    assert!(m.stale_rowsets.is_empty());
    for f in leftover {
        assert!(!f.exists(), "{} survived", f.display());
    }
    Ok(())
}

#[test]
fn a_snapshot_that_cannot_extend_the_tablet_is_refused_and_nothing_changes() -> Result<()> {
    let _serial = serial();
    let dir = tmp();
    let src = open(&stores(&dir.path().join("a"), 1))?;
    let dst_stores = stores(&dir.path().join("b"), 1);
    let dst = open(&dst_stores)?;
    create(&src, 1)?;
    create(&src, 2)?;
    for v in 0..3 {
        src.load(1, &rows(v, 30))?;
        src.load(2, &rows(10 + v, 20))?;
    }
    restore(&dst, &src, 500, 3, &dst_stores[0].join("snapshot/full"))?;
    let before = dst.checksum(500, None)?;
    let files_before = files_under(dst.tablet(500)?.dir()).len();
    src.load(1, &rows(3, 30))?;
    src.load(2, &rows(13, 20))?;

    // Another source's data at the same versions.
    let x = dst_stores[0].join("snapshot/other");
    let other = export(&src, 2, 5, 3, &x)?;
    let e = dst.install_incremental(&[inc(&x, other, 500, 3)], Verify::Full);
    assert!(
        matches!(e, Err(Error::CatchUpRefused { tablet_id: 500, .. })),
        "{e:?}"
    );

    // The base version was merged with newer ones at the source.
    src.compact(1, 2, 5, 5)?;
    let x = dst_stores[0].join("snapshot/merged");
    let merged = export(&src, 1, 5, 0, &x)?;
    let e = dst.install_incremental(&[inc(&x, merged, 500, 3)], Verify::Full);
    assert!(
        matches!(e, Err(Error::CatchUpRefused { tablet_id: 500, .. })),
        "{e:?}"
    );

    // The tablet is not at the base version.
    let x = dst_stores[0].join("snapshot/ahead");
    let ahead = export(&src, 1, 5, 5, &x)?;
    let e = dst.install_incremental(&[inc(&x, ahead, 500, 5)], Verify::Full);
    assert!(
        matches!(
            e,
            Err(Error::CatchUpRefused { .. } | Error::VersionNotFound { .. })
        ),
        "{e:?}"
    );

    // A missing file fails before anything is linked.
    let x = dst_stores[0].join("snapshot/missing");
    let m = export(&src, 2, 5, 3, &x)?;
    for (n, _) in m.rowsets.last().expect("rowset").files() {
        std::fs::remove_file(x.join(n)).expect("rm");
    }
    assert!(dst
        .install_incremental(&[inc(&x, m, 500, 3)], Verify::Full)
        .is_err());

    assert_eq!(dst.checksum(500, None)?, before);
    assert_eq!(files_under(dst.tablet(500)?.dir()).len(), files_before);
    Ok(())
}

/// A crash (the engine dropped without cleanup) at each install fail point
/// leaves the tablet at the base or at the new version, never between, and a
/// rerun from a fresh engine completes it.
#[cfg(feature = "failpoints")]
#[test]
fn crash_at_each_fail_point_leaves_old_or_new_and_rerun_completes() -> Result<()> {
    let _serial = serial();
    for point in [
        "engine::install::before_link",
        "engine::install::after_link",
        "engine::install::before_meta_swap",
        "engine::install::after_meta_swap",
        "engine::install::before_gc",
    ] {
        let dir = tmp();
        let src = open(&stores(&dir.path().join("a"), 1))?;
        let dst_stores = stores(&dir.path().join("b"), 1);
        create(&src, 1)?;
        src.load(1, &rows(1, 30))?;
        let (old, x, meta) = {
            let dst = open(&dst_stores)?;
            restore(&dst, &src, 500, 2, &dst_stores[0].join("snapshot/full"))?;
            src.load(1, &rows(2, 30))?;
            let x = dst_stores[0].join("snapshot/inc");
            let meta = export(&src, 1, 3, 2, &x)?;
            let old = dst.checksum(500, None)?;
            let scenario = fail::FailScenario::setup();
            fail::cfg(point, "return").expect("fail point");
            let r = dst.install_incremental(&[inc(&x, meta.clone(), 500, 2)], Verify::Full);
            scenario.teardown();
            assert!(r.is_err(), "{point} did not fire");
            std::mem::forget(dst);
            (old, x, meta)
        };
        let dst = open(&dst_stores)?;
        let now = dst.checksum(500, None)?;
        let new = src.checksum(1, Some(3))?;
        assert!(now == old || now == new, "{point}: neither old nor new");
        dst.install_incremental(&[inc(&x, meta, 500, 2)], Verify::Full)?;
        assert_eq!(dst.checksum(500, None)?, new, "{point}");
        let live: usize = dst
            .tablet_meta(500)?
            .rowsets
            .iter()
            .map(|r| r.segments.len())
            .sum();
        let dats = files_under(dst.tablet(500)?.dir())
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "dat"))
            .count();
        assert_eq!(dats, live, "{point}: stray files");
    }
    Ok(())
}
