//! Repository, BACKUP, RESTORE, SHOW and CANCEL statements: every form works,
//! SHOW rows have exactly the issue's columns with times recorded, and every
//! rejection names the offender and changes nothing.

mod common;

use common::*;
use tabletsnap::exec::Session;

const BACKUP_COLUMNS: [&str; 15] = [
    "JobId",
    "SnapshotName",
    "DbName",
    "State",
    "BackupObjs",
    "CreateTime",
    "SnapshotFinishedTime",
    "UploadFinishedTime",
    "FinishedTime",
    "UnfinishedTasks",
    "Progress",
    "TaskErrMsg",
    "Status",
    "Timeout",
    "Data",
];

const RESTORE_COLUMNS: [&str; 18] = [
    "JobId",
    "Label",
    "Timestamp",
    "DbName",
    "State",
    "AllowLoad",
    "ReplicationNum",
    "RestoreObjs",
    "CreateTime",
    "MetaPreparedTime",
    "SnapshotFinishedTime",
    "DownloadFinishedTime",
    "FinishedTime",
    "UnfinishedTasks",
    "Progress",
    "TaskErrMsg",
    "Status",
    "Timeout",
];

/// A home with database `d`, table `t` and repository `r`; returns the repo dir.
fn setup(tmp: &std::path::Path) -> (Session, std::path::PathBuf) {
    let mut s = open(&tmp.join("home"));
    make_db_and_table(&mut s, "d", "t", 2);
    let dir = tmp.join("repo");
    sql(
        &mut s,
        &format!(
            "CREATE REPOSITORY r ON LOCATION \"{}\"",
            file_location(&dir)
        ),
    );
    (s, dir)
}

fn is_time(cell: &str) -> bool {
    // `YYYY-MM-DD HH:MM:SS`
    cell.len() == 19 && cell.as_bytes()[4] == b'-' && cell.as_bytes()[13] == b':'
}

#[test]
fn repositories() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(&tmp.path().join("home"));
    let loc = file_location(&tmp.path().join("repo"));
    sql(
        &mut s,
        &format!("CREATE REPOSITORY r1 ON LOCATION \"{loc}\""),
    );
    sql(
        &mut s,
        "CREATE REPOSITORY r2 WITH BROKER mem ON LOCATION \"mem://stmt_r2\" PROPERTIES (\"username\" = \"u\")",
    );
    sql(
        &mut s,
        "create repository `r3` with broker on location 'mem://stmt_r3'",
    );
    let repos = rows(&mut s, "SHOW REPOSITORIES");
    assert_eq!(
        repos.columns,
        vec![
            "RepoName",
            "CreateTime",
            "IsReadOnly",
            "Location",
            "Broker",
            "ErrMsg"
        ]
    );
    assert_eq!(column(&repos, "RepoName"), vec!["r1", "r2", "r3"]);
    assert_eq!(column(&repos, "Location")[0], loc);
    // `WITH BROKER` without a name shows as no broker, like no WITH BROKER.
    assert_eq!(column(&repos, "Broker"), vec!["-", "mem", "-"]);
    assert_eq!(column(&repos, "IsReadOnly"), vec!["false"; 3]);
    assert_eq!(column(&repos, "ErrMsg"), vec!["NULL", "NULL", "NULL"]);
    assert!(column(&repos, "CreateTime").iter().all(|c| is_time(c)));

    assert_mentions(
        &err(
            &mut s,
            &format!("CREATE REPOSITORY r1 ON LOCATION \"{loc}\""),
        ),
        &["r1", "already exists"],
    );
    assert_mentions(
        &err(
            &mut s,
            "CREATE REPOSITORY bad ON LOCATION \"s3://bucket/x\"",
        ),
        &["s3://bucket/x"],
    );
    assert_mentions(
        &err(
            &mut s,
            "CREATE REPOSITORY bad ON LOCATION \"file://relative/x\"",
        ),
        &["file://relative/x"],
    );
    sql(&mut s, "DROP REPOSITORY r2");
    assert_eq!(
        column(&rows(&mut s, "SHOW REPOSITORIES"), "RepoName"),
        vec!["r1", "r3"]
    );
    assert_mentions(
        &err(&mut s, "DROP REPOSITORY r2"),
        &["unknown repository 'r2'"],
    );
}

