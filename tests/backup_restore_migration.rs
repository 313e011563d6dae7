//! Migration: two homes that create the same repository (name and location)
//! back up on one and restore on the other, with equal checksums, for a
//! `file://` and a `mem://` location.

mod common;

use common::*;

fn migrate(location: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut a = open(&tmp.path().join("a"));
    make_db_and_table(&mut a, "sales", "orders", 3);
    sql(
        &mut a,
        "INSERT INTO orders VALUES (1, 100, 'one'), (25, 2500, 'z')",
    );
    sql(
        &mut a,
        &format!("CREATE REPOSITORY shared ON LOCATION \"{location}\""),
    );
    let source_sum = checksum(&mut a, "orders");
    let source_rows = all_rows(&mut a, "orders");
    let source_parts = rows(&mut a, "SHOW PARTITIONS FROM orders");
    let h = backup(
        &mut a,
        "BACKUP SNAPSHOT sales.nightly TO shared ON (orders)",
    );
    let ts = timestamp(&h);

    let mut b = open(&tmp.path().join("b"));
    sql(
        &mut b,
        &format!(
            "CREATE DATABASE sales; USE sales; CREATE REPOSITORY shared ON LOCATION \"{location}\""
        ),
    );
    let snaps = rows(&mut b, "SHOW SNAPSHOT ON shared");
    assert_eq!(column(&snaps, "Snapshot"), vec!["nightly"]);
    assert_eq!(column(&snaps, "Timestamp"), vec![ts.clone()]);
    assert_eq!(column(&snaps, "Status"), vec!["OK"]);
    restore(
        &mut b,
        &format!(
            "RESTORE SNAPSHOT sales.nightly FROM shared ON (orders) PROPERTIES (\"backup_timestamp\" = \"{ts}\")"
        ),
    );
    assert_eq!(
        column(&rows(&mut b, "SHOW TABLES"), "Tables_in_sales"),
        vec!["orders"]
    );
    assert_eq!(checksum(&mut b, "orders"), source_sum);
    assert_eq!(all_rows(&mut b, "orders"), source_rows);
    let parts = rows(&mut b, "SHOW PARTITIONS FROM orders");
    for c in ["PartitionName", "VisibleVersion", "Buckets", "RowCount"] {
        assert_eq!(column(&parts, c), column(&source_parts, c), "column {c}");
    }
    // The restored table is an ordinary table afterwards: it takes inserts.
    sql(&mut b, "INSERT INTO orders VALUES (3, 3, 'after')");
    assert_eq!(count(&mut b, "orders"), source_rows.len() as u64 + 1);
}

#[test]
fn migrate_through_a_file_repository() {
    let repo = tempfile::tempdir().expect("tempdir");
    migrate(&file_location(repo.path()));
}

#[test]
fn migrate_through_a_mem_repository() {
    migrate("mem://migration_test");
}

#[test]
fn restore_as_alias_in_the_same_home() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut a = open(&tmp.path().join("a"));
    make_db_and_table(&mut a, "d", "t", 2);
    let loc = file_location(&tmp.path().join("repo"));
    sql(
        &mut a,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    let sum = checksum(&mut a, "t");
    let h = backup(&mut a, "BACKUP SNAPSHOT d.snap TO r");
    let ts = timestamp(&h);
    restore(
        &mut a,
        &format!(
            "RESTORE SNAPSHOT d.snap FROM r ON (t AS t_copy) PROPERTIES (\"backup_timestamp\" = \"{ts}\")"
        ),
    );
    assert_eq!(checksum(&mut a, "t_copy"), sum);
    assert_eq!(checksum(&mut a, "t"), sum);
    // New tables get new ids: no tablet is shared with the source table.
    let src = column(&rows(&mut a, "SHOW TABLET FROM t"), "TabletId");
    let copy = column(&rows(&mut a, "SHOW TABLET FROM t_copy"), "TabletId");
    assert!(
        src.iter().all(|id| !copy.contains(id)),
        "{src:?} vs {copy:?}"
    );
    // Dropping the copy leaves the source intact.
    sql(&mut a, "DROP TABLE t_copy");
    assert_eq!(checksum(&mut a, "t"), sum);
}
