//! Compaction and GC racing make_snapshots on other threads: every snapshot
//! that succeeds restores to exactly the source's rows at its version, and
//! every one that fails says VersionAlreadyMerged.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use tabletsnap_snapshot::{make_snapshots, SnapshotInfo, SnapshotRequest};

#[test]
fn racing_compaction_never_yields_wrong_data() -> TestResult {
    let (_a_dir, a, ids) = populated(6)?;
    let max = a.tablet_meta(ids[0])?.max_version();
    let mut expected = HashMap::new();
    for id in &ids {
        for v in 1..=max {
            expected.insert((*id, v), a.checksum(*id, Some(v))?);
        }
    }
    let done = AtomicBool::new(false);
    let (made, merged) = std::thread::scope(|s| -> Result<_, String> {
        let compactor = s.spawn(|| -> Result<(), String> {
            // Merge pairs, then wider runs, GC-ing immediately each time, so that
            // files disappear while snapshots are being linked.
            let run = || -> Result<(), String> {
                for (start, end) in [(2, 3), (4, 5), (2, 5), (0, 5)] {
                    for id in &ids {
                        a.compact(*id, start, end, max).map_err(|e| e.to_string())?;
                        a.gc_older_than(u64::MAX).map_err(|e| e.to_string())?;
                        std::thread::yield_now();
                    }
                }
                Ok(())
            };
            let out = run();
            // Always, or the snapshot loop would spin forever on a compaction error.
            done.store(true, Ordering::SeqCst);
            out
        });
        let mut made: Vec<SnapshotInfo> = Vec::new();
        let mut merged = 0;
        let mut round = 0u64;
        loop {
            let last = done.load(Ordering::SeqCst);
            let reqs: Vec<SnapshotRequest> = ids
                .iter()
                .map(|id| SnapshotRequest {
                    tablet_id: *id,
                    version: Some(1 + (id + round) % max),
                })
                .collect();
            round += 1;
            for out in
                make_snapshots(&a, &reqs, Duration::from_secs(600)).map_err(|e| e.to_string())?
            {
                match out {
                    Ok(info) => made.push(info),
                    Err(e)
                        if matches!(
                            e.engine_error(),
                            Some(tabletsnap_engine::Error::VersionAlreadyMerged { .. })
                        ) =>
                    {
                        merged += 1
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
            if last {
                break;
            }
        }
        compactor
            .join()
            .map_err(|_| "compactor panicked".to_string())??;
        Ok((made, merged))
    })?;
    assert!(!made.is_empty());
    assert!(
        merged > 0,
        "the race never hit a merged version; test is too weak"
    );
    let b_dir = tempfile::tempdir()?;
    let b = open(b_dir.path())?;
    // Restoring hundreds takes long; the first and last snapshot of each
    // (tablet, version) cover both sides of every merge.
    let mut pick: HashMap<(u64, u64), (usize, usize)> = HashMap::new();
    for (i, info) in made.iter().enumerate() {
        pick.entry((info.tablet_id, info.version))
            .and_modify(|e| e.1 = i)
            .or_insert((i, i));
    }
    let mut chosen: Vec<usize> = pick.values().flat_map(|(f, l)| [*f, *l]).collect();
    chosen.sort_unstable();
    chosen.dedup();
    for i in chosen {
        let info = &made[i];
        let got = restore(&b, info, 100_000 + i as u64)?;
        assert_eq!(got, expected[&(info.tablet_id, info.version)]);
    }
    Ok(())
}
