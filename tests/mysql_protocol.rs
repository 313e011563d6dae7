//! `tabletsnap serve` through the Rust `mysql` crate: typed rows, affected
//! rows, error codes, multi-statements, 64 connections at once next to an
//! idle one, and a connection dropped while its BACKUP runs (the job still
//! finishes).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder, Row};

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(home: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tabletsnap"))
            .args(["serve", "--port", "0", "--home"])
            .arg(home)
            .env("TABLETSNAP_ROOT_PASSWORD", "pw")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting tabletsnap serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("reading the listening line");
        let port = line
            .split_whitespace()
            .nth(2)
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Server { child, port }
    }

    fn connect(&self, user: &str, pass: &str) -> mysql::Result<Conn> {
        Conn::new(
            OptsBuilder::new()
                .ip_or_hostname(Some("127.0.0.1"))
                .tcp_port(self.port)
                .user(Some(user))
                .pass(Some(pass)),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

fn code(e: mysql::Error) -> u16 {
    match e {
        mysql::Error::MySqlError(e) => e.code,
        other => panic!("not a server error: {other:?}"),
    }
}

#[test]
fn typed_rows_codes_concurrency_and_dropped_connections() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&tmp.path().join("home"));
    let mut root = server.connect("root", "pw").expect("root connects");
    for stmt in [
        "CREATE DATABASE d",
        "USE d",
        "CREATE TABLE t (id BIGINT, v VARCHAR(20)) DISTRIBUTED BY HASH(id) BUCKETS 8 \
         PROPERTIES ('replication_num' = '1')",
    ] {
        root.query_drop(stmt).expect(stmt);
    }
    root.query_drop("INSERT INTO t GENERATE 20000 ROWS SEED 3")
        .expect("insert");
    root.query_drop("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        .expect("insert values");
    assert_eq!(root.affected_rows(), 2);
    let n: Option<u64> = root.query_first("SELECT COUNT(*) FROM t").expect("count");
    assert_eq!(n, Some(20002));
    let db: Option<String> = root.query_first("SELECT DATABASE()").expect("db");
    assert_eq!(db.as_deref(), Some("d"));

    // Several statements in one query, as the crate enables multi-statements.
    let mut sets = 0;
    {
        let mut result = root
            .query_iter("SHOW DATABASES; SELECT COUNT(*) FROM d.t; USE d")
            .expect("multi");
        while let Some(set) = result.iter() {
            sets += 1;
            for row in set {
                row.expect("row");
            }
        }
    }
    assert_eq!(sets, 3);

    // Error codes.
    assert_eq!(
        code(
            server
                .connect("root", "nope")
                .map(drop)
                .expect_err("bad pw")
        ),
        1045
    );
    assert_eq!(code(root.query_drop("SELEC 1").expect_err("syntax")), 1064);
    assert_eq!(code(root.query_drop("USE nowhere").expect_err("db")), 1049);
    assert_eq!(
        code(root.query_drop("SELECT * FROM d.nope").expect_err("table")),
        1146
    );
    root.query_drop("CREATE USER 'bob' IDENTIFIED BY 'bobpw'")
        .expect("create user");
    let mut bob = server.connect("bob", "bobpw").expect("bob connects");
    let brokers: Vec<Row> = bob.query("SHOW BROKER").expect("anyone may SHOW BROKER");
    assert!(!brokers.is_empty());
    let loc = format!("file://{}", tmp.path().join("repo").display());
    std::fs::create_dir_all(tmp.path().join("repo")).expect("repo");
    assert_eq!(
        code(
            bob.query_drop(format!("CREATE REPOSITORY r ON LOCATION '{loc}'"))
                .expect_err("not an admin")
        ),
        1227
    );
    root.query_drop(format!("CREATE REPOSITORY r ON LOCATION '{loc}'"))
        .expect("repo");

    // A connection that starts a BACKUP and goes away: the job finishes.
    {
        let mut gone = server.connect("root", "pw").expect("connects");
        gone.query_drop("BACKUP DATABASE d SNAPSHOT s1 TO r ON (ALL TABLES)")
            .expect("backup starts");
    }
    // 64 connections at once, each running statements, next to an idle one.
    let _idle = server.connect("root", "pw").expect("idle connects");
    let workers: Vec<_> = (0..64)
        .map(|i| {
            let port = server.port;
            std::thread::spawn(move || -> mysql::Result<u64> {
                let mut c = Conn::new(
                    OptsBuilder::new()
                        .ip_or_hostname(Some("127.0.0.1"))
                        .tcp_port(port)
                        .user(Some("root"))
                        .pass(Some("pw"))
                        .db_name(Some("d")),
                )?;
                let _: Vec<Row> = c.query("SHOW BACKUP FROM d")?;
                let _: Vec<Row> = c.query(format!("HELP {}", ["BACKUP", "RESTORE"][i % 2]))?;
                Ok(c.query_first::<u64, _>("SELECT COUNT(*) FROM t")?
                    .unwrap_or(0))
            })
        })
        .collect();
    for w in workers {
        assert_eq!(w.join().expect("thread").expect("statements"), 20002);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut result = root.query_iter("SHOW BACKUP FROM d").expect("show backup");
        let set = result.iter().expect("a result set");
        let cols = set.columns();
        let types: Vec<_> = cols.as_ref().iter().map(|c| c.column_type()).collect();
        let names: Vec<String> = cols
            .as_ref()
            .iter()
            .map(|c| c.name_str().to_string())
            .collect();
        let rows: Vec<Row> = set.map(|r| r.expect("row")).collect();
        drop(result);
        assert_eq!(names[0], "JobId");
        assert_eq!(types[0], mysql::consts::ColumnType::MYSQL_TYPE_LONGLONG);
        let row = rows.first().expect("a backup job");
        let id: u64 = row.get("JobId").expect("JobId");
        assert!(id > 0);
        let state: String = row.get("State").expect("State");
        if state == "FINISHED" {
            break;
        }
        assert_ne!(state, "CANCELLED");
        assert!(Instant::now() < deadline, "backup still {state}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
