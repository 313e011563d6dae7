//! Crashes at each named step boundary leave either no visible snapshot or a
//! complete one, and nothing partial in a restore target. Fail points are
//! process-global, so these tests live in their own binary and run serially.
#![cfg(feature = "failpoints")]

mod common;

use std::sync::Mutex;

use common::*;
use tabletsnap_transfer::{Error, SnapshotId, FAIL_POINTS};

static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn crash_before_each_upload_step_leaves_no_snapshot_and_rerun_completes() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = write_tree(&tmp.path().join("src"), &sample_tablets());
    let (_, repo) = memory_repo();
    for (i, fp) in [
        "upload::before_pack_put",
        "upload::before_manifest",
        "upload::before_info",
    ]
    .iter()
    .enumerate()
    {
        assert!(FAIL_POINTS.contains(fp));
        let label = format!("l{i}");
        fail::cfg(*fp, "return").expect("cfg");
        let err = repo
            .backup(&label, TS, &sources, b"m", &upload_opts(1024, 512))
            .expect_err("fail point fires");
        fail::remove(*fp);
        assert!(matches!(err, Error::FailPoint(_)), "{err:?}");
        assert!(repo.list_snapshots().expect("list").is_empty(), "{fp}");
        repo.backup(&label, TS, &sources, b"m", &upload_opts(1024, 512))
            .expect("rerun");
        assert_eq!(repo.list_snapshots().expect("list").len(), 1);
        repo.delete_snapshot(&SnapshotId::new(&label, TS).expect("id"))
            .expect("delete");
    }
}

#[test]
fn crash_before_rename_leaves_no_partial_file() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().expect("tempdir");
    let tablets = sample_tablets();
    let sources = write_tree(&tmp.path().join("src"), &tablets);
    let (_, repo) = memory_repo();
    repo.backup("l", TS, &sources, b"m", &upload_opts(1024, 512))
        .expect("backup");
    let id = SnapshotId::new("l", TS).expect("id");
    let out = tmp.path().join("out");
    fail::cfg("download::before_rename", "3*off->return").expect("cfg");
    let err = repo
        .download(&id, &targets(&out), &download_opts())
        .expect_err("fail point fires");
    fail::remove("download::before_rename");
    assert!(matches!(err, Error::FailPoint(_)), "{err:?}");
    for t in &tablets {
        let tree = read_tree(&out.join(t.id.to_string()));
        assert!(
            tree.keys()
                .all(|k| !k.contains(tabletsnap_transfer::TEMP_PREFIX)),
            "temp files left: {tree:?}"
        );
    }
    repo.download(&id, &targets(&out), &download_opts())
        .expect("resume");
    for t in &tablets {
        let sub = t.id.to_string();
        assert_eq!(
            read_tree(&out.join(&sub)),
            read_tree(&tmp.path().join("src").join(&sub))
        );
    }
}
