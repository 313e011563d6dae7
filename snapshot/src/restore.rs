//! The restore side: empty dirs for downloads, then verified, atomic install
//! of what was downloaded. The atomicity lives in `Engine::install_tablets`
//! (the meta rename is the commit point); this module finds and reads the
//! snapshot metas and names the dir in every error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rayon::prelude::*;
use tabletsnap_engine::tablet_meta::META_FILE_NAME;
use tabletsnap_engine::{
    file, Engine, IncrementalRequest, InstallOutcome, InstallRequest, RestoreSlot, TabletMeta,
    Verify,
};

use crate::error::{Error, Result};
use crate::metas::RestoreMetas;
use crate::name::{create_top_dirs, DirKind};

/// How long a restore dir lives before the sweeper may delete it: long
/// enough for a slow download of a large tablet plus its install.
pub const RESTORE_DIR_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Where to install one downloaded snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSnapshotRequest {
    /// Target tablet id.
    pub tablet_id: u64,
    /// Target schema hash.
    pub schema_hash: u32,
    /// Target table id.
    pub table_id: u64,
    /// Target partition id.
    pub partition_id: u64,
    /// Replace the existing tablet with this id (same schema required).
    pub overwrite: bool,
    /// The segment files were downloaded in place, into the target tablet's
    /// dir under the rowset ids `prepare_restore_dirs` reserved (see
    /// [`restore_slot`]); the snapshot's meta is in the top dir's metas file
    /// ([`crate::metas`]) or, failing that, in the dir. Otherwise the dir
    /// holds the meta and the files, and install links them in.
    pub in_place: bool,
}

/// An empty, durable dir for the download of one tablet's snapshot:
/// `<store>/snapshot/restore.<YYYYmmddHHMMSS>.<seq>.<timeout_s>/<tablet_id>/<schema_hash>/`,
/// and rowset ids reserved for an in-place download ([`restore_slot`]).
pub fn prepare_restore_dir(engine: &Engine, tablet_id: u64, schema_hash: u32) -> Result<PathBuf> {
    let mut dirs = prepare(engine, &[(tablet_id, schema_hash)], false)?;
    dirs.pop()
        .ok_or_else(|| Error::InvalidArgument("no restore dir was made".into()))
}

/// Restore dirs for many tablets, for in-place downloads (one barrier per
/// store): for each a reservation of rowset ids in its target tablet dir,
/// named after the top dir ([`restore_slot`]; the tablet dir is created).
/// The restore dirs themselves are names, not created: the download keeps
/// each snapshot meta in the top dir's metas file
/// ([`crate::metas::MetasWriter`]), and a download that writes files into a
/// restore dir creates it. Each is on the
/// store holding the target tablet if it exists, else spread over the stores
/// starting with the least loaded.
pub fn prepare_restore_dirs(engine: &Engine, targets: &[(u64, u32)]) -> Result<Vec<PathBuf>> {
    prepare(engine, targets, true)
}

fn prepare(engine: &Engine, targets: &[(u64, u32)], batch: bool) -> Result<Vec<PathBuf>> {
    let stores = engine.stores();
    let first = engine.pick_store(None);
    let store_of: Vec<usize> = targets
        .iter()
        .enumerate()
        .map(|(i, (id, _))| {
            engine
                .tablet(*id)
                .map_or((first + i) % stores.len(), |t| t.store)
        })
        .collect();
    let roots: Vec<PathBuf> = stores.iter().map(|s| s.snapshot_dir()).collect();
    let (name, tops) = create_top_dirs(&roots, DirKind::Restore, RESTORE_DIR_TIMEOUT)?;
    let name = name.format();
    let reserve: Vec<(u64, u32, usize)> = targets
        .iter()
        .zip(&store_of)
        .map(|((id, hash), s)| (*id, *hash, *s))
        .collect();
    let made = engine
        .reserve_restore(&name, &reserve)
        .map_err(Error::from)
        .and_then(|_| {
            targets
                .iter()
                .zip(&store_of)
                .map(|((id, hash), s)| {
                    let dir = tops[*s].join(id.to_string()).join(hash.to_string());
                    // A batch is for in-place downloads: the dir is a name
                    // (it keys the reservation) and the snapshot meta goes
                    // to the top dir's metas file; a download that wants
                    // the dir creates it.
                    if !batch {
                        file::create_dir_all_durable(&dir)?;
                    }
                    Ok(dir)
                })
                .collect::<Result<Vec<PathBuf>>>()
        })
        .and_then(|dirs| {
            let mut used: Vec<usize> = store_of.clone();
            used.sort_unstable();
            used.dedup();
            for (i, top) in tops.iter().enumerate() {
                if used.binary_search(&i).is_err() {
                    let _ = std::fs::remove_dir(top);
                } else {
                    // Dirs, tablet dirs and the reservation file durable together.
                    file::syncfs(&roots[i])?;
                }
            }
            fail::fail_point!("snapshot::restore::after_prepare", |_| Err(
                Error::FailPoint("snapshot::restore::after_prepare".into())
            ));
            Ok(dirs)
        });
    if made.is_err() {
        let _ = engine.release_restore(&name, None);
        for top in &tops {
            let _ = file::remove_dir_all_if_exists(top);
        }
    }
    made
}

