//! Helpers shared by the scenario tests: small engines in tempdirs, a small
//! workload, and a "download" that copies a snapshot into a restore dir.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};

use tabletsnap_engine::workload::{self, WorkloadSpec};
use tabletsnap_engine::{Engine, EngineOptions, TabletChecksum};
use tabletsnap_snapshot::{
    load_snapshot, prepare_restore_dir, InstallOutcome, LoadSnapshotRequest, SnapshotInfo,
};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A small workload: a few tablets of a few small versions, two files each.
pub fn small_spec(tablets: u64) -> WorkloadSpec {
    WorkloadSpec {
        tablets,
        versions: 6,
        rows_per_version: 40,
        segments_per_version: 2,
        first_tablet_id: 1000,
        seed: 7,
    }
}

/// Opens (or reopens) an engine over `root`.
pub fn open(root: &Path) -> tabletsnap_engine::Result<Engine> {
    Engine::open(EngineOptions::new(vec![root.to_path_buf()]))
}

/// An engine in a fresh tempdir, populated with `small_spec(tablets)`.
pub fn populated(
    tablets: u64,
) -> Result<(tempfile::TempDir, Engine, Vec<u64>), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let engine = open(dir.path())?;
    let ids = workload::populate(&engine, &small_spec(tablets))?;
    Ok((dir, engine, ids))
}

/// Copies a snapshot (files and meta) into a fresh restore dir of `dst`, as a
/// download would, and returns that dir.
pub fn download(
    dst: &Engine,
    info: &SnapshotInfo,
    target: u64,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let dir = prepare_restore_dir(dst, target, info.schema_hash)?;
    assert_eq!(
        std::fs::read_dir(&dir)?.count(),
        0,
        "restore dir starts empty"
    );
    for f in &info.files {
        std::fs::copy(info.path.join(&f.name), dir.join(&f.name))?;
    }
    std::fs::copy(info.path.join(info.meta_file), dir.join(info.meta_file))?;
    Ok(dir)
}

/// A fresh-tablet load request.
pub fn load_req(target: u64, schema_hash: u32, overwrite: bool) -> LoadSnapshotRequest {
    LoadSnapshotRequest {
        tablet_id: target,
        schema_hash,
        table_id: 77,
        partition_id: 88,
        overwrite,
        in_place: false,
    }
}

/// Downloads and installs `info` as tablet `target` on `dst`; returns its checksum.
pub fn restore(
    dst: &Engine,
    info: &SnapshotInfo,
    target: u64,
) -> Result<TabletChecksum, Box<dyn std::error::Error>> {
    let dir = download(dst, info, target)?;
    let out = load_snapshot(dst, &dir, &load_req(target, info.schema_hash, false))?;
    assert!(matches!(out, InstallOutcome::Installed { .. }), "{out:?}");
    Ok(dst.checksum(target, Some(info.version))?)
}

/// Top-level entries of the first store's snapshot root, sorted.
pub fn snapshot_root_entries(engine: &Engine) -> Vec<String> {
    let root = engine.stores()[0].snapshot_dir();
    let mut v: Vec<String> = std::fs::read_dir(root)
        .map(|it| {
            it.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
