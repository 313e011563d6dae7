//! A node-process fault schedule: in each round a seeded choice of node
//! aborts (like kill -9) in the middle of an upload or a download, and is
//! restarted at once or left dead. Invariants: every job ends FINISHED or
//! CANCELLED; with the node back it FINISHES; a FINISHED backup restores to
//! the source's checksum; a CANCELLED job leaves no snapshot or download
//! dir on the nodes that are up. The seed is TABLETSNAP_SEED (default 1),
//! printed so a failing schedule replays.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use tabletsnap::node::procs;
use tabletsnap_transfer::SplitMix64;

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tabletsnap"))
}

struct Nodes(PathBuf);

impl Drop for Nodes {
    fn drop(&mut self) {
        let _ = procs::stop(&self.0);
    }
}

fn node_pid(home: &Path, id: u32) -> u32 {
    procs::load(home)
        .expect("nodes file")
        .expect("a node home")
        .nodes
        .iter()
        .find(|p| p.id == id)
        .expect("node")
        .pid
}

fn wait_exit(home: &Path, id: u32) {
    let pid = node_pid(home, id);
    let start = Instant::now();
    while procs::pid_alive(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "node {id} never stopped"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn assert_no_dirs_on_live_nodes(s: &tabletsnap::exec::Session, home: &Path) {
    for p in procs::load(home).expect("nodes").expect("nodes").nodes {
        if !procs::pid_alive(p.pid) {
            continue;
        }
        let be = s.cluster().backend(p.id).expect("backend");
        assert_eq!(
            be.snapshot_dirs().expect("snapshot dirs"),
            Vec::<PathBuf>::new(),
            "node {} keeps dirs of a cancelled job",
            p.id
        );
    }
}

#[test]
fn random_node_kills_and_restarts_during_jobs_break_no_invariant() {
    let seed: u64 = std::env::var("TABLETSNAP_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    eprintln!("node fault schedule seed {seed} (TABLETSNAP_SEED replays it)");
    let mut rng = SplitMix64::new(seed);
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("h");
    let out = std::process::Command::new(exe())
        .args(["cluster", "start", "--backends", "3", "--home"])
        .arg(&home)
        .output()
        .expect("cluster start");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _nodes = Nodes(home.clone());
    let mut s = open(&home);
    make_db_and_table(&mut s, "d", "t", 3);
    let sum = checksum(&mut s, "t");
    let loc = file_location(&tmp.path().join("repo"));
    sql(
        &mut s,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    let mut last_backup: Option<std::sync::Arc<tabletsnap::job::JobHandle>> = None;
    for round in 0..3 {
        let victim = 1 + (rng.next_u64() % 3) as u32;
        let in_upload = last_backup.is_none() || rng.chance(0.5);
        let comes_back = round < 2 || rng.chance(0.5);
        let point = if in_upload {
            "upload::before_pack_put"
        } else {
            "download::after_in_place_write"
        };
        eprintln!("round {round}: node {victim} aborts at {point}, restarted: {comes_back}");
        procs::kill(node_pid(&home, victim), true);
        wait_exit(&home, victim);
        procs::restart_with_env(&home, victim, &exe(), &[("TABLETSNAP_ABORT_AT", point)])
            .expect("arming the victim");
        let stmt = if in_upload {
            // Full: an incremental backup of unchanged tablets puts no pack.
            format!("BACKUP SNAPSHOT d.s{round} TO r ON (t) PROPERTIES (\"type\" = \"full\")")
        } else {
            restore_stmt(
                last_backup.as_deref().expect("a backup"),
                "r",
                &format!("ON (t AS r{round})"),
                "\"replication_num\" = \"3\"",
            )
        };
        sql(&mut s, &stmt);
        let h = last_job(&s);
        wait_exit(&home, victim);
        if comes_back {
            procs::restart(&home, victim, &exe()).expect("restarting the victim");
        }
        let end = wait(&h);
        match (end, comes_back) {
            ("FINISHED", _) => {
                let table = if in_upload {
                    restore(
                        &mut s,
                        &restore_stmt(&h, "r", &format!("ON (t AS b{round})"), ""),
                    );
                    format!("b{round}")
                } else {
                    format!("r{round}")
                };
                assert_eq!(checksum(&mut s, &table), sum, "round {round}");
                if in_upload {
                    last_backup = Some(h);
                }
            }
            ("CANCELLED", false) => {
                assert!(
                    status(&h).contains(&format!("backend {victim}")),
                    "{}",
                    status(&h)
                );
                assert_no_dirs_on_live_nodes(&s, &home);
                procs::restart(&home, victim, &exe()).expect("restarting the victim");
            }
            (other, _) => panic!("round {round}: the job ended {other}: {:?}", h.record()),
        }
    }
}