#[test]
fn backup_and_restore_rows_have_the_issue_columns_and_times() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut s, _) = setup(tmp.path());
    let h = backup(
        &mut s,
        "BACKUP SNAPSHOT d.snap1 TO r ON (t) PROPERTIES (\"type\" = \"full\", \"timeout\" = \"600\")",
    );
    let show = rows(&mut s, "SHOW BACKUP FROM d");
    assert_eq!(show.columns, BACKUP_COLUMNS);
    assert_eq!(only(&show, "JobId"), h.id.to_string());
    assert_eq!(only(&show, "SnapshotName"), "snap1");
    assert_eq!(only(&show, "DbName"), "d");
    assert_eq!(only(&show, "State"), "FINISHED");
    assert_eq!(only(&show, "BackupObjs"), "t(p1,p2,p3)");
    for c in [
        "CreateTime",
        "SnapshotFinishedTime",
        "UploadFinishedTime",
        "FinishedTime",
    ] {
        assert!(is_time(&only(&show, c)), "{c}: {show:?}");
    }
    assert_eq!(only(&show, "UnfinishedTasks"), "0");
    assert_eq!(only(&show, "TaskErrMsg"), "");
    assert_eq!(only(&show, "Status"), "OK");
    assert_eq!(only(&show, "Timeout"), "600");
    // SHOW BACKUP without FROM uses the current database.
    assert_eq!(rows(&mut s, "SHOW BACKUP"), show);

    let ts = timestamp(&h);
    let h = restore(
        &mut s,
        &format!(
            "RESTORE SNAPSHOT d.snap1 FROM r ON (t PARTITION (p1, p2) AS t2)
             PROPERTIES (\"backup_timestamp\" = \"{ts}\", \"replication_num\" = \"2\", \"allow_load\" = \"true\", \"timeout\" = \"700\")"
        ),
    );
    let show = rows(&mut s, "SHOW RESTORE FROM d");
    assert_eq!(show.columns, RESTORE_COLUMNS);
    assert_eq!(only(&show, "JobId"), h.id.to_string());
    assert_eq!(only(&show, "Label"), "snap1");
    assert_eq!(only(&show, "Timestamp"), ts);
    assert_eq!(only(&show, "DbName"), "d");
    assert_eq!(only(&show, "State"), "FINISHED");
    assert_eq!(only(&show, "AllowLoad"), "true");
    assert_eq!(only(&show, "ReplicationNum"), "2");
    assert_eq!(only(&show, "RestoreObjs"), "t2(p1,p2)");
    for c in [
        "CreateTime",
        "MetaPreparedTime",
        "SnapshotFinishedTime",
        "DownloadFinishedTime",
        "FinishedTime",
    ] {
        assert!(is_time(&only(&show, c)), "{c}: {show:?}");
    }
    assert_eq!(only(&show, "Status"), "OK");
    assert_eq!(only(&show, "Timeout"), "700");
    assert_eq!(
        column(&rows(&mut s, "SHOW PARTITIONS FROM t2"), "ReplicationNum"),
        vec!["2", "2"]
    );
    // SHOW of another database shows nothing of d's jobs.
    sql(&mut s, "CREATE DATABASE other");
    assert!(rows(&mut s, "SHOW BACKUP FROM other").rows.is_empty());
    assert!(rows(&mut s, "SHOW RESTORE FROM other").rows.is_empty());
}

#[test]
fn show_snapshot_with_where_gives_database_and_details() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut s, _) = setup(tmp.path());
    let h = backup(&mut s, "BACKUP SNAPSHOT d.snap1 TO r ON (t PARTITION (p2))");
    let ts = timestamp(&h);
    let all = rows(&mut s, "SHOW SNAPSHOT ON r");
    assert_eq!(all.columns, vec!["Snapshot", "Timestamp", "Status"]);
    assert_eq!(
        all.rows,
        vec![vec!["snap1".to_string(), ts.clone(), "OK".into()]]
    );
    for filter in [
        "WHERE SNAPSHOT = \"snap1\"".to_string(),
        format!("where snapshot = 'snap1' and timestamp = '{ts}'"),
    ] {
        let one = rows(&mut s, &format!("SHOW SNAPSHOT ON r {filter}"));
        assert_eq!(
            one.columns,
            vec!["Snapshot", "Timestamp", "Status", "Database", "Details"]
        );
        assert_eq!(only(&one, "Status"), "OK");
        assert_eq!(only(&one, "Database"), "d");
        let details = only(&one, "Details");
        assert_mentions(&details, &["snap1", &ts, "t ", "p2"]);
        assert!(!details.contains("p1 version"), "{details}");
    }
    assert!(
        rows(&mut s, "SHOW SNAPSHOT ON r WHERE SNAPSHOT = \"other\"")
            .rows
            .is_empty()
    );
    assert!(rows(
        &mut s,
        "SHOW SNAPSHOT ON r WHERE SNAPSHOT = \"snap1\" AND TIMESTAMP = \"2000-01-01-00-00-00\""
    )
    .rows
    .is_empty());
    assert_mentions(&err(&mut s, "SHOW SNAPSHOT ON nowhere"), &["nowhere"]);
}

