//! `replication_num` sets how many replicas a restore makes: a backup of one
//! replica restores to three backends, each replica holding the data.
//! `allow_load` = false refuses INSERT into a table being restored; with
//! true, partitions not being restored take loads meanwhile.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;

#[test]
fn one_replica_restores_to_three_backends() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut a = open(&tmp.path().join("a"));
    make_db_and_table(&mut a, "d", "t", 3);
    let loc = file_location(&tmp.path().join("repo"));
    sql(
        &mut a,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    assert_eq!(
        rows(&mut a, "SHOW TABLET FROM t").rows.len(),
        6,
        "one replica each"
    );
    let sum = checksum(&mut a, "t");
    let h = backup(&mut a, "BACKUP SNAPSHOT d.snap TO r");

    let mut b = target_with_repository(&tmp.path().join("b"), &loc);
    restore(
        &mut b,
        &restore_stmt(&h, "r", "ON (t)", "\"replication_num\" = \"3\""),
    );
    restore(&mut b, &restore_stmt(&h, "r", "ON (t AS same)", ""));
    assert_eq!(checksum(&mut b, "t"), sum);
    assert_eq!(
        column(&rows(&mut b, "SHOW PARTITIONS FROM t"), "ReplicationNum"),
        vec!["3", "3", "3"]
    );
    assert_eq!(
        column(&rows(&mut b, "SHOW PARTITIONS FROM same"), "ReplicationNum"),
        vec!["1", "1", "1"],
        "without replication_num a restore keeps the backup's"
    );
    // SHOW RESTORE says what each job used, asked for or not.
    assert_eq!(
        column(&rows(&mut b, "SHOW RESTORE FROM d"), "ReplicationNum"),
        vec!["3", "1"]
    );
    let parts = rows(&mut b, "SHOW PARTITIONS FROM t");
    let versions: BTreeMap<String, String> = column(&parts, "PartitionName")
        .into_iter()
        .zip(column(&parts, "VisibleVersion"))
        .collect();
    let tablets = rows(&mut b, "SHOW TABLET FROM t");
    assert_eq!(tablets.rows.len(), 18, "6 tablets x 3 replicas");
    let mut per_tablet: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &tablets.rows {
        let part = &r[col(&tablets, "PartitionName")];
        assert_eq!(&r[col(&tablets, "Version")], &versions[part], "{r:?}");
        per_tablet
            .entry(r[col(&tablets, "TabletId")].clone())
            .or_default()
            .insert(r[col(&tablets, "BackendId")].clone());
    }
    assert_eq!(per_tablet.len(), 6);
    for (tablet, bes) in &per_tablet {
        assert_eq!(bes.len(), 3, "tablet {tablet} on {bes:?}");
        // Every replica holds the same data, not just the first one read.
        let id: u64 = tablet.parse().expect("tablet id");
        let version: u64 = tablets
            .rows
            .iter()
            .find(|r| &r[col(&tablets, "TabletId")] == tablet)
            .map(|r| r[col(&tablets, "Version")].parse().expect("version"))
            .expect("a row");
        let sums: BTreeSet<_> = bes
            .iter()
            .map(|be| {
                let node = b
                    .cluster()
                    .backend(be.parse().expect("backend id"))
                    .expect("backend");
                let c = node.checksum(id, version).expect("replica checksum");
                (c.rows, c.checksum)
            })
            .collect();
        assert_eq!(sums.len(), 1, "replicas of {tablet} differ: {sums:?}");
    }
}

#[cfg(feature = "failpoints")]
#[test]
fn allow_load_decides_whether_inserts_run_during_a_restore() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(tmp.path());
    make_db_and_table(&mut s, "d", "t", 2);
    sql(
        &mut s,
        "CREATE REPOSITORY r ON LOCATION \"mem://allow_load\"",
    );
    let h = backup(&mut s, "BACKUP SNAPSHOT d.snap TO r");
    let p1_at_backup: Vec<Vec<String>> = all_rows(&mut s, "t")
        .into_iter()
        .filter(|r| r[0].parse::<i32>().expect("key") < 10)
        .collect();

    // allow_load = false (also the default): every INSERT into t is refused.
    for props in ["\"allow_load\" = \"false\"", ""] {
        pause("restore", "DOWNLOADING");
        sql(
            &mut s,
            &restore_stmt(&h, "r", "ON (t PARTITION (p1))", props),
        );
        let job = last_job(&s);
        wait_for_state(&job, "DOWNLOADING");
        let before = count(&mut s, "t");
        for v in ["(25, 1, 'x')", "(5, 1, 'x')"] {
            assert_mentions(
                &err(&mut s, &format!("INSERT INTO t VALUES {v}")),
                &["'d.t'", "allow_load = false", &job.id.to_string()],
            );
        }
        assert_mentions(
            &err(&mut s, "INSERT INTO t PARTITION (p3) GENERATE 5 ROWS"),
            &["allow_load = false"],
        );
        assert_eq!(count(&mut s, "t"), before, "reads of t still work");
        unpause("restore", "DOWNLOADING");
        assert_eq!(wait(&job), "FINISHED");
    }

    // allow_load = true: partitions outside the restore take loads meanwhile;
    // the restored partition is fenced while committing.
    pause("restore", "DOWNLOADING");
    pause("restore", "COMMITTING");
    sql(
        &mut s,
        &restore_stmt(
            &h,
            "r",
            "ON (t PARTITION (p1))",
            "\"allow_load\" = \"true\"",
        ),
    );
    let job = last_job(&s);
    wait_for_state(&job, "DOWNLOADING");
    sql(&mut s, "INSERT INTO t VALUES (25, 7, 'during')");
    unpause("restore", "DOWNLOADING");
    wait_for_state(&job, "COMMITTING");
    assert_mentions(
        &err(&mut s, "INSERT INTO t VALUES (5, 7, 'during')"),
        &["p1", "being restored"],
    );
    sql(&mut s, "INSERT INTO t VALUES (26, 7, 'during')");
    unpause("restore", "COMMITTING");
    assert_eq!(wait(&job), "FINISHED");
    let now = all_rows(&mut s, "t");
    let during: Vec<_> = now
        .iter()
        .filter(|r| r[2] == "during")
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(during, vec!["25", "26"]);
    let p1_now: Vec<_> = now
        .into_iter()
        .filter(|r| r[0].parse::<i32>().expect("key") < 10)
        .collect();
    assert_eq!(p1_now, p1_at_backup);
}
