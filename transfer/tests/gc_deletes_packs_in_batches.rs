//! A GC sweep deletes a due marker's packs with one `delete_many` per
//! `DELETE_BATCH` packs (one DeleteObjects request each on S3), not one
//! request per pack, on every backend; committed backups keep every pack;
//! and a batch the store refuses counts none of its packs and keeps the
//! marker, so the next pass finishes the work.
//!
//! The S3 case needs the TABLETSNAP_S3_* variables (see `common/s3.rs`).

mod common;

use std::sync::Arc;

use common::*;
use tabletsnap_transfer::backend::DELETE_BATCH;
use tabletsnap_transfer::{
    verify_snapshot, Backend, Counting, FaultConfig, Faulty, LocalFs, Memory, Repository,
    SnapshotId, VerifyOptions,
};

const GRACE: u64 = 1000;
/// More than two batches, so the count tells batches from single deletes.
const PACKS: usize = 2 * DELETE_BATCH + 100;
const GONE_TS: &str = "2026-11-27-13-14-46";

/// A committed backup, and `n` packs of an interrupted backup nothing references.
fn stage(repo: &Repository, n: usize) -> SnapshotId {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = write_tree(tmp.path(), &sample_tablets());
    repo.backup("kept", TS, &src, b"m", &upload_opts(1024, 512))
        .expect("backup");
    let keys: Vec<String> = (0..n)
        .map(|i| repo.key(&format!("__ss_gone/{GONE_TS}/packs/{i:08}.pack")))
        .collect();
    std::thread::scope(|s| {
        for part in keys.chunks(n.div_ceil(8).max(1)) {
            let b = repo.backend();
            s.spawn(move || {
                for k in part {
                    b.put(k, b"orphaned pack").expect("put");
                }
            });
        }
    });
    SnapshotId::new("kept", TS).expect("id")
}

fn assert_only_kept_packs_remain(repo: &Repository, kept: &SnapshotId) {
    let referenced: std::collections::BTreeSet<String> = repo
        .read_manifest(kept)
        .expect("manifest")
        .packs
        .into_iter()
        .collect();
    assert_eq!(repo.stored_packs().expect("packs"), referenced);
    let mut o = VerifyOptions::default();
    o.transfer = transfer_opts();
    let r = verify_snapshot(repo, kept, &o).expect("verify");
    assert!(r.is_ok(), "{r:?}");
}

/// Marks and sweeps `PACKS` orphans through a counting wrapper; returns the
/// deletes the sweep made.
fn gc_many<B: Backend + 'static>(inner: B) -> u64 {
    let b = Arc::new(Counting::new(inner));
    let repo = Repository::create(Arc::clone(&b) as Arc<dyn Backend>, "r").expect("create");
    let kept = stage(&repo, PACKS);
    let marked = repo.gc(10_000, GRACE).expect("mark");
    assert_eq!(marked.packs_marked, PACKS as u64);
    b.reset();
    let swept = repo.gc(10_000 + GRACE, GRACE).expect("sweep");
    let deletes = b.counts().deletes;
    assert_eq!(swept.packs_deleted, PACKS as u64, "{swept:?}");
    assert_eq!(swept.markers_swept, 1, "{swept:?}");
    assert_only_kept_packs_remain(&repo, &kept);
    assert!(repo
        .backend()
        .list(&repo.key(tabletsnap_transfer::gc::PENDING_PREFIX))
        .expect("list")
        .is_empty());
    deletes
}

/// One call per batch, plus one for the marker.
fn expected_deletes() -> u64 {
    (PACKS.div_ceil(DELETE_BATCH) + 1) as u64
}

#[test]
fn memory_and_local_fs_delete_in_batches() {
    assert_eq!(gc_many(Memory::new()), expected_deletes());
    let tmp = tempfile::tempdir().expect("tempdir");
    let fs = LocalFs::new(tmp.path().join("repo")).expect("local fs");
    assert_eq!(gc_many(fs), expected_deletes());
}

#[test]
fn s3_sends_one_delete_objects_request_per_thousand_packs() {
    let Some(s) = common::s3::server() else {
        return;
    };
    let deletes = gc_many(common::s3::backend(&s, "gcbatch", &[]));
    // Counting sees each delete_many call; S3 sends one DeleteObjects per
    // call of at most DELETE_BATCH keys, and one DELETE for the marker.
    eprintln!("{PACKS} packs swept with {deletes} delete requests");
    assert_eq!(deletes, expected_deletes());
}

#[test]
fn a_refused_batch_counts_nothing_and_keeps_its_marker() {
    let b = Arc::new(Faulty::new(Memory::new(), FaultConfig::off(7)));
    let repo = Repository::create(Arc::clone(&b) as Arc<dyn Backend>, "r").expect("create");
    let kept = stage(&repo, 10);
    repo.gc(10_000, GRACE).expect("mark");
    let mut refuse = FaultConfig::off(7);
    refuse.delete_error_rate = 1.0;
    refuse.permanent = true;
    b.set_config(refuse);
    let e = repo
        .gc(10_000 + GRACE, GRACE)
        .expect_err("every delete is refused");
    assert!(e.to_string().contains("__ss_gone/"), "{e}");
    b.set_config(FaultConfig::off(7));
    // Nothing was counted and the marker is still there: a rerun deletes all.
    let r = repo.gc(10_000 + GRACE, GRACE).expect("rerun");
    assert_eq!((r.packs_deleted, r.markers_swept), (10, 1), "{r:?}");
    assert_only_kept_packs_remain(&repo, &kept);
}
