//! Repository errors: transient ones are retried inside a task and the job
//! finishes; a failing task shows its error in TaskErrMsg and is retried a
//! bounded number of times, the job going on if a retry succeeds and being
//! cancelled and cleaned up if none does.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tabletsnap::job::JobRecord;
use tabletsnap_transfer::{Backend, FaultConfig, Faulty, Memory};

/// A faulty in-memory store in front of `mem://<name>`.
fn faulty(name: &str) -> (String, Arc<Faulty<Memory>>) {
    let location = format!("mem://{name}");
    let f = Arc::new(Faulty::new(Memory::new(), FaultConfig::off(7)));
    let b: Arc<dyn Backend> = f.clone();
    tabletsnap::repo::set_backend_override(&location, b);
    (location, f)
}

fn failing_puts() -> FaultConfig {
    let mut c = FaultConfig::off(7);
    c.put_error_rate = 1.0;
    c.permanent = true;
    c
}

fn attempts(h: &tabletsnap::job::JobHandle) -> u32 {
    match h.record() {
        JobRecord::Backup(j) => j.status.attempts,
        JobRecord::Restore(j) => j.status.attempts,
    }
}

#[test]
fn transient_errors_do_not_stop_a_job() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(tmp.path());
    make_db_and_table(&mut s, "d", "t", 2);
    let (loc, f) = faulty("retry_transient");
    sql(
        &mut s,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    let sum = checksum(&mut s, "t");
    // Uploads and the commit retry their puts. (Listing and reading a
    // repository's meta objects do not retry: only puts fail here.)
    let mut flaky = FaultConfig::off(11);
    flaky.put_error_rate = 0.3;
    f.set_config(flaky);
    let h = backup(&mut s, "BACKUP SNAPSHOT d.flaky TO r");
    f.set_config(FaultConfig::off(1));
    restore(&mut s, &restore_stmt(&h, "r", "ON (t AS back)", ""));
    assert_eq!(checksum(&mut s, "back"), sum);
}

#[test]
fn a_failed_task_is_retried_and_the_job_goes_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(tmp.path());
    make_db_and_table(&mut s, "d", "t", 2);
    let (loc, f) = faulty("retry_recovers");
    sql(
        &mut s,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    let sum = checksum(&mut s, "t");
    f.set_config(failing_puts());
    sql(&mut s, "BACKUP SNAPSHOT d.heals TO r");
    let h = last_job(&s);
    let start = Instant::now();
    while attempts(&h) == 0 {
        assert!(!h.is_done(), "the job ended: {:?}", h.record());
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no attempt failed"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // The store heals while the job backs off: the retry succeeds.
    f.set_config(FaultConfig::off(2));
    assert_eq!(wait(&h), "FINISHED", "{:?}", h.record());
    let show = rows(&mut s, "SHOW BACKUP FROM d");
    assert_eq!(only(&show, "Status"), "OK");
    assert_mentions(&only(&show, "TaskErrMsg"), &["uploading"]);
    restore(&mut s, &restore_stmt(&h, "r", "ON (t AS back)", ""));
    assert_eq!(checksum(&mut s, "back"), sum);
}

#[test]
fn a_task_that_keeps_failing_cancels_the_job_cleanly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(tmp.path());
    make_db_and_table(&mut s, "d", "t", 2);
    let (loc, f) = faulty("retry_gives_up");
    sql(
        &mut s,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    f.set_config(failing_puts());
    sql(&mut s, "BACKUP SNAPSHOT d.broken TO r");
    let h = last_job(&s);
    assert_eq!(wait(&h), "CANCELLED");
    assert_eq!(attempts(&h), tabletsnap::job::MAX_TASK_ATTEMPTS);
    let show = rows(&mut s, "SHOW BACKUP FROM d");
    assert_mentions(&only(&show, "TaskErrMsg"), &["uploading"]);
    assert_mentions(
        &only(&show, "Status"),
        &["[CANCELLED]", "UPLOADING failed 3 times"],
    );
    assert_eq!(
        snapshot_leftovers(tmp.path()),
        Vec::<std::path::PathBuf>::new()
    );
    f.set_config(FaultConfig::off(3));
    let listed = f.inner().list("").expect("list");
    assert!(
        listed.iter().all(|k| !k.contains("__ss_broken")),
        "leftovers: {listed:?}"
    );
    backup(&mut s, "BACKUP SNAPSHOT d.fine TO r");
}
