//! Incremental backups reuse earlier packs and restore bit-exact; DROP
//! un-commits first; the two-phase GC never deletes a pack a committed
//! manifest references, even one a concurrent backup commits mid-sweep;
//! VERIFY names the damaged tablet.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::*;
use tabletsnap_transfer::{
    verify_snapshot, Backend, Repository, ReuseIndex, SnapshotId, VerifyOptions,
};

const TS2: &str = "2026-11-27-13-14-46";
const TS3: &str = "2026-11-28-13-14-46";
const GRACE: u64 = 1000;

fn incremental(repo: &Repository, label: &str) -> tabletsnap_transfer::UploadOptions {
    let bases = repo.reuse_bases(label).expect("bases");
    let mut o = upload_opts(1024, 512);
    o.reuse = Some(Arc::new(
        ReuseIndex::load(repo, &bases, None).expect("index"),
    ));
    o
}

fn changed_tablets() -> Vec<TestTablet> {
    let mut t = sample_tablets();
    // One tablet gets a new file (a new rowset), the rest are unchanged.
    t[0].files.push(("99.dat".into(), vec![7u8; 700]));
    t
}

fn empty_files(s: &[tabletsnap_transfer::UploadSource]) -> u64 {
    s.iter()
        .flat_map(|s| &s.files)
        .filter(|f| f.size == 0)
        .count() as u64
}

fn verify_ok(repo: &Repository, id: &SnapshotId) {
    let mut o = VerifyOptions::default();
    o.transfer = transfer_opts();
    let r = verify_snapshot(repo, id, &o).expect("verify");
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn incremental_backup_uploads_only_new_files_and_restores_bit_exact() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (backend, repo) = memory_repo();
    let s1 = write_tree(&tmp.path().join("v1"), &sample_tablets());
    repo.backup("n", TS, &s1, b"m1", &upload_opts(1024, 512))
        .expect("full");
    let s2 = write_tree(&tmp.path().join("v2"), &changed_tablets());
    let mut w = repo.begin_backup("n", TS2).expect("begin");
    let report = w.upload(&s2, &incremental(&repo, "n")).expect("upload");
    // Zero-byte files have no pieces to reuse; they are rewritten from the manifest.
    assert_eq!(
        report.files_reused,
        report.files - 1 - empty_files(&s2),
        "{report:?}"
    );
    assert_eq!(report.bytes - report.bytes_reused, 700);
    w.commit(b"m2").expect("commit");
    let id2 = SnapshotId::new("n", TS2).expect("id");
    let m2 = repo.read_manifest(&id2).expect("manifest");
    let stats = m2.reuse_stats(&Repository::snapshot_dir(&id2));
    assert_eq!(
        (stats.new_files, stats.new_bytes),
        (1 + empty_files(&s2), 700)
    );
    // Its own packs hold only the new file (plus pack framing).
    let own: u64 = backend
        .list(&repo.key(&format!("{}packs/", Repository::snapshot_dir(&id2))))
        .expect("list")
        .iter()
        .map(|k| backend.head(k).expect("head").unwrap_or(0))
        .sum();
    assert!(own < 1050, "uploaded {own} bytes for a 700-byte change");
    // A full backup ("type"="full") shares nothing.
    let mut w = repo.begin_backup("f", TS2).expect("begin");
    let r = w.upload(&s2, &upload_opts(1024, 512)).expect("upload");
    assert_eq!(r.files_reused, 0);
    // Restores are identical to the source trees.
    let out = tmp.path().join("out2");
    repo.download(&id2, &targets(&out), &download_opts())
        .expect("download");
    for s in &s2 {
        assert_eq!(
            read_tree(&out.join(s.tablet_id.to_string())),
            read_tree(&s.dir)
        );
    }
    verify_ok(&repo, &id2);
}

#[test]
fn a_changed_file_with_the_same_name_is_not_reused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_backend, repo) = memory_repo();
    let s1 = write_tree(&tmp.path().join("v1"), &sample_tablets());
    repo.backup("n", TS, &s1, b"", &upload_opts(1024, 512))
        .expect("full");
    let mut t = sample_tablets();
    let f = &mut t[1].files[3].1;
    if let Some(b) = f.first_mut() {
        *b ^= 0xff; // same name and size, other crc
    }
    let s2 = write_tree(&tmp.path().join("v2"), &t);
    let mut w = repo.begin_backup("n", TS2).expect("begin");
    let r = w.upload(&s2, &incremental(&repo, "n")).expect("upload");
    assert_eq!(r.files_reused, r.files - 1 - empty_files(&s2));
    w.commit(b"").expect("commit");
    let out = tmp.path().join("out");
    let id2 = SnapshotId::new("n", TS2).expect("id");
    repo.download(&id2, &targets(&out), &download_opts())
        .expect("download");
    assert_eq!(read_tree(&out.join("2")), read_tree(&s2[1].dir));
}

