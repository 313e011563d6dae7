//! CANCEL at each state of a job: the job ends CANCELLED, snapshots and
//! restore dirs are released on every backend, nothing of a cancelled backup
//! stays in the repository, half-restored new tables are dropped, and
//! existing data is never damaged. CANCEL RESTORE in COMMITTING is refused
//! and the restore finishes.
#![cfg(feature = "failpoints")]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tabletsnap::exec::Session;
use tabletsnap::job::{JobHandle, JobRecord};

/// Issues `stmt` (a CANCEL) from another session while the job is paused at
/// `state`, lets the job go once the cancel is asked for, and returns the
/// CANCEL's outcome.
fn cancel_while_paused(
    s: &Session,
    h: &Arc<JobHandle>,
    kind: &str,
    st: &str,
    stmt: &str,
) -> Result<String, String> {
    let mut other = other_session(s);
    let stmt = stmt.to_string();
    let t = std::thread::spawn(move || {
        other
            .run_script(&stmt)
            .map(|o| format!("{o:?}"))
            .map_err(|e| format!("{e:#}"))
    });
    let start = Instant::now();
    while !h.cancel.is_cancelled() && !t.is_finished() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "CANCEL never reached job {}",
            h.id
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    unpause(kind, st);
    t.join().expect("cancel thread")
}

fn no_leftovers(home: &Path) {
    assert_eq!(snapshot_leftovers(home), Vec::<PathBuf>::new());
}

#[test]
fn cancel_backup_at_each_state() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    let mut s = open(&home);
    make_db_and_table(&mut s, "d", "t", 3);
    let repo_dir = tmp.path().join("repo");
    sql(
        &mut s,
        &format!(
            "CREATE REPOSITORY r ON LOCATION \"{}\"",
            file_location(&repo_dir)
        ),
    );
    let sum = checksum(&mut s, "t");
    for st in BACKUP_STATES {
        let label = format!("c_{}", st.to_ascii_lowercase());
        pause("backup", st);
        sql(&mut s, &format!("BACKUP SNAPSHOT d.{label} TO r"));
        let h = last_job(&s);
        wait_for_state(&h, st);
        let out = cancel_while_paused(&s, &h, "backup", st, "CANCEL BACKUP FROM d");
        let msg = out.unwrap_or_else(|e| panic!("CANCEL in {st} failed: {e}"));
        assert_mentions(&msg, &["cancelled", &h.id.to_string()]);
        assert_eq!(wait(&h), "CANCELLED", "cancel in {st}");
        assert_eq!(status(&h), "[CANCELLED] cancelled by user", "{st}");
        no_leftovers(&home);
        assert!(
            files_containing(&repo_dir, &format!("__ss_{label}")).is_empty(),
            "{st}"
        );
        assert!(
            !home.join("jobs").join(h.id.to_string()).exists(),
            "scratch dir of {st}"
        );
        assert!(rows(&mut s, "SHOW SNAPSHOT ON r").rows.is_empty(), "{st}");
        assert_eq!(checksum(&mut s, "t"), sum, "{st}");
    }
    let show = rows(&mut s, "SHOW BACKUP FROM d");
    assert_eq!(
        column(&show, "State"),
        vec!["CANCELLED"; BACKUP_STATES.len()]
    );
    // The database and repository work as before.
    let h = backup(&mut s, "BACKUP SNAPSHOT d.after TO r");
    restore(&mut s, &restore_stmt(&h, "r", "ON (t AS copy)", ""));
    assert_eq!(checksum(&mut s, "copy"), sum);
}

/// Tablet ids a restore job created (none before its plan is made).
fn created_tablets(h: &JobHandle) -> Vec<u64> {
    let JobRecord::Restore(j) = h.record() else {
        panic!("not a restore");
    };
    j.plan
        .unwrap_or_default()
        .iter()
        .flat_map(|t| &t.partitions)
        .filter(|p| p.created)
        .flat_map(|p| p.tablets.iter().map(|(_, id, _)| *id))
        .collect()
}

#[test]
fn cancel_restore_at_each_state() {
    let _serial = serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    let mut s = open(&home);
    make_db_and_table(&mut s, "d", "t", 2);
    make_table(&mut s, "u", 2);
    sql(&mut s, "INSERT INTO u GENERATE 10 ROWS SEED 3");
    sql(
        &mut s,
        "CREATE REPOSITORY r ON LOCATION \"mem://cancel_restore\"",
    );
    let t_at_backup = checksum(&mut s, "t");
    let b = backup(&mut s, "BACKUP SNAPSHOT d.snap TO r");
    // t changes after the backup: a restore would overwrite it.
    sql(&mut s, "INSERT INTO t GENERATE 7 ROWS SEED 77");
    let t_now = checksum(&mut s, "t");
    let u_now = checksum(&mut s, "u");
    let restore_sql = restore_stmt(&b, "r", "ON (t, u AS fresh)", "");
    for st in &RESTORE_STATES[..5] {
        pause("restore", st);
        sql(&mut s, &restore_sql);
        let h = last_job(&s);
        wait_for_state(&h, st);
        let out = cancel_while_paused(&s, &h, "restore", st, "CANCEL RESTORE FROM d");
        let msg = out.unwrap_or_else(|e| panic!("CANCEL in {st} failed: {e}"));
        assert_mentions(&msg, &["cancelled", &h.id.to_string()]);
        assert_eq!(wait(&h), "CANCELLED", "cancel in {st}");
        assert_eq!(status(&h), "[CANCELLED] cancelled by user", "{st}");
        no_leftovers(&home);
        assert_eq!(
            column(&rows(&mut s, "SHOW TABLES"), "Tables_in_d"),
            vec!["t", "u"],
            "{st}"
        );
        for id in created_tablets(&h) {
            assert!(
                !tablet_exists(&s, id),
                "tablet {id} of fresh survived a cancel in {st}"
            );
        }
        assert_eq!(checksum(&mut s, "t"), t_now, "{st}");
        assert_eq!(checksum(&mut s, "u"), u_now, "{st}");
    }
    // Existing tables take loads again (no fence left behind).
    sql(
        &mut s,
        "INSERT INTO t VALUES (1, 1, 'x'); INSERT INTO t VALUES (1, 1, 'x')",
    );
    let t_now = checksum(&mut s, "t");
    assert_ne!(t_now, t_at_backup);

    // COMMITTING only moves forward: CANCEL is refused and the restore finishes.
    pause("restore", "COMMITTING");
    sql(&mut s, &restore_sql);
    let h = last_job(&s);
    wait_for_state(&h, "COMMITTING");
    let e = err(&mut s, "CANCEL RESTORE FROM d");
    assert_mentions(&e, &["COMMITTING", &h.id.to_string()]);
    assert!(!h.cancel.is_cancelled());
    unpause("restore", "COMMITTING");
    assert_eq!(wait(&h), "FINISHED");
    assert_eq!(checksum(&mut s, "t"), t_at_backup);
    assert_eq!(
        checksum(&mut s, "fresh"),
        u_now,
        "u did not change after the backup"
    );
    no_leftovers(&home);
}
