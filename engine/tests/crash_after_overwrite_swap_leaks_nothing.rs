//! A crash after an overwrite install swapped the new meta in, but before it
//! freed the replaced rowsets, leaks nothing: recovery on open frees every
//! segment file of the tablet dir that the live rowsets do not name.
#![cfg(feature = "failpoints")]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use tabletsnap_engine::tablet_meta::META_FILE_NAME;
use tabletsnap_engine::{Engine, InstallRequest, Result, Verify};

/// File names in a tablet dir.
fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("read tablet dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// `tablet.meta` and the files of the live rowsets, nothing else.
fn assert_only_live_files(e: &Engine, id: u64, ctx: &str) -> Result<()> {
    let t = e.tablet(id)?;
    let m = t.meta();
    assert!(m.stale_rowsets.is_empty(), "{ctx}: stale rowsets survived");
    let mut want: BTreeSet<String> = m
        .rowsets
        .iter()
        .flat_map(|r| r.files().map(|(n, _)| n))
        .collect();
    want.insert(META_FILE_NAME.to_string());
    assert_eq!(names(t.dir()), want, "{ctx}: tablet dir holds other files");
    Ok(())
}

#[test]
fn recovery_frees_rowsets_an_overwrite_replaced_before_it_crashed() -> Result<()> {
    for point in [
        "engine::install::after_meta_swap",
        "engine::install::before_gc",
    ] {
        let dir = tmp();
        let st = stores(dir.path(), 1);
        let (src_sum, old_files) = {
            let e = open(&st)?;
            create(&e, 1)?;
            create(&e, 2)?;
            for v in 0..3 {
                e.load(1, &rows(v, 10))?;
                e.load(2, &rows(100 + v, 10))?;
            }
            let old_files: Vec<String> = e
                .tablet_meta(2)?
                .rowsets
                .iter()
                .flat_map(|r| r.files().map(|(n, _)| n))
                .collect();
            // Export tablet 1 the way a download would, then overwrite tablet 2 with it.
            let cap = e.capture(1, None)?;
            let src = st[0].join("snapshot/in");
            std::fs::create_dir_all(&src).expect("mkdir");
            for (name, _, _) in cap.files() {
                std::fs::copy(cap.dir.join(&name), src.join(&name)).expect("copy");
            }
            let req = InstallRequest {
                src_dir: src,
                schema_hash: cap.meta.schema_hash,
                source: cap.meta.clone(),
                table_id: 7,
                partition_id: 8,
                tablet_id: 2,
                overwrite: true,
                placed: None,
            };
            drop(cap);
            let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
            let scenario = fail::FailScenario::setup();
            fail::cfg(point, "return").expect("fail point");
            let res = e.install_tablets(&[req], Verify::Full);
            scenario.teardown();
            assert!(res.is_err(), "{point} did not fire");
            let m = e.tablet_meta(2)?;
            assert!(
                !m.stale_rowsets.is_empty(),
                "{point}: the crash must come before the replaced rowsets are freed"
            );
            let sum = e.checksum(1, None)?;
            // The process dies: no cleanup of any kind.
            std::mem::forget(e);
            (sum, old_files)
        };
        let e = open(&st)?;
        assert_eq!(
            e.checksum(2, None)?,
            src_sum,
            "{point}: new data is visible"
        );
        assert_only_live_files(&e, 2, point)?;
        let tdir = e.tablet(2)?.dir().to_path_buf();
        for f in &old_files {
            assert!(!tdir.join(f).exists(), "{point}: replaced file {f} leaked");
        }
        assert_eq!(e.recovery_report().stale_files_removed, old_files.len());
        // Later loads and reopenings keep it exact.
        e.load(2, &rows(9, 4))?;
        assert_only_live_files(&e, 2, point)?;
        drop(e);
        let e = open(&st)?;
        assert_only_live_files(&e, 2, point)?;
        assert_only_live_files(&e, 1, point)?;
    }
    Ok(())
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
