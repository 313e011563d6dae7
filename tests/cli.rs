//! The `tabletsnap sql` and `shell` commands as users run them: a BACKUP in
//! one process is FINISHED for the next (the process waits for its jobs),
//! `--batch` prints tab-separated rows under a header, errors are one line on
//! stderr with a non-zero exit, and a home in use by another process is
//! refused. Output reads like the mysql client's; a closed stdout, a
//! cancelled job and Ctrl-C while waiting each end the process cleanly.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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
    assert!(
        [
            "ERROR 1064 (42000): ",
            "ERROR 1105 (HY000): ",
            "ERROR 1045 (28000): ",
            "ERROR 1049 (42000): ",
            "ERROR 1146 (42S02): ",
            "ERROR 1227 (42000): ",
            "ERROR 1007 (HY000): ",
            "ERROR 1050 (42S01): ",
            "ERROR 1396 (HY000): ",
        ]
        .iter()
        .any(|p| lines[0].starts_with(p)),
        "{stderr:?}"
    );
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
        "JobId,SnapshotName,DbName,State,BackupObjs,CreateTime,SnapshotFinishedTime,UploadFinishedTime,FinishedTime,UnfinishedTasks,Progress,TaskErrMsg,Status,Timeout,Data"
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
    assert!(
        boxed.contains("|       42 |"),
        "numbers right-aligned: {boxed}"
    );
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
    assert!(e.starts_with("ERROR 1064 (42000): syntax error"), "{e}");
    let e = fails(&home, &[], "USE nowhere");
    assert!(e.starts_with("ERROR 1049 (42000): "), "{e}");
    assert!(e.contains("nowhere"), "{e}");
    // A RESTORE into a database that does not exist says it is the target.
    let e = fails(
        &home,
        &[],
        "CREATE REPOSITORY m ON LOCATION \"mem://cli_errors\";
         RESTORE SNAPSHOT s FROM m DATABASE d AS d9 ON (TABLE t)
           PROPERTIES (\"backup_timestamp\" = \"2025-01-01-00-00-00\")",
    );
    assert!(e.starts_with("ERROR 1049 (42000): "), "{e}");
    assert!(
        e.contains("'d9'") && e.contains("CREATE DATABASE d9"),
        "{e}"
    );
    // MySQL's codes for names that exist, as client tools expect them.
    let e = fails(&home, &[], "CREATE DATABASE d");
    assert!(e.starts_with("ERROR 1007 (HY000): "), "{e}");
    let e = fails(
        &home,
        &[],
        "CREATE TABLE d.t (id BIGINT) DISTRIBUTED BY HASH(id) BUCKETS 1",
    );
    assert!(e.starts_with("ERROR 1050 (42S01): "), "{e}");
    assert!(e.contains("d.t"), "{e}");
    // And for names that do not exist, DROP too.
    let e = fails(&home, &[], "DROP TABLE d.nosuch");
    assert!(e.starts_with("ERROR 1146 (42S02): "), "{e}");
    assert!(e.contains("d.nosuch"), "{e}");
    let e = fails(&home, &[], "DROP DATABASE nosuch");
    assert!(e.starts_with("ERROR 1049 (42000): "), "{e}");
    assert!(e.contains("nosuch"), "{e}");
    let e = fails(
        &home,
        &["--batch"],
        "BACKUP SNAPSHOT d.x TO r PROPERTIES (\"colour\" = \"red\")",
    );
    assert!(e.contains("colour"), "{e}");
    let e = fails(&home, &["--user", "nobody"], "SHOW DATABASES");
    assert!(e.starts_with("ERROR 1045 (28000): "), "{e}");
    assert!(e.contains("nobody"), "{e}");
    ok(&home, &[], "CREATE USER bob");
    let e = fails(&home, &[], "CREATE USER bob");
    assert!(e.starts_with("ERROR 1396 (HY000): "), "{e}");
    assert!(e.contains("'bob'") && e.contains("exists"), "{e}");
    let e = fails(
        &home,
        &["--user", "bob"],
        "CREATE REPOSITORY r ON LOCATION \"mem://x\"",
    );
    assert!(e.contains("permission denied"), "{e}");
    assert!(e.starts_with("ERROR 1227 (42000): "), "{e}");

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

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tabletsnap"))
}

fn create_repo(dir: &Path) -> String {
    std::fs::create_dir_all(dir).expect("repo dir");
    format!(
        "CREATE REPOSITORY r ON LOCATION \"file://{}\"",
        dir.display()
    )
}

/// Waits for a child, killing it (and failing) if it runs past a minute.
fn wait_bounded(mut child: std::process::Child) -> Output {
    let start = Instant::now();
    while child.try_wait().expect("polling the child").is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("tabletsnap still running after a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
        .wait_with_output()
        .expect("collecting the child's output")
}

/// Bytes of a child's pipe, collected by a thread, to wait on with a deadline.
struct Watch {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Watch {
    fn new(mut r: impl Read + Send + 'static) -> Watch {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = r.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Watch {
            rx,
            seen: String::new(),
        }
    }

    /// Reads until `needle` has appeared (after what earlier calls consumed).
    fn until(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.seen.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!("no {needle:?} in {:?}", self.seen),
            }
        }
        let at = self.seen.find(needle).expect("just found") + needle.len();
        self.seen.drain(..at);
    }
}

