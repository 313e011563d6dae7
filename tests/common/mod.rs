//! Helpers shared by the scenario tests: homes in temp dirs, statements that
//! must succeed or fail, result cells by column name, job waits, and the
//! leftovers a cancelled job must not leave behind.
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod nodes;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tabletsnap::cluster::Cluster;
use tabletsnap::exec::{Output, Session};
use tabletsnap::job::{JobHandle, JobRecord};
use tabletsnap::sql::ResultSet;

/// Backends in every test home.
pub const BACKENDS: u32 = 3;

/// How long a test waits for a job before declaring it stuck.
const STUCK: Duration = Duration::from_secs(60);

/// Opens (or creates) a home and a root session on it.
pub fn open(home: &Path) -> Session {
    let cluster = Cluster::open(home, BACKENDS)
        .unwrap_or_else(|e| panic!("opening {}: {e:#}", home.display()));
    Session::new(cluster, "root").expect("root session")
}

/// Another root session on the same cluster (e.g. for CANCEL from a thread).
pub fn other_session(s: &Session) -> Session {
    Session::new(Arc::clone(s.cluster()), "root").expect("root session")
}

/// Runs statements that must succeed.
pub fn sql(s: &mut Session, text: &str) -> Vec<Output> {
    s.run_script(text)
        .unwrap_or_else(|e| panic!("{text:?} failed: {e:#}"))
}

/// The last result table of statements that must succeed.
pub fn rows(s: &mut Session, text: &str) -> ResultSet {
    sql(s, text)
        .into_iter()
        .rev()
        .find_map(|o| match o {
            Output::Rows(r) => Some(r),
            Output::Message(_) => None,
        })
        .unwrap_or_else(|| panic!("{text:?} returned no rows"))
}

/// The error of statements that must fail, as the CLI prints it.
pub fn err(s: &mut Session, text: &str) -> String {
    match s.run_script(text) {
        Ok(out) => panic!("{text:?} succeeded: {out:?}"),
        Err(e) => format!("{e:#}"),
    }
}

/// Asserts `msg` contains every needle.
#[track_caller]
pub fn assert_mentions(msg: &str, needles: &[&str]) {
    for n in needles {
        assert!(msg.contains(n), "error {msg:?} does not mention {n:?}");
    }
}

/// Column index by name.
#[track_caller]
pub fn col(rs: &ResultSet, name: &str) -> usize {
    rs.columns
        .iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", rs.columns))
}

/// The cells of column `name`, one per row.
#[track_caller]
pub fn column(rs: &ResultSet, name: &str) -> Vec<String> {
    let i = col(rs, name);
    rs.rows.iter().map(|r| r[i].clone()).collect()
}

/// The cell of column `name` in the only row.
#[track_caller]
pub fn only(rs: &ResultSet, name: &str) -> String {
    assert_eq!(rs.rows.len(), 1, "expected one row: {rs:?}");
    rs.rows[0][col(rs, name)].clone()
}

/// `CHECKSUM TABLE t` (t may be `db.t`).
pub fn checksum(s: &mut Session, table: &str) -> String {
    only(&rows(s, &format!("CHECKSUM TABLE {table}")), "Checksum")
}

/// `SELECT COUNT(*)`.
pub fn count(s: &mut Session, table: &str) -> u64 {
    only(
        &rows(s, &format!("SELECT COUNT(*) FROM {table}")),
        "count(*)",
    )
    .parse()
    .expect("a count")
}

/// Every row of a table, sorted, as text.
pub fn all_rows(s: &mut Session, table: &str) -> Vec<Vec<String>> {
    let mut r = rows(s, &format!("SELECT * FROM {table}")).rows;
    r.sort();
    r
}

