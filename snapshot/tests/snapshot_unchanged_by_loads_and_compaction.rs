//! Loads, compaction and GC on the source after a snapshot never change what
//! the snapshot holds; a version compaction merged cannot be captured.

mod common;

use std::time::Duration;

use common::*;
use tabletsnap_engine::workload::{default_schema, generate_rows};
use tabletsnap_snapshot::{make_snapshots, SnapshotRequest};

#[test]
fn later_loads_compaction_and_gc_leave_the_snapshot_intact() -> TestResult {
    let (_a_dir, a, ids) = populated(2)?;
    let b_dir = tempfile::tempdir()?;
    let b = open(b_dir.path())?;
    let id = ids[0];
    let v = 5;
    let expected = a.checksum(id, Some(v))?;
    let info = make_snapshots(
        &a,
        &[SnapshotRequest {
            tablet_id: id,
            version: Some(v),
        }],
        Duration::from_secs(600),
    )?
    .remove(0)?;
    // Change the source every way it can change: new versions, a merge over
    // the snapshot's versions, and GC deleting the merged-away files.
    for s in 0..3 {
        a.load(id, &generate_rows(&default_schema(), 99, s, 30))?;
    }
    a.compact(id, 2, 6, a.tablet_meta(id)?.max_version())?;
    let gc = a.gc_older_than(u64::MAX)?;
    assert!(
        gc.files_removed > 0,
        "GC must have deleted the merged files"
    );
    a.compact(id, 7, 9, a.tablet_meta(id)?.max_version())?;
    a.gc_older_than(u64::MAX)?;
    assert_eq!(restore(&b, &info, 9_001)?, expected);
    Ok(())
}

#[test]
fn snapshot_at_a_merged_version_is_version_already_merged() -> TestResult {
    let (_a_dir, a, ids) = populated(2)?;
    let id = ids[1];
    a.compact(id, 2, 5, a.tablet_meta(id)?.max_version())?;
    let out = make_snapshots(
        &a,
        &[
            SnapshotRequest {
                tablet_id: id,
                version: Some(3),
            },
            SnapshotRequest {
                tablet_id: ids[0],
                version: Some(3),
            },
        ],
        Duration::from_secs(60),
    )?;
    let err = out[0].as_ref().err().ok_or("merged version was captured")?;
    assert!(
        matches!(
            err.engine_error(),
            Some(tabletsnap_engine::Error::VersionAlreadyMerged {
                version: 3,
                start: 2,
                end: 5,
                ..
            })
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&id.to_string()));
    // The other tablet of the batch is unaffected, and the range ends still work.
    assert!(out[1].is_ok());
    for v in [1, 5, 6] {
        let info = make_snapshots(
            &a,
            &[SnapshotRequest {
                tablet_id: id,
                version: Some(v),
            }],
            Duration::from_secs(60),
        )?
        .remove(0)?;
        assert_eq!(info.version, v);
    }
    Ok(())
}
