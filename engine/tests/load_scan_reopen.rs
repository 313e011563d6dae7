//! Loads publish versions that scans and checksums see exactly, before and after reopen.

mod common;

use common::*;
use tabletsnap_engine::{Error, Result, TabletChecksum};

#[test]
fn every_version_reads_back_and_survives_reopen() -> Result<()> {
    let dir = tmp();
    let st = stores(dir.path(), 2);
    let mut expected = Vec::new();
    {
        let e = open(&st)?;
        create(&e, 1)?;
        assert_eq!(e.tablet_meta(1)?.max_version(), 1);
        assert!(e.scan(1, Some(1))?.is_empty());
        let mut all = Vec::new();
        for v in 0..6u64 {
            let r = rows(v, 50 + v as usize);
            let published = e.load(1, &r)?;
            assert_eq!(published, v + 2);
            all.extend(r);
            let scanned = e.scan(1, Some(published))?;
            assert_eq!(scanned, all);
            expected.push((published, e.checksum(1, Some(published))?));
        }
        // Empty load still publishes a version.
        assert_eq!(e.load(1, &[])?, 8);
    }
    let e = open(&st)?;
    assert_eq!(e.recovery_report().tablets_loaded, 1);
    for (v, sum) in &expected {
        assert_eq!(e.checksum(1, Some(*v))?, *sum);
    }
    assert_eq!(e.tablet_meta(1)?.max_version(), 8);
    assert!(matches!(
        e.scan(1, Some(9)),
        Err(Error::VersionNotFound { .. })
    ));
    Ok(())
}

#[test]
fn checksum_is_order_independent_and_content_sensitive() -> Result<()> {
    let dir = tmp();
    let e = open(&stores(dir.path(), 1))?;
    create(&e, 1)?;
    create(&e, 2)?;
    create(&e, 3)?;
    let r = rows(9, 100);
    e.load(1, &r)?;
    let mut rev = r.clone();
    rev.reverse();
    e.load(2, &rev[..40])?;
    e.load(2, &rev[40..])?;
    let mut changed = r.clone();
    changed[17][1] = tabletsnap_engine::Value::Int(123_456);
    e.load(3, &changed)?;
    let a = e.checksum(1, None)?;
    assert_eq!(a, e.checksum(2, None)?);
    assert_ne!(a, e.checksum(3, None)?);
    assert_eq!(a.rows, 100);
    assert_eq!(e.checksum(1, Some(1))?, TabletChecksum::default());
    Ok(())
}

#[test]
fn rows_that_do_not_fit_the_schema_are_refused_and_leave_nothing() -> Result<()> {
    let dir = tmp();
    let st = stores(dir.path(), 1);
    let e = open(&st)?;
    create(&e, 1)?;
    let mut bad = rows(1, 3);
    bad[2][0] = tabletsnap_engine::Value::Varchar("x".into());
    let err = e.load(1, &bad).expect_err("bad row accepted");
    assert!(err.to_string().contains("column id"), "{err}");
    assert_eq!(e.tablet_meta(1)?.max_version(), 1);
    let dat = files_under(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .count();
    assert_eq!(dat, 0);
    Ok(())
}

#[test]
fn a_thousand_versions_on_one_tablet_reopen() -> Result<()> {
    let dir = tmp();
    let st = stores(dir.path(), 1);
    let sum = {
        let e = open(&st)?;
        create(&e, 5)?;
        let batch = e.begin_load(&[5], tabletsnap_engine::Durability::Barrier)?;
        for v in 0..1000u64 {
            let r = rows(v, 3);
            batch.add(5, &[&r])?;
        }
        batch.commit()?;
        e.checksum(5, None)?
    };
    let e = open(&st)?;
    let m = e.tablet_meta(5)?;
    assert_eq!(m.max_version(), 1001);
    assert_eq!(m.rowsets.len(), 1001);
    assert_eq!(e.checksum(5, None)?, sum);
    assert_eq!(sum.rows, 3000);
    Ok(())
}

#[test]
fn ten_thousand_tablets_reopen() -> Result<()> {
    let dir = tmp();
    let st = stores(dir.path(), 2);
    let spec = tabletsnap_engine::WorkloadSpec {
        tablets: 10_000,
        versions: 2,
        rows_per_version: 4,
        segments_per_version: 1,
        first_tablet_id: 100,
        seed: 3,
    };
    let (ids, probe) = {
        let e = open(&st)?;
        let ids = tabletsnap_engine::workload::populate(&e, &spec)?;
        (ids, e.checksum(5_000, None)?)
    };
    let e = open(&st)?;
    assert_eq!(e.tablet_ids(), ids);
    assert_eq!(e.recovery_report().tablets_loaded, 10_000);
    assert!(e.corrupt_tablets().is_empty());
    assert_eq!(e.checksum(5_000, None)?, probe);
    assert_eq!(e.tablet_meta(10_099)?.max_version(), 3);
    // Both stores took a share.
    for s in &st {
        assert!(files_under(&s.join("data")).len() > 1_000);
    }
    Ok(())
}