/// Creates database `db` (and USEs it) with table `t`: INT key `k`
/// partitioned p1 [..10), p2 [10,20), p3 [20,30), 2 buckets, one replica,
/// and `versions` inserts of a few rows into every partition.
pub fn make_db_and_table(s: &mut Session, db: &str, t: &str, versions: u32) {
    sql(s, &format!("CREATE DATABASE {db}; USE {db}"));
    make_table(s, t, 1);
    for v in 0..versions {
        sql(s, &format!("INSERT INTO {t} GENERATE 12 ROWS SEED {v}"));
    }
}

/// Creates table `t` in the current database (no rows) with `replicas` replicas.
pub fn make_table(s: &mut Session, t: &str, replicas: u32) {
    sql(
        s,
        &format!(
            "CREATE TABLE {t} (k INT, v BIGINT, note VARCHAR(16)) DUPLICATE KEY(k)
             PARTITION BY RANGE(k) (
               PARTITION p1 VALUES LESS THAN (\"10\"),
               PARTITION p2 VALUES LESS THAN (\"20\"),
               PARTITION p3 VALUES LESS THAN (\"30\"))
             DISTRIBUTED BY HASH(k) BUCKETS 2
             PROPERTIES (\"replication_num\" = \"{replicas}\")"
        ),
    );
}

/// A `file://` repository location for `dir` (created).
pub fn file_location(dir: &Path) -> String {
    std::fs::create_dir_all(dir).expect("repo dir");
    format!("file://{}", dir.display())
}

/// A source cluster at `home`: database `d` (current) with table `t` of
/// `versions` loads (see [`make_db_and_table`]) and repository `r` at `loc`.
pub fn source_with_repository(home: &Path, loc: &str, versions: u32) -> Session {
    let mut s = open(home);
    make_db_and_table(&mut s, "d", "t", versions);
    sql(
        &mut s,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    s
}

/// A target cluster at `home`: an empty database `d` (current) and
/// repository `r` at `loc`.
pub fn target_with_repository(home: &Path, loc: &str) -> Session {
    let mut s = open(home);
    sql(
        &mut s,
        &format!("CREATE DATABASE d; USE d; CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    s
}

/// The job this session started last.
pub fn last_job(s: &Session) -> Arc<JobHandle> {
    Arc::clone(s.started_jobs().last().expect("a job was started"))
}

/// The state name of a job.
pub fn state(h: &JobHandle) -> &'static str {
    match h.record() {
        JobRecord::Backup(j) => j.state.name(),
        JobRecord::Restore(j) => j.state.name(),
    }
}

/// Waits for a job to end; panics if it seems stuck.
pub fn wait(h: &JobHandle) -> &'static str {
    let start = Instant::now();
    while !h.is_done() {
        assert!(
            start.elapsed() < STUCK,
            "job {} stuck in {}",
            h.id,
            state(h)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    state(h)
}

/// Waits until a job is in `want` (e.g. blocked at that state's fail point).
pub fn wait_for_state(h: &JobHandle, want: &str) {
    let start = Instant::now();
    loop {
        let now = state(h);
        if now == want {
            return;
        }
        assert!(
            !h.is_done() && start.elapsed() < STUCK,
            "job {} never reached {want}; it is {now} (done: {})",
            h.id,
            h.is_done()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs a BACKUP and waits for it; returns the job (asserted FINISHED).
pub fn backup(s: &mut Session, stmt: &str) -> Arc<JobHandle> {
    sql(s, stmt);
    let h = last_job(s);
    assert_eq!(wait(&h), "FINISHED", "{stmt}: {:?}", h.record());
    h
}

/// Runs a RESTORE and waits for it; returns the job (asserted FINISHED).
pub fn restore(s: &mut Session, stmt: &str) -> Arc<JobHandle> {
    sql(s, stmt);
    let h = last_job(s);
    assert_eq!(wait(&h), "FINISHED", "{stmt}: {:?}", h.record());
    h
}

/// The repository timestamp of a backup job.
pub fn timestamp(h: &JobHandle) -> String {
    match h.record() {
        JobRecord::Backup(j) => j.timestamp,
        JobRecord::Restore(j) => j.timestamp,
    }
}

/// The new and reused files and bytes of a finished backup job.
pub fn data(h: &JobHandle) -> tabletsnap::job::backup::DataCounts {
    match h.record() {
        JobRecord::Backup(j) => j.data.expect("counts of a finished backup"),
        JobRecord::Restore(_) => panic!("not a backup"),
    }
}

/// Timestamps have whole seconds: two backups of a label need two seconds.
pub fn next_second() {
    std::thread::sleep(Duration::from_millis(1100));
}

/// The `Status` text of a job.
pub fn status(h: &JobHandle) -> String {
    match h.record() {
        JobRecord::Backup(j) => j.status.status,
        JobRecord::Restore(j) => j.status.status,
    }
}

/// Everything under every backend's snapshot root (snapshot and restore dirs).
pub fn snapshot_leftovers(home: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for be in 1..=BACKENDS {
        let root = home.join(format!("be{be}")).join("store0").join("snapshot");
        if let Ok(rd) = std::fs::read_dir(&root) {
            out.extend(rd.flatten().map(|e| e.path()));
        }
    }
    out
}

/// Files under `dir` whose path contains `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains(needle) {
                out.push(p);
            }
        }
    }
    out
}

/// Whether any backend still holds tablet `id`.
pub fn tablet_exists(s: &Session, id: u64) -> bool {
    s.cluster()
        .backends()
        .iter()
        .any(|b| b.engine().tablet_meta(id).is_ok())
}

/// Closes a session and its cluster, then reopens the home (the lock is free
/// once every job thread has let go of the cluster).
pub fn reopen(s: Session, home: &Path) -> Session {
    drop(s);
    open(home)
}

/// Serializes the tests of one binary that use process-global fail points
/// or the simulated crash, with a fresh `fail` scenario for each.
pub struct Serial {
    _scenario: fail::FailScenario<'static>,
    _guard: MutexGuard<'static, ()>,
}

/// Takes the binary-wide test lock and sets up a fail scenario.
pub fn serial() -> Serial {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    Serial {
        _scenario: fail::FailScenario::setup(),
        _guard: guard,
    }
}

/// BACKUP states in order, before FINISHED.
pub const BACKUP_STATES: [&str; 6] = [
    "PENDING",
    "SNAPSHOTING",
    "UPLOAD_SNAPSHOT",
    "UPLOADING",
    "SAVE_META",
    "UPLOAD_INFO",
];

/// RESTORE states in order, before FINISHED.
pub const RESTORE_STATES: [&str; 6] = [
    "PENDING",
    "SNAPSHOTING",
    "DOWNLOAD",
    "DOWNLOADING",
    "COMMIT",
    "COMMITTING",
];

/// The fail point a job evaluates on entering a state: `job::backup::UPLOADING`.
pub fn fail_point(kind: &str, state: &str) -> String {
    format!("job::{kind}::{state}")
}

/// Blocks jobs of `kind` ("backup" or "restore") when they reach `state`.
pub fn pause(kind: &str, state: &str) {
    fail::cfg(fail_point(kind, state), "pause").expect("configuring a fail point");
}

/// Lets jobs blocked at `state` go on.
pub fn unpause(kind: &str, state: &str) {
    fail::remove(fail_point(kind, state));
}

/// The restore statement for a backup job's snapshot, with extra properties.
pub fn restore_stmt(backup: &JobHandle, repo: &str, on: &str, props: &str) -> String {
    let JobRecord::Backup(j) = backup.record() else {
        panic!("job {} is not a backup", backup.id);
    };
    let extra = if props.is_empty() {
        String::new()
    } else {
        format!(", {props}")
    };
    format!(
        "RESTORE SNAPSHOT {}.{} FROM {repo} {on} PROPERTIES (\"backup_timestamp\" = \"{}\"{extra})",
        j.db, j.label, j.timestamp
    )
}
