//! A backup of 2 of 3 partitions restores exactly those partitions, with
//! exactly their rows; a restore may also pick partitions out of a backup.

mod common;

use common::*;

fn key(r: &[String]) -> i32 {
    r[0].parse().expect("int key")
}

#[test]
fn two_of_three_partitions_restore_exactly_those() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut a = open(&tmp.path().join("a"));
    make_db_and_table(&mut a, "d", "t", 3);
    let loc = file_location(&tmp.path().join("repo"));
    sql(
        &mut a,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    let source = all_rows(&mut a, "t");
    let parts = rows(&mut a, "SHOW PARTITIONS FROM t");
    let h = backup(
        &mut a,
        "BACKUP SNAPSHOT d.two TO r ON (t PARTITION (p1, p3))",
    );
    assert_eq!(only(&rows(&mut a, "SHOW BACKUP"), "BackupObjs"), "t(p1,p3)");

    let mut b = target_with_repository(&tmp.path().join("b"), &loc);
    restore(&mut b, &restore_stmt(&h, "r", "", ""));
    let restored = rows(&mut b, "SHOW PARTITIONS FROM t");
    assert_eq!(column(&restored, "PartitionName"), vec!["p1", "p3"]);
    let pick = |rs: &tabletsnap::sql::ResultSet, c: &str| {
        let v = column(rs, c);
        vec![v[0].clone(), v[2].clone()]
    };
    assert_eq!(column(&restored, "RowCount"), pick(&parts, "RowCount"));
    assert_eq!(
        column(&restored, "VisibleVersion"),
        pick(&parts, "VisibleVersion")
    );
    let want: Vec<_> = source
        .iter()
        .filter(|r| key(r) < 10 || key(r) >= 20)
        .cloned()
        .collect();
    assert!(!want.is_empty() && want.len() < source.len());
    assert_eq!(all_rows(&mut b, "t"), want);
    // Rows of the missing range have no partition to go to.
    assert_mentions(
        &err(&mut b, "INSERT INTO t VALUES (15, 1, 'x')"),
        &["15", "no partition"],
    );
    sql(&mut b, "INSERT INTO t VALUES (25, 1, 'x')");
    // The restored partitions keep their own ranges: a backup of them fits
    // the original table again.
    let round = backup(&mut b, "BACKUP SNAPSHOT d.round TO r");
    restore(&mut a, &restore_stmt(&round, "r", "ON (t)", ""));
    assert_eq!(count(&mut a, "t"), source.len() as u64 + 1);
    let back: Vec<_> = all_rows(&mut a, "t")
        .into_iter()
        .filter(|r| (10..20).contains(&key(r)))
        .collect();
    assert_eq!(
        back.len(),
        source.iter().filter(|r| (10..20).contains(&key(r))).count()
    );

    // From a full backup, a restore can take just one partition.
    let full = backup(&mut a, "BACKUP SNAPSHOT d.full TO r");
    restore(
        &mut b,
        &restore_stmt(&full, "r", "ON (t PARTITION (p2) AS mid)", ""),
    );
    assert_eq!(
        column(&rows(&mut b, "SHOW PARTITIONS FROM mid"), "PartitionName"),
        vec!["p2"]
    );
    let want: Vec<_> = source
        .iter()
        .filter(|r| (10..20).contains(&key(r)))
        .cloned()
        .collect();
    assert_eq!(all_rows(&mut b, "mid"), want);
}