#[test]
fn drop_keeps_packs_a_later_backup_references_and_gc_frees_the_rest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (backend, repo) = memory_repo();
    let s1 = write_tree(&tmp.path().join("v1"), &sample_tablets());
    repo.backup("n", TS, &s1, b"", &upload_opts(1024, 512))
        .expect("full");
    let s2 = write_tree(&tmp.path().join("v2"), &changed_tablets());
    repo.backup("n", TS2, &s2, b"", &incremental(&repo, "n"))
        .expect("incremental");
    let id1 = SnapshotId::new("n", TS).expect("id");
    let id2 = SnapshotId::new("n", TS2).expect("id");
    repo.drop_snapshot(&id1).expect("drop");
    assert_eq!(repo.list_snapshots().expect("list"), vec![id2.clone()]);
    // Two GC passes a grace apart: the old packs are all referenced by the
    // incremental backup, so nothing is deleted.
    repo.gc(10_000, GRACE).expect("gc");
    let r = repo.gc(20_000, GRACE).expect("gc");
    assert_eq!(r.packs_deleted, 0, "{r:?}");
    verify_ok(&repo, &id2);
    // Dropping the last one frees everything, but only after the grace.
    repo.drop_snapshot(&id2).expect("drop");
    let r = repo.gc(30_000, GRACE).expect("gc");
    assert!(r.packs_marked > 0 && r.packs_deleted == 0, "{r:?}");
    let r = repo.gc(30_500, GRACE).expect("gc");
    assert_eq!(r.packs_deleted, 0, "inside the grace: {r:?}");
    let r = repo.gc(31_000, GRACE).expect("gc");
    assert!(r.packs_deleted > 0, "{r:?}");
    assert!(repo.stored_packs().expect("packs").is_empty());
    let left: Vec<String> = backend
        .list(&repo.key(""))
        .expect("list")
        .into_iter()
        .filter(|k| !k.ends_with("__repo_info"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // Dropping it again says it is gone.
    assert!(matches!(
        repo.drop_snapshot(&id2),
        Err(tabletsnap_transfer::Error::SnapshotNotFound { .. })
    ));
}

/// Another cluster builds an incremental backup on snapshot 1 while this
/// one drops snapshot 1 and runs GC: the backup commits a manifest pointing
/// into snapshot 1's packs, and no GC pass, however late, deletes them.
#[test]
fn gc_interleaved_with_a_backup_reusing_an_old_pack() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_backend, repo) = memory_repo();
    let s1 = write_tree(&tmp.path().join("v1"), &sample_tablets());
    repo.backup("n", TS, &s1, b"", &upload_opts(1024, 512))
        .expect("full");
    let id1 = SnapshotId::new("n", TS).expect("id");
    // The other cluster starts: reads the markers and snapshot 1's manifest.
    let opts = incremental(&repo, "n");
    let s2 = write_tree(&tmp.path().join("v2"), &changed_tablets());
    let mut w = repo.begin_backup("n", TS2).expect("begin");
    // This cluster drops snapshot 1 and marks its packs.
    repo.drop_snapshot(&id1).expect("drop");
    let r = repo.gc(10_000, GRACE).expect("gc");
    assert!(r.packs_marked > 0);
    // The other cluster uploads and commits (its pack check passes: marked
    // packs are not deleted before the grace).
    w.upload(&s2, &opts).expect("upload");
    w.commit(b"").expect("commit");
    let id2 = SnapshotId::new("n", TS2).expect("id");
    // The sweep after the grace sees the new manifest and keeps the packs.
    let r = repo.gc(10_000 + GRACE, GRACE).expect("gc");
    assert!(r.packs_rescued > 0 && r.packs_deleted == 0, "{r:?}");
    let r = repo.gc(100_000, GRACE).expect("gc");
    assert_eq!(r.packs_deleted, 0, "{r:?}");
    verify_ok(&repo, &id2);
    let out = tmp.path().join("out");
    repo.download(&id2, &targets(&out), &download_opts())
        .expect("download");
    for s in &s2 {
        assert_eq!(
            read_tree(&out.join(s.tablet_id.to_string())),
            read_tree(&s.dir)
        );
    }
}

