//! One failing tablet in a batch leaves no dir behind and names itself and
//! the cause; the other tablets' snapshots are complete.

mod common;

use std::time::Duration;

use common::*;
use tabletsnap_snapshot::{make_snapshots, Error, SnapshotRequest};

#[test]
fn missing_tablet_and_missing_file_fail_alone() -> TestResult {
    let (_dir, a, ids) = populated(4)?;
    // Lose a segment file of one tablet, as a bad disk would: the link fails
    // after other links of that tablet already exist.
    let victim = ids[2];
    let meta = a.tablet_meta(victim)?;
    let last = meta.rowsets.last().ok_or("no rowsets")?;
    std::fs::remove_file(a.tablet(victim)?.dir().join(last.segment_file_name(1)))?;
    let mut reqs: Vec<SnapshotRequest> = ids.iter().copied().map(SnapshotRequest::newest).collect();
    reqs.push(SnapshotRequest {
        tablet_id: 424_242,
        version: None,
    });
    let out = make_snapshots(&a, &reqs, Duration::from_secs(60))?;
    assert_eq!(out.len(), 5);
    let mut top = None;
    for (r, o) in reqs.iter().zip(&out) {
        match o {
            Ok(info) => {
                assert!(r.tablet_id != victim && r.tablet_id != 424_242);
                assert!(info.path.join(info.meta_file).exists());
                top = info
                    .path
                    .parent()
                    .and_then(|p| p.parent())
                    .map(|p| p.to_path_buf());
            }
            Err(e) => {
                assert!(matches!(e, Error::Tablet { tablet_id, .. } if *tablet_id == r.tablet_id));
                assert!(e.to_string().contains(&r.tablet_id.to_string()), "{e}");
            }
        }
    }
    assert!(out[2]
        .as_ref()
        .err()
        .is_some_and(|e| e.to_string().contains("No such file")));
    assert!(matches!(
        out[4].as_ref().err().and_then(|e| e.engine_error()),
        Some(tabletsnap_engine::Error::TabletNotFound(424_242))
    ));
    let top = top.ok_or("no success")?;
    let mut left: Vec<String> = std::fs::read_dir(&top)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    left.sort();
    let mut want: Vec<String> = [ids[0], ids[1], ids[3]]
        .iter()
        .map(|i| i.to_string())
        .collect();
    want.sort();
    assert_eq!(left, want);
    Ok(())
}

#[test]
fn a_batch_where_every_tablet_fails_leaves_nothing() -> TestResult {
    let (_dir, a, _ids) = populated(1)?;
    let out = make_snapshots(
        &a,
        &[SnapshotRequest {
            tablet_id: 1,
            version: None,
        }],
        Duration::from_secs(60),
    )?;
    assert!(out[0].is_err());
    assert!(snapshot_root_entries(&a).is_empty());
    Ok(())
}
