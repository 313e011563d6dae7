//! Crash at each engine fail point (the function returns at that point and the
//! engine is dropped without cleanup), reopen from disk, check the invariants.
#![cfg(feature = "failpoints")]

mod common;

use std::sync::Mutex;

use common::*;
use tabletsnap_engine::{Durability, Engine, Result};

/// Fail points are process-global: one scenario at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn with_failpoint<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let scenario = fail::FailScenario::setup();
    fail::cfg(name, "return").expect("configure fail point");
    let out = f();
    scenario.teardown();
    out
}

fn dat_count(root: &std::path::Path) -> usize {
    files_under(root)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .count()
}

#[test]
fn crash_in_batch_load_before_meta_keeps_previous_versions() -> Result<()> {
    for point in [
        "engine::load::before_meta_commit",
        "engine::before_meta_rename",
        "engine::load::before_segment_write",
    ] {
        let dir = tmp();
        let st = stores(dir.path(), 2);
        let before = {
            let e = open(&st)?;
            for t in 1..=4 {
                create(&e, t)?;
                e.load(t, &rows(t, 10))?;
            }
            let before: Vec<_> = (1..=4)
                .map(|t| e.checksum(t, None))
                .collect::<Result<_>>()?;
            let res = with_failpoint(point, || -> Result<()> {
                let b = e.begin_load(&[1, 2, 3, 4], Durability::Barrier)?;
                for t in 1..=4 {
                    let r = rows(100 + t, 10);
                    b.add(t, &[&r])?;
                }
                b.commit()?;
                Ok(())
            });
            assert!(res.is_err(), "{point} did not fire");
            // Simulated process death: the engine goes away without cleanup.
            std::mem::forget(e);
            before
        };
        let e = open(&st)?;
        for t in 1..=4u64 {
            assert_eq!(e.tablet_meta(t)?.max_version(), 2, "{point}: tablet {t}");
            assert_eq!(e.checksum(t, None)?, before[t as usize - 1], "{point}");
        }
        assert_eq!(
            dat_count(dir.path()),
            4,
            "{point}: orphans survived recovery"
        );
        assert!(files_under(dir.path())
            .iter()
            .all(|p| !p.to_string_lossy().ends_with(".tmp")));
    }
    Ok(())
}

#[test]
fn crash_in_gc_before_meta_loses_nothing() -> Result<()> {
    let dir = tmp();
    let st = stores(dir.path(), 1);
    let sum = {
        let e = open(&st)?;
        create(&e, 1)?;
        for v in 0..3 {
            e.load(1, &rows(v, 10))?;
        }
        e.compact(1, 2, 4, 4)?;
        let sum = e.checksum(1, None)?;
        assert!(with_failpoint("engine::gc::before_meta", || e.gc()).is_err());
        std::mem::forget(e);
        sum
    };
    let e: Engine = open(&st)?;
    assert_eq!(e.checksum(1, None)?, sum);
    // Recovery frees the stale rowsets the crashed GC did not get to.
    assert_eq!(e.tablet_meta(1)?.stale_rowsets.len(), 0);
    assert_eq!(e.recovery_report().stale_rowsets_freed, 3);
    assert_eq!(dat_count(dir.path()), 1);
    Ok(())
}

#[test]
fn fail_point_list_names_every_configured_point() {
    // Every fail point the engine's source evaluates is listed, and nothing else.
    let mut in_source = std::collections::BTreeSet::new();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for e in std::fs::read_dir(&src).expect("engine/src") {
        let text = std::fs::read_to_string(e.expect("entry").path()).expect("source");
        for marker in ["fail_point!(\"", "failpoint::check(\""] {
            for part in text.split(marker).skip(1) {
                if let Some(name) = part.split('"').next() {
                    in_source.insert(name.to_string());
                }
            }
        }
    }
    let listed: std::collections::BTreeSet<String> = tabletsnap_engine::FAIL_POINTS
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert!(listed.iter().all(|p| p.starts_with("engine::")));
    assert_eq!(listed, in_source);
}
