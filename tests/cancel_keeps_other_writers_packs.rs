//! A cancelled backup removes its own packs from the repository and nothing
//! else: another cluster writing the same label and timestamp (its packs sit
//! under `packs/<its cluster>-<its job>-be<N>/`) loses nothing.
#![cfg(feature = "failpoints")]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use tabletsnap::job::JobRecord;

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn cancel_deletes_only_its_own_packs() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).expect("repo dir");
    let mut s = open(&dir.path().join("home"));
    make_db_and_table(&mut s, "d", "t", 3);
    sql(
        &mut s,
        &format!(
            "CREATE REPOSITORY r ON LOCATION \"file://{}\"",
            repo.display()
        ),
    );
    fail::cfg("job::backup::SAVE_META", "pause").expect("fail point");
    sql(&mut s, "USE d; BACKUP SNAPSHOT snap TO r ON (t)");
    let h = s.started_jobs().last().cloned().expect("a job");
    let start = Instant::now();
    let ts = loop {
        if let JobRecord::Backup(j) = h.record() {
            if j.state.name() == "SAVE_META" {
                break j.timestamp;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the backup never reached SAVE_META"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let snap_dir = repo
        .join("__tabletsnap_repository_r")
        .join("__ss_snap")
        .join(&ts);
    let ours = files_under(&snap_dir.join("packs"));
    assert!(
        !ours.is_empty(),
        "the backup uploaded packs before SAVE_META"
    );
    // Another writer of the same label and timestamp.
    let foreign = snap_dir
        .join("packs")
        .join("ffffffffffffffff-1-be1")
        .join("00000000.pack");
    std::fs::create_dir_all(foreign.parent().expect("parent")).expect("mkdir");
    std::fs::write(&foreign, b"another cluster's pack").expect("write");
    let mut other = other_session(&s);
    let cancel = std::thread::spawn(move || {
        other
            .run_script("CANCEL BACKUP FROM d")
            .map_err(|e| format!("{e:#}"))
    });
    while !h.cancel.is_cancelled() && !cancel.is_finished() {
        std::thread::sleep(Duration::from_millis(10));
    }
    fail::remove("job::backup::SAVE_META");
    let out = cancel.join().expect("cancel thread");
    assert!(out.is_ok(), "CANCEL failed: {out:?}");
    match h.record() {
        JobRecord::Backup(j) => assert_eq!(j.state.name(), "CANCELLED"),
        other => panic!("not a backup: {other:?}"),
    }
    for p in &ours {
        assert!(
            !p.exists(),
            "cancelled backup left its pack {}",
            p.display()
        );
    }
    assert_eq!(
        std::fs::read(&foreign).expect("the other writer's pack must survive"),
        b"another cluster's pack"
    );
    scenario.teardown();
}
