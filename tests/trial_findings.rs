//! Findings of a new user's trial, each checked as the user met it:
//! a SNAPSHOTING failure on one backend leaves no snapshot dirs on the
//! others; impossible dates are refused with a sentence; a damaged `info`
//! is listed with its damage; a permanent repository error cancels a job at
//! once; `file:///` is named whole.

#![cfg(feature = "failpoints")]

mod common;

use std::path::Path;

use common::*;

fn info_files(dir: &Path) -> Vec<std::path::PathBuf> {
    files_containing(dir, "__ss_")
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "info"))
        .collect()
}

#[test]
fn a_snapshot_failure_on_one_backend_releases_the_others_at_once() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("h");
    let mut s = open(&home);
    sql(&mut s, "CREATE DATABASE d; USE d");
    make_table(&mut s, "t", 1);
    sql(&mut s, "INSERT INTO t GENERATE 30 ROWS SEED 1");
    sql(
        &mut s,
        "CREATE REPOSITORY r ON LOCATION \"mem://trial_snap\"",
    );
    // One tablet's snapshot always fails: the other backends succeed each try.
    let victim = column(&rows(&mut s, "SHOW TABLET FROM t"), "TabletId")[0].clone();
    fail::cfg("snapshot::make::tablet", &format!("return({victim})")).expect("fail point");
    sql(&mut s, "BACKUP SNAPSHOT d.b TO r");
    let h = last_job(&s);
    assert_eq!(wait(&h), "CANCELLED");
    fail::remove("snapshot::make::tablet");
    assert_eq!(
        snapshot_leftovers(&home),
        Vec::<std::path::PathBuf>::new(),
        "snapshot dirs outlived the failed step"
    );
}

#[test]
fn impossible_dates_are_refused_in_a_sentence() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(tmp.path());
    sql(
        &mut s,
        "CREATE DATABASE d; USE d; CREATE TABLE e (id INT, day DATE, v VARCHAR(4)) DUPLICATE KEY(id)
         DISTRIBUTED BY HASH(id) BUCKETS 1 PROPERTIES (\"replication_num\" = \"1\")",
    );
    for bad in [
        "2024-02-30",
        "2023-02-29",
        "2024-13-45",
        "2024-04-31",
        "2024-00-10",
    ] {
        let msg = err(
            &mut s,
            &format!("INSERT INTO e VALUES (1, \"{bad}\", \"a\")"),
        );
        assert_mentions(
            &msg,
            &["column day", &format!("'{bad}'"), "not a valid date"],
        );
        assert!(!msg.contains("String("), "a Rust value in {msg:?}");
    }
    sql(&mut s, "INSERT INTO e VALUES (1, \"2024-02-29\", \"a\")");
    assert_eq!(count(&mut s, "e"), 1);
}

#[test]
fn a_damaged_info_is_listed_with_its_damage() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(&tmp.path().join("h"));
    make_db_and_table(&mut s, "d", "t", 1);
    let repo = tmp.path().join("repo");
    sql(
        &mut s,
        &format!(
            "CREATE REPOSITORY r ON LOCATION \"{}\"",
            file_location(&repo)
        ),
    );
    backup(&mut s, "BACKUP SNAPSHOT d.good TO r");
    backup(&mut s, "BACKUP SNAPSHOT d.bad TO r");
    let bad = info_files(&repo)
        .into_iter()
        .find(|p| p.to_string_lossy().contains("__ss_bad"))
        .expect("info of bad");
    let mut bytes = std::fs::read(&bad).expect("info");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&bad, bytes).expect("write");
    let listed = rows(&mut s, "SHOW SNAPSHOT ON r");
    let labels = column(&listed, "Snapshot");
    let statuses = column(&listed, "Status");
    let at = |l: &str| labels.iter().position(|x| x == l).expect(l);
    assert_eq!(statuses[at("good")], "OK");
    assert!(statuses[at("bad")].starts_with("DAMAGED"), "{statuses:?}");
    assert_mentions(&statuses[at("bad")], &["info"]);
}

#[test]
fn a_permanent_repository_error_cancels_at_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(&tmp.path().join("h"));
    make_db_and_table(&mut s, "d", "t", 2);
    let repo = tmp.path().join("repo");
    sql(
        &mut s,
        &format!(
            "CREATE REPOSITORY r ON LOCATION \"{}\"",
            file_location(&repo)
        ),
    );
    let h = backup(&mut s, "BACKUP SNAPSHOT d.b TO r");
    for p in files_containing(&repo, ".pack") {
        std::fs::remove_file(p).expect("rm pack");
    }
    sql(&mut s, &restore_stmt(&h, "r", "ON (t AS t2)", ""));
    let r = last_job(&s);
    assert_eq!(wait(&r), "CANCELLED");
    let st = status(&r);
    assert!(!st.contains("times"), "retried a permanent error: {st}");
    assert_mentions(&st, &["DOWNLOADING failed", "not found"]);
}

#[test]
fn a_root_location_is_named_whole() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(tmp.path());
    let msg = err(&mut s, "CREATE REPOSITORY r ON LOCATION \"file:///\"");
    assert_mentions(&msg, &["'file:///'", "filesystem root"]);
}
