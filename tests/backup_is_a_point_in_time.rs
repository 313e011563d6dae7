//! A backup holds each partition at its visible version when BACKUP was
//! issued: inserts while the job snapshots and uploads never change it.
#![cfg(feature = "failpoints")]

mod common;

use common::*;

#[test]
fn inserts_during_the_backup_are_not_in_it() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(&tmp.path().join("home"));
    make_db_and_table(&mut s, "d", "t", 3);
    sql(
        &mut s,
        "CREATE REPOSITORY r ON LOCATION \"mem://point_in_time\"",
    );
    let at_backup = checksum(&mut s, "t");
    let rows_at_backup = all_rows(&mut s, "t");
    let paused = ["SNAPSHOTING", "UPLOAD_SNAPSHOT", "UPLOADING", "UPLOAD_INFO"];
    for st in paused {
        pause("backup", st);
    }
    sql(&mut s, "BACKUP SNAPSHOT d.pit TO r ON (t)");
    let h = last_job(&s);
    for (i, st) in paused.into_iter().enumerate() {
        wait_for_state(&h, st);
        // Loads go on while a backup runs: new versions on every partition.
        sql(
            &mut s,
            &format!("INSERT INTO t GENERATE 9 ROWS SEED {}", 100 + i),
        );
        sql(&mut s, "INSERT INTO t VALUES (15, 0, 'late')");
        unpause("backup", st);
    }
    assert_eq!(wait(&h), "FINISHED");
    let now = checksum(&mut s, "t");
    assert_ne!(now, at_backup, "the inserts changed the table");
    restore(&mut s, &restore_stmt(&h, "r", "ON (t AS back)", ""));
    assert_eq!(checksum(&mut s, "back"), at_backup);
    assert_eq!(all_rows(&mut s, "back"), rows_at_backup);
    assert_eq!(checksum(&mut s, "t"), now);
}
