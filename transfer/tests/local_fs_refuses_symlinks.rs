//! A symbolic link anywhere under a LocalFs root is refused by every
//! operation: a backup must not write outside the repository through a
//! linked snapshot directory, and a restore must not read a pack replaced by
//! a link. The error is permanent and names key, link and root.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tabletsnap_transfer::{Backend, Error, LocalFs, Repository, SnapshotId};

const REPO_DIR: &str = "__tabletsnap_repository_r";

#[track_caller]
fn assert_refused<T: std::fmt::Debug>(r: tabletsnap_transfer::Result<T>, link: &Path, root: &Path) {
    match r {
        Err(e @ Error::SymlinkRefused { .. }) => {
            assert!(!e.is_retryable(), "a refused link is permanent: {e}");
            let msg = e.to_string();
            for part in [link.display().to_string(), root.display().to_string()] {
                assert!(msg.contains(&part), "{msg:?} does not name {part}");
            }
            assert!(msg.contains("symbolic link"), "{msg}");
        }
        other => panic!(
            "expected the link {} to be refused, got {other:?}",
            link.display()
        ),
    }
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).expect("read_dir").next().is_none()
}

#[test]
fn backup_into_a_linked_snapshot_dir_is_refused_and_writes_nothing_outside() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("repo");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let sources = write_tree(&tmp.path().join("src"), &sample_tablets());
    let backend: Arc<dyn Backend> = Arc::new(LocalFs::new(&root).expect("fs"));
    let repo = Repository::create(Arc::clone(&backend), "r").expect("create");
    let link = root.join(REPO_DIR).join("__ss_x");
    symlink(&outside, &link).expect("symlink");

    let r = repo.backup("x", TS, &sources, b"meta", &upload_opts(1024, 512));
    assert_refused(r, &link, &root);
    assert!(
        is_empty_dir(&outside),
        "the backup wrote outside the repository"
    );
    assert!(repo.list_snapshots().is_err(), "listing meets the link");
}

#[test]
fn every_operation_refuses_a_linked_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("repo");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(outside.join("d")).expect("mkdir");
    std::fs::write(outside.join("d/obj"), b"outside data").expect("write");
    let fs = LocalFs::new(&root).expect("fs");
    fs.put("keep/me", b"inside").expect("put");
    let link = root.join("a");
    symlink(&outside, &link).expect("symlink");

    assert_refused(fs.put("a/d/new", b"x"), &link, &root);
    assert_refused(fs.get("a/d/obj"), &link, &root);
    assert_refused(fs.get_range("a/d/obj", 0, 4), &link, &root);
    let mut buf = Vec::new();
    assert_refused(fs.get_range_into("a/d/obj", 0, 4, &mut buf), &link, &root);
    assert_refused(fs.head("a/d/obj"), &link, &root);
    assert_refused(fs.delete("a/d/obj"), &link, &root);
    assert_refused(fs.list("a/"), &link, &root);
    assert_refused(fs.list("a/d/"), &link, &root);
    assert_refused(fs.list(""), &link, &root);
    assert_refused(fs.list("a"), &link, &root);
    assert_refused(
        fs.sweep_stale_temp("a/", Duration::from_secs(0)),
        &link,
        &root,
    );
    assert_refused(fs.put_torn("a/d/torn", b"x"), &link, &root);
    // A listing whose prefix cannot reach the link is unaffected.
    assert_eq!(fs.list("keep/").expect("list"), vec!["keep/me".to_string()]);
    assert_eq!(
        std::fs::read(outside.join("d/obj")).expect("read"),
        b"outside data"
    );
    assert!(!outside.join("d/new").exists());
    assert!(!outside.join("d/torn").exists());
}

#[test]
fn every_operation_refuses_a_linked_object() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("repo");
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, b"not an object").expect("write");
    let fs = LocalFs::new(&root).expect("fs");
    fs.put("d/other", b"x").expect("put");
    let link = root.join("d/obj");
    symlink(&secret, &link).expect("symlink");

    assert_refused(fs.get("d/obj"), &link, &root);
    assert_refused(fs.get_range("d/obj", 0, 3), &link, &root);
    assert_refused(fs.head("d/obj"), &link, &root);
    assert_refused(fs.put("d/obj", b"overwrite"), &link, &root);
    assert_refused(fs.delete("d/obj"), &link, &root);
    assert_refused(fs.list("d/"), &link, &root);
    assert_refused(fs.list("d/o"), &link, &root);
    // A prefix the link's key does not match lists normally.
    assert_eq!(fs.list("d/ot").expect("list"), vec!["d/other".to_string()]);
    assert_eq!(std::fs::read(&secret).expect("read"), b"not an object");
    assert!(std::fs::symlink_metadata(&link).is_ok(), "the link stays");
}

#[test]
fn restore_refuses_a_pack_replaced_by_a_link() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("repo");
    let sources = write_tree(&tmp.path().join("src"), &sample_tablets());
    let backend: Arc<dyn Backend> = Arc::new(LocalFs::new(&root).expect("fs"));
    let repo = Repository::create(Arc::clone(&backend), "r").expect("create");
    repo.backup("x", TS, &sources, b"meta", &upload_opts(1024, 512))
        .expect("backup");
    let id = SnapshotId::new("x", TS).expect("id");
    let manifest = repo.read_manifest(&id).expect("manifest");
    let pack = root.join(repo.key(&manifest.packs[0]));
    let copy = tmp.path().join("elsewhere.pack");
    std::fs::copy(&pack, &copy).expect("copy");
    std::fs::remove_file(&pack).expect("rm");
    symlink(&copy, &pack).expect("symlink");

    let out = tmp.path().join("out");
    let r = repo.download(&id, &targets(&out), &download_opts());
    assert_refused(r, &pack, &root);
}

#[test]
fn the_root_itself_may_be_a_link() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let real = tmp.path().join("real");
    std::fs::create_dir_all(&real).expect("mkdir");
    let alias = tmp.path().join("alias");
    symlink(&real, &alias).expect("symlink");
    let fs = LocalFs::new(&alias).expect("fs");
    fs.put("a/b", b"x").expect("put");
    assert_eq!(fs.get("a/b").expect("get"), b"x");
    assert_eq!(fs.list("").expect("list"), vec!["a/b".to_string()]);
}
