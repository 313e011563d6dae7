//! The sweeper deletes exactly the top dirs whose encoded time has passed,
//! snapshot and restore alike, and reports names it did not make.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use tabletsnap_snapshot::name::{DirKind, DirName};
use tabletsnap_snapshot::{
    make_snapshots, prepare_restore_dir, sweep_expired, SnapshotRequest, RESTORE_DIR_TIMEOUT,
};

#[test]
fn exactly_the_expired_dirs_go() -> TestResult {
    let (_dir, a, ids) = populated(1)?;
    let root = a.stores()[0].snapshot_dir();
    let req = [SnapshotRequest {
        tablet_id: ids[0],
        version: None,
    }];
    let short = make_snapshots(&a, &req, Duration::from_secs(10))?.remove(0)?;
    let long = make_snapshots(&a, &req, Duration::from_secs(3600))?.remove(0)?;
    let restore_dir = prepare_restore_dir(&a, 5, 6)?;
    let top = |p: &std::path::Path| p.parent().and_then(|p| p.parent()).map(|p| p.to_path_buf());
    // An old dir from a previous life of the node, and junk we did not make.
    let ancient = DirName {
        kind: DirKind::Snapshot,
        created_s: 946_684_800,
        seq: 3,
        timeout_s: 60,
    };
    std::fs::create_dir(root.join(ancient.format()))?;
    std::fs::create_dir(root.join("notes"))?;
    std::fs::write(root.join("README"), b"x")?;

    let now = SystemTime::now();
    let s = sweep_expired(&a, now)?;
    assert_eq!(s.removed, vec![root.join(ancient.format())]);
    assert_eq!(s.kept, 3);
    assert_eq!(s.unparseable, vec![root.join("README"), root.join("notes")]);
    assert!(s.failed.is_empty());

    let s = sweep_expired(&a, now + Duration::from_secs(12))?;
    assert_eq!(s.removed, vec![top(&short.path).ok_or("top")?]);
    assert!(long.path.exists() && restore_dir.exists());

    let s = sweep_expired(&a, now + Duration::from_secs(3602))?;
    assert_eq!(s.removed, vec![top(&long.path).ok_or("top")?]);
    assert!(restore_dir.exists());

    let s = sweep_expired(&a, now + RESTORE_DIR_TIMEOUT + Duration::from_secs(2))?;
    assert_eq!(s.removed, vec![top(&restore_dir).ok_or("top")?]);
    assert_eq!(s.kept, 0);
    assert_eq!(snapshot_root_entries(&a), vec!["README", "notes"]);
    // The tablet is untouched by all of it.
    assert!(a.checksum(ids[0], None)?.rows > 0);
    Ok(())
}
