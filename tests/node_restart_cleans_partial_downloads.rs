//! A node process killed (`kill -9`) in the middle of a download leaves
//! files written in place under their final names in the target tablets'
//! dirs, one of them possibly torn. Restarted, the node keeps them (they are
//! reserved for the restore, so recovery does not take them for orphans),
//! the resumed download checks each placed file's size and crc32, rewrites
//! the torn one and skips the rest, and the restore finishes with the
//! source's checksum. The node's start also removes any temp file an
//! earlier run left in its restore dirs (the tablet metas' path).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::nodes::{exe, kill_node, node_proc, start_nodes};
use common::*;
use tabletsnap::node::procs;
use tabletsnap_transfer::TEMP_PREFIX;

/// Every segment file (`*.dat`) under a node's data dir.
fn segment_files(node_dir: &Path) -> BTreeSet<PathBuf> {
    fn walk(dir: &Path, out: &mut BTreeSet<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "dat") {
                out.insert(p);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(&node_dir.join("store0/data"), &mut out);
    out
}

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

#[test]
fn a_node_killed_mid_download_keeps_placed_files_rewrites_a_torn_one_and_resumes() {
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

    // Node 2 again, its downloads stopping right after the first file is
    // written in place.
    kill_node(&home, 2);
    procs::restart_with_env(
        &home,
        2,
        &exe(),
        &[("FAILPOINTS", "download::after_in_place_write=pause")],
    )
    .expect("restarting node 2 with the pause armed");
    let dir = node_proc(&home, 2).dir;
    let before = segment_files(&dir);
    sql(
        &mut s,
        &restore_stmt(&h, "r", "ON (t AS t3)", "\"replication_num\" = \"3\""),
    );
    let r = last_job(&s);
    let start = Instant::now();
    let placed: Vec<PathBuf> = loop {
        let new: Vec<PathBuf> = segment_files(&dir).difference(&before).cloned().collect();
        if !new.is_empty() {
            break new;
        }
        assert!(
            !r.is_done() && start.elapsed() < Duration::from_secs(60),
            "node 2 never placed a file ({})",
            state(&r)
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    kill_node(&home, 2);
    // Tear one placed file, as a crash in the middle of its write would.
    let torn = &placed[0];
    let len = std::fs::metadata(torn).expect("placed file").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(torn)
        .and_then(|f| f.set_len(len / 2))
        .expect("tearing a placed file");

    procs::restart(&home, 2, &exe()).expect("restarting node 2");
    // Recovery kept the reserved files (the torn one included).
    assert!(placed.iter().all(|p| p.exists()), "{placed:?}");
    assert_eq!(wait(&r), "FINISHED", "{:?}", r.record());
    assert_eq!(checksum(&mut s, "t3"), sum);
    assert_eq!(std::fs::metadata(torn).expect("rewritten").len(), len);
    assert_eq!(partial_files(&dir), Vec::<PathBuf>::new());
}
