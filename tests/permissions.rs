//! Only ADMIN users run BACKUP, RESTORE, CANCEL and repository statements:
//! the home's root is an admin, CREATE USER makes ordinary users, who get a
//! permission error naming the statement and themselves, and change nothing.

mod common;

use std::sync::Arc;

use common::*;
use tabletsnap::exec::Session;

#[test]
fn ordinary_users_cannot_run_job_or_repository_statements() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut root = open(&tmp.path().join("home"));
    make_db_and_table(&mut root, "d", "t", 2);
    let loc = file_location(&tmp.path().join("repo"));
    sql(
        &mut root,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    let h = backup(&mut root, "BACKUP SNAPSHOT d.snap TO r");
    sql(&mut root, "CREATE USER bob");
    assert_mentions(
        &err(&mut root, "CREATE USER bob"),
        &["bob", "already exists"],
    );

    let mut bob = Session::new(Arc::clone(root.cluster()), "bob").expect("bob's session");
    sql(&mut bob, "USE d");
    let restore = restore_stmt(&h, "r", "ON (t AS u)", "");
    let refused = [
        ("BACKUP SNAPSHOT d.mine TO r", "BACKUP"),
        (restore.as_str(), "RESTORE"),
        ("CANCEL BACKUP FROM d", "CANCEL BACKUP"),
        ("CANCEL RESTORE FROM d", "CANCEL RESTORE"),
        (
            "CREATE REPOSITORY r2 ON LOCATION \"mem://bobs\"",
            "CREATE REPOSITORY",
        ),
        ("DROP REPOSITORY r", "DROP REPOSITORY"),
        ("CREATE USER eve", "CREATE USER"),
    ];
    for (stmt, what) in refused {
        let e = err(&mut bob, stmt);
        assert_mentions(&e, &["permission denied", what, "ADMIN", "'bob'"]);
    }
    assert!(bob.started_jobs().is_empty());
    assert_eq!(rows(&mut root, "SHOW BACKUP FROM d").rows.len(), 1);
    assert!(rows(&mut root, "SHOW RESTORE FROM d").rows.is_empty());
    assert_eq!(
        column(&rows(&mut root, "SHOW REPOSITORIES"), "RepoName"),
        vec!["r"]
    );
    assert_eq!(
        column(&rows(&mut root, "SHOW TABLES"), "Tables_in_d"),
        vec!["t"]
    );
    assert!(Session::new(Arc::clone(root.cluster()), "eve").is_err());

    // Bob may still use the data and look at jobs.
    sql(&mut bob, "INSERT INTO t VALUES (1, 1, 'bob')");
    assert!(count(&mut bob, "t") > 0);
    assert_eq!(rows(&mut bob, "SHOW BACKUP").rows.len(), 1);

    // Users persist with the home; root is an admin there too.
    let home = tmp.path().join("home");
    drop(bob);
    let mut root = reopen(root, &home);
    let mut bob = Session::new(Arc::clone(root.cluster()), "bob").expect("bob after reopen");
    assert_mentions(
        &err(&mut bob, "BACKUP SNAPSHOT d.x TO r"),
        &["permission denied"],
    );
    backup(&mut root, "BACKUP SNAPSHOT d.x TO r");
}

#[test]
fn unknown_users_get_no_session() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = open(tmp.path());
    let e = Session::new(Arc::clone(root.cluster()), "mallory").expect_err("unknown user");
    assert_mentions(&format!("{e:#}"), &["mallory"]);
}
