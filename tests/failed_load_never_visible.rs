//! A load that one backend refused is never visible: the catalog version is
//! not bumped, and the next INSERT publishes at the coordinator's version on
//! every tablet, replacing what the backends that did accept the failed load
//! left behind. Reads show exactly the acknowledged rows.
#![cfg(feature = "failpoints")]

mod common;

use common::*;

const FIRST: &str =
    "(1, 1, 'a'), (2, 2, 'b'), (11, 3, 'c'), (12, 4, 'd'), (21, 5, 'e'), (22, 6, 'f')";
const LOST: &str =
    "(3, 100, 'lost'), (4, 101, 'lost'), (13, 102, 'lost'), (14, 103, 'lost'), (23, 104, 'lost'), (24, 105, 'lost')";
const SECOND: &str =
    "(5, 7, 'g'), (6, 8, 'h'), (15, 9, 'i'), (16, 10, 'j'), (25, 11, 'k'), (26, 12, 'l')";
const THIRD: &str = "(7, 13, 'm'), (17, 14, 'n'), (27, 15, 'o')";

/// (partition, tablet id, backend) of every tablet of `db.t`.
fn tablets(s: &tabletsnap::exec::Session, db: &str, t: &str) -> Vec<(u64, u64, u32)> {
    let cat = s.cluster().catalog();
    let table = cat.table(db, t).expect("table");
    table
        .partitions
        .iter()
        .flat_map(|p| {
            p.tablets.iter().flat_map(move |tab| {
                tab.replicas
                    .iter()
                    .map(move |be| (p.visible_version, tab.id, *be))
            })
        })
        .collect()
}

/// Every replica's newest version equals its partition's visible version.
fn assert_no_version_above_visible(s: &tabletsnap::exec::Session, db: &str, t: &str) {
    for (visible, tid, be) in tablets(s, db, t) {
        let meta = s
            .cluster()
            .local_backend(be)
            .expect("backend")
            .engine()
            .tablet_meta(tid)
            .expect("tablet meta");
        assert_eq!(
            meta.max_version(),
            visible,
            "tablet {tid} on backend {be} holds a version the catalog never published"
        );
    }
}

#[test]
fn failed_load_on_one_backend_is_never_read() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    let mut s = open(&home);
    sql(&mut s, "CREATE DATABASE d; USE d");
    make_table(&mut s, "t", 1);
    make_table(&mut s, "expected", 1);
    sql(&mut s, &format!("INSERT INTO t VALUES {FIRST}"));
    sql(&mut s, &format!("INSERT INTO expected VALUES {FIRST}"));

    // Fail one tablet's load: its backend refuses the whole batch, the other
    // backends accept theirs.
    let all = tablets(&s, "d", "t");
    let (_, victim, victim_be) = all[0];
    assert!(
        all.iter().any(|(_, _, be)| *be != victim_be),
        "the table must span more than one backend"
    );
    fail::cfg("engine::load::tablet", &format!("return({victim})")).expect("fail point");
    let msg = err(&mut s, &format!("INSERT INTO t VALUES {LOST}"));
    fail::remove("engine::load::tablet");
    assert_mentions(&msg, &["fail point"]);
    assert_eq!(
        count(&mut s, "t"),
        6,
        "a failed INSERT changed what readers see"
    );
    let leftovers = all.iter().any(|(visible, tid, be)| {
        s.cluster()
            .local_backend(*be)
            .ok()
            .and_then(|b| b.engine().tablet_meta(*tid).ok())
            .is_some_and(|m| m.max_version() > *visible)
    });
    assert!(
        leftovers,
        "the other backends should hold the failed load's unpublished version"
    );

    for rows in [SECOND, THIRD] {
        sql(&mut s, &format!("INSERT INTO t VALUES {rows}"));
        sql(&mut s, &format!("INSERT INTO expected VALUES {rows}"));
        assert_eq!(all_rows(&mut s, "t"), all_rows(&mut s, "expected"));
        assert_eq!(checksum(&mut s, "t"), checksum(&mut s, "expected"));
        assert_no_version_above_visible(&s, "d", "t");
    }
    assert_eq!(count(&mut s, "t"), 15);

    // And after a restart (recovery on open).
    let mut s = reopen(s, &home);
    sql(&mut s, "USE d");
    assert_eq!(all_rows(&mut s, "t"), all_rows(&mut s, "expected"));
    assert_eq!(checksum(&mut s, "t"), checksum(&mut s, "expected"));
    // The replaced rowsets' files were freed: each tablet dir holds its meta
    // and the files of its live rowsets, nothing else.
    for (_, tid, be) in tablets(&s, "d", "t") {
        let engine = s.cluster().local_backend(be).expect("backend").engine();
        let t = engine.tablet(tid).expect("tablet");
        let m = t.meta();
        let live = m.rowsets.iter().map(|r| r.segments.len()).sum::<usize>();
        let on_disk = std::fs::read_dir(t.dir())
            .expect("tablet dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "dat"))
            })
            .count();
        assert_eq!(on_disk, live, "tablet {tid}: replaced files leaked");
    }
}
