//! The seed's flow through the real `mysql` client against `tabletsnap
//! serve` child processes: CREATE REPOSITORY, BACKUP, SHOW BACKUP until
//! FINISHED, SHOW SNAPSHOT with WHERE, RESTORE into a second server, SHOW
//! RESTORE, CANCEL, DROP REPOSITORY, HELP, and the error codes of a wrong
//! password (1045), a non-admin user (1227) and a syntax error (1064).
//!
//! In CI (CI=true) a missing `mysql` binary fails the test; elsewhere it is
//! skipped with a reason.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A `tabletsnap serve` child, killed (SIGTERM) on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(home: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tabletsnap"))
            .args(["serve", "--port", "0", "--home"])
            .arg(home)
            .env("TABLETSNAP_ROOT_PASSWORD", "rootpw")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting tabletsnap serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading the listening line");
        // "listening on 127.0.0.1:PORT (MySQL protocol, ...)"
        let port = line
            .split_whitespace()
            .nth(2)
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Server { child, port }
    }

    fn mysql(&self, user: &str, password: &str, sql: &str) -> Output {
        Command::new("mysql")
            .args(["-h", "127.0.0.1", "-P", &self.port.to_string(), "-u", user])
            .arg(format!("-p{password}"))
            .args(["--batch", "-e", sql])
            .output()
            .expect("running mysql")
    }

    /// Runs `sql` as root; returns stdout, failing on any error.
    fn ok(&self, sql: &str) -> String {
        let out = self.mysql("root", "rootpw", sql);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{sql}: {stderr}");
        assert!(!stderr.contains("ERROR"), "{sql}: {stderr}");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Runs `sql` as `user`, which must fail; returns stderr.
    fn fails(&self, user: &str, password: &str, sql: &str) -> String {
        let out = self.mysql(user, password, sql);
        assert!(!out.status.success(), "{sql} succeeded");
        String::from_utf8_lossy(&out.stderr).to_string()
    }

    /// The `column` of the first row of a batch result.
    fn cell(&self, sql: &str, column: &str) -> String {
        let out = self.ok(sql);
        let mut lines = out.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
        let row: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
        let i = header
            .iter()
            .position(|h| *h == column)
            .unwrap_or_else(|| panic!("{column} not in {header:?}"));
        row.get(i).map(|s| s.to_string()).unwrap_or_default()
    }

    fn wait_state(&self, sql: &str, done: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let state = self.cell(sql, "State");
            if state == done {
                return;
            }
            assert_ne!(state, "CANCELLED", "{sql}");
            assert!(Instant::now() < deadline, "{sql}: still {state}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

fn have_mysql() -> bool {
    let found = Command::new("mysql")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "the mysql client is missing in CI (.ci/run installs mariadb-client)"
        );
        eprintln!("skipped: no `mysql` client on PATH (apt-get install mariadb-client)");
    }
    found
}

#[test]
fn the_seed_flow_runs_through_the_mysql_client() {
    if !have_mysql() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).expect("repo dir");
    let loc = format!("file://{}", repo.display());
    let a = Server::start(&tmp.path().join("h1"));
    a.ok(&format!(
        "CREATE DATABASE d; USE d;
         CREATE TABLE t (id BIGINT, day DATE, v VARCHAR(20)) DUPLICATE KEY(id)
           PARTITION BY RANGE(day) (PARTITION p1 VALUES LESS THAN ('2025-01-01'),
                                    PARTITION p2 VALUES LESS THAN MAXVALUE)
           DISTRIBUTED BY HASH(id) BUCKETS 4 PROPERTIES ('replication_num' = '1');
         INSERT INTO t GENERATE 2000 ROWS SEED 1;
         CREATE REPOSITORY r WITH BROKER file ON LOCATION '{loc}';
         BACKUP SNAPSHOT d.nightly TO r ON (t) PROPERTIES ('timeout' = '3600')"
    ));
    a.wait_state("SHOW BACKUP FROM d", "FINISHED");
    let ts = a.cell("SHOW SNAPSHOT ON r WHERE SNAPSHOT = 'nightly'", "Timestamp");
    assert_eq!(
        a.cell("SHOW SNAPSHOT ON r WHERE SNAPSHOT = 'nightly'", "Status"),
        "OK"
    );
    let sum = a.cell("CHECKSUM TABLE d.t", "Checksum");

    let b = Server::start(&tmp.path().join("h2"));
    b.ok(&format!(
        "CREATE DATABASE d; CREATE REPOSITORY r ON LOCATION '{loc}';
         RESTORE SNAPSHOT nightly FROM r DATABASE d ON (TABLE t AS t2)
           PROPERTIES ('backup_timestamp' = '{ts}', 'replication_num' = '1')"
    ));
    b.wait_state("SHOW RESTORE FROM d", "FINISHED");
    assert_eq!(b.cell("CHECKSUM TABLE d.t2", "Checksum"), sum);

    // CANCEL with nothing running is an error naming the database; after a
    // finished job there is nothing to cancel either.
    let e = b.fails("root", "rootpw", "CANCEL RESTORE FROM d");
    assert!(e.contains("ERROR 1105 (HY000)"), "{e}");
    b.ok("DROP REPOSITORY r");
    assert_eq!(b.ok("SHOW REPOSITORIES").lines().count(), 0);

    let help = a.ok("HELP BACKUP");
    assert!(help.contains("timeout") && help.contains("86400"), "{help}");
    assert!(a.ok("HELP SHOW SNAPSHOT").contains("WHERE SNAPSHOT"));
    assert!(a.ok("SHOW BROKER").contains("Alive"));

    let e = a.fails("root", "wrong", "SHOW DATABASES");
    assert!(e.contains("ERROR 1045 (28000)"), "{e}");
    a.ok("CREATE USER 'bob' IDENTIFIED BY 'bobpw'");
    let e = a.fails("bob", "bobpw", "BACKUP SNAPSHOT d.mine TO r");
    assert!(e.contains("ERROR 1227 (42000)"), "{e}");
    let e = a.fails("root", "rootpw", "SELEC 1");
    assert!(
        e.contains("ERROR 1064 (42000)") && e.contains("line 1"),
        "{e}"
    );
    let e = a.fails("root", "rootpw", "USE nowhere");
    assert!(e.contains("ERROR 1049 (42000)"), "{e}");
    let e = a.fails("root", "rootpw", "SELECT COUNT(*) FROM d.nope");
    assert!(e.contains("ERROR 1146 (42S02)"), "{e}");

    // While the server holds the home, the CLI goes through it.
    let out = Command::new(env!("CARGO_BIN_EXE_tabletsnap"))
        .args(["sql", "--batch", "--password", "rootpw", "--home"])
        .arg(tmp.path().join("h1"))
        .args(["-e", "SELECT COUNT(*) FROM d.t"])
        .output()
        .expect("running tabletsnap sql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "count(*)\n2000\n");
}
