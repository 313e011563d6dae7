//! `tabletsnap bench --workload jobs-nodes` at a tiny scale: it runs the
//! jobs on node processes and in process, writes both jobs' rows with wall
//! and CPU figures to its JSON, and leaves no node process running.
//! A smoke test of the bench, not a measurement (debug build, tiny scale).

mod common;

use common::nodes::exe;
use tabletsnap::node::procs;

#[test]
fn the_jobs_nodes_bench_reports_both_jobs_and_stops_its_nodes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let json = tmp.path().join("figures.json");
    let out = std::process::Command::new(exe())
        .args(["bench", "--workload", "jobs-nodes", "--scale", "0.002"])
        .args(["--rounds", "1", "--keep-trash", "--dir"])
        .arg(tmp.path().join("work"))
        .arg("--json")
        .arg(&json)
        .output()
        .expect("running the bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("json rows");
    let rows = rows.as_array().expect("an array of rows");
    let phases: Vec<&str> = rows.iter().filter_map(|r| r["phase"].as_str()).collect();
    assert_eq!(phases, ["BACKUP job (nodes)", "RESTORE job (nodes)"]);
    for r in rows {
        assert_eq!(r["baseline"], "in-process");
        for k in [
            "ours_s",
            "baseline_s",
            "cpu_s",
            "baseline_cpu_s",
            "ratio",
            "cpu_ratio",
        ] {
            assert!(r[k].as_f64().is_some_and(|x| x > 0.0), "{k} in {r}");
        }
        assert_eq!(r["tablets"], 20);
    }
    // Every node the bench started (both clusters, in the kept trash) is gone.
    let mut homes = 0;
    for e in walk(&tmp.path().join("work/trash")) {
        if e.file_name().is_some_and(|n| n == procs::NODES_FILE) {
            let home = e.parent().expect("home");
            let list = procs::load(home).expect("nodes file").expect("nodes");
            assert_eq!(list.nodes.len(), 3);
            for p in list.nodes {
                assert!(!procs::pid_alive(p.pid), "node {} still runs", p.pid);
            }
            homes += 1;
        }
    }
    assert_eq!(homes, 2, "a source and a target cluster of nodes");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
