//! A job ends cleanly whatever happens to its thread or its cleanup:
//! a panic in a job thread becomes a CANCELLED job that names the panic
//! (its waiters wake), and a restore cancel whose catalog update fails is
//! not recorded CANCELLED with its fences still up: it keeps trying, and
//! finishes once the catalog can be written.

#![cfg(feature = "failpoints")]

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_panic_in_a_job_thread_cancels_the_job_with_the_panic_message() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(tmp.path());
    make_db_and_table(&mut s, "d", "t", 1);
    sql(
        &mut s,
        "CREATE REPOSITORY r ON LOCATION \"mem://panic_job\"",
    );
    fail::cfg("job::backup::SNAPSHOTING", "panic(boom in snapshoting)").expect("fail point");
    sql(&mut s, "BACKUP SNAPSHOT d.p TO r");
    let h = last_job(&s);
    assert_eq!(wait(&h), "CANCELLED");
    fail::remove("job::backup::SNAPSHOTING");
    assert_mentions(&status(&h), &["panicked", "boom in snapshoting"]);
    assert_eq!(
        snapshot_leftovers(tmp.path()),
        Vec::<std::path::PathBuf>::new()
    );
    // The database is free for the next job.
    backup(&mut s, "BACKUP SNAPSHOT d.after TO r");
}

#[test]
fn a_cancel_whose_catalog_update_fails_is_retried_not_recorded() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(tmp.path());
    make_db_and_table(&mut s, "d", "t", 1);
    sql(
        &mut s,
        "CREATE REPOSITORY r ON LOCATION \"mem://cancel_catalog\"",
    );
    let b = backup(&mut s, "BACKUP SNAPSHOT d.c TO r");
    pause("restore", "DOWNLOAD");
    sql(&mut s, &restore_stmt(&b, "r", "ON (t)", ""));
    let job = last_job(&s);
    wait_for_state(&job, "DOWNLOAD");
    // Every catalog write fails from now on; the cancel cannot lift the fences.
    fail::cfg("catalog::before_save", "return").expect("fail point");
    job.request_cancel("cancelled by the test");
    unpause("restore", "DOWNLOAD");
    let deadline = Instant::now() + Duration::from_secs(30);
    while job.with_record(|r| r.status().cancelling.is_none()) {
        assert!(Instant::now() < deadline, "the cancel never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The first failed attempt is on record, and the job is not CANCELLED.
    while !job.with_record(|r| r.status().task_err_msg.contains("catalog")) {
        assert!(
            Instant::now() < deadline,
            "no failed cancel attempt recorded"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_ne!(state(&job), "CANCELLED");
    assert!(!job.is_done());
    fail::remove("catalog::before_save");
    assert_eq!(wait(&job), "CANCELLED");
    assert!(job.with_record(|r| r.status().cancelling.is_none()));
    // The fence is gone: t takes loads again.
    sql(&mut s, "INSERT INTO t VALUES (1, 1, 'x')");
}
