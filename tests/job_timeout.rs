//! A job past its timeout is cancelled and cleaned up: snapshots released,
//! nothing committed to the repository, half-restored tables dropped; also
//! when the deadline passed while the process was down.
#![cfg(feature = "failpoints")]

mod common;

use std::time::{Duration, Instant};

use common::*;
use tabletsnap::job::crash;

/// Waits until the job's watchdog (or anyone) asked it to cancel.
fn wait_cancel_requested(h: &tabletsnap::job::JobHandle) {
    let start = Instant::now();
    while !h.cancel.is_cancelled() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "job {} never timed out",
            h.id
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn running_jobs_past_their_timeout_are_cancelled_and_cleaned_up() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    let mut s = open(&home);
    make_db_and_table(&mut s, "d", "t", 2);
    make_db_and_table(&mut s, "e", "t", 2);
    let repo_dir = tmp.path().join("repo");
    sql(
        &mut s,
        &format!(
            "CREATE REPOSITORY r ON LOCATION \"{}\"",
            file_location(&repo_dir)
        ),
    );
    let src = backup(&mut s, "BACKUP SNAPSHOT e.src TO r");
    let d_sum = checksum(&mut s, "d.t");

    // Both jobs block in a state where they hold snapshots / restore dirs.
    pause("backup", "UPLOADING");
    pause("restore", "DOWNLOADING");
    sql(
        &mut s,
        "BACKUP SNAPSHOT d.slow TO r PROPERTIES (\"timeout\" = \"10\")",
    );
    let b = last_job(&s);
    sql(
        &mut s,
        &restore_stmt(&src, "r", "ON (t AS fresh)", "\"timeout\" = \"10\""),
    );
    let r = last_job(&s);
    wait_for_state(&b, "UPLOADING");
    wait_for_state(&r, "DOWNLOADING");
    assert!(!snapshot_leftovers(&home).is_empty(), "the jobs hold dirs");
    wait_cancel_requested(&b);
    wait_cancel_requested(&r);
    unpause("backup", "UPLOADING");
    unpause("restore", "DOWNLOADING");
    assert_eq!(wait(&b), "CANCELLED");
    assert_eq!(wait(&r), "CANCELLED");

    let show = rows(&mut s, "SHOW BACKUP FROM d");
    assert_eq!(only(&show, "State"), "CANCELLED");
    assert_mentions(&only(&show, "Status"), &["[CANCELLED]", "timeout", "10 s"]);
    assert_ne!(only(&show, "FinishedTime"), "NULL");
    let show = rows(&mut s, "SHOW RESTORE FROM e");
    assert_eq!(only(&show, "State"), "CANCELLED");
    assert_mentions(&only(&show, "Status"), &["[CANCELLED]", "timeout"]);

    assert_eq!(snapshot_leftovers(&home), Vec::<std::path::PathBuf>::new());
    assert!(files_containing(&repo_dir, "__ss_slow").is_empty());
    assert_eq!(
        column(&rows(&mut s, "SHOW SNAPSHOT ON r"), "Snapshot"),
        vec!["src"]
    );
    assert_eq!(
        column(&rows(&mut s, "SHOW TABLES FROM e"), "Tables_in_e"),
        vec!["t"]
    );
    assert_eq!(checksum(&mut s, "d.t"), d_sum);
    // The databases take new jobs.
    tabletsnap::job::clock::reset();
    backup(&mut s, "BACKUP SNAPSHOT d.again TO r");
}

#[test]
fn a_deadline_that_passed_while_down_cancels_on_restart() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    let mut s = open(&home);
    make_db_and_table(&mut s, "d", "t", 2);
    let repo_dir = tmp.path().join("repo");
    sql(
        &mut s,
        &format!(
            "CREATE REPOSITORY r ON LOCATION \"{}\"",
            file_location(&repo_dir)
        ),
    );
    fail::cfg("job::backup::UPLOADING", "return(crash)").expect("fail point");
    sql(
        &mut s,
        "BACKUP SNAPSHOT d.late TO r PROPERTIES (\"timeout\" = \"60\")",
    );
    let h = last_job(&s);
    h.wait();
    fail::remove("job::backup::UPLOADING");
    crash::recover();
    assert!(
        !snapshot_leftovers(&home).is_empty(),
        "the crash left the snapshots"
    );
    let id = h.id;
    drop(h);
    drop(s);

    // The process stays down for an hour (the jobs' clock moves on).
    tabletsnap::job::clock::advance(std::time::Duration::from_secs(3600));

    let mut s = open(&home);
    let h = s
        .cluster()
        .jobs()
        .get(id)
        .expect("the job is known after restart");
    assert_eq!(wait(&h), "CANCELLED");
    assert_mentions(&status(&h), &["timeout"]);
    assert_eq!(snapshot_leftovers(&home), Vec::<std::path::PathBuf>::new());
    assert!(files_containing(&repo_dir, "__ss_late").is_empty());
    assert!(rows(&mut s, "SHOW SNAPSHOT ON r").rows.is_empty());
    tabletsnap::job::clock::reset();
    backup(&mut s, "BACKUP SNAPSHOT d.again TO r");
}
