//! The node's side of an in-place restore download: every segment file is
//! written once, straight into its target tablet's data dir under the rowset
//! id `prepare_restore_dirs` reserved for it; the snapshot's `tablet.meta`
//! goes to the restore top dir's metas file (no dir or file per tablet
//! besides the tablet's own). Nothing names those files until the
//! install swaps the tablet meta (the commit point); the reservation keeps
//! recovery from deleting them meanwhile, and its release deletes them if the
//! restore ends without installing them. See docs/design.md (Restore:
//! download dir and install).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use tabletsnap_engine::reserve::segment_rowset_id;
use tabletsnap_engine::tablet_meta::META_FILE_NAME;
use tabletsnap_engine::{Engine, PlacedIds};
use tabletsnap_snapshot::{MetasWriter, RestoreMetas};
use tabletsnap_transfer::{
    DownloadOptions, DownloadReport, Error as TransferError, Manifest, Repository,
    Result as TransferResult, TargetDirs,
};

/// Download targets of an in-place restore, per source tablet id.
struct InPlaceTargets<'a> {
    /// The restore dir: a name (`<top>/<tablet_id>/<schema_hash>`), not created.
    homes: &'a HashMap<u64, PathBuf>,
    /// Where each tablet's files go: its target tablet dir and the new ids
    /// of the downloaded rowsets, and its snapshot meta.
    placed: HashMap<u64, Placed>,
    /// Each restore top dir and its metas file.
    writers: Vec<(PathBuf, MetasWriter)>,
}

struct Placed {
    tablet_dir: PathBuf,
    ids: PlacedIds,
    /// The target tablet id (the restore dir's name), which keys its meta.
    target: u64,
    /// Index into `writers`: its restore top dir.
    writer: usize,
}

impl TargetDirs for InPlaceTargets<'_> {
    fn dir_for(&self, tablet_id: u64) -> Option<PathBuf> {
        self.homes.get(&tablet_id).cloned()
    }

    fn file_path(&self, tablet_id: u64, dir: &Path, path: &str) -> PathBuf {
        if let Some(p) = self.placed.get(&tablet_id) {
            if let Some(name) = p.ids.file_name(path) {
                return p.tablet_dir.join(name);
            }
        }
        dir.join(path)
    }

    fn creates_dir(&self, tablet_id: u64) -> bool {
        !self.placed.contains_key(&tablet_id)
    }

    fn keeps(&self, tablet_id: u64, path: &str) -> bool {
        path == META_FILE_NAME && self.placed.contains_key(&tablet_id)
    }

    fn keep(&self, tablet_id: u64, path: &str, data: &[u8]) -> TransferResult<()> {
        let p = self.placed.get(&tablet_id).ok_or_else(|| {
            TransferError::Target(format!(
                "tablet {tablet_id} has no restore dir to keep '{path}' for"
            ))
        })?;
        self.writers[p.writer]
            .1
            .append(p.target, data)
            .map_err(|e| {
                TransferError::Target(format!("keeping the meta of tablet {tablet_id}: {e}"))
            })
    }

    fn kept(&self, tablet_id: u64, _path: &str, size: u64, crc32: u32) -> bool {
        self.placed
            .get(&tablet_id)
            .is_some_and(|p| self.writers[p.writer].1.holds(p.target, size, crc32))
    }

    fn sync_path(&self, tablet_id: u64, dir: &Path) -> PathBuf {
        match self.placed.get(&tablet_id) {
            // The tablet dirs are on the top dir's filesystem (its store).
            Some(p) => self.writers[p.writer].0.clone(),
            None => dir.to_path_buf(),
        }
    }
}

