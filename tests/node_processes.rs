//! A cluster of real `tabletsnap node` processes driven over RPC by a
//! coordinator in this process: backup, restore with replication_num 3,
//! a node killed (aborted at a fail point) mid-upload and restarted, and a
//! node gone for good.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use tabletsnap::node::procs;

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tabletsnap"))
}

/// Stops the home's nodes by pid when the test ends, passed or not.
struct Nodes(PathBuf);

impl Drop for Nodes {
    fn drop(&mut self) {
        let _ = procs::stop(&self.0);
    }
}

fn start(home: &Path, n: u32) -> Nodes {
    let out = std::process::Command::new(exe())
        .args(["cluster", "start", "--home"])
        .arg(home)
        .args(["--backends", &n.to_string()])
        .output()
        .expect("running cluster start");
    assert!(
        out.status.success(),
        "cluster start failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Nodes(home.to_path_buf())
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

/// Bounded poll until node `id`'s process has ended.
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

/// Restarts node 2 so that it aborts (like kill -9) at its first pack put.
fn arm_abort_in_upload(home: &Path) {
    procs::kill(node_pid(home, 2), true);
    wait_exit(home, 2);
    procs::restart_with_env(
        home,
        2,
        &exe(),
        &[("TABLETSNAP_ABORT_AT", "upload::before_pack_put")],
    )
    .expect("restarting node 2");
}

#[test]
fn backup_and_restore_with_three_replicas_on_node_processes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("h");
    let _nodes = start(&home, 3);
    let status = std::process::Command::new(exe())
        .args(["cluster", "status", "--home"])
        .arg(&home)
        .output()
        .expect("cluster status");
    assert_eq!(
        String::from_utf8_lossy(&status.stdout)
            .matches("\ttrue\t")
            .count(),
        3
    );
    let mut s = open(&home);
    assert!(s.cluster().backends().is_empty(), "no in-process node");
    make_db_and_table(&mut s, "d", "t", 3);
    let loc = file_location(&tmp.path().join("repo"));
    sql(
        &mut s,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    let sum = checksum(&mut s, "t");
    let h = backup(&mut s, "BACKUP SNAPSHOT d.snap TO r ON (t)");
    restore(
        &mut s,
        &restore_stmt(&h, "r", "ON (t AS t3)", "\"replication_num\" = \"3\""),
    );
    assert_eq!(checksum(&mut s, "t3"), sum);
    assert_eq!(
        rows(&mut s, "SHOW TABLET FROM t3").rows.len(),
        3 * rows(&mut s, "SHOW TABLET FROM t").rows.len()
    );
    for be in s.cluster().remote_backends() {
        let hb = tabletsnap::backend::BackendTasks::heartbeat(be.as_ref()).expect("heartbeat");
        assert!(hb.tablets > 0, "node {be:?} holds tablets");
    }
}

#[test]
fn a_node_killed_mid_upload_and_restarted_lets_the_backup_finish() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("h");
    let _nodes = start(&home, 3);
    let mut s = open(&home);
    make_db_and_table(&mut s, "d", "t", 3);
    let sum = checksum(&mut s, "t");
    let loc = file_location(&tmp.path().join("repo"));
    sql(
        &mut s,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    arm_abort_in_upload(&home);
    sql(&mut s, "BACKUP SNAPSHOT d.snap TO r ON (t)");
    let h = last_job(&s);
    // The node aborts in its first pack put: restart it at once, unarmed.
    wait_exit(&home, 2);
    procs::restart(&home, 2, &exe()).expect("restarting node 2");
    assert_eq!(wait(&h), "FINISHED", "{:?}", h.record());
    restore(&mut s, &restore_stmt(&h, "r", "ON (t AS back)", ""));
    assert_eq!(checksum(&mut s, "back"), sum);
}

#[test]
fn a_node_gone_for_good_cancels_the_backup_naming_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("h");
    let _nodes = start(&home, 3);
    let mut s = open(&home);
    make_db_and_table(&mut s, "d", "t", 3);
    let loc = file_location(&tmp.path().join("repo"));
    sql(
        &mut s,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    arm_abort_in_upload(&home);
    sql(&mut s, "BACKUP SNAPSHOT d.snap TO r ON (t)");
    let h = last_job(&s);
    assert_eq!(wait(&h), "CANCELLED");
    let msg = status(&h);
    assert!(msg.contains("backend 2"), "{msg}");
}