/// A backup that starts after a mark does not reuse marked packs, so the
/// sweep may delete them under it.
#[test]
fn a_backup_never_reuses_a_pack_pending_delete() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_backend, repo) = memory_repo();
    let s1 = write_tree(&tmp.path().join("v1"), &sample_tablets());
    repo.backup("n", TS, &s1, b"", &upload_opts(1024, 512))
        .expect("full");
    let id1 = SnapshotId::new("n", TS).expect("id");
    let m1 = repo.read_manifest(&id1).expect("manifest");
    // The index is built from snapshot 1's manifest after its packs were
    // marked (as a backup that read the manifest earlier but the markers
    // later would).
    repo.drop_snapshot(&id1).expect("drop");
    repo.gc(10_000, GRACE).expect("gc");
    let pending = repo.pending_delete_packs().expect("pending");
    let index = ReuseIndex::from_manifests([&m1], &pending, None);
    assert!(index.is_empty());
    let all: HashSet<String> = HashSet::new();
    assert!(!ReuseIndex::from_manifests([&m1], &all, None).is_empty());
}

#[test]
fn retention_keeps_the_newest_per_label() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_backend, repo) = memory_repo();
    let s1 = write_tree(&tmp.path().join("v1"), &sample_tablets());
    for ts in [TS, TS2, TS3] {
        repo.backup("n", ts, &s1, b"", &incremental(&repo, "n"))
            .expect("backup");
    }
    repo.backup("other", TS, &s1, b"", &upload_opts(1024, 512))
        .expect("backup");
    let dropped = repo.apply_retention("n", 2).expect("retention");
    assert_eq!(dropped, vec![SnapshotId::new("n", TS).expect("id")]);
    let left = repo.list_snapshots().expect("list");
    assert_eq!(left.len(), 3);
    repo.gc(1, GRACE).expect("gc");
    repo.gc(1 + GRACE, GRACE).expect("gc");
    for id in &left {
        verify_ok(&repo, id);
    }
}

#[test]
fn verify_reports_the_damaged_tablet_and_quick_checks_presence() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (backend, repo) = memory_repo();
    let s1 = write_tree(&tmp.path().join("v1"), &sample_tablets());
    repo.backup("n", TS, &s1, b"", &upload_opts(1 << 20, 1 << 20))
        .expect("full");
    let id = SnapshotId::new("n", TS).expect("id");
    verify_ok(&repo, &id);
    let m = repo.read_manifest(&id).expect("manifest");
    // Flip a byte inside tablet 3's first non-empty file.
    let (f, t3) = m
        .tablets
        .iter()
        .find(|t| t.tablet_id == 3)
        .and_then(|t| t.files.iter().find(|f| f.size > 0).map(|f| (f, t)))
        .expect("file");
    let p = f.pieces[0];
    let key = repo.key(m.pack_key(&p));
    let mut data = backend.get(&key).expect("get");
    data[p.offset as usize] ^= 1;
    backend.put(&key, &data).expect("put");
    let mut o = VerifyOptions::default();
    o.transfer = transfer_opts();
    let r = verify_snapshot(&repo, &id, &o).expect("verify");
    assert_eq!(r.damaged.len(), 1, "{r:?}");
    assert_eq!(r.damaged[0].tablet_id, t3.tablet_id);
    assert!(r.damaged[0].problems[0].contains(&f.path), "{r:?}");
    assert!(r.bytes_read >= r.bytes);
    // Quick: presence and sizes only, so the flip goes unseen ...
    o.quick = true;
    let r = verify_snapshot(&repo, &id, &o).expect("verify");
    assert!(r.is_ok() && r.bytes_read == 0, "{r:?}");
    // ... but a missing pack does not.
    backend.delete(&key).expect("delete");
    let r = verify_snapshot(&repo, &id, &o).expect("verify");
    assert_eq!(r.missing_packs, vec![m.pack_key(&p).to_string()]);
    assert!(!r.damaged.is_empty());
}

/// Backup 1: a full backup of the sample tablets; their sources and its id.
fn full_backup(
    tmp: &std::path::Path,
    repo: &Repository,
) -> (Vec<tabletsnap_transfer::UploadSource>, SnapshotId) {
    let s1 = write_tree(&tmp.join("v1"), &sample_tablets());
    repo.backup("n", TS, &s1, b"m1", &upload_opts(1024, 512))
        .expect("full");
    (s1, SnapshotId::new("n", TS).expect("id"))
}

/// The entries a backup borrows from `base`'s manifest: every tablet it
/// holds, as a job builds them from the base's summary.
fn borrow_all(repo: &Repository, base: &SnapshotId) -> tabletsnap_transfer::Borrowed {
    let s = repo.read_manifest_summary(base).expect("summary");
    tabletsnap_transfer::Borrowed {
        manifest: Repository::manifest_key(base),
        len: s.len,
        crc32: s.crc32,
        packs: s.packs,
        tablets: s.own,
    }
}

