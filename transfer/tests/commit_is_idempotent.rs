//! Committing a backup twice with the same manifest is a no-op (a job may
//! rerun its commit step after a crash), a different manifest is refused,
//! and "is it committed?" never answers "no" for an info it cannot read.

mod common;

use std::sync::Arc;

use common::*;
use tabletsnap_transfer::{
    Backend, CommitState, Counting, Error, FaultConfig, Faulty, Manifest, Memory, Repository,
    SnapshotId, SnapshotStatus,
};

/// Uploads the sample tree as one part and returns its manifest.
fn upload_part(repo: &Repository, label: &str, part: &str) -> Manifest {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = write_tree(tmp.path(), &sample_tablets());
    let mut w = repo.begin_backup_part(label, TS, part).expect("begin");
    w.upload(&sources, &upload_opts(1024, 512)).expect("upload");
    w.into_manifest().expect("manifest")
}

#[test]
fn a_second_commit_of_the_same_manifest_succeeds() {
    let (_, repo) = memory_repo();
    let id = SnapshotId::new("nightly", TS).expect("id");
    let manifest = upload_part(&repo, "nightly", "be1");
    assert_eq!(repo.commit_state(&id), CommitState::Absent);
    let first = repo.commit_backup(&id, &manifest, b"meta").expect("commit");
    assert_eq!(
        repo.commit_state(&id),
        CommitState::Committed(first.clone())
    );
    let again = repo
        .commit_backup(&id, &manifest, b"meta")
        .expect("a rerun of the same commit");
    assert_eq!(again, first);
    assert_eq!(repo.list_snapshots().expect("list"), vec![id.clone()]);

    let mut other = manifest.clone();
    other.tablets.pop();
    let err = repo
        .commit_backup(&id, &other, b"meta")
        .expect_err("another manifest under a committed id");
    assert!(matches!(err, Error::SnapshotExists { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("nightly") && msg.contains(TS), "{msg}");
    assert_eq!(repo.read_info(&id).expect("info"), first, "info unchanged");
}

#[test]
fn a_commit_retried_after_manifest_and_meta_were_stored_puts_only_the_info() {
    let counting = Arc::new(Counting::new(Memory::new()));
    let faulty = Arc::new(Faulty::new(Arc::clone(&counting), FaultConfig::off(1)));
    let backend: Arc<dyn Backend> = faulty.clone();
    let repo = Repository::create(backend, "test").expect("create");
    let id = SnapshotId::new("nightly", TS).expect("id");
    let manifest = upload_part(&repo, "nightly", "be1");

    // Manifest and meta go in, then the info put fails: a crash stand-in.
    let mut cfg = FaultConfig::off(1);
    cfg.fail_after_puts = Some(2);
    faulty.set_config(cfg);
    assert!(repo.commit_backup(&id, &manifest, b"meta").is_err());
    assert_eq!(repo.commit_state(&id), CommitState::Absent);

    faulty.set_config(FaultConfig::off(1));
    counting.reset();
    let info = repo.commit_backup(&id, &manifest, b"meta").expect("retry");
    assert_eq!(counting.counts().puts, 1, "only the info is put again");
    assert_eq!(repo.read_info(&id).expect("info"), info);
    assert_eq!(repo.read_meta(&id).expect("meta"), b"meta");
    assert_eq!(repo.read_manifest(&id).expect("manifest"), manifest);
}

#[test]
fn an_info_that_cannot_be_read_is_not_absent() {
    let faulty = Arc::new(Faulty::new(Memory::new(), FaultConfig::off(3)));
    let backend: Arc<dyn Backend> = faulty.clone();
    let repo = Repository::create(Arc::clone(&backend), "test").expect("create");
    let id = SnapshotId::new("nightly", TS).expect("id");
    let manifest = upload_part(&repo, "nightly", "be1");
    repo.commit_backup(&id, &manifest, b"meta").expect("commit");

    // Every read fails, transiently or permanently: never "absent".
    for permanent in [false, true] {
        let mut cfg = FaultConfig::off(3);
        cfg.get_error_rate = 1.0;
        cfg.permanent = permanent;
        faulty.set_config(cfg);
        let state = repo.commit_state(&id);
        assert!(
            matches!(&state, CommitState::Unreadable(why) if why.contains("could not be read")),
            "{state:?}"
        );
    }
    faulty.set_config(FaultConfig::off(3));

    // A damaged info is there, so the snapshot may be committed.
    let key = repo.key(&format!("__ss_nightly/{TS}/info"));
    let mut info = backend.get(&key).expect("info");
    info[20] ^= 1;
    backend.put(&key, &info).expect("put");
    let state = repo.commit_state(&id);
    assert!(
        matches!(&state, CommitState::Unreadable(why) if why.contains("damaged")),
        "{state:?}"
    );
    // ... and a commit does not overwrite it.
    let err = repo
        .commit_backup(&id, &manifest, b"meta")
        .expect_err("commit over a damaged info");
    assert!(matches!(err, Error::CommitStateUnknown { .. }), "{err:?}");
    assert_eq!(backend.get(&key).expect("info"), info, "info untouched");
}

#[test]
fn listing_with_status_shows_damaged_snapshots() {
    let (backend, repo) = memory_repo();
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = write_tree(tmp.path(), &sample_tablets());
    for label in ["good", "bad"] {
        repo.backup(label, TS, &sources, b"m", &upload_opts(1024, 512))
            .expect("backup");
    }
    let mut w = repo.begin_backup("uncommitted", TS).expect("begin");
    w.upload(&sources, &upload_opts(1024, 512)).expect("upload");
    let key = repo.key(&format!("__ss_bad/{TS}/info"));
    let mut info = backend.get(&key).expect("info");
    info[20] ^= 1;
    backend.put(&key, &info).expect("put");

    let good = SnapshotId::new("good", TS).expect("id");
    let bad = SnapshotId::new("bad", TS).expect("id");
    assert_eq!(repo.list_snapshots().expect("list"), vec![good.clone()]);
    let listed = repo.list_snapshots_with_status().expect("list");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0].0, bad);
    assert!(
        matches!(&listed[0].1, SnapshotStatus::Damaged(why)
            if why.starts_with("info object is damaged: checksum mismatch")),
        "{:?}",
        listed[0].1
    );
    assert_eq!(listed[1].0, good);
    assert_eq!(
        listed[1].1,
        SnapshotStatus::Committed(repo.read_info(&good).expect("info"))
    );
}
