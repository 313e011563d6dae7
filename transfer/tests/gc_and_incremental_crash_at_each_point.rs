//! Crashes (an error return, and a panic that runs no cleanup) at every fail
//! point of DROP/GC and of an incremental backup: no committed backup ever
//! references a missing pack, an interrupted drop leaves the backup listed
//! and whole or not listed, and a rerun finishes the work.
#![cfg(feature = "failpoints")]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use tabletsnap_transfer::{
    verify_snapshot, Repository, ReuseIndex, SnapshotId, VerifyOptions, FAIL_POINTS,
};

static SERIAL: Mutex<()> = Mutex::new(());
const TS2: &str = "2026-11-27-13-14-46";
const TS3: &str = "2026-11-28-13-14-46";
const GRACE: u64 = 1000;

/// Every listed snapshot verifies: all its packs exist and every byte checks.
fn every_committed_backup_is_whole(repo: &Repository) {
    let mut o = VerifyOptions::default();
    o.transfer = transfer_opts();
    for id in repo.list_snapshots().expect("list") {
        let r = verify_snapshot(repo, &id, &o).expect("verify");
        assert!(r.is_ok(), "{id}: {r:?}");
    }
}

fn incremental(repo: &Repository) -> tabletsnap_transfer::UploadOptions {
    let bases = repo.reuse_bases("n").expect("bases");
    let mut o = upload_opts(1024, 512);
    o.reuse = Some(Arc::new(
        ReuseIndex::load(repo, &bases, None).expect("index"),
    ));
    o
}

fn changed() -> Vec<TestTablet> {
    let mut t = sample_tablets();
    t[2].files.push(("new.dat".into(), vec![3u8; 900]));
    t
}

/// Runs `f` with `fp` set to `action`; returns whether it failed.
fn with_fail<T>(fp: &str, action: &str, f: impl FnOnce() -> T) -> bool
where
    T: std::fmt::Debug,
{
    assert!(FAIL_POINTS.contains(&fp), "{fp}");
    fail::cfg(fp, action).expect("cfg");
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    fail::remove(fp);
    match r {
        Err(_) => true,
        Ok(v) => format!("{v:?}").starts_with("Err"),
    }
}

#[test]
fn crash_in_drop_and_gc_at_every_point() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for action in ["return", "panic"] {
        for fp in [
            "gc::after_info_delete",
            "gc::before_marker_put",
            "gc::before_pack_delete",
            "gc::before_marker_delete",
        ] {
            let tmp = tempfile::tempdir().expect("tempdir");
            let (_b, repo) = memory_repo();
            let s1 = write_tree(&tmp.path().join("v1"), &sample_tablets());
            repo.backup("n", TS, &s1, b"", &upload_opts(1024, 512))
                .expect("full");
            let s2 = write_tree(&tmp.path().join("v2"), &changed());
            repo.backup("n", TS2, &s2, b"", &incremental(&repo))
                .expect("incremental");
            repo.backup("x", TS3, &s1, b"", &upload_opts(1024, 512))
                .expect("other");
            let id1 = SnapshotId::new("n", TS).expect("id");
            let id3 = SnapshotId::new("x", TS3).expect("id");
            // Drop 1 (its packs stay: 2 points into them) and 3 (its packs go).
            let r = repo.clone();
            let failed = with_fail(fp, action, move || -> tabletsnap_transfer::Result<()> {
                r.drop_snapshot(&id1)?;
                r.drop_snapshot(&id3)?;
                r.gc(10_000, GRACE)?;
                r.gc(10_000 + GRACE, GRACE)?;
                Ok(())
            });
            let listed = repo.list_snapshots().expect("list");
            every_committed_backup_is_whole(&repo);
            assert!(listed.contains(&SnapshotId::new("n", TS2).expect("id")));
            // Rerun to completion.
            let id1 = SnapshotId::new("n", TS).expect("id");
            let id3 = SnapshotId::new("x", TS3).expect("id");
            for id in [&id1, &id3] {
                if repo.list_snapshots().expect("list").contains(id) {
                    repo.drop_snapshot(id).expect("drop");
                }
            }
            repo.gc(20_000, GRACE).expect("gc");
            repo.gc(20_000 + GRACE, GRACE).expect("gc");
            repo.gc(20_000 + 2 * GRACE, GRACE).expect("gc");
            assert_eq!(
                repo.list_snapshots().expect("list"),
                vec![SnapshotId::new("n", TS2).expect("id")],
                "{fp} {action} failed={failed}"
            );
            every_committed_backup_is_whole(&repo);
            // Nothing but the survivor's packs is left.
            let m = repo
                .read_manifest(&SnapshotId::new("n", TS2).expect("id"))
                .expect("manifest");
            let stored = repo.stored_packs().expect("packs");
            let referenced: std::collections::BTreeSet<String> = m.packs.into_iter().collect();
            assert_eq!(stored, referenced, "{fp} {action}");
        }
    }
}

#[test]
fn crash_in_incremental_backup_at_every_point() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for action in ["return", "panic"] {
        for fp in [
            "upload::before_pack_put",
            "upload::before_manifest",
            "upload::before_info",
        ] {
            let tmp = tempfile::tempdir().expect("tempdir");
            let (_b, repo) = memory_repo();
            let s1 = write_tree(&tmp.path().join("v1"), &sample_tablets());
            repo.backup("n", TS, &s1, b"", &upload_opts(1024, 512))
                .expect("full");
            let s2 = write_tree(&tmp.path().join("v2"), &changed());
            let opts = incremental(&repo);
            let r = repo.clone();
            let o = opts.clone();
            let src = s2.clone();
            assert!(with_fail(fp, action, move || r.backup("n", TS2, &src, b"", &o)));
            assert_eq!(repo.list_snapshots().expect("list").len(), 1, "{fp}");
            every_committed_backup_is_whole(&repo);
            // A GC between the crash and the rerun must not break the rerun.
            repo.gc(1, GRACE).expect("gc");
            repo.backup("n", TS2, &s2, b"", &incremental(&repo))
                .expect("rerun");
            every_committed_backup_is_whole(&repo);
            repo.gc(1 + GRACE, GRACE).expect("gc");
            every_committed_backup_is_whole(&repo);
            let out = tmp.path().join("out");
            repo.download(
                &SnapshotId::new("n", TS2).expect("id"),
                &targets(&out),
                &download_opts(),
            )
            .expect("download");
            for s in &s2 {
                assert_eq!(
                    read_tree(&out.join(s.tablet_id.to_string())),
                    read_tree(&s.dir)
                );
            }
        }
    }
}
