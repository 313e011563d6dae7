//! A process death at any state of a job, then a restart: the job resumes
//! from its persisted state and reaches FINISHED, with the same data as
//! without the crash and nothing left behind on the backends.
#![cfg(feature = "failpoints")]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use tabletsnap::exec::Session;
use tabletsnap::job::crash;

/// Starts `stmt`, "kills the process" when the job enters `state`, reopens
/// the home and waits for the resumed job; returns the new session.
fn crash_and_resume(mut s: Session, home: &Path, kind: &str, st: &str, stmt: &str) -> Session {
    let fp = fail_point(kind, st);
    fail::cfg(&fp, "return(crash)").expect("fail point");
    sql(&mut s, stmt);
    let h = last_job(&s);
    h.wait();
    fail::remove(&fp);
    assert!(crash::crashed(), "{fp} did not crash the job");
    assert_eq!(state(&h), st, "the job stopped in {st}");
    crash::recover();
    let id = h.id;
    drop(h);
    let s = reopen(s, home);
    let h = s
        .cluster()
        .jobs()
        .get(id)
        .expect("the job survives the restart");
    assert_eq!(
        wait(&h),
        "FINISHED",
        "{kind} crashed in {st}: {:?}",
        h.record()
    );
    assert_eq!(
        snapshot_leftovers(home),
        Vec::<PathBuf>::new(),
        "{kind} crashed in {st}"
    );
    s
}

#[test]
fn backup_resumes_after_a_crash_in_each_state() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    let mut s = open(&home);
    make_db_and_table(&mut s, "d", "t", 3);
    let loc = file_location(&tmp.path().join("repo"));
    sql(
        &mut s,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    let sum = checksum(&mut s, "t");
    let mut labels = Vec::new();
    for st in BACKUP_STATES {
        let label = format!("b_{}", st.to_ascii_lowercase());
        s = crash_and_resume(
            s,
            &home,
            "backup",
            st,
            &format!("BACKUP SNAPSHOT d.{label} TO r"),
        );
        sql(&mut s, "USE d");
        labels.push(label);
    }
    let show = rows(&mut s, "SHOW BACKUP FROM d");
    assert_eq!(
        column(&show, "State"),
        vec!["FINISHED"; BACKUP_STATES.len()]
    );
    assert_eq!(column(&show, "SnapshotName"), labels);
    assert!(column(&show, "FinishedTime").iter().all(|c| c != "NULL"));
    let mut sorted = labels.clone();
    sorted.sort();
    assert_eq!(
        column(&rows(&mut s, "SHOW SNAPSHOT ON r"), "Snapshot"),
        sorted
    );
    // Every one of them restores to the data backed up.
    let jobs: Vec<_> = s.cluster().jobs().all();
    for (i, h) in jobs.iter().enumerate() {
        let copy = format!("copy{i}");
        restore(
            &mut s,
            &restore_stmt(h, "r", &format!("ON (t AS {copy})"), ""),
        );
        assert_eq!(
            checksum(&mut s, &copy),
            sum,
            "backup {}",
            h.record().label()
        );
    }
}

#[test]
fn restore_resumes_after_a_crash_in_each_state() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    let mut s = open(&home);
    make_db_and_table(&mut s, "d", "t", 3);
    sql(
        &mut s,
        "CREATE REPOSITORY r ON LOCATION \"mem://restart_restore\"",
    );
    let sum = checksum(&mut s, "t");
    let b = backup(&mut s, "BACKUP SNAPSHOT d.snap TO r");
    for st in RESTORE_STATES {
        let table = format!("r_{}", st.to_ascii_lowercase());
        let stmt = restore_stmt(
            &b,
            "r",
            &format!("ON (t AS {table})"),
            "\"replication_num\" = \"2\"",
        );
        s = crash_and_resume(s, &home, "restore", st, &stmt);
        sql(&mut s, "USE d");
        assert_eq!(checksum(&mut s, &table), sum, "crash in {st}");
        assert_eq!(
            rows(&mut s, &format!("SHOW TABLET FROM {table}"))
                .rows
                .len(),
            12
        );
        sql(
            &mut s,
            &format!("INSERT INTO {table} VALUES (1, 1, 'after')"),
        );
    }
    // Overwriting an existing table: a crash while committing never leaves
    // it part old, part new.
    sql(&mut s, "INSERT INTO t GENERATE 5 ROWS SEED 42");
    for st in ["COMMIT", "COMMITTING"] {
        sql(&mut s, "INSERT INTO t VALUES (2, 2, 'newer')");
        s = crash_and_resume(
            s,
            &home,
            "restore",
            st,
            &restore_stmt(&b, "r", "ON (t)", ""),
        );
        sql(&mut s, "USE d");
        assert_eq!(checksum(&mut s, "t"), sum, "overwrite crashed in {st}");
    }
    let show = rows(&mut s, "SHOW RESTORE FROM d");
    assert!(
        column(&show, "State").iter().all(|c| c == "FINISHED"),
        "{show:?}"
    );
}