/// A backup borrowing backup 1's entries commits while another cluster
/// drops backup 1 and marks its manifest and packs: the sweep after the
/// grace sees the borrowing manifest and keeps both, the borrowing backup
/// restores bit-exact, and once it is dropped too both go.
#[test]
fn gc_interleaved_with_a_backup_borrowing_a_dropped_manifest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (backend, repo) = memory_repo();
    let (s1, id1) = full_backup(tmp.path(), &repo);
    let id2 = SnapshotId::new("n", TS2).expect("id");
    // The borrowing backup reads backup 1's summary (its job read the
    // markers first: none yet).
    let borrowed = borrow_all(&repo, &id1);
    assert_eq!(borrowed.tablets.len(), s1.len());
    // This cluster drops backup 1 and marks its manifest and packs.
    repo.drop_snapshot(&id1).expect("drop");
    let r = repo.gc(10_000, GRACE).expect("gc");
    assert!(r.packs_marked > 0 && r.manifests_marked == 1, "{r:?}");
    // The borrowing backup commits: the manifest and packs are still there.
    let own = tabletsnap_transfer::Manifest::default();
    repo.commit_backup_borrowing(&id2, &own, std::slice::from_ref(&borrowed), b"m2")
        .expect("commit");
    let r = repo.gc(10_000 + GRACE, GRACE).expect("gc");
    assert_eq!((r.packs_deleted, r.manifests_deleted), (0, 0), "{r:?}");
    assert!(r.packs_rescued > 0, "{r:?}");
    let r = repo.gc(100_000, GRACE).expect("gc");
    assert_eq!((r.packs_deleted, r.manifests_deleted), (0, 0), "{r:?}");
    verify_ok(&repo, &id2);
    let info = repo.read_info(&id2).expect("info");
    let m1_files: u64 = borrowed.tablets.iter().map(|t| t.files).sum();
    assert_eq!(info.file_count, m1_files);
    let out = tmp.path().join("out");
    repo.download(&id2, &targets(&out), &download_opts())
        .expect("download");
    for s in &s1 {
        assert_eq!(
            read_tree(&out.join(s.tablet_id.to_string())),
            read_tree(&s.dir)
        );
    }
    // Dropping the borrower frees backup 1's manifest and packs after the grace.
    repo.drop_snapshot(&id2).expect("drop");
    let r = repo.gc(200_000, GRACE).expect("gc");
    assert!(r.manifests_marked == 2 && r.packs_marked > 0, "{r:?}");
    let r = repo.gc(200_000 + GRACE, GRACE).expect("gc");
    assert_eq!(r.manifests_deleted, 2, "{r:?}");
    let left: Vec<String> = backend
        .list(&repo.key(""))
        .expect("list")
        .into_iter()
        .filter(|k| !k.ends_with("__repo_info"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A manifest that borrows from one that is gone, or whose bytes changed,
/// is refused at commit and named when read.
#[test]
fn a_missing_or_changed_borrowed_manifest_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (backend, repo) = memory_repo();
    let (_, id1) = full_backup(tmp.path(), &repo);
    let id2 = SnapshotId::new("n", TS2).expect("id");
    let borrowed = borrow_all(&repo, &id1);
    let own = tabletsnap_transfer::Manifest::default();
    repo.commit_backup_borrowing(&id2, &own, std::slice::from_ref(&borrowed), b"")
        .expect("commit");
    let key = repo.key(&borrowed.manifest);
    let bytes = backend.get(&key).expect("get");
    // Changed bytes (same length): the pinned crc32 no longer matches.
    let mut changed = bytes.clone();
    let n = changed.len();
    changed[n - 1] ^= 1;
    backend.put(&key, &changed).expect("put");
    let err = repo
        .read_manifest(&id2)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains(&borrowed.manifest), "{err}");
    // Gone: the reader names it, and a new commit borrowing it is refused.
    backend.delete(&key).expect("delete");
    let err = repo
        .read_manifest(&id2)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains(&borrowed.manifest) && err.contains("missing"),
        "{err}"
    );
    let id3 = SnapshotId::new("n", TS3).expect("id");
    let err = repo
        .commit_backup_borrowing(&id3, &own, std::slice::from_ref(&borrowed), b"")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("not stored as pinned"), "{err}");
    assert!(!repo.list_snapshots().expect("list").contains(&id3));
}
