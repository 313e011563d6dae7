//! release_snapshot deletes snapshot dirs and nothing else: `..`, absolute
//! paths elsewhere, symlinks out of the root, the root itself and tablet data
//! dirs are refused with nothing deleted.

mod common;

use std::time::Duration;

use common::*;
use tabletsnap_snapshot::{make_snapshots, release_snapshot, Error, SnapshotRequest};

fn refused(r: tabletsnap_snapshot::Result<()>) -> bool {
    matches!(r, Err(Error::PathRefused { .. }))
}

#[test]
fn escapes_are_refused_and_nothing_is_deleted() -> TestResult {
    let (dir, a, ids) = populated(2)?;
    let infos: Vec<_> = make_snapshots(
        &a,
        &ids.iter()
            .map(|id| SnapshotRequest {
                tablet_id: *id,
                version: None,
            })
            .collect::<Vec<_>>(),
        Duration::from_secs(60),
    )?
    .into_iter()
    .collect::<Result<_, _>>()?;
    let root = a.stores()[0].snapshot_dir();
    let tablet_dir = a.tablet(ids[0])?.dir().to_path_buf();
    let outside = tempfile::tempdir()?;
    std::fs::write(outside.path().join("keep"), b"x")?;
    std::os::unix::fs::symlink(outside.path(), root.join("escape"))?;
    std::os::unix::fs::symlink(&tablet_dir, infos[0].path.join("data_link"))?;

    let before = a.checksum(ids[0], None)?;
    for bad in [
        infos[0].path.join("../../../../data"),
        infos[0].path.join(".."),
        root.join("..").join("data"),
        tablet_dir.clone(),
        outside.path().to_path_buf(),
        root.clone(),
        root.join("."),
        root.join("escape"),
        infos[0].path.join("data_link"),
        dir.path().to_path_buf(),
        std::path::PathBuf::from("/"),
    ] {
        assert!(
            refused(release_snapshot(&a, &bad)),
            "{} was not refused",
            bad.display()
        );
    }
    let msg = release_snapshot(&a, &root)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(msg.contains("snapshot root"), "{msg}");
    assert!(outside.path().join("keep").exists());
    assert!(tablet_dir.exists());
    assert_eq!(a.checksum(ids[0], None)?, before);
    // A junk dir in the root is not ours to delete either.
    std::fs::create_dir(root.join("notes"))?;
    assert!(refused(release_snapshot(&a, &root.join("notes"))));

    // The real ones go, and the batch's top dir goes with the last of them.
    let top = infos[0]
        .path
        .parent()
        .and_then(|p| p.parent())
        .ok_or("no top")?
        .to_path_buf();
    std::fs::remove_file(infos[0].path.join("data_link"))?;
    release_snapshot(&a, &infos[0].path)?;
    assert!(!infos[0].path.exists());
    assert!(top.exists(), "the other tablet still lives in the top dir");
    release_snapshot(&a, &infos[1].path)?;
    assert!(!top.exists());
    assert!(matches!(
        release_snapshot(&a, &infos[1].path),
        Err(Error::NotFound(_))
    ));
    assert!(tablet_dir.exists());
    Ok(())
}

#[test]
fn a_whole_top_dir_and_a_relative_path_are_accepted() -> TestResult {
    let (_dir, a, ids) = populated(1)?;
    let info = make_snapshots(
        &a,
        &[SnapshotRequest {
            tablet_id: ids[0],
            version: None,
        }],
        Duration::from_secs(60),
    )?
    .remove(0)?;
    let top = info
        .path
        .parent()
        .and_then(|p| p.parent())
        .ok_or("no top")?
        .to_path_buf();
    release_snapshot(&a, &top)?;
    assert!(!top.exists());
    assert!(snapshot_root_entries(&a).is_empty());
    Ok(())
}
