//! Making snapshots: capture each tablet at a version, hard-link its rowset
//! files into `<store>/snapshot/<top>/<tablet_id>/<schema_hash>/` with the
//! restricted meta beside them, in parallel, then one barrier per store.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use rayon::prelude::*;
use tabletsnap_engine::tablet_meta::META_FILE_NAME;
use tabletsnap_engine::{file, Engine, TabletMeta};

use crate::error::{Error, Result};
use crate::failpoint;
use crate::link::Dir;
use crate::name::{create_top_dirs, DirKind};

/// One tablet to snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotRequest {
    /// The tablet.
    pub tablet_id: u64,
    /// The version to capture; the newest when `None`.
    pub version: Option<u64>,
}

impl SnapshotRequest {
    /// A request for the tablet's newest version.
    pub fn newest(tablet_id: u64) -> Self {
        SnapshotRequest {
            tablet_id,
            version: None,
        }
    }
}

/// One segment file of a snapshot, as the meta records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// File name inside the snapshot dir.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// crc32 of the whole file.
    pub crc32: u32,
}

/// A snapshot made for one tablet.
#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    /// The tablet.
    pub tablet_id: u64,
    /// Its schema hash (the last path component).
    pub schema_hash: u32,
    /// The captured version.
    pub version: u64,
    /// `<store>/snapshot/<top>/<tablet_id>/<schema_hash>`.
    pub path: PathBuf,
    /// The segment files, from the meta (the data is not re-read).
    pub files: Vec<SnapshotFile>,
    /// The meta file inside `path` (`tablet.meta`), to upload with the files.
    pub meta_file: &'static str,
    /// Size and crc32 of `meta_file` as written (no need to encode it again).
    pub meta_size: u64,
    /// crc32 of `meta_file`.
    pub meta_crc32: u32,
    /// The meta restricted to the captured version, as written to `meta_file`.
    pub meta: TabletMeta,
}

impl SnapshotInfo {
    /// Every file of the snapshot dir, segment files then the meta file:
    /// what an upload of this snapshot must carry.
    pub fn all_files(&self) -> impl Iterator<Item = SnapshotFile> + '_ {
        self.files
            .iter()
            .cloned()
            .chain(std::iter::once(SnapshotFile {
                name: self.meta_file.to_string(),
                size: self.meta_size,
                crc32: self.meta_crc32,
            }))
    }
}

/// Snapshots many tablets in one call: one top dir per store, one outcome per
/// request (in request order). A tablet that fails leaves no dir behind and
/// does not affect the others. Every returned snapshot is durable.
/// `timeout` (at least 1 s) is encoded in the dir name for `sweep_expired`.
/// The outer error is for the batch as a whole (bad arguments, barrier failure);
/// then no snapshot of the batch is left on disk.
pub fn make_snapshots(
    engine: &Engine,
    reqs: &[SnapshotRequest],
    timeout: Duration,
) -> Result<Vec<Result<SnapshotInfo>>> {
    let mut seen = HashSet::with_capacity(reqs.len());
    if let Some(dup) = reqs.iter().find(|r| !seen.insert(r.tablet_id)) {
        return Err(Error::InvalidArgument(format!(
            "tablet {} is listed twice in one snapshot batch",
            dup.tablet_id
        )));
    }
    let roots: Vec<PathBuf> = engine.stores().iter().map(|s| s.snapshot_dir()).collect();
    let (_, tops) = create_top_dirs(&roots, DirKind::Snapshot, timeout)?;
    let top_dirs: Vec<Dir> = match tops.iter().map(|p| Dir::open(p)).collect() {
        Ok(d) => d,
        Err(e) => {
            remove_all(&tops);
            return Err(e);
        }
    };
    // Small chunks: tablets cost about the same, and stealing evens out the rest.
    let outcomes: Vec<Result<(usize, SnapshotInfo)>> = reqs
        .par_iter()
        .with_min_len(8)
        .map(|r| {
            snapshot_tablet(engine, &top_dirs, r).map_err(|e| Error::Tablet {
                tablet_id: r.tablet_id,
                source: Box::new(e),
            })
        })
        .collect();
    drop(top_dirs);
    let mut used = vec![false; tops.len()];
    for (store, _) in outcomes.iter().flatten() {
        used[*store] = true;
    }
    let barrier = failpoint::check("snapshot::make::before_barrier", None).and_then(|()| {
        for (i, root) in roots.iter().enumerate() {
            if used[i] {
                file::syncfs(root)?;
            }
        }
        Ok(())
    });
    if let Err(e) = barrier {
        // Nothing of this batch was reported, so nothing of it may stay.
        remove_all(&tops);
        return Err(e);
    }
    for (i, top) in tops.iter().enumerate() {
        if !used[i] {
            // Empty, or holding nothing reported: a failed tablet removed its own dir.
            let _ = file::remove_dir_all_if_exists(top);
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.map(|(_, info)| info))
        .collect())
}

fn remove_all(dirs: &[PathBuf]) {
    for d in dirs {
        let _ = file::remove_dir_all_if_exists(d);
    }
}

/// Captures and links one tablet; on failure removes `<top>/<tablet_id>`.
fn snapshot_tablet(
    engine: &Engine,
    tops: &[Dir],
    req: &SnapshotRequest,
) -> Result<(usize, SnapshotInfo)> {
    // The capture pins its rowsets until it drops, after the links exist:
    // compaction's GC cannot delete a file between capture and link.
    let cap = engine.capture(req.tablet_id, req.version)?;
    let top = tops.get(cap.store).ok_or_else(|| {
        Error::InvalidArgument(format!("tablet {} is on an unknown store", req.tablet_id))
    })?;
    let tablet_dir = top.path().join(req.tablet_id.to_string());
    let store = cap.store;
    let linked = link_tablet(top, cap).inspect_err(|_| {
        // Best effort: a dir that survives this is never reported, and the
        // sweeper removes it with its top dir at expiry.
        let _ = file::remove_dir_all_if_exists(&tablet_dir);
    })?;
    Ok((store, linked))
}

fn link_tablet(top: &Dir, cap: tabletsnap_engine::Capture) -> Result<SnapshotInfo> {
    let (tablet_id, schema_hash) = (cap.meta.tablet_id, cap.meta.schema_hash);
    let dst = top.mkdir2(&tablet_id.to_string(), &schema_hash.to_string())?;
    let src = Dir::open(&cap.dir)?;
    let files: Vec<SnapshotFile> = cap
        .files()
        .into_iter()
        .map(|(name, size, crc32)| SnapshotFile { name, size, crc32 })
        .collect();
    for f in &files {
        dst.link_from(&src, &f.name)?;
    }
    failpoint::check("snapshot::make::tablet", Some(tablet_id))?;
    // Not fsynced here: the batch's barrier makes links, dirs and meta durable at once.
    let meta_path = dst.path().join(META_FILE_NAME);
    let meta_bytes = cap.meta.encode();
    file::write_new(&meta_path, &meta_bytes, false)?;
    Ok(SnapshotInfo {
        meta_size: meta_bytes.len() as u64,
        meta_crc32: crc32fast::hash(&meta_bytes),
        tablet_id,
        schema_hash,
        version: cap.version,
        path: dst.path().to_path_buf(),
        files,
        meta_file: META_FILE_NAME,
        // Moved, not copied (the pin in `cap` lives to the end of this fn,
        // after the links exist): one meta per tablet of the batch, not two.
        meta: cap.meta,
    })
}
