//! SHOW SNAPSHOT lists a backup only once it is complete: not while its data,
//! manifest or meta are being written, and never after it was cancelled.
#![cfg(feature = "failpoints")]

mod common;

use common::*;

#[test]
fn a_backup_appears_only_when_finished() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(&tmp.path().join("home"));
    make_db_and_table(&mut s, "d", "t", 2);
    let loc = file_location(&tmp.path().join("repo"));
    sql(
        &mut s,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    let first = backup(&mut s, "BACKUP SNAPSHOT d.first TO r");
    let listed = || vec![vec!["first".to_string(), timestamp(&first), "OK".into()]];
    for st in ["UPLOADING", "SAVE_META", "UPLOAD_INFO"] {
        pause("backup", st);
    }
    sql(&mut s, "BACKUP SNAPSHOT d.second TO r");
    let h = last_job(&s);
    for st in ["UPLOADING", "SAVE_META", "UPLOAD_INFO"] {
        wait_for_state(&h, st);
        assert_eq!(rows(&mut s, "SHOW SNAPSHOT ON r").rows, listed(), "in {st}");
        assert!(
            rows(&mut s, "SHOW SNAPSHOT ON r WHERE SNAPSHOT = \"second\"")
                .rows
                .is_empty(),
            "in {st}"
        );
        unpause("backup", st);
    }
    assert_eq!(wait(&h), "FINISHED");
    let all = rows(&mut s, "SHOW SNAPSHOT ON r");
    assert_eq!(column(&all, "Snapshot"), vec!["first", "second"]);
    let second = rows(&mut s, "SHOW SNAPSHOT ON r WHERE SNAPSHOT = \"second\"");
    assert_eq!(only(&second, "Database"), "d");
    assert_eq!(only(&second, "Timestamp"), timestamp(&h));
    assert_mentions(
        &only(&second, "Details"),
        &["__ss_second/", "t (id", "p1", "p2", "p3"],
    );
}
