//! BACKUP goes PENDING → SNAPSHOTING → UPLOAD_SNAPSHOT → UPLOADING →
//! SAVE_META → UPLOAD_INFO → FINISHED and RESTORE goes PENDING → SNAPSHOTING
//! → DOWNLOAD → DOWNLOADING → COMMIT → COMMITTING → FINISHED, as SHOW shows
//! them, with each phase's time recorded when that phase ends.
#![cfg(feature = "failpoints")]

mod common;

use common::*;
use tabletsnap::exec::Session;

fn show_backup(s: &mut Session) -> tabletsnap::sql::ResultSet {
    rows(s, "SHOW BACKUP FROM d")
}

#[test]
fn backup_walks_every_state_in_order() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(&tmp.path().join("home"));
    make_db_and_table(&mut s, "d", "t", 2);
    sql(
        &mut s,
        "CREATE REPOSITORY r ON LOCATION \"mem://state_seq_backup\"",
    );
    for st in BACKUP_STATES {
        pause("backup", st);
    }
    sql(&mut s, "BACKUP SNAPSHOT d.seq TO r");
    let h = last_job(&s);
    for (i, st) in BACKUP_STATES.into_iter().enumerate() {
        wait_for_state(&h, st);
        let show = show_backup(&mut s);
        assert_eq!(only(&show, "State"), st);
        assert_eq!(only(&show, "Status"), "OK");
        assert_ne!(only(&show, "CreateTime"), "NULL");
        // SNAPSHOTING ends before UPLOAD_SNAPSHOT, UPLOADING before SAVE_META.
        let snap_done = i >= 2;
        let upload_done = i >= 4;
        assert_eq!(
            only(&show, "SnapshotFinishedTime") != "NULL",
            snap_done,
            "{st}"
        );
        assert_eq!(
            only(&show, "UploadFinishedTime") != "NULL",
            upload_done,
            "{st}"
        );
        assert_eq!(only(&show, "FinishedTime"), "NULL", "{st}");
        unpause("backup", st);
    }
    assert_eq!(wait(&h), "FINISHED");
    let show = show_backup(&mut s);
    assert_eq!(only(&show, "State"), "FINISHED");
    assert_ne!(only(&show, "FinishedTime"), "NULL");
}

#[test]
fn restore_walks_every_state_in_order() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(&tmp.path().join("home"));
    make_db_and_table(&mut s, "d", "t", 2);
    sql(
        &mut s,
        "CREATE REPOSITORY r ON LOCATION \"mem://state_seq_restore\"",
    );
    let sum = checksum(&mut s, "t");
    let b = backup(&mut s, "BACKUP SNAPSHOT d.seq TO r");
    for st in RESTORE_STATES {
        pause("restore", st);
    }
    sql(&mut s, &restore_stmt(&b, "r", "ON (t AS copy)", ""));
    let h = last_job(&s);
    let times = [
        "MetaPreparedTime",
        "SnapshotFinishedTime",
        "DownloadFinishedTime",
    ];
    // The phase whose time is set once the job is in each state.
    let set_from = [1, 2, 4];
    for (i, st) in RESTORE_STATES.into_iter().enumerate() {
        wait_for_state(&h, st);
        let show = rows(&mut s, "SHOW RESTORE FROM d");
        assert_eq!(only(&show, "State"), st);
        assert_eq!(only(&show, "Status"), "OK");
        for (c, from) in times.iter().zip(set_from) {
            assert_eq!(only(&show, c) != "NULL", i >= from, "{c} in {st}");
        }
        assert_eq!(only(&show, "FinishedTime"), "NULL", "{st}");
        unpause("restore", st);
    }
    assert_eq!(wait(&h), "FINISHED");
    let show = rows(&mut s, "SHOW RESTORE FROM d");
    assert_ne!(only(&show, "FinishedTime"), "NULL");
    assert_eq!(checksum(&mut s, "copy"), sum);
}
