//! A node process killed (`kill -9`) in the middle of a download leaves
//! half-written files (temp names) in its restore dirs. Restarted, the node
//! removes them at start, before it answers any task (not when a
//! coordinator next opens the home), keeps the files it had completed, and
//! the resumed restore finishes with the source's checksum.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::nodes::{exe, kill_node, node_proc, start_nodes};
use common::*;
use tabletsnap::node::procs;
use tabletsnap_transfer::TEMP_PREFIX;

/// Every file under the restore dirs of a node's store whose name says it
/// is a download's temp file.
fn partial_files(node_dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if e.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    let snap = node_dir.join("store0/snapshot");
    for e in std::fs::read_dir(&snap).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with("restore.") {
            walk(&e.path(), &mut out);
        }
    }
    out
}

/// The count in the node log's last "removed N partial download file(s)" line.
fn removed_in_log(node_dir: &Path) -> Option<u64> {
    let log = std::fs::read_to_string(node_dir.join("node.log")).expect("node log");
    log.lines().rev().find_map(|l| {
        l.split_once(": removed ")?
            .1
            .strip_suffix(" partial download file(s) an earlier run left")?
            .parse()
            .ok()
    })
}

#[test]
fn a_node_killed_mid_download_cleans_its_partial_files_at_start_and_the_restore_resumes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("h");
    let _nodes = start_nodes(&home, 3);
    let mut s = open(&home);
    make_db_and_table(&mut s, "d", "t", 3);
    let sum = checksum(&mut s, "t");
    let loc = file_location(&tmp.path().join("repo"));
    sql(
        &mut s,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    let h = backup(&mut s, "BACKUP SNAPSHOT d.snap TO r ON (t)");

    // Node 2 again, its downloads stopping each file just before its
    // rename: written whole under its temp name, not yet in place.
    kill_node(&home, 2);
    procs::restart_with_env(
        &home,
        2,
        &exe(),
        &[("FAILPOINTS", "download::before_rename=pause")],
    )
    .expect("restarting node 2 with the pause armed");
    let dir = node_proc(&home, 2).dir;
    sql(
        &mut s,
        &restore_stmt(&h, "r", "ON (t AS t3)", "\"replication_num\" = \"3\""),
    );
    let r = last_job(&s);
    let start = Instant::now();
    let seen = loop {
        let p = partial_files(&dir);
        if !p.is_empty() {
            break p;
        }
        assert!(
            !r.is_done() && start.elapsed() < Duration::from_secs(60),
            "node 2 never held a partial download ({})",
            state(&r)
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    kill_node(&home, 2);
    assert!(seen.iter().all(|p| p.exists()), "the kill left them");
    assert_eq!(removed_in_log(&dir), None, "nothing cleaned yet");

    // The restart returns once the node listens, and it cleans before that.
    procs::restart(&home, 2, &exe()).expect("restarting node 2");
    let removed = removed_in_log(&dir).expect("the node logs what it removed at start");
    assert!(
        removed >= seen.len() as u64,
        "removed {removed}, saw {}",
        seen.len()
    );
    // Unless the resumed job already released a whole restore dir, its
    // temp files are gone while the dir (and its complete files) stay.
    for p in &seen {
        if p.parent().is_some_and(Path::exists) {
            assert!(!p.exists(), "{} survived the restart", p.display());
        }
    }
    assert_eq!(wait(&r), "FINISHED", "{:?}", r.record());
    assert_eq!(checksum(&mut s, "t3"), sum);
    assert!(seen.iter().all(|p| !p.exists()), "{seen:?}");
    assert_eq!(partial_files(&dir), Vec::<PathBuf>::new());
}
