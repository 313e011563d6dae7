//! Helpers for tests with real `tabletsnap node` processes: start a home's
//! nodes (stopped by pid when the test ends), find, kill and await them,
//! and the CI S3 server's settings.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tabletsnap::node::procs;

/// The `tabletsnap` binary the nodes run.
pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tabletsnap"))
}

/// Stops the home's nodes by pid when the test ends, passed or not.
pub struct Nodes(pub PathBuf);

impl Drop for Nodes {
    fn drop(&mut self) {
        let _ = procs::stop(&self.0);
    }
}

/// `tabletsnap cluster start --home home --backends n`, asserted to work.
pub fn start_nodes(home: &Path, n: u32) -> Nodes {
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

/// The recorded process of node `id` of `home`.
pub fn node_proc(home: &Path, id: u32) -> procs::NodeProc {
    procs::load(home)
        .expect("nodes file")
        .expect("a node home")
        .nodes
        .into_iter()
        .find(|p| p.id == id)
        .expect("node")
}

/// Bounded poll until node `id`'s process has ended.
pub fn wait_node_exit(home: &Path, id: u32) {
    let pid = node_proc(home, id).pid;
    let start = Instant::now();
    while procs::pid_alive(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "node {id} never stopped"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `kill -9` node `id` and wait until it is gone.
pub fn kill_node(home: &Path, id: u32) {
    procs::kill(node_proc(home, id).pid, true);
    wait_node_exit(home, id);
}

/// The CI S3 server's settings (`.ci/s3-server`): endpoint, access key,
/// secret key, bucket. With CI=true a missing one fails; elsewhere the test
/// says why and passes.
pub fn s3_settings() -> Option<[String; 4]> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        var("TABLETSNAP_S3_ENDPOINT"),
        var("TABLETSNAP_S3_ACCESS_KEY"),
        var("TABLETSNAP_S3_SECRET_KEY"),
        var("TABLETSNAP_S3_BUCKET"),
    ) {
        (Some(e), Some(a), Some(s), Some(b)) => Some([e, a, s, b]),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("this test needs TABLETSNAP_S3_* (.ci/run sets them)")
        }
        _ => {
            eprintln!("skipping: no S3 server (set TABLETSNAP_S3_* or run .ci/run)");
            None
        }
    }
}