/// Downloads the tablets of `manifest` in place: `dirs` maps each source
/// tablet id to the restore dir prepared for it. `bases` names the catch-up
/// targets (source tablet id → the version the target holds), whose
/// manifest entries the caller already cut down to the files they lack.
/// `versions` gives the version each downloaded meta must end at (source
/// tablet id → version; a tablet not in it is not checked): the node checks
/// what the backup's meta promised where the meta is, so the coordinator
/// never reads a node's files.
/// Every file is verified against the manifest while written; then each
/// tablet's downloaded meta is checked to name exactly the downloaded
/// segment files with the same sizes and crcs, so the install may trust
/// them without a second read, and the install's rowset ids (ranked from
/// the meta) are the ones the files were written under (ranked from the
/// manifest).
pub fn download_in_place(
    engine: &Engine,
    repo: &Repository,
    manifest: &Manifest,
    dirs: &HashMap<u64, PathBuf>,
    bases: &HashMap<u64, u64>,
    versions: &HashMap<u64, u64>,
    opts: &DownloadOptions,
) -> Result<DownloadReport> {
    let mut targets = InPlaceTargets {
        homes: dirs,
        placed: HashMap::new(),
        writers: Vec::new(),
    };
    let mut tops: HashMap<PathBuf, usize> = HashMap::new();
    for e in &manifest.tablets {
        let Some(dir) = dirs.get(&e.tablet_id) else {
            continue;
        };
        let slot = tabletsnap_snapshot::restore_slot(engine, dir)?;
        let ids = PlacedIds::from_file_names(
            slot.tablet_id,
            slot.base,
            e.files.iter().map(|f| f.path.as_str()),
        )?;
        let Some((top, _)) = tabletsnap_snapshot::metas::top_and_tablet(dir) else {
            bail!("{} is not a restore dir", dir.display());
        };
        let writer = match tops.get(top) {
            Some(i) => *i,
            None => {
                targets
                    .writers
                    .push((top.to_path_buf(), MetasWriter::open(top)?));
                tops.insert(top.to_path_buf(), targets.writers.len() - 1);
                targets.writers.len() - 1
            }
        };
        targets.placed.insert(
            e.tablet_id,
            Placed {
                tablet_dir: slot.dir,
                ids,
                target: slot.tablet_id,
                writer,
            },
        );
    }
    let mut opts = opts.clone();
    opts.in_place = true;
    let report = tabletsnap_transfer::download_manifest_ref(repo, manifest, &targets, &opts)?;
    drop(targets);
    let metas = RestoreMetas::new();
    for e in &manifest.tablets {
        let Some(dir) = dirs.get(&e.tablet_id) else {
            continue;
        };
        let got: HashMap<&str, (u64, u32)> = e
            .files
            .iter()
            .filter(|f| segment_rowset_id(&f.path).is_some())
            .map(|f| (f.path.as_str(), (f.size, f.crc32)))
            .collect();
        let meta = metas.read(dir)?;
        if let Some(v) = versions.get(&e.tablet_id) {
            if meta.max_version() != *v {
                bail!(
                    "downloaded tablet {} is at version {}, the backup says {v}",
                    e.tablet_id,
                    meta.max_version()
                );
            }
        }
        let wanted: Option<HashSet<String>> = match bases.get(&e.tablet_id) {
            Some(base) => Some(
                tabletsnap_snapshot::catch_up_files(&meta, *base)?
                    .into_iter()
                    .collect(),
            ),
            None => None,
        };
        let mut named = 0usize;
        for rs in &meta.rowsets {
            for (name, seg) in rs.files() {
                if wanted.as_ref().is_some_and(|w| !w.contains(&name)) {
                    continue;
                }
                named += 1;
                if got.get(name.as_str()) != Some(&(seg.size, seg.crc32)) {
                    bail!(
                        "tablet {}: file {name} in the backup does not match its tablet meta (size {}, crc32 {:#010x})",
                        e.tablet_id,
                        seg.size,
                        seg.crc32
                    );
                }
            }
        }
        if named != got.len() {
            bail!(
                "tablet {}: the backup holds {} segment files, its tablet meta names {named}",
                e.tablet_id,
                got.len()
            );
        }
    }
    Ok(report)
}
