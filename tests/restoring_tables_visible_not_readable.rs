//! Tables and partitions a restore creates are visible (SHOW TABLES,
//! SHOW PARTITIONS) but not readable until FINISHED: SELECT and CHECKSUM fail
//! with a clear error, INSERT and DROP are refused. An existing table being
//! overwritten stays readable with its old data until the commit fences it.
#![cfg(feature = "failpoints")]

mod common;

use common::*;

#[test]
fn new_tables_are_visible_but_unreadable_until_finished() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(&tmp.path().join("home"));
    make_db_and_table(&mut s, "d", "t", 2);
    sql(
        &mut s,
        "CREATE REPOSITORY r ON LOCATION \"mem://visible_not_readable\"",
    );
    let sum = checksum(&mut s, "t");
    let b = backup(&mut s, "BACKUP SNAPSHOT d.snap TO r");
    pause("restore", "DOWNLOADING");
    sql(&mut s, &restore_stmt(&b, "r", "ON (t AS fresh)", ""));
    let h = last_job(&s);
    wait_for_state(&h, "DOWNLOADING");
    assert_eq!(
        column(&rows(&mut s, "SHOW TABLES"), "Tables_in_d"),
        vec!["fresh", "t"]
    );
    assert_eq!(
        column(&rows(&mut s, "SHOW PARTITIONS FROM fresh"), "PartitionName"),
        vec!["p1", "p2", "p3"]
    );
    let job = h.id.to_string();
    for stmt in [
        "SELECT COUNT(*) FROM fresh",
        "SELECT * FROM fresh LIMIT 1",
        "CHECKSUM TABLE fresh",
    ] {
        assert_mentions(
            &err(&mut s, stmt),
            &["fresh", "being restored", &job, "not readable"],
        );
    }
    assert_mentions(
        &err(&mut s, "INSERT INTO fresh VALUES (1, 1, 'x')"),
        &["fresh", "being restored", "refused"],
    );
    assert_mentions(
        &err(&mut s, "DROP TABLE fresh"),
        &["fresh", "being restored"],
    );
    // The source table is untouched and still readable.
    assert_eq!(checksum(&mut s, "t"), sum);
    unpause("restore", "DOWNLOADING");
    assert_eq!(wait(&h), "FINISHED");
    assert_eq!(checksum(&mut s, "fresh"), sum);
    sql(&mut s, "INSERT INTO fresh VALUES (1, 1, 'x')");
}

#[test]
fn an_overwritten_table_is_fenced_only_while_committing() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(&tmp.path().join("home"));
    make_db_and_table(&mut s, "d", "t", 2);
    sql(
        &mut s,
        "CREATE REPOSITORY r ON LOCATION \"mem://fenced_while_committing\"",
    );
    let at_backup = checksum(&mut s, "t");
    let b = backup(&mut s, "BACKUP SNAPSHOT d.snap TO r");
    sql(&mut s, "INSERT INTO t GENERATE 6 ROWS SEED 99");
    let current = checksum(&mut s, "t");
    pause("restore", "DOWNLOADING");
    pause("restore", "COMMITTING");
    sql(&mut s, &restore_stmt(&b, "r", "ON (t)", ""));
    let h = last_job(&s);
    wait_for_state(&h, "DOWNLOADING");
    assert_eq!(
        checksum(&mut s, "t"),
        current,
        "old data readable while downloading"
    );
    unpause("restore", "DOWNLOADING");
    wait_for_state(&h, "COMMITTING");
    assert_mentions(&err(&mut s, "SELECT COUNT(*) FROM t"), &["being restored"]);
    unpause("restore", "COMMITTING");
    assert_eq!(wait(&h), "FINISHED");
    assert_eq!(checksum(&mut s, "t"), at_backup);
}