fn files_named(dir: &Path, ext: &str, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("listing the repository") {
        let p = e.expect("a dir entry").path();
        if p.is_dir() {
            files_named(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    ok(
        &home,
        &["--batch"],
        "CREATE DATABASE d; USE d; CREATE TABLE t (k INT, v BIGINT) DISTRIBUTED BY HASH(k) \
         BUCKETS 2 PROPERTIES (\"replication_num\" = \"1\"); INSERT INTO t GENERATE 30000 ROWS SEED 1",
    );
    for args in [&[][..], &["--batch"][..]] {
        // Far more output than a pipe holds, and the reader leaves after one line.
        let mut child = bin()
            .arg("sql")
            .arg("--home")
            .arg(&home)
            .args(args)
            .args(["-e", "SELECT * FROM d.t LIMIT 30000; SHOW DATABASES"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting tabletsnap");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("reading the first line");
        assert!(!first.is_empty());
        let out = wait_bounded(child);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert_eq!(stderr, "", "{args:?}: nothing on stderr");
    }
}

#[test]
fn a_cancelled_restore_fails_the_command_with_its_reason() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let create_repo = create_repo(&tmp.path().join("repo"));
    ok(
        &a,
        &["--batch"],
        &format!("{SETUP}; {create_repo}; BACKUP SNAPSHOT d.nightly TO r"),
    );
    // Without one of its packs the restore's download fails for good.
    let mut packs = Vec::new();
    files_named(&tmp.path().join("repo"), "pack", &mut packs);
    std::fs::remove_file(&packs[0]).expect("removing a pack");
    let (h, snaps) = batch(&ok(
        &b,
        &["--batch"],
        &format!("{create_repo}; SHOW SNAPSHOT ON r"),
    ));
    let ts = cell(&h, &snaps[0], "Timestamp");

    let out = tabletsnap(
        &b,
        &[],
        &format!(
            "CREATE DATABASE d; RESTORE SNAPSHOT d.nightly FROM r \
             PROPERTIES (\"backup_timestamp\" = \"{ts}\")"
        ),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Query OK"));
    let line = stderr.lines().last().expect("an error line");
    assert!(
        line.starts_with("ERROR 1105 (HY000): RESTORE nightly (JobId ")
            && line.contains(") was CANCELLED: ")
            && line.contains("not found"),
        "{stderr}"
    );
    let (h, rows) = batch(&ok(&b, &["--batch"], "SHOW RESTORE FROM d"));
    assert_eq!(cell(&h, &rows[0], "State"), "CANCELLED");
}

#[cfg(feature = "failpoints")]
#[test]
fn no_wait_returns_while_the_job_runs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    let create_repo = create_repo(&tmp.path().join("repo"));
    ok(&home, &["--batch"], &format!("{SETUP}; {create_repo}"));
    // The backup stops before uploading; only --no-wait lets the process end.
    let child = bin()
        .args(["sql", "--no-wait", "--home"])
        .arg(&home)
        .args(["-e", "BACKUP SNAPSHOT d.bg TO r"])
        .env("FAILPOINTS", "job::backup::UPLOADING=pause")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting tabletsnap");
    let out = wait_bounded(child);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("BACKUP bg (JobId ") && stderr.contains("is running; --no-wait"),
        "{stderr}"
    );
    let (h, rows) = batch(&ok(&home, &["--batch"], "SHOW BACKUP FROM d"));
    assert_ne!(cell(&h, &rows[0], "State"), "CANCELLED");
}

#[cfg(feature = "failpoints")]
#[test]
fn ctrl_c_without_a_terminal_leaves_the_job_running_and_exits_130() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    let create_repo = create_repo(&tmp.path().join("repo"));
    ok(&home, &["--batch"], &format!("{SETUP}; {create_repo}"));
    let mut child = bin()
        .args(["sql", "--home"])
        .arg(&home)
        .args(["-e", "BACKUP SNAPSHOT d.slow TO r"])
        .env("FAILPOINTS", "job::backup::UPLOADING=pause")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting tabletsnap");
    // The statement's status line comes after Ctrl-C is caught; the job is
    // paused, so the process is waiting for it.
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("reading stdout");
    assert!(line.starts_with("Query OK"), "{line:?}");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("a pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("sending SIGINT");
    let out = wait_bounded(child);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{:?} {stderr}", out.status);
    assert!(
        stderr.contains("BACKUP slow (JobId ")
            && !stderr.contains("(BACKUP slow")
            && stderr.contains("left running; it resumes when the home is next opened"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let (h, rows) = batch(&ok(&home, &["--batch"], "SHOW BACKUP FROM d"));
    assert_ne!(cell(&h, &rows[0], "State"), "CANCELLED");
}

/// Whether `text` has a line `<prefix>(N.NN sec)`.
fn has_timed_line(text: &str, prefix: &str) -> bool {
    text.lines().any(|l| {
        l.strip_prefix(prefix)
            .and_then(|t| t.strip_prefix('('))
            .and_then(|t| t.strip_suffix(" sec)"))
            .is_some_and(|t| t.parse::<f64>().is_ok())
    })
}

#[test]
fn output_reads_like_the_mysql_client() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    let out = ok(&home, &[], SETUP);
    assert!(out.lines().any(|l| l == "Database changed"), "{out}");
    assert!(has_timed_line(&out, "Query OK, 1 row affected "), "{out}");

    let out = ok(
        &home,
        &[],
        "USE d; SELECT COUNT(*) FROM t; CREATE DATABASE e; SHOW TABLES FROM e; \
         SHOW PARTITIONS FROM t\\G SHOW DATABASES",
    );
    assert!(out.contains("|       42 |"), "{out}");
    assert!(has_timed_line(&out, "1 row in set "), "{out}");
    assert!(has_timed_line(&out, "Empty set "), "{out}");
    assert!(has_timed_line(&out, "2 rows in set "), "{out}");
    assert!(
        out.contains(
            "*************************** 1. row ***************************\n\
             \x20  PartitionId: "
        ),
        "{out}"
    );
    assert!(out.contains("\n PartitionName: p1\n"), "{out}");
    assert!(
        out.contains("| Database |"),
        "the statement after \\G runs: {out}"
    );

    let e = fails(&home, &[], "SHOW DATABASES\\G SELEC 1");
    assert!(
        e.starts_with("ERROR 1064 (42000): syntax error at line 1"),
        "{e}"
    );
}

fn shell_piped(home: &Path, input: &str) -> Output {
    let mut child = bin()
        .arg("shell")
        .arg("--home")
        .arg(home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the shell");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("writing stdin");
    wait_bounded(child)
}

#[test]
fn shell_reads_piped_input_and_runs_the_last_statement_without_terminator() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    ok(&home, &["--batch"], SETUP);
    let out = shell_piped(&home, "USE d;\nSELECT COUNT(*)\n  FROM t");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.starts_with("Database changed\n"), "{stdout}");
    assert!(stdout.contains("|       42 |"), "{stdout}");
    assert!(
        !stdout.contains("tabletsnap ["),
        "no prompt without a terminal"
    );

    // Like `mysql < file`, piped input stops at the first error.
    let out = shell_piped(&home, "SHOW DATABASES\\G\nSELEC 1;\nSHOW DATABASES;\n");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.starts_with("ERROR 1064 (42000): "), "{stderr}");
    // Positions count from the statement's own first line.
    assert!(stderr.contains("line 1, column 1"), "{stderr}");
    assert!(stdout.contains("Database: d\n"), "{stdout}");
    assert!(!stdout.contains("| Database |"), "{stdout}");
}

/// The prompt needs a terminal: `script` (util-linux) gives the shell one.
#[test]
fn shell_prompt_shows_the_current_database() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    ok(&home, &["--batch"], "CREATE DATABASE d");
    let command = format!(
        "'{}' shell --home '{}'",
        env!("CARGO_BIN_EXE_tabletsnap"),
        home.display()
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting script(1)");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut out = Watch::new(child.stdout.take().expect("stdout"));
    out.until("tabletsnap [(none)]> ");
    stdin.write_all(b"USE d;\n").expect("typing");
    out.until("Database changed");
    out.until("tabletsnap [d]> ");
    stdin.write_all(b"quit\n").expect("typing");
    drop(stdin);
    let status = wait_bounded(child).status;
    assert!(status.success(), "{status:?}");
}

/// `TABLETSNAP_ROOT_PASSWORD` sets root's password only when a home is
/// created: neither `sql` nor `serve` on a home that exists resets it (both
/// took a home without the legacy catalog file for a new one).
#[test]
fn an_existing_homes_root_password_is_never_reset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("h");
    ok(&home, &[], "CREATE DATABASE x");
    // The variable is now only a password to log in with, and a wrong one.
    let out = Command::new(env!("CARGO_BIN_EXE_tabletsnap"))
        .args(["sql", "--home"])
        .arg(&home)
        .args(["-e", "SHOW DATABASES"])
        .env("TABLETSNAP_ROOT_PASSWORD", "other")
        .output()
        .expect("running tabletsnap");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "logged in with a reset password");
    assert!(stderr.starts_with("ERROR 1045 (28000): "), "{stderr}");
    assert!(ok(&home, &[], "SHOW DATABASES").contains('x'));

    let mut server = Command::new(env!("CARGO_BIN_EXE_tabletsnap"))
        .args(["serve", "--port", "0", "--home"])
        .arg(&home)
        .env("TABLETSNAP_ROOT_PASSWORD", "other")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting tabletsnap serve");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("reading the listening line");
    assert!(line.starts_with("listening on "), "{line:?}");
    // Through the server's socket, root still has its empty password.
    let shown = ok(&home, &[], "SHOW DATABASES");
    let _ = server.kill();
    let _ = server.wait();
    let mut stderr = String::new();
    server
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("reading stderr");
    assert!(shown.contains('x'), "{shown}");
    assert!(!stderr.contains("root's password is"), "{stderr}");
}
