//! release_snapshots removes a batch's top dir whole when every tablet in it
//! is named, keeps tablets it was not asked to release, is idempotent, and
//! refuses what release_snapshot refuses, deleting nothing outside the
//! snapshot dirs.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use tabletsnap_snapshot::{make_snapshots, release_snapshots, Error, SnapshotRequest};

fn snapshot_batch(
    e: &tabletsnap_engine::Engine,
    ids: &[u64],
) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
    let reqs: Vec<SnapshotRequest> = ids.iter().copied().map(SnapshotRequest::newest).collect();
    Ok(make_snapshots(e, &reqs, Duration::from_secs(60))?
        .into_iter()
        .map(|r| r.map(|i| i.path))
        .collect::<Result<_, _>>()?)
}

fn top_of(p: &std::path::Path) -> PathBuf {
    p.parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or_default()
}

#[test]
fn whole_batches_go_and_unnamed_tablets_stay() -> TestResult {
    let (_dir, a, ids) = populated(6)?;
    let first = snapshot_batch(&a, &ids[..4])?;
    let second = snapshot_batch(&a, &ids[4..])?;
    let (top1, top2) = (top_of(&first[0]), top_of(&second[0]));
    assert_ne!(top1, top2, "each batch has its own top dir");
    let before: Vec<_> = ids
        .iter()
        .map(|id| a.checksum(*id, None))
        .collect::<Result<_, _>>()?;

    // All of the first batch and one tablet of the second.
    let mut paths = first.clone();
    paths.push(second[0].clone());
    release_snapshots(&a, &paths)?;
    assert!(!top1.exists(), "a fully named top dir is removed");
    assert!(!second[0].exists());
    assert!(second[1].exists(), "a tablet not named stays");
    assert!(top2.exists());

    // A retry of the same release succeeds and changes nothing more.
    release_snapshots(&a, &paths)?;
    assert!(second[1].exists());

    release_snapshots(&a, &second[1..])?;
    assert!(!top2.exists());
    assert!(snapshot_root_entries(&a).is_empty());
    let after: Vec<_> = ids
        .iter()
        .map(|id| a.checksum(*id, None))
        .collect::<Result<_, _>>()?;
    assert_eq!(before, after, "tablet data is untouched");
    Ok(())
}

#[test]
fn escapes_in_a_batch_are_refused_and_nothing_is_deleted() -> TestResult {
    let (_dir, a, ids) = populated(2)?;
    let snaps = snapshot_batch(&a, &ids)?;
    let root = a.stores()[0].snapshot_dir();
    let tablet_dir = a.tablet(ids[0])?.dir().to_path_buf();
    // A symlinked "top dir" pointing outside, shaped like <top>/<tablet>/<hash>.
    let outside = tempfile::tempdir()?;
    std::fs::create_dir_all(outside.path().join("7").join("8"))?;
    std::os::unix::fs::symlink(outside.path(), root.join("20260101000000.1.60"))?;
    for bad in [
        // A tablet's data dir: <store>/data/<shard>/<tablet>/<hash>.
        tablet_dir.clone(),
        root.join("20260101000000.1.60").join("7").join("8"),
        snaps[0].join("..").join("..").join(ids[1].to_string()),
    ] {
        let r = release_snapshots(&a, &[snaps[1].clone(), bad.clone()]);
        assert!(
            matches!(r, Err(Error::PathRefused { .. })),
            "{} was not refused: {r:?}",
            bad.display()
        );
    }
    assert!(tablet_dir.exists());
    assert!(outside.path().join("7").join("8").exists());
    assert!(snaps[0].exists(), "a refused batch removed another tablet");
    Ok(())
}
