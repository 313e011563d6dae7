//! A batch installed in parts (load_snapshots_in_parts) is verified whole
//! before any part becomes visible: a damaged file in the last part leaves
//! every tablet absent, and the undamaged batch installs every tablet equal
//! to its source, idempotently.

mod common;

use std::time::Duration;

use common::*;
use tabletsnap_snapshot::{
    load_snapshots_in_parts, make_snapshots, Error, InstallOutcome, SnapshotRequest, Verify,
};

#[test]
fn a_damaged_last_part_keeps_every_part_invisible() -> TestResult {
    let (_a_dir, a, ids) = populated(5)?;
    let reqs: Vec<SnapshotRequest> = ids.iter().copied().map(SnapshotRequest::newest).collect();
    let infos: Vec<_> = make_snapshots(&a, &reqs, Duration::from_secs(60))?
        .into_iter()
        .collect::<Result<_, _>>()?;
    let b_dir = tempfile::tempdir()?;
    let b = open(b_dir.path())?;
    let mut loads = Vec::new();
    for (i, info) in infos.iter().enumerate() {
        let target = 9_000 + i as u64;
        loads.push((
            download(&b, info, target)?,
            load_req(target, info.schema_hash, false),
        ));
    }
    // Flip a byte of the last tablet: it falls in the third part of two.
    let (last_dir, _) = loads.last().ok_or("no loads")?;
    let last = infos.last().ok_or("no infos")?;
    let file = last_dir.join(&last.files[0].name);
    let good = std::fs::read(&file)?;
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0x01;
    std::fs::write(&file, &bad)?;
    let e = load_snapshots_in_parts(&b, &loads, Verify::Full, 2)
        .err()
        .ok_or("a damaged batch was installed")?;
    assert!(matches!(e, Error::ChecksumMismatch { .. }), "{e}");
    for (_, r) in &loads {
        assert!(
            b.tablet(r.tablet_id).is_err(),
            "tablet {} visible",
            r.tablet_id
        );
    }

    std::fs::write(&file, &good)?;
    let out = load_snapshots_in_parts(&b, &loads, Verify::Full, 2)?;
    assert_eq!(out.len(), loads.len());
    assert!(out
        .iter()
        .all(|o| matches!(o, InstallOutcome::Installed { .. })));
    for ((_, r), src) in loads.iter().zip(&ids) {
        assert_eq!(b.checksum(r.tablet_id, None)?, a.checksum(*src, None)?);
    }
    let again = load_snapshots_in_parts(&b, &loads, Verify::Full, 2)?;
    assert!(again.iter().all(|o| *o == InstallOutcome::AlreadyInstalled));
    Ok(())
}
