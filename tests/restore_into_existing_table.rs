//! Restoring into an existing table with the same schema overwrites the
//! restored partitions (and adds missing ones); a different schema, bucket
//! count or partition range is refused before anything changes.

mod common;

use common::*;
use tabletsnap::exec::Session;

/// Home with d.t backed up as `snap` to `r` at `mem://<repo>`; returns the
/// backup timestamp and the checksum at backup time.
fn backed_up(s: &mut Session, repo: &str) -> (String, String) {
    make_db_and_table(s, "d", "t", 2);
    sql(
        s,
        &format!("CREATE REPOSITORY r ON LOCATION \"mem://{repo}\""),
    );
    let sum = checksum(s, "t");
    let h = backup(s, "BACKUP SNAPSHOT d.snap TO r");
    (timestamp(&h), sum)
}

fn restore_into(db: &str, on: &str, ts: &str) -> String {
    format!("RESTORE SNAPSHOT {db}.snap FROM r {on} PROPERTIES (\"backup_timestamp\" = \"{ts}\")")
}

#[test]
fn same_schema_overwrites_the_restored_partitions() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(tmp.path());
    let (ts, at_backup) = backed_up(&mut s, "existing_table_1");
    let rows_at_backup = all_rows(&mut s, "t");
    sql(&mut s, "INSERT INTO t GENERATE 9 ROWS SEED 50");
    sql(
        &mut s,
        "INSERT INTO t VALUES (3, 3, 'new'), (13, 13, 'new')",
    );
    let tablets_before = rows(&mut s, "SHOW TABLET FROM t");

    // Only p1: p1 goes back to the backup, p2 and p3 keep their new rows.
    restore(&mut s, &restore_into("d", "ON (t PARTITION (p1))", &ts));
    let now = all_rows(&mut s, "t");
    let key = |r: &Vec<String>| r[0].parse::<i32>().expect("int key");
    let p1 = |rows: &[Vec<String>]| {
        rows.iter()
            .filter(|r| key(r) < 10)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(p1(&now), p1(&rows_at_backup));
    assert!(
        now.iter().any(|r| key(r) == 13 && r[2] == "new"),
        "p2 kept its new row"
    );
    assert!(
        !now.iter().any(|r| key(r) == 3 && r[2] == "new"),
        "p1 lost its new row"
    );

    // A replication_num other than the table's cannot apply to it: refused
    // before anything changes.
    let before = checksum(&mut s, "t");
    let e = err(
        &mut s,
        &format!(
            "RESTORE SNAPSHOT d.snap FROM r ON (t) PROPERTIES (\"backup_timestamp\" = \"{ts}\", \"replication_num\" = \"2\")"
        ),
    );
    assert_mentions(&e, &["'t'", "replication_num 1", "restore AS a new table"]);
    assert_eq!(checksum(&mut s, "t"), before);

    // Everything: the whole table equals the backup, in place (same tablets).
    restore(&mut s, &restore_into("d", "ON (t)", &ts));
    assert_eq!(checksum(&mut s, "t"), at_backup);
    assert_eq!(all_rows(&mut s, "t"), rows_at_backup);
    let tablets_after = rows(&mut s, "SHOW TABLET FROM t");
    assert_eq!(
        column(&tablets_after, "TabletId"),
        column(&tablets_before, "TabletId")
    );
    // The table is an ordinary table again.
    sql(&mut s, "INSERT INTO t VALUES (4, 4, 'after')");
    assert_eq!(count(&mut s, "t"), rows_at_backup.len() as u64 + 1);
}

