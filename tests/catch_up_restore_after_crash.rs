//! A process death at every state of a catch-up restore and right after each
//! of its COMMITTING commit points, then a restart: the job resumes and ends
//! with the target checksum-equal to the source, nothing left behind.
#![cfg(feature = "failpoints")]

mod common;

use std::path::PathBuf;

use common::*;
use tabletsnap::job::crash;

fn crash_catch_up_at(fp: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let loc = file_location(&tmp.path().join("repo"));
    let mut a = source_with_repository(&tmp.path().join("a"), &loc, 3);
    let home = tmp.path().join("b");
    let mut b = target_with_repository(&home, &loc);
    let ts1 = timestamp(&backup(&mut a, "BACKUP SNAPSHOT d.snap1 TO r ON (t)"));
    restore(
        &mut b,
        &format!(
            "RESTORE SNAPSHOT d.snap1 FROM r ON (t) PROPERTIES (\"backup_timestamp\" = \"{ts1}\")"
        ),
    );
    let before = checksum(&mut b, "t");
    sql(&mut a, "INSERT INTO t VALUES (1, 1, 'x'), (15, 2, 'y')");
    sql(&mut a, "INSERT INTO t VALUES (2, 3, 'z')");
    let ts2 = timestamp(&backup(&mut a, "BACKUP SNAPSHOT d.snap2 TO r ON (t)"));

    fail::cfg(fp, "return(crash)").expect("fail point");
    sql(
        &mut b,
        &format!(
            "RESTORE SNAPSHOT d.snap2 FROM r ON (t) PROPERTIES (\"backup_timestamp\" = \"{ts2}\", \"catch_up\" = \"true\")"
        ),
    );
    let h = last_job(&b);
    h.wait();
    fail::remove(fp);
    assert!(crash::crashed(), "{fp} did not crash the job");
    crash::recover();
    let id = h.id;
    drop(h);
    let mut b = reopen(b, &home);
    sql(&mut b, "USE d");
    let h = b.cluster().jobs().get(id).expect("the job survives");
    assert_eq!(wait(&h), "FINISHED", "crash at {fp}: {:?}", h.record());
    assert_ne!(checksum(&mut b, "t"), before);
    assert_eq!(
        checksum(&mut b, "t"),
        checksum(&mut a, "t"),
        "crash at {fp}"
    );
    assert_eq!(
        all_rows(&mut b, "t"),
        all_rows(&mut a, "t"),
        "crash at {fp}"
    );
    assert_eq!(snapshot_leftovers(&home), Vec::<PathBuf>::new(), "{fp}");
    // The record now names the new version: a further catch-up chains on.
    sql(&mut a, "INSERT INTO t VALUES (3, 4, 'w')");
    let ts3 = timestamp(&backup(&mut a, "BACKUP SNAPSHOT d.snap3 TO r ON (t)"));
    restore(
        &mut b,
        &format!(
            "RESTORE SNAPSHOT d.snap3 FROM r ON (t) PROPERTIES (\"backup_timestamp\" = \"{ts3}\", \"catch_up\" = \"true\")"
        ),
    );
    assert_eq!(
        checksum(&mut b, "t"),
        checksum(&mut a, "t"),
        "crash at {fp}"
    );
}

#[test]
fn catch_up_resumes_after_a_crash_anywhere() {
    let _serial = serial();
    let mut points: Vec<String> = RESTORE_STATES
        .iter()
        .map(|s| fail_point("restore", s))
        .collect();
    points.extend(
        [
            "job::restore::after_install",
            "job::restore::after_publish",
            "job::restore::after_release",
        ]
        .map(String::from),
    );
    for fp in &points {
        crash_catch_up_at(fp);
    }
}
