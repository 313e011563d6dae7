//! The `tabletsnap sql` command as users run it: a BACKUP in one process is
//! FINISHED for the next (the process waits for its jobs), `--batch` prints
//! tab-separated rows under a header, errors are one line on stderr with a
//! non-zero exit, and a home in use by another process is refused.

use std::path::Path;
use std::process::{Command, Output};

fn tabletsnap(home: &Path, args: &[&str], stmts: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tabletsnap"))
        .arg("sql")
        .arg("--home")
        .arg(home)
        .args(args)
        .arg("-e")
        .arg(stmts)
        .output()
        .expect("running tabletsnap")
}

/// Runs statements that must succeed; returns stdout.
fn ok(home: &Path, args: &[&str], stmts: &str) -> String {
    let out = tabletsnap(home, args, stmts);
    assert!(
        out.status.success(),
        "{stmts:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Runs statements that must fail; returns the one stderr line.
fn fails(home: &Path, args: &[&str], stmts: &str) -> String {
    let out = tabletsnap(home, args, stmts);
    assert!(!out.status.success(), "{stmts:?} succeeded");
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "stderr of {stmts:?} is not one line: {stderr:?}"
    );
    assert!(lines[0].starts_with("ERROR: "), "{stderr:?}");
    lines[0].to_string()
}

/// Batch output as (header, rows).
fn batch(stdout: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = stdout
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect::<Vec<_>>());
    let header = lines.next().expect("a header row");
    (header, lines.collect())
}

fn cell(header: &[String], row: &[String], name: &str) -> String {
    let i = header
        .iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("no {name} in {header:?}"));
    row[i].clone()
}

const SETUP: &str = "CREATE DATABASE d; USE d;
    CREATE TABLE t (k INT, v BIGINT) PARTITION BY RANGE(k) (
      PARTITION p1 VALUES LESS THAN (\"10\"), PARTITION p2 VALUES LESS THAN MAXVALUE)
    DISTRIBUTED BY HASH(k) BUCKETS 2 PROPERTIES (\"replication_num\" = \"1\");
    INSERT INTO t GENERATE 40 ROWS SEED 1; INSERT INTO t VALUES (1, 1), (50, 50)";

#[test]
fn backup_in_one_process_restore_in_another() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).expect("repo dir");
    let create_repo = format!(
        "CREATE REPOSITORY r ON LOCATION \"file://{}\"",
        repo.display()
    );
    let out = ok(
        &a,
        &["--batch"],
        &format!("{SETUP}; {create_repo}; BACKUP SNAPSHOT d.nightly TO r"),
    );
    assert_eq!(out, "", "--batch prints no status lines");

    let (header, rows) = batch(&ok(&a, &["--batch"], "SHOW BACKUP FROM d"));
    assert_eq!(
        header.join(","),
        "JobId,SnapshotName,DbName,State,BackupObjs,CreateTime,SnapshotFinishedTime,UploadFinishedTime,FinishedTime,UnfinishedTasks,Progress,TaskErrMsg,Status,Timeout"
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(cell(&header, &rows[0], "State"), "FINISHED");
    assert_eq!(cell(&header, &rows[0], "SnapshotName"), "nightly");

    let (h, snaps) = batch(&ok(
        &b,
        &["--batch"],
        &format!("{create_repo}; SHOW SNAPSHOT ON r"),
    ));
    assert_eq!(h, vec!["Snapshot", "Timestamp", "Status"]);
    let ts = cell(&h, &snaps[0], "Timestamp");
    ok(
        &b,
        &["--batch"],
        &format!("CREATE DATABASE d; RESTORE SNAPSHOT d.nightly FROM r PROPERTIES (\"backup_timestamp\" = \"{ts}\")"),
    );
    let (h, rows) = batch(&ok(&b, &["--batch"], "SHOW RESTORE FROM d"));
    assert_eq!(cell(&h, &rows[0], "State"), "FINISHED");
    let sum_a = ok(&a, &["--batch"], "CHECKSUM TABLE d.t");
    let sum_b = ok(&b, &["--batch"], "CHECKSUM TABLE d.t");
    assert!(sum_a.starts_with("Table\tChecksum\nd.t\t"), "{sum_a:?}");
    assert_eq!(sum_a, sum_b);

    // Without --batch: boxed tables like the mysql client.
    let boxed = ok(&b, &[], "USE d; SELECT COUNT(*) FROM t");
    assert!(boxed.contains("+----"), "{boxed}");
    assert!(boxed.contains("| count(*) |"), "{boxed}");
    assert!(boxed.contains("| 42 "), "{boxed}");
}

#[test]
fn errors_are_one_line_and_exit_non_zero() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    ok(&home, &["--batch"], SETUP);
    let e = fails(
        &home,
        &["--batch"],
        "SHOW DATABASES;\nSELEC COUNT(*) FROM d.t",
    );
    assert!(e.contains("line 2") && e.contains("expected"), "{e}");
    let e = fails(&home, &[], "USE nowhere");
    assert!(e.contains("nowhere"), "{e}");
    let e = fails(
        &home,
        &["--batch"],
        "BACKUP SNAPSHOT d.x TO r PROPERTIES (\"colour\" = \"red\")",
    );
    assert!(e.contains("colour"), "{e}");
    let e = fails(&home, &["--user", "nobody"], "SHOW DATABASES");
    assert!(e.contains("nobody"), "{e}");
    ok(&home, &[], "CREATE USER bob");
    let e = fails(
        &home,
        &["--user", "bob"],
        "CREATE REPOSITORY r ON LOCATION \"mem://x\"",
    );
    assert!(e.contains("permission denied"), "{e}");

    // A failing statement after a BACKUP: the job still finishes before exit.
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).expect("repo dir");
    ok(
        &home,
        &[],
        &format!(
            "CREATE REPOSITORY r ON LOCATION \"file://{}\"",
            repo.display()
        ),
    );
    let e = fails(
        &home,
        &["--batch"],
        "BACKUP SNAPSHOT d.late TO r; SELECT COUNT(*) FROM d.nope",
    );
    assert!(e.contains("nope"), "{e}");
    let (h, rows) = batch(&ok(&home, &["--batch"], "SHOW BACKUP FROM d"));
    assert_eq!(cell(&h, &rows[0], "SnapshotName"), "late");
    assert_eq!(cell(&h, &rows[0], "State"), "FINISHED");
}

#[test]
fn a_home_in_use_by_another_process_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    ok(&home, &["--batch"], "CREATE DATABASE d");
    let held = tabletsnap::cluster::Cluster::open(&home, 3).expect("open in the test process");
    let e = fails(&home, &["--batch"], "SHOW DATABASES");
    assert!(e.contains("in use"), "{e}");
    drop(held);
    assert_eq!(ok(&home, &["--batch"], "SHOW DATABASES"), "Database\nd\n");
}