#[test]
fn a_missing_partition_is_added() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(tmp.path());
    let (ts, at_backup) = backed_up(&mut s, "existing_table_2");
    sql(
        &mut s,
        "CREATE DATABASE d2; USE d2;
         CREATE TABLE t (k INT, v BIGINT, note VARCHAR(16)) DUPLICATE KEY(k)
         PARTITION BY RANGE(k) (PARTITION p1 VALUES LESS THAN (\"10\"), PARTITION p2 VALUES LESS THAN (\"20\"))
         DISTRIBUTED BY HASH(k) BUCKETS 2 PROPERTIES (\"replication_num\" = \"1\");
         INSERT INTO t VALUES (1, 1, 'gone')",
    );
    restore(&mut s, &restore_into("d2", "", &ts));
    assert_eq!(
        column(&rows(&mut s, "SHOW PARTITIONS FROM d2.t"), "PartitionName"),
        vec!["p1", "p2", "p3"]
    );
    assert_eq!(checksum(&mut s, "d2.t"), at_backup);
}

/// A refused restore into d2.t: the message names the table and `needles`,
/// no job starts, and d2.t is unchanged.
#[track_caller]
fn refused(s: &mut Session, create: &str, ts: &str, needles: &[&str]) {
    sql(s, "DROP DATABASE IF EXISTS d2; CREATE DATABASE d2; USE d2");
    sql(s, create);
    sql(
        s,
        "INSERT INTO t (k, v, note) VALUES (1, 1, 'mine'), (15, 15, 'mine')",
    );
    let before = checksum(s, "t");
    let parts = rows(s, "SHOW PARTITIONS FROM t");
    let jobs = s.started_jobs().len();
    let e = err(s, &restore_into("d2", "ON (t)", ts));
    assert_mentions(&e, &["'t'"]);
    assert_mentions(&e, needles);
    assert_eq!(s.started_jobs().len(), jobs);
    assert!(rows(s, "SHOW RESTORE FROM d2").rows.is_empty());
    assert_eq!(checksum(s, "t"), before);
    assert_eq!(rows(s, "SHOW PARTITIONS FROM t"), parts);
    sql(
        s,
        "INSERT INTO t (k, v, note) VALUES (2, 2, 'still loadable')",
    );
}

#[test]
fn a_different_shape_is_refused_before_anything_changes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(tmp.path());
    let (ts, _) = backed_up(&mut s, "existing_table_3");
    let part = "PARTITION BY RANGE(k) (PARTITION p1 VALUES LESS THAN (\"10\"), PARTITION p2 VALUES LESS THAN (\"20\"), PARTITION p3 VALUES LESS THAN (\"30\"))";
    let tail = "PROPERTIES (\"replication_num\" = \"1\")";
    // Another column type.
    refused(
        &mut s,
        &format!("CREATE TABLE t (k INT, v INT, note VARCHAR(16)) DUPLICATE KEY(k) {part} DISTRIBUTED BY HASH(k) BUCKETS 2 {tail}"),
        &ts,
        &["schema"],
    );
    // An extra column.
    refused(
        &mut s,
        &format!("CREATE TABLE t (k INT, v BIGINT, note VARCHAR(16), extra INT) DUPLICATE KEY(k) {part} DISTRIBUTED BY HASH(k) BUCKETS 2 {tail}"),
        &ts,
        &["schema"],
    );
    // Other buckets.
    refused(
        &mut s,
        &format!("CREATE TABLE t (k INT, v BIGINT, note VARCHAR(16)) DUPLICATE KEY(k) {part} DISTRIBUTED BY HASH(k) BUCKETS 3 {tail}"),
        &ts,
        &["bucket"],
    );
    // A partition with another range.
    refused(
        &mut s,
        &format!("CREATE TABLE t (k INT, v BIGINT, note VARCHAR(16)) DUPLICATE KEY(k)
                  PARTITION BY RANGE(k) (PARTITION p1 VALUES LESS THAN (\"10\"), PARTITION p2 VALUES LESS THAN (\"25\"), PARTITION p3 VALUES LESS THAN (\"30\"))
                  DISTRIBUTED BY HASH(k) BUCKETS 2 {tail}"),
        &ts,
        &["range", "p2"],
    );
    // A partition of the backup overlapping another one of the table.
    refused(
        &mut s,
        &format!("CREATE TABLE t (k INT, v BIGINT, note VARCHAR(16)) DUPLICATE KEY(k)
                  PARTITION BY RANGE(k) (PARTITION p1 VALUES LESS THAN (\"10\"), PARTITION p2 VALUES LESS THAN (\"20\"), PARTITION q VALUES LESS THAN (\"40\"))
                  DISTRIBUTED BY HASH(k) BUCKETS 2 {tail}"),
        &ts,
        &["p3", "overlaps"],
    );
}