/// The rowset ids and target tablet dir reserved for the restore dir `dir`
/// (`<store>/snapshot/restore.<...>/<tablet_id>/<schema_hash>`) when it was
/// prepared: an in-place download writes the segment files there.
pub fn restore_slot(engine: &Engine, dir: &Path) -> Result<RestoreSlot> {
    let tablet = dir.parent();
    let top = tablet.and_then(Path::parent);
    let parsed = (|| {
        let id: u64 = tablet?.file_name()?.to_str()?.parse().ok()?;
        let name = top?.file_name()?.to_str()?;
        Some((id, name))
    })();
    let Some((id, name)) = parsed else {
        return Err(Error::InvalidArgument(format!(
            "{} is not a restore dir (<store>/snapshot/restore.<...>/<tablet_id>/<schema_hash>)",
            dir.display()
        )));
    };
    engine.restore_slot(name, id).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "restore dir {} has no reserved rowset ids for tablet {id} (released, or prepared by an older tabletsnap): prepare it again",
            dir.display()
        ))
    })
}

/// Reads and verifies the tablet meta of a snapshot dir.
pub fn read_snapshot_meta(dir: &Path) -> Result<TabletMeta> {
    let path = dir.join(META_FILE_NAME);
    let buf = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::MetaMissing {
                dir: dir.to_path_buf(),
                file: META_FILE_NAME,
            })
        }
        Err(e) => return Err(Error::io(&path, e)),
    };
    TabletMeta::decode(&path, &buf).map_err(|e| Error::MetaCorrupt {
        dir: dir.to_path_buf(),
        source: Box::new(e),
    })
}

/// Installs one downloaded snapshot dir as tablet `req.tablet_id`, verifying
/// every file's size and crc32 first. Atomic and idempotent: see
/// [`load_snapshots`]. The dir is left in place; release it once the job is done.
pub fn load_snapshot(
    engine: &Engine,
    dir: &Path,
    req: &LoadSnapshotRequest,
) -> Result<InstallOutcome> {
    let mut out = load_snapshots(engine, &[(dir.to_path_buf(), *req)], Verify::Full)?;
    out.pop()
        .ok_or_else(|| Error::InvalidArgument("install returned no outcome".into()))
}

/// Tablets installed per part of a large batch: bounds the staged metas and
/// link lists held at once (memory flat in the batch size) while keeping
/// barriers few.
pub const INSTALL_PART: usize = 2048;

/// Installs many downloaded snapshot dirs, one durability barrier per part
/// of [`INSTALL_PART`] tablets. Nothing becomes visible unless every file of
/// every dir verifies: a batch of several parts is verified whole first. A
/// crash at any point leaves each target either absent (or, when
/// overwriting, the old tablet intact) or complete; re-running completes the
/// install or reports `AlreadyInstalled`.
pub fn load_snapshots(
    engine: &Engine,
    loads: &[(PathBuf, LoadSnapshotRequest)],
    verify: Verify,
) -> Result<Vec<InstallOutcome>> {
    load_snapshots_in_parts(engine, loads, verify, INSTALL_PART)
}

/// [`load_snapshots`] with parts of `part` tablets (at least 1).
pub fn load_snapshots_in_parts(
    engine: &Engine,
    loads: &[(PathBuf, LoadSnapshotRequest)],
    verify: Verify,
    part: usize,
) -> Result<Vec<InstallOutcome>> {
    let part = part.max(1);
    if loads.len() <= part {
        return install_part(engine, &RestoreMetas::new(), loads, verify);
    }
    let mut seen = std::collections::HashSet::with_capacity(loads.len());
    if let Some((_, dup)) = loads.iter().find(|(_, r)| !seen.insert(r.tablet_id)) {
        return Err(Error::InvalidArgument(format!(
            "tablet {} is listed twice",
            dup.tablet_id
        )));
    }
    drop(seen);
    let metas = RestoreMetas::new();
    // Verify all, keeping nothing: the parts then only stat sizes again.
    loads.par_iter().try_for_each(|(dir, r)| {
        let req = install_request(engine, &metas, dir, r)?;
        tabletsnap_engine::install::verify_install_source(&req, verify)?;
        Ok::<_, Error>(())
    })?;
    let mut out = Vec::with_capacity(loads.len());
    for chunk in loads.chunks(part) {
        out.extend(install_part(engine, &metas, chunk, Verify::SizeOnly)?);
    }
    Ok(out)
}

