//! Compaction merges versions without changing any published checksum; GC
//! frees replaced files only after the delay and never under a reader.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use tabletsnap_engine::{Engine, EngineOptions, Error, Result};

#[test]
fn compaction_keeps_checksums_and_gc_frees_files() -> Result<()> {
    let dir = tmp();
    let st = stores(dir.path(), 1);
    let e = open(&st)?;
    create(&e, 1)?;
    for v in 0..6 {
        e.load(1, &rows(v, 20))?;
    }
    let at7 = e.checksum(1, Some(7))?;
    let at4 = e.checksum(1, Some(4))?;
    let merged = e.compact(1, 2, 5, 7)?;
    assert_eq!(
        (merged.start_version, merged.end_version, merged.num_rows),
        (2, 5, 80)
    );
    assert_eq!(e.checksum(1, Some(7))?, at7);
    assert!(matches!(
        e.capture(1, Some(4)),
        Err(Error::VersionAlreadyMerged {
            version: 4,
            start: 2,
            end: 5,
            ..
        })
    ));
    assert!(matches!(
        e.scan(1, Some(4)),
        Err(Error::VersionAlreadyMerged { .. })
    ));
    let _ = at4;
    let m = e.tablet_meta(1)?;
    assert_eq!(m.stale_rowsets.len(), 4);
    let dat_before = files_under(dir.path()).len();
    let stats = e.gc()?;
    assert_eq!(stats.rowsets_removed, 4);
    assert_eq!(stats.files_removed, 4);
    assert_eq!(files_under(dir.path()).len(), dat_before - 4);
    assert_eq!(e.checksum(1, Some(7))?, at7);
    drop(e);
    let e = open(&st)?;
    assert_eq!(e.checksum(1, Some(7))?, at7);
    assert!(
        e.compact(1, 3, 6, 7).is_err(),
        "a range cutting a rowset is refused"
    );
    Ok(())
}

#[test]
fn gc_waits_for_the_delay_and_for_readers() -> Result<()> {
    let dir = tmp();
    let mut o = EngineOptions::new(stores(dir.path(), 1));
    o.stale_rowset_delay = std::time::Duration::from_secs(3600);
    let e = Engine::open(o)?;
    create(&e, 1)?;
    for v in 0..3 {
        e.load(1, &rows(v, 5))?;
    }
    let cap = e.capture(1, None)?;
    e.compact(1, 2, 4, 4)?;
    assert_eq!(e.gc()?.rowsets_removed, 0, "delay not over");
    assert_eq!(
        e.gc_older_than(u64::MAX)?.rowsets_removed,
        0,
        "pinned by the capture"
    );
    for (name, _, _) in cap.files() {
        assert!(cap.dir.join(name).exists());
    }
    drop(cap);
    assert_eq!(e.gc_older_than(u64::MAX)?.rowsets_removed, 3);
    Ok(())
}

#[test]
fn concurrent_loads_compaction_and_scans_keep_every_checksum() -> Result<()> {
    let dir = tmp();
    let e = Arc::new(open(&stores(dir.path(), 2))?);
    let tablets = [1u64, 2, 3];
    for t in tablets {
        create(&e, t)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    // Reference checksums, recorded by the loader right after each publish.
    let published = Arc::new(parking_lot_free::Log::default());
    let mut handles = Vec::new();
    for t in tablets {
        let (e, published) = (Arc::clone(&e), Arc::clone(&published));
        handles.push(std::thread::spawn(move || -> Result<()> {
            for v in 0..30u64 {
                let ver = e.load(t, &rows(t * 1000 + v, 10))?;
                published.push(t, ver, e.checksum(t, Some(ver))?);
            }
            Ok(())
        }));
    }
    {
        let (e, stop) = (Arc::clone(&e), Arc::clone(&stop));
        handles.push(std::thread::spawn(move || -> Result<()> {
            while !stop.load(Ordering::Relaxed) {
                for t in tablets {
                    let m = e.tablet_meta(t)?;
                    let n = m.rowsets.len();
                    if n >= 4 {
                        let (s, end) =
                            (m.rowsets[n - 3].start_version, m.rowsets[n - 1].end_version);
                        match e.compact(t, s, end, m.max_version()) {
                            Ok(_) | Err(Error::InvalidArgument(_)) => {}
                            Err(other) => return Err(other),
                        }
                    }
                }
                e.gc_older_than(u64::MAX)?;
            }
            Ok(())
        }));
    }
    {
        let (e, stop, published) = (Arc::clone(&e), Arc::clone(&stop), Arc::clone(&published));
        handles.push(std::thread::spawn(move || -> Result<()> {
            while !stop.load(Ordering::Relaxed) {
                for (t, v, sum) in published.snapshot() {
                    match e.checksum(t, Some(v)) {
                        Ok(got) => assert_eq!(got, sum, "tablet {t} version {v} changed"),
                        Err(Error::VersionAlreadyMerged { .. }) => {}
                        Err(other) => return Err(other),
                    }
                }
            }
            Ok(())
        }));
    }
    let n_loaders = tablets.len();
    let mut results = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        if i == n_loaders {
            stop.store(true, Ordering::Relaxed);
        }
        results.push(h.join().expect("thread panicked"));
    }
    for r in results {
        r?;
    }
    for t in tablets {
        assert_eq!(e.tablet_meta(t)?.max_version(), 31);
        let last = published
            .snapshot()
            .into_iter()
            .filter(|(tt, v, _)| *tt == t && *v == 31)
            .map(|x| x.2)
            .next();
        assert_eq!(Some(e.checksum(t, None)?), last);
    }
    Ok(())
}

mod parking_lot_free {
    use std::sync::Mutex;
    use tabletsnap_engine::TabletChecksum;

    #[derive(Default)]
    pub struct Log(Mutex<Vec<(u64, u64, TabletChecksum)>>);

    impl Log {
        pub fn push(&self, t: u64, v: u64, s: TabletChecksum) {
            self.0.lock().expect("log").push((t, v, s));
        }
        pub fn snapshot(&self) -> Vec<(u64, u64, TabletChecksum)> {
            self.0.lock().expect("log").clone()
        }
    }
}