/// A rejected BACKUP names `needles` and starts nothing.
#[track_caller]
fn rejected_backup(s: &mut Session, stmt: &str, needles: &[&str]) {
    let e = err(s, stmt);
    assert_mentions(&e, needles);
    assert!(s.started_jobs().is_empty(), "{stmt} started a job");
    assert!(rows(s, "SHOW BACKUP FROM d").rows.is_empty(), "{stmt}");
}

#[test]
fn backup_rejections_name_the_offender() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut s, repo_dir) = setup(tmp.path());
    let sum = checksum(&mut s, "t");
    rejected_backup(
        &mut s,
        "BACKUP SNAPSHOT d.l TO r PROPERTIES (\"colour\" = \"red\")",
        &["colour"],
    );
    rejected_backup(
        &mut s,
        "BACKUP SNAPSHOT d.l TO r PROPERTIES (\"type\" = \"differential\")",
        &["type", "differential", "\"full\" or \"incremental\""],
    );
    rejected_backup(
        &mut s,
        "BACKUP SNAPSHOT d.l TO r PROPERTIES (\"timeout\" = \"soon\")",
        &["timeout", "soon"],
    );
    rejected_backup(
        &mut s,
        "BACKUP SNAPSHOT d.l TO r PROPERTIES (\"timeout\" = \"3\")",
        &["timeout", "\"3\"", "from 10 to 2592000"],
    );
    rejected_backup(
        &mut s,
        "BACKUP SNAPSHOT d.l TO r PROPERTIES (\"timeout\" = \"-20\")",
        &["timeout", "-20"],
    );
    rejected_backup(
        &mut s,
        "BACKUP SNAPSHOT d.l TO r ON (t, t)",
        &["`t`", "twice"],
    );
    rejected_backup(
        &mut s,
        "BACKUP SNAPSHOT d.l TO r ON (t PARTITION (p1), t PARTITION (p2))",
        &["t", "twice"],
    );
    rejected_backup(&mut s, "BACKUP SNAPSHOT d.l TO r ON (t, nope)", &["nope"]);
    rejected_backup(
        &mut s,
        "BACKUP SNAPSHOT d.l TO r ON (t PARTITION (p1, p9))",
        &["p9"],
    );
    rejected_backup(&mut s, "BACKUP SNAPSHOT d.l TO nowhere", &["nowhere"]);
    rejected_backup(&mut s, "BACKUP SNAPSHOT nodb.l TO r", &["nodb"]);
    rejected_backup(&mut s, "BACKUP SNAPSHOT d.`a/b` TO r", &["a/b"]);
    rejected_backup(&mut s, "BACKUP SNAPSHOT d.`..` TO r", &["..", "label"]);
    rejected_backup(&mut s, "BACKUP SNAPSHOT d.`.hidden` TO r", &[".hidden"]);
    rejected_backup(&mut s, "BACKUP SNAPSHOT d.l TO r ON (t AS x)", &["AS"]);
    // An empty database has nothing to back up.
    sql(&mut s, "CREATE DATABASE empty");
    let e = err(&mut s, "BACKUP SNAPSHOT empty.l TO r");
    assert_mentions(&e, &["empty"]);
    // Nothing reached the repository, and the data is unchanged.
    assert!(files_containing(&repo_dir, "__ss_").is_empty());
    assert!(rows(&mut s, "SHOW SNAPSHOT ON r").rows.is_empty());
    assert_eq!(checksum(&mut s, "t"), sum);
    assert!(snapshot_leftovers(&tmp.path().join("home")).is_empty());
}

/// A rejected RESTORE names `needles` and changes nothing.
#[track_caller]
fn rejected_restore(s: &mut Session, stmt: &str, needles: &[&str]) {
    let before = rows(s, "SHOW TABLES FROM d");
    let e = err(s, stmt);
    assert_mentions(&e, needles);
    assert_eq!(s.started_jobs().len(), 1, "{stmt} started a job");
    assert!(rows(s, "SHOW RESTORE FROM d").rows.is_empty(), "{stmt}");
    assert_eq!(rows(s, "SHOW TABLES FROM d"), before, "{stmt}");
}

