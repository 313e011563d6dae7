//! Loads publish exactly the version the caller (the coordinator) chooses:
//! leftovers at or above it are replaced in the same meta swap and their
//! files freed, gaps are refused naming the tablet, and compaction never
//! merges past the caller's visible version.

mod common;

use common::*;
use tabletsnap_engine::{Durability, Error, Result};

fn dat_files(dir: &std::path::Path) -> usize {
    files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .count()
}

#[test]
fn a_version_at_or_below_the_newest_replaces_the_unpublished_rowsets() -> Result<()> {
    let dir = tmp();
    let st = stores(dir.path(), 1);
    let e = open(&st)?;
    create(&e, 1)?;
    e.load_at(1, 2, &rows(1, 10))?;
    let visible = e.checksum(1, Some(2))?;
    // Two loads the coordinator never made visible (they failed elsewhere).
    e.load_at(1, 3, &rows(2, 10))?;
    e.load_at(1, 4, &rows(3, 10))?;
    assert_eq!(dat_files(dir.path()), 3);
    // The next load at visible + 1 replaces both.
    let b = e.begin_load_at(&[(1, 3)], Durability::Barrier)?;
    let r = rows(4, 7);
    assert_eq!(b.add(1, &[&r])?, 3);
    assert_eq!(b.commit()?.get(&1), Some(&3));
    let m = e.tablet_meta(1)?;
    assert_eq!(m.max_version(), 3);
    assert_eq!(m.num_rows(), 17);
    assert!(
        m.stale_rowsets.is_empty(),
        "replaced rowsets are freed at once"
    );
    assert_eq!(dat_files(dir.path()), 2, "replaced files are deleted");
    assert_eq!(e.checksum(1, Some(2))?, visible);
    let mut want = rows(1, 10);
    want.extend(rows(4, 7));
    let mut got = e.scan(1, Some(3))?;
    let key = |r: &Vec<tabletsnap_engine::Value>| format!("{r:?}");
    want.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(got, want);
    drop(e);
    let e = open(&st)?;
    assert_eq!(e.tablet_meta(1)?.max_version(), 3);
    assert_eq!(e.checksum(1, Some(3))?.rows, 17);
    Ok(())
}

#[test]
fn a_replaced_rowset_a_reader_pins_is_freed_only_after_the_reader() -> Result<()> {
    let dir = tmp();
    let e = open(&stores(dir.path(), 1))?;
    create(&e, 1)?;
    e.load_at(1, 2, &rows(1, 5))?;
    e.load_at(1, 3, &rows(2, 5))?;
    let cap = e.capture(1, Some(3))?;
    e.load_at(1, 3, &rows(3, 5))?;
    assert_eq!(e.tablet_meta(1)?.stale_rowsets.len(), 1, "pinned: kept");
    for (name, _, _) in cap.files() {
        assert!(cap.dir.join(name).exists());
    }
    drop(cap);
    assert_eq!(e.gc_older_than(0)?.rowsets_removed, 1);
    assert_eq!(dat_files(dir.path()), 2);
    Ok(())
}

#[test]
fn a_gap_or_a_merged_version_is_refused_naming_the_tablet() -> Result<()> {
    let dir = tmp();
    let e = open(&stores(dir.path(), 1))?;
    create(&e, 7)?;
    for v in 2..=5 {
        e.load_at(7, v, &rows(v, 3))?;
    }
    let err = e.load_at(7, 7, &rows(9, 3)).expect_err("gap accepted");
    assert!(
        matches!(
            err,
            Error::VersionRefused {
                tablet_id: 7,
                version: 7,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("tablet 7"), "{err}");
    assert!(matches!(
        e.begin_load_at(&[(7, 7)], Durability::Barrier),
        Err(Error::VersionRefused { .. })
    ));
    // Version 1 is the empty rowset [0-1] every tablet starts with.
    assert!(matches!(
        e.load_at(7, 1, &[]),
        Err(Error::VersionRefused { version: 1, .. })
    ));
    e.compact(7, 2, 4, 5)?;
    let err = e
        .load_at(7, 3, &rows(9, 3))
        .expect_err("inside a merged rowset");
    assert!(err.to_string().contains("[2-4]"), "{err}");
    // Nothing was written by the refused loads.
    assert_eq!(e.tablet_meta(7)?.max_version(), 5);
    e.gc_older_than(u64::MAX)?;
    assert_eq!(dat_files(dir.path()), 2);
    // Listing a tablet twice with different versions is refused too.
    assert!(matches!(
        e.begin_load_at(&[(7, 6), (7, 5)], Durability::Barrier),
        Err(Error::InvalidArgument(_))
    ));
    Ok(())
}

#[test]
fn compaction_never_merges_past_the_visible_version() -> Result<()> {
    let dir = tmp();
    let e = open(&stores(dir.path(), 1))?;
    create(&e, 1)?;
    for v in 2..=5 {
        e.load_at(1, v, &rows(v, 3))?;
    }
    // The coordinator has made only version 4 visible: 5 may be replaced.
    let err = e
        .compact(1, 4, 5, 4)
        .expect_err("merged an unpublished version");
    assert!(err.to_string().contains("visible version 4"), "{err}");
    e.compact(1, 2, 4, 4)?;
    e.load_at(1, 5, &rows(50, 3))?;
    assert_eq!(e.checksum(1, Some(5))?.rows, 12);
    Ok(())
}
