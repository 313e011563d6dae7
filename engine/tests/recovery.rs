//! Recovery on open removes what no committed meta references and reports
//! corrupt metas by tablet and path without dropping them.

mod common;

use common::*;
use tabletsnap_engine::{Durability, Error, Result};

#[test]
fn crash_between_segment_write_and_meta_commit_leaves_previous_version() -> Result<()> {
    let dir = tmp();
    let st = stores(dir.path(), 1);
    let before = {
        let e = open(&st)?;
        create(&e, 1)?;
        e.load(1, &rows(1, 10))?;
        let before = e.checksum(1, None)?;
        let batch = e.begin_load(&[1], Durability::Barrier)?;
        let r = rows(2, 10);
        batch.add(1, &[&r[..5], &r[5..]])?;
        // The process dies here: no commit, no cleanup.
        std::mem::forget(batch);
        let dat = files_under(dir.path())
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "dat"))
            .count();
        assert_eq!(
            dat, 3,
            "the uncommitted segments are on disk before the crash"
        );
        before
    };
    let e = open(&st)?;
    assert_eq!(e.tablet_meta(1)?.max_version(), 2);
    assert_eq!(e.checksum(1, None)?, before);
    assert_eq!(e.recovery_report().orphan_files_removed, 2);
    let dat = files_under(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .count();
    assert_eq!(dat, 1);
    // The next load gets the version the lost one would have had.
    assert_eq!(e.load(1, &rows(3, 2))?, 3);
    Ok(())
}

#[test]
fn temp_files_and_uncommitted_tablet_dirs_are_removed() -> Result<()> {
    let dir = tmp();
    let st = stores(dir.path(), 1);
    let tablet_dir = {
        let e = open(&st)?;
        create(&e, 1)?;
        e.load(1, &rows(1, 10))?;
        e.tablet(1)?.dir().to_path_buf()
    };
    std::fs::write(tablet_dir.join("tablet.meta.tmp"), b"half").expect("write");
    let ghost = st[0].join("data/2/2/77");
    std::fs::create_dir_all(&ghost).expect("mkdir");
    std::fs::write(ghost.join("00000000000000000000000000000001_0.dat"), b"x").expect("write");
    let e = open(&st)?;
    let rep = e.recovery_report();
    assert_eq!(rep.temp_files_removed, 1);
    assert_eq!(rep.uncommitted_tablets_removed, vec![ghost.clone()]);
    assert!(!ghost.exists());
    assert!(!tablet_dir.join("tablet.meta.tmp").exists());
    assert_eq!(e.tablet_ids(), vec![1]);
    Ok(())
}

#[test]
fn corrupt_meta_is_reported_by_tablet_and_path_and_kept() -> Result<()> {
    let dir = tmp();
    let st = stores(dir.path(), 1);
    let meta_path = {
        let e = open(&st)?;
        create(&e, 1)?;
        create(&e, 2)?;
        e.load(1, &rows(1, 10))?;
        e.load(2, &rows(2, 10))?;
        e.tablet(2)?.meta_path()
    };
    let mut bytes = std::fs::read(&meta_path).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&meta_path, &bytes).expect("write");
    let e = open(&st)?;
    assert_eq!(e.tablet_ids(), vec![1]);
    let bad = e.corrupt_tablets();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].0, 2);
    assert!(
        bad[0].1.contains(&meta_path.display().to_string()),
        "{}",
        bad[0].1
    );
    match e.scan(2, None) {
        Err(Error::TabletCorrupt {
            tablet_id: 2, path, ..
        }) => assert_eq!(path, meta_path),
        other => panic!("expected TabletCorrupt, got {other:?}"),
    }
    // Nothing of the corrupt tablet was deleted.
    assert_eq!(std::fs::read(&meta_path).expect("read"), bytes);
    assert_eq!(files_under(meta_path.parent().expect("dir")).len(), 2);
    Ok(())
}

#[test]
fn a_flipped_byte_in_a_segment_is_an_error_naming_the_file() -> Result<()> {
    let dir = tmp();
    let e = open(&stores(dir.path(), 1))?;
    create(&e, 1)?;
    e.load(1, &rows(1, 100))?;
    let m = e.tablet_meta(1)?;
    let path = e.tablet(1)?.dir().join(m.rowsets[1].segment_file_name(0));
    let mut b = std::fs::read(&path).expect("read");
    b[10] ^= 1;
    std::fs::write(&path, &b).expect("write");
    let err = e.scan(1, None).expect_err("corruption unnoticed");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    std::fs::write(&path, &b[..b.len() - 3]).expect("write");
    let err = e.checksum(1, None).expect_err("truncation unnoticed");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    Ok(())
}

#[test]
fn dropped_tablets_are_gone_after_reopen() -> Result<()> {
    let dir = tmp();
    let st = stores(dir.path(), 1);
    {
        let e = open(&st)?;
        create(&e, 1)?;
        create(&e, 2)?;
        e.load(1, &rows(1, 10))?;
        e.drop_tablet(1)?;
        assert!(matches!(e.scan(1, None), Err(Error::TabletNotFound(1))));
    }
    let e = open(&st)?;
    assert_eq!(e.tablet_ids(), vec![2]);
    assert!(files_under(&st[0].join("trash")).is_empty());
    Ok(())
}
