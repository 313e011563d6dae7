//! Overwrite: the same schema replaces the tablet (old files collected after
//! the new meta is durable); a different schema is refused with the old
//! tablet untouched; without overwrite an existing tablet is refused.

mod common;

use std::time::Duration;

use common::*;
use tabletsnap_engine::{Column, ColumnType, CreateTabletRequest, Schema};
use tabletsnap_snapshot::{load_snapshot, make_snapshots, Error, InstallOutcome, SnapshotRequest};

#[test]
fn same_schema_replaces_other_schema_refused() -> TestResult {
    let (_a_dir, a, ids) = populated(2)?;
    let snap = |id: u64, v: u64| -> Result<_, Box<dyn std::error::Error>> {
        Ok(make_snapshots(
            &a,
            &[SnapshotRequest {
                tablet_id: id,
                version: Some(v),
            }],
            Duration::from_secs(60),
        )?
        .remove(0)?)
    };
    let old = snap(ids[0], 6)?;
    let new = snap(ids[1], 4)?;
    let b_dir = tempfile::tempdir()?;
    let b = open(b_dir.path())?;
    let target = 3_000;
    restore(&b, &old, target)?;
    let old_files: Vec<_> = b
        .tablet_meta(target)?
        .rowsets
        .iter()
        .flat_map(|r| r.files().map(|(n, _)| n).collect::<Vec<_>>())
        .collect();
    let tdir = b.tablet(target)?.dir().to_path_buf();

    let dir = download(&b, &new, target)?;
    let e = load_snapshot(&b, &dir, &load_req(target, new.schema_hash, false))
        .err()
        .ok_or("install over an existing tablet without overwrite")?;
    assert!(e.to_string().contains("already exists"), "{e}");

    let out = load_snapshot(&b, &dir, &load_req(target, new.schema_hash, true))?;
    assert!(matches!(out, InstallOutcome::Installed { .. }));
    assert_eq!(b.checksum(target, None)?, a.checksum(ids[1], Some(4))?);
    assert_eq!(b.tablet_meta(target)?.max_version(), 4);
    for f in &old_files {
        assert!(!tdir.join(f).exists(), "old file {f} was not collected");
    }
    // Re-running is a no-op.
    let again = load_snapshot(&b, &dir, &load_req(target, new.schema_hash, true))?;
    assert_eq!(again, InstallOutcome::AlreadyInstalled);

    // A tablet with another schema is never overwritten.
    let other = Schema::new(vec![Column::new("k", ColumnType::Int).key()]);
    let hash = new.schema_hash;
    b.create_tablet(CreateTabletRequest {
        table_id: 1,
        partition_id: 1,
        tablet_id: 3_001,
        schema_hash: hash,
        schema: other,
    })?;
    b.load(3_001, &[vec![tabletsnap_engine::Value::Int(5)]])?;
    let before = b.checksum(3_001, None)?;
    let dir = download(&b, &new, 3_001)?;
    let e = load_snapshot(&b, &dir, &load_req(3_001, hash, true))
        .err()
        .ok_or("schema change accepted")?;
    assert!(
        matches!(&e, Error::SchemaMismatch { tablet_id: 3_001, dir: d, .. } if *d == dir),
        "{e}"
    );
    assert_eq!(b.checksum(3_001, None)?, before);
    drop(b);
    let b = open(b_dir.path())?;
    assert_eq!(b.checksum(3_001, None)?, before);
    assert_eq!(b.checksum(target, None)?, a.checksum(ids[1], Some(4))?);
    Ok(())
}
