//! Repository behaviour: only committed backups are listed, labels are
//! validated, meta round-trips, delete un-commits first, resume of download.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::*;
use tabletsnap_transfer::{Error, Repository, SnapshotId};

#[test]
fn incomplete_backup_is_not_listed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = write_tree(&tmp.path().join("src"), &sample_tablets());
    let (backend, repo) = memory_repo();
    let mut w = repo.begin_backup("half", TS).expect("begin");
    w.upload(&sources, &upload_opts(1024, 512)).expect("upload");
    drop(w); // crash before commit
    repo.backup("full", TS, &sources, b"meta!", &upload_opts(1024, 512))
        .expect("backup");
    let ids = repo.list_snapshots().expect("list");
    assert_eq!(ids, vec![SnapshotId::new("full", TS).expect("id")]);
    assert_eq!(repo.read_meta(&ids[0]).expect("meta"), b"meta!");
    let half = SnapshotId::new("half", TS).expect("id");
    assert!(matches!(
        repo.read_manifest(&half),
        Err(Error::SnapshotNotFound { .. })
    ));

    // A damaged info is not a committed snapshot either.
    let key = repo.key(&format!("__ss_full/{TS}/info"));
    let mut info = backend.get(&key).expect("info");
    info[20] ^= 1;
    backend.put(&key, &info).expect("put");
    assert!(repo.list_snapshots().expect("list").is_empty());
}

#[test]
fn committed_snapshot_cannot_be_overwritten_and_can_be_deleted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = write_tree(&tmp.path().join("src"), &sample_tablets());
    let (backend, repo) = memory_repo();
    repo.backup("a", TS, &sources, b"", &upload_opts(1024, 512))
        .expect("backup");
    assert!(matches!(
        repo.begin_backup("a", TS),
        Err(Error::SnapshotExists { .. })
    ));
    let id = SnapshotId::new("a", TS).expect("id");
    repo.delete_snapshot(&id).expect("delete");
    assert!(repo.list_snapshots().expect("list").is_empty());
    assert_eq!(
        backend
            .list("__tabletsnap_repository_test/__ss_a/")
            .expect("list"),
        Vec::<String>::new()
    );
}

#[test]
fn bad_labels_and_timestamps_are_refused() {
    let (_, repo) = memory_repo();
    for label in ["", "a/b", "..", "a\\b", ".hidden", "a\u{7}b"] {
        let err = repo.begin_backup(label, TS).expect_err("refused");
        assert!(
            matches!(err, Error::InvalidName { kind: "label", .. }),
            "{label:?}: {err}"
        );
    }
    for ts in ["", "2026-11-26", "../2026-11-26-13", "2026-11-26-13-14-4/"] {
        assert!(repo.begin_backup("ok", ts).is_err(), "{ts:?}");
    }
    assert!(Repository::create(Arc::clone(repo.backend()), "../x").is_err());
    assert!(matches!(
        Repository::open(Arc::clone(repo.backend()), "nope"),
        Err(Error::RepositoryNotFound { .. })
    ));
    Repository::open(Arc::clone(repo.backend()), "test").expect("open existing");
}

#[test]
fn empty_tablets_and_dirs_are_restored() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tablets = sample_tablets();
    let sources = write_tree(&tmp.path().join("src"), &tablets);
    let (_, repo) = memory_repo();
    repo.backup("a", TS, &sources, b"", &upload_opts(1024, 512))
        .expect("backup");
    let out = tmp.path().join("out");
    let id = SnapshotId::new("a", TS).expect("id");
    repo.download(&id, &targets(&out), &download_opts())
        .expect("download");
    assert!(out.join("99").is_dir(), "tablet without files gets its dir");
    assert!(out.join("2").join("emptydir").is_dir());
    assert_eq!(
        std::fs::read(out.join("2/sub/nested.dat")).expect("nested"),
        b"nested"
    );
    assert_eq!(
        std::fs::read(out.join("1/empty.dat")).expect("empty").len(),
        0
    );
}

#[test]
fn download_resume_skips_verified_files_and_repairs_others() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tablets = sample_tablets();
    let sources = write_tree(&tmp.path().join("src"), &tablets);
    let (_, repo) = memory_repo();
    repo.backup("a", TS, &sources, b"", &upload_opts(1024, 512))
        .expect("backup");
    let out = tmp.path().join("out");
    let id = SnapshotId::new("a", TS).expect("id");
    let first = repo
        .download(&id, &targets(&out), &download_opts())
        .expect("download");
    assert_eq!(first.files_skipped, 0);
    std::fs::write(out.join("3/05.dat"), b"damaged").expect("damage");
    std::fs::remove_file(out.join("1/big.dat")).expect("remove");
    let second = repo
        .download(&id, &targets(&out), &download_opts())
        .expect("resume");
    assert_eq!(second.files_written, 2, "{second:?}");
    assert_eq!(second.files_skipped, first.files_written - 2);
    for t in &tablets {
        let sub = t.id.to_string();
        assert_eq!(
            read_tree(&out.join(&sub)),
            read_tree(&tmp.path().join("src").join(&sub))
        );
    }
}

#[test]
fn missing_target_is_an_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = write_tree(&tmp.path().join("src"), &sample_tablets());
    let (_, repo) = memory_repo();
    repo.backup("a", TS, &sources, b"", &upload_opts(1024, 512))
        .expect("backup");
    let id = SnapshotId::new("a", TS).expect("id");
    let only_one = |t: u64| (t == 1).then(|| tmp.path().join("o1"));
    let err = repo
        .download(&id, &only_one, &download_opts())
        .expect_err("no target");
    assert!(matches!(err, Error::NoTarget { .. }), "{err:?}");

    // One node's share: only the targeted tablet is written.
    let mut opts = download_opts();
    opts.only_targeted = true;
    let report = repo.download(&id, &only_one, &opts).expect("partial");
    let source_files = read_tree(&tmp.path().join("src").join("1"))
        .keys()
        .filter(|k| !k.ends_with('/'))
        .count();
    assert_eq!(report.files_written, source_files as u64, "{report:?}");
    assert_eq!(
        read_tree(&tmp.path().join("o1")),
        read_tree(&tmp.path().join("src").join("1"))
    );
}

#[test]
fn progress_reaches_the_totals() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tablets = sample_tablets();
    let sources = write_tree(&tmp.path().join("src"), &tablets);
    let (_, repo) = memory_repo();
    let files = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let (f2, b2) = (Arc::clone(&files), Arc::clone(&bytes));
    let mut opts = upload_opts(1024, 512);
    opts.transfer.progress = Some(Arc::new(move |p| {
        assert!(p.files_done <= p.files_total && p.bytes_done <= p.bytes_total);
        f2.fetch_max(p.files_done, Ordering::SeqCst);
        b2.fetch_max(p.bytes_done, Ordering::SeqCst);
    }));
    let info = repo.backup("a", TS, &sources, b"", &opts).expect("backup");
    assert_eq!(files.load(Ordering::SeqCst), info.file_count);
    assert_eq!(bytes.load(Ordering::SeqCst), info.total_bytes);
}
