//! No acknowledged write is lost to an overwrite RESTORE: from the moment
//! the RESTORE statement returns, loads into what it replaces are refused
//! (all of the table with allow_load false; the replaced partitions with
//! allow_load true), and every INSERT that printed OK is there afterwards.

#![cfg(feature = "failpoints")]

mod common;

use common::*;

#[test]
fn loads_are_refused_from_the_moment_the_restore_is_accepted() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(tmp.path());
    make_db_and_table(&mut s, "d", "t", 2);
    sql(
        &mut s,
        "CREATE REPOSITORY r ON LOCATION \"mem://ack_insert\"",
    );
    let h = backup(&mut s, "BACKUP SNAPSHOT d.snap TO r");
    let at_backup = all_rows(&mut s, "t");

    // allow_load = false: the job has not even left PENDING, yet INSERT is refused.
    pause("restore", "PENDING");
    sql(&mut s, &restore_stmt(&h, "r", "ON (t)", ""));
    let job = last_job(&s);
    assert_mentions(
        &err(&mut s, "INSERT INTO t VALUES (25, 1, 'lost?')"),
        &["'d.t'", "allow_load = false", &job.id.to_string()],
    );
    unpause("restore", "PENDING");
    assert_eq!(wait(&job), "FINISHED");
    assert_eq!(all_rows(&mut s, "t"), at_backup);
    sql(&mut s, "INSERT INTO t VALUES (25, 1, 'after')");

    // allow_load = true: the replaced partition refuses loads from acceptance
    // on, the others take them, and what they took survives the restore.
    pause("restore", "PENDING");
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
    assert_mentions(
        &err(&mut s, "INSERT INTO t VALUES (5, 1, 'lost?')"),
        &["p1", "'d.t'", &format!("job {}", job.id)],
    );
    sql(&mut s, "INSERT INTO t VALUES (26, 2, 'kept')");
    unpause("restore", "PENDING");
    assert_eq!(wait(&job), "FINISHED");
    let now = all_rows(&mut s, "t");
    assert!(now.iter().all(|r| r[2] != "lost?"), "{now:?}");
    for key in ["25", "26"] {
        assert!(
            now.iter().any(|r| r[0] == key),
            "acknowledged row {key} is gone: {now:?}"
        );
    }
    // Fences end with the job: p1 takes loads again.
    sql(&mut s, "INSERT INTO t VALUES (5, 3, 'later')");
}

#[test]
fn a_cancelled_restore_lifts_its_load_fences() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(tmp.path());
    make_db_and_table(&mut s, "d", "t", 1);
    sql(
        &mut s,
        "CREATE REPOSITORY r ON LOCATION \"mem://ack_cancel\"",
    );
    let h = backup(&mut s, "BACKUP SNAPSHOT d.snap TO r");
    pause("restore", "PENDING");
    sql(
        &mut s,
        &restore_stmt(
            &h,
            "r",
            "ON (t PARTITION (p2))",
            "\"allow_load\" = \"true\"",
        ),
    );
    let job = last_job(&s);
    err(&mut s, "INSERT INTO t VALUES (15, 1, 'x')");
    let mut other = other_session(&s);
    // CANCEL waits for the job, which waits at the paused fail point.
    let canceller =
        std::thread::spawn(move || other.run_script("USE d; CANCEL RESTORE FROM d").map(|_| ()));
    while job.cancel_reason().is_none() {
        std::thread::yield_now();
    }
    unpause("restore", "PENDING");
    canceller
        .join()
        .expect("cancel thread")
        .expect("CANCEL RESTORE");
    assert_eq!(wait(&job), "CANCELLED");
    sql(
        &mut s,
        "INSERT INTO t VALUES (15, 1, 'x'); INSERT INTO t VALUES (1, 1, 'y')",
    );
}