#[test]
fn restore_rejections_name_the_offender() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut s, _) = setup(tmp.path());
    let h = backup(
        &mut s,
        "BACKUP SNAPSHOT d.snap TO r ON (t PARTITION (p1, p2))",
    );
    let ts = timestamp(&h);
    let ok_ts = format!("\"backup_timestamp\" = \"{ts}\"");
    let stmt =
        |on: &str, props: &str| format!("RESTORE SNAPSHOT d.snap FROM r {on} PROPERTIES ({props})");
    rejected_restore(
        &mut s,
        &stmt("ON (t AS u)", &format!("{ok_ts}, \"colour\" = \"red\"")),
        &["colour"],
    );
    rejected_restore(
        &mut s,
        &stmt("ON (t AS u)", "\"replication_num\" = \"1\""),
        &["backup_timestamp"],
    );
    rejected_restore(
        &mut s,
        &stmt(
            "ON (t AS u)",
            "\"backup_timestamp\" = \"2001-01-01-00-00-00\"",
        ),
        &["snap", "2001-01-01-00-00-00", "not found"],
    );
    rejected_restore(
        &mut s,
        &stmt("ON (t AS u)", &format!("{ok_ts}, \"timeout\" = \"soon\"")),
        &["timeout", "soon"],
    );
    rejected_restore(
        &mut s,
        &stmt("ON (t AS u)", &format!("{ok_ts}, \"timeout\" = \"9\"")),
        &["timeout", "\"9\""],
    );
    rejected_restore(
        &mut s,
        &stmt(
            "ON (t AS u)",
            &format!("{ok_ts}, \"replication_num\" = \"zero\""),
        ),
        &["replication_num", "zero"],
    );
    rejected_restore(
        &mut s,
        &stmt(
            "ON (t AS u)",
            &format!("{ok_ts}, \"replication_num\" = \"4\""),
        ),
        &["replication_num", "4", "backends"],
    );
    rejected_restore(
        &mut s,
        &stmt(
            "ON (t AS u)",
            &format!("{ok_ts}, \"allow_load\" = \"maybe\""),
        ),
        &["allow_load", "maybe"],
    );
    rejected_restore(&mut s, &stmt("ON (nope)", &ok_ts), &["nope", "snap"]);
    rejected_restore(
        &mut s,
        &stmt("ON (t PARTITION (p3) AS u)", &ok_ts),
        &["p3", "snap"],
    );
    rejected_restore(&mut s, &stmt("ON (t, t)", &ok_ts), &["`t`", "twice"]);
    rejected_restore(
        &mut s,
        &stmt("ON (t AS u, t AS v)", &ok_ts),
        &["`t`", "twice"],
    );
    rejected_restore(
        &mut s,
        &format!("RESTORE SNAPSHOT d.snap FROM nowhere PROPERTIES ({ok_ts})"),
        &["nowhere"],
    );
    rejected_restore(
        &mut s,
        &format!("RESTORE SNAPSHOT nodb.snap FROM r PROPERTIES ({ok_ts})"),
        &["nodb"],
    );
    rejected_restore(
        &mut s,
        &format!("RESTORE SNAPSHOT d.`x/../snap` FROM r PROPERTIES ({ok_ts})"),
        &["x/../snap"],
    );
    rejected_restore(
        &mut s,
        &format!("RESTORE SNAPSHOT d.other FROM r PROPERTIES ({ok_ts})"),
        &["other", "not found"],
    );
    // The good statement is accepted.
    restore(&mut s, &stmt("ON (t AS u)", &ok_ts));
}

#[test]
fn cancel_without_a_running_job_is_an_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut s, _) = setup(tmp.path());
    assert_mentions(
        &err(&mut s, "CANCEL BACKUP FROM d"),
        &["no running BACKUP", "'d'"],
    );
    assert_mentions(
        &err(&mut s, "CANCEL RESTORE"),
        &["no running RESTORE", "'d'"],
    );
    backup(&mut s, "BACKUP SNAPSHOT d.x TO r");
    assert_mentions(&err(&mut s, "CANCEL BACKUP FROM d"), &["no running BACKUP"]);
    assert_mentions(&err(&mut s, "CANCEL BACKUP FROM nodb"), &["nodb"]);
}
