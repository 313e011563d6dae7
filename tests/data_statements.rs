//! Every data statement form works on a real home: databases, tables with and
//! without range partitions, inserts (VALUES and GENERATE), reads, checksums
//! and the SHOWs users estimate job time from, with their exact columns.

mod common;

use common::*;

#[test]
fn databases_tables_and_reads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(tmp.path());
    // Keywords in any case, backquoted identifiers, several statements at once.
    sql(
        &mut s,
        "create database `my db`; CREATE DATABASE IF NOT EXISTS `my db`; Use `my db`;",
    );
    assert_eq!(s.current_db(), Some("my db"));
    assert_eq!(
        column(&rows(&mut s, "SHOW DATABASES"), "Database"),
        vec!["my db"]
    );
    make_table(&mut s, "t", 1);
    // Without PARTITION BY: one partition named after the table.
    sql(
        &mut s,
        "CREATE TABLE `my db`.plain (id BIGINT, day DATE, ok BOOLEAN, x DOUBLE, at DATETIME)
         DISTRIBUTED BY HASH(id) BUCKETS 3",
    );
    let tables = rows(&mut s, "SHOW TABLES");
    assert_eq!(tables.columns, vec!["Tables_in_my db"]);
    assert_eq!(column(&tables, "Tables_in_my db"), vec!["plain", "t"]);
    let parts = rows(&mut s, "SHOW PARTITIONS FROM plain");
    assert_eq!(
        parts.columns,
        vec![
            "PartitionId",
            "PartitionName",
            "VisibleVersion",
            "Buckets",
            "ReplicationNum",
            "RowCount",
            "DataSize"
        ]
    );
    assert_eq!(column(&parts, "PartitionName"), vec!["plain"]);
    assert_eq!(column(&parts, "Buckets"), vec!["3"]);
    assert_eq!(column(&parts, "ReplicationNum"), vec!["3"]);

    sql(
        &mut s,
        "INSERT INTO plain VALUES (1, '2024-02-29', true, 1.5, '2024-02-29 10:11:12'), (2, '2025-01-01', false, -2, '2025-01-01 00:00:00')",
    );
    assert_eq!(count(&mut s, "plain"), 2);
    let all = rows(&mut s, "SELECT * FROM plain");
    assert_eq!(all.columns, vec!["id", "day", "ok", "x", "at"]);
    assert_eq!(all.rows.len(), 2);
    assert!(
        all.rows.iter().any(|r| r[0] == "1" && r[1] == "2024-02-29"),
        "{all:?}"
    );
    assert_eq!(rows(&mut s, "SELECT * FROM plain LIMIT 1").rows.len(), 1);

    // GENERATE into chosen partitions: one new version on every tablet of
    // each touched partition, none elsewhere.
    sql(
        &mut s,
        "INSERT INTO t PARTITION (p1, p3) GENERATE 20 ROWS SEED 7",
    );
    let parts = rows(&mut s, "SHOW PARTITIONS FROM t");
    assert_eq!(column(&parts, "PartitionName"), vec!["p1", "p2", "p3"]);
    assert_eq!(column(&parts, "VisibleVersion"), vec!["2", "1", "2"]);
    assert_eq!(column(&parts, "RowCount"), vec!["10", "0", "10"]);
    // Zero rows load nothing: no empty version anywhere.
    sql(&mut s, "INSERT INTO t GENERATE 0 ROWS");
    let parts = rows(&mut s, "SHOW PARTITIONS FROM t");
    assert_eq!(column(&parts, "VisibleVersion"), vec!["2", "1", "2"]);
    let tablets = rows(&mut s, "SHOW TABLET FROM t");
    assert_eq!(
        tablets.columns,
        vec![
            "TabletId",
            "PartitionName",
            "BackendId",
            "Version",
            "RowsetCount",
            "DataSize"
        ]
    );
    assert_eq!(
        tablets.rows.len(),
        6,
        "3 partitions x 2 buckets x 1 replica"
    );
    for r in &tablets.rows {
        let want = if r[col(&tablets, "PartitionName")] == "p2" {
            "1"
        } else {
            "2"
        };
        assert_eq!(r[col(&tablets, "Version")], want, "{r:?}");
    }
    assert_eq!(count(&mut s, "t"), 20);

    // Rows out of every range are refused, naming the value.
    let e = err(&mut s, "INSERT INTO t VALUES (30, 1, 'x')");
    assert_mentions(&e, &["30"]);

    sql(&mut s, "DROP TABLE plain");
    assert_eq!(
        column(&rows(&mut s, "SHOW TABLES"), "Tables_in_my db"),
        vec!["t"]
    );
    assert_mentions(&err(&mut s, "SELECT COUNT(*) FROM plain"), &["plain"]);
    sql(&mut s, "DROP TABLE IF EXISTS plain");
}

#[test]
fn checksums_compare_data_not_tablets() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(tmp.path());
    sql(&mut s, "CREATE DATABASE d; USE d");
    make_table(&mut s, "a", 1);
    make_table(&mut s, "b", 3);
    let values = "VALUES (1, 10, 'x'), (12, 120, 'y'), (29, 290, 'z'), (1, 10, 'x')";
    sql(&mut s, &format!("INSERT INTO a {values}"));
    // Same rows, other tablets, replicas and versions.
    sql(&mut s, "INSERT INTO b VALUES (1, 10, 'x'), (12, 120, 'y')");
    sql(&mut s, "INSERT INTO b VALUES (29, 290, 'z'), (1, 10, 'x')");
    let sums = rows(&mut s, "CHECKSUM TABLE a, d.b");
    assert_eq!(sums.columns, vec!["Table", "Checksum"]);
    assert_eq!(column(&sums, "Table"), vec!["d.a", "d.b"]);
    assert_eq!(sums.rows[0][1], sums.rows[1][1]);
    sql(&mut s, "INSERT INTO b VALUES (2, 20, 'w')");
    assert_ne!(checksum(&mut s, "a"), checksum(&mut s, "b"));
}

#[test]
fn generated_rows_are_deterministic() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut sums = Vec::new();
    for home in ["one", "two"] {
        let mut s = open(&tmp.path().join(home));
        make_db_and_table(&mut s, "d", "t", 3);
        sums.push(checksum(&mut s, "t"));
    }
    assert_eq!(sums[0], sums[1]);
}

#[test]
fn a_second_open_of_a_home_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = open(tmp.path());
    let e = tabletsnap::cluster::Cluster::open(tmp.path(), BACKENDS).expect_err("second open");
    assert_mentions(&format!("{e:#}"), &["in use"]);
    drop(s);
    tabletsnap::cluster::Cluster::open(tmp.path(), BACKENDS).expect("open after close");
}

#[test]
fn bad_statements_say_where_and_what() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(tmp.path());
    let e = err(&mut s, "SHOW DATABASES;\n  SELEC COUNT(*) FROM t");
    assert_mentions(&e, &["line 2", "column 3", "expected", "SELEC"]);
    let e = err(&mut s, "BACKUP SNAPSHOT d.l FROM r");
    assert_mentions(&e, &["line 1", "column 21", "expected", "TO", "FROM"]);
    // Nothing of a script runs when any of it does not parse.
    let e = err(&mut s, "CREATE DATABASE x; CREATE DATABAS y");
    assert_mentions(&e, &["column 27"]);
    assert!(rows(&mut s, "SHOW DATABASES").rows.is_empty());
    assert_mentions(&err(&mut s, "USE nowhere"), &["nowhere"]);
    assert_mentions(&err(&mut s, "SHOW TABLES"), &["no database selected"]);
}