/// The install of the restore dir `dir`: from the dir itself, or, for an
/// in-place restore, from the tablet dir its files were written into.
fn install_request(
    engine: &Engine,
    metas: &RestoreMetas,
    dir: &Path,
    r: &LoadSnapshotRequest,
) -> Result<InstallRequest> {
    let (src_dir, placed) = if r.in_place {
        let slot = restore_slot(engine, dir)?;
        (slot.dir, Some(slot.base))
    } else {
        (dir.to_path_buf(), None)
    };
    Ok(InstallRequest {
        src_dir,
        source: metas.read(dir)?,
        table_id: r.table_id,
        partition_id: r.partition_id,
        tablet_id: r.tablet_id,
        schema_hash: r.schema_hash,
        overwrite: r.overwrite,
        placed,
    })
}

/// One install batch: one barrier, all verified before anything changes.
fn install_part(
    engine: &Engine,
    metas: &RestoreMetas,
    loads: &[(PathBuf, LoadSnapshotRequest)],
    verify: Verify,
) -> Result<Vec<InstallOutcome>> {
    let installs: Vec<InstallRequest> = loads
        .par_iter()
        .map(|(dir, r)| install_request(engine, metas, dir, r))
        .collect::<Result<_>>()?;
    engine.install_tablets(&installs, verify).map_err(|e| {
        if let tabletsnap_engine::Error::SchemaMismatch { tablet_id, detail } = &e {
            let dir = loads
                .iter()
                .find(|(_, r)| r.tablet_id == *tablet_id)
                .map(|(d, _)| d.clone())
                .unwrap_or_default();
            return Error::SchemaMismatch {
                tablet_id: *tablet_id,
                dir,
                detail: detail.clone(),
            };
        }
        Error::from(e)
    })
}

/// Where to catch up one downloaded snapshot: an existing tablet that holds
/// `base_version` of the same source (an earlier restore made it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUpRequest {
    /// Target tablet id.
    pub tablet_id: u64,
    /// The version the target holds; the snapshot's rowsets above it are appended.
    pub base_version: u64,
    /// The segment files were downloaded in place (see [`LoadSnapshotRequest::in_place`]).
    pub in_place: bool,
}

/// The files of a snapshot with meta `meta` that a copy of the tablet at
/// `base_version` lacks: the segment files of the rowsets above it. Fails
/// when `base_version` is not the end of one of its rowsets (the source
/// merged it with later versions, or the snapshot is older).
pub fn catch_up_files(meta: &TabletMeta, base_version: u64) -> Result<Vec<String>> {
    let rowsets = meta.rowsets_after(base_version).map_err(|e| {
        Error::from(tabletsnap_engine::Error::CatchUpRefused {
            tablet_id: meta.tablet_id,
            detail: format!("the snapshot cannot extend version {base_version}: {e}"),
        })
    })?;
    Ok(rowsets
        .iter()
        .flat_map(|r| r.files().map(|(name, _)| name))
        .collect())
}

/// Catches up existing tablets from downloaded snapshot dirs that hold the
/// meta and (at least) the files [`catch_up_files`] names: appends the
/// versions each lacks, one atomic meta swap per tablet, one barrier pair
/// for the batch (`Engine::install_incremental`). Idempotent.
pub fn catch_up_snapshots(
    engine: &Engine,
    loads: &[(PathBuf, CatchUpRequest)],
    verify: Verify,
) -> Result<Vec<InstallOutcome>> {
    let metas = RestoreMetas::new();
    let reqs: Vec<IncrementalRequest> = loads
        .par_iter()
        .map(|(dir, r)| {
            let (src_dir, placed) = if r.in_place {
                let slot = restore_slot(engine, dir)?;
                (slot.dir, Some(slot.base))
            } else {
                (dir.clone(), None)
            };
            Ok(IncrementalRequest {
                src_dir,
                source: metas.read(dir)?,
                tablet_id: r.tablet_id,
                base_version: r.base_version,
                placed,
            })
        })
        .collect::<Result<_>>()?;
    Ok(engine.install_incremental(&reqs, verify)?)
}
