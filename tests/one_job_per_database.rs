//! One running job per database: a second BACKUP or RESTORE gets an error
//! naming the running job; other databases are not blocked; once the job
//! ends the database takes a new one.
#![cfg(feature = "failpoints")]

mod common;

use common::*;

#[test]
fn a_second_job_in_the_same_database_is_refused() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(tmp.path());
    make_db_and_table(&mut s, "d", "t", 1);
    make_db_and_table(&mut s, "e", "t", 1);
    sql(
        &mut s,
        "USE d; CREATE REPOSITORY r ON LOCATION \"mem://one_job_per_db\"",
    );
    let done = backup(&mut s, "BACKUP SNAPSHOT d.earlier TO r");

    pause("backup", "UPLOADING");
    sql(&mut s, "BACKUP SNAPSHOT d.first TO r");
    let running = last_job(&s);
    wait_for_state(&running, "UPLOADING");
    let id = running.id.to_string();
    for stmt in [
        "BACKUP SNAPSHOT d.second TO r".to_string(),
        "BACKUP SNAPSHOT d.first TO r ON (t PARTITION (p1))".to_string(),
        restore_stmt(&done, "r", "ON (t AS t2)", ""),
    ] {
        assert_mentions(
            &err(&mut s, &stmt),
            &["'d'", "running job", "BACKUP first", &id],
        );
    }
    // Another session sees the same: the rule is per database, not per session.
    let mut other = other_session(&s);
    assert_mentions(
        &err(&mut other, "BACKUP SNAPSHOT d.third TO r"),
        &["BACKUP first", &id],
    );
    // Another database is free: its own backup runs past the paused state.
    unpause("backup", "UPLOADING");
    pause("backup", "UPLOAD_INFO");
    wait_for_state(&running, "UPLOAD_INFO");
    let e_job = backup_in_other_db(&mut s);
    assert_eq!(state(&running), "UPLOAD_INFO");
    unpause("backup", "UPLOAD_INFO");
    assert_eq!(wait(&running), "FINISHED");
    assert_eq!(wait(&e_job), "FINISHED");

    // A running restore blocks a backup, naming the restore.
    pause("restore", "DOWNLOAD");
    sql(&mut s, &restore_stmt(&done, "r", "ON (t AS t3)", ""));
    let restoring = last_job(&s);
    wait_for_state(&restoring, "DOWNLOAD");
    assert_mentions(
        &err(&mut s, "BACKUP SNAPSHOT d.fourth TO r"),
        &["RESTORE earlier", &restoring.id.to_string()],
    );
    unpause("restore", "DOWNLOAD");
    assert_eq!(wait(&restoring), "FINISHED");
    backup(&mut s, "BACKUP SNAPSHOT d.fourth TO r");
}

/// Starts a backup of database `e` while `d`'s job is paused at UPLOAD_INFO
/// (the fail point is global, so it is released by the caller).
fn backup_in_other_db(
    s: &mut tabletsnap::exec::Session,
) -> std::sync::Arc<tabletsnap::job::JobHandle> {
    sql(s, "BACKUP SNAPSHOT e.other TO r");
    let h = last_job(s);
    wait_for_state(&h, "UPLOAD_INFO");
    h
}
