//! Recovery on open: find every tablet dir, load metas in parallel, free the
//! stale rowsets (nothing can pin them before the engine is open), remove what
//! no live rowset references (temp files, orphan segments, tablet dirs whose
//! meta never committed), and report corrupt metas by tablet and path.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::engine::{Engine, Store};
use crate::error::{Error, IoContext, Result};
use crate::file::{self, TMP_SUFFIX};
use crate::tablet_meta::{TabletMeta, META_FILE_NAME};

/// What recovery found and did.
#[derive(Debug, Default, Clone)]
pub struct RecoveryReport {
    /// Tablets loaded.
    pub tablets_loaded: usize,
    /// Temp files removed.
    pub temp_files_removed: usize,
    /// Segment files no meta referenced, removed.
    pub orphan_files_removed: usize,
    /// Stale rowsets (replaced by compaction, overwrite or a reloaded
    /// version, and not yet collected when the process stopped) dropped from
    /// their metas.
    pub stale_rowsets_freed: usize,
    /// Segment files of those stale rowsets, removed.
    pub stale_files_removed: usize,
    /// Tablet dirs without a committed meta, removed.
    pub uncommitted_tablets_removed: Vec<PathBuf>,
    /// Tablets whose meta is corrupt: (tablet id, meta path, reason). Left untouched.
    pub corrupt: Vec<(u64, PathBuf, String)>,
}

pub(crate) struct Scan {
    pub tablets: Vec<(usize, TabletMeta, PathBuf)>,
    pub corrupt: Vec<(u64, Error)>,
    pub report: RecoveryReport,
}

enum Outcome {
    /// The committed meta, and whether a temp meta without its stale rowsets
    /// was written (to be committed behind the store's barriers).
    Loaded(TabletMeta, bool),
    Uncommitted,
    Corrupt(String),
}

fn list_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).at(dir)? {
        let e = e.at(dir)?;
        if e.file_type().at(e.path())?.is_dir() {
            out.push(e.path());
        }
    }
    Ok(out)
}

pub(crate) fn recover(stores: &[Store], reserved: &crate::reserve::Reservations) -> Result<Scan> {
    let mut candidates: Vec<(usize, u64, PathBuf)> = Vec::new();
    for (si, s) in stores.iter().enumerate() {
        // Dropped tablets finish dying.
        for e in fs::read_dir(s.trash_dir()).at(s.trash_dir())? {
            let p = e.at(s.trash_dir())?.path();
            if p.is_dir() {
                file::remove_dir_all_if_exists(&p)?;
            } else {
                file::remove_file_if_exists(&p)?;
            }
        }
        for shard in list_dirs(&s.data_dir())? {
            for tdir in list_dirs(&shard)? {
                let Some(id) = tdir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.parse().ok())
                else {
                    continue;
                };
                for hdir in list_dirs(&tdir)? {
                    candidates.push((si, id, hdir));
                }
            }
        }
    }
    let outcomes: Vec<Result<Outcome>> = candidates
        .par_iter()
        .map(|(_, id, dir)| load_tablet(*id, dir))
        .collect();
    let mut scan = Scan {
        tablets: Vec::new(),
        corrupt: Vec::new(),
        report: RecoveryReport::default(),
    };
    // Metas rewritten without their stale rowsets: (store, meta path).
    let mut rewritten: Vec<(usize, PathBuf)> = Vec::new();
    let mut loaded: Vec<(usize, TabletMeta, PathBuf, bool)> = Vec::new();
    for ((si, id, dir), outcome) in candidates.into_iter().zip(outcomes) {
        match outcome? {
            Outcome::Loaded(meta, rewrite) => {
                if rewrite {
                    rewritten.push((si, dir.join(META_FILE_NAME)));
                }
                loaded.push((si, meta, dir, rewrite));
            }
            // An in-place restore is writing this new tablet: its reservation
            // ends with an install or a release.
            // Only what it reserved stays: temp files and other segment files
            // of an install that died before its commit point go.
            Outcome::Uncommitted if Engine::reserved_for(reserved, id, None) => {
                for e in fs::read_dir(&dir).at(&dir)? {
                    let e = e.at(&dir)?;
                    let name = e.file_name().to_string_lossy().into_owned();
                    let ours = Engine::reserved_for(reserved, id, Some(&name));
                    if !ours && (name.ends_with(TMP_SUFFIX) || name.ends_with(".dat")) {
                        file::remove_file_if_exists(&e.path())?;
                        scan.report.orphan_files_removed += 1;
                    }
                }
            }
            Outcome::Uncommitted => {
                file::remove_dir_all_if_exists(&dir)?;
                if let Some(parent) = dir.parent() {
                    let _ = fs::remove_dir(parent);
                }
                scan.report.uncommitted_tablets_removed.push(dir);
            }
            Outcome::Corrupt(detail) => {
                let path = dir.join(META_FILE_NAME);
                scan.report.corrupt.push((id, path.clone(), detail.clone()));
                scan.corrupt.push((
                    id,
                    Error::TabletCorrupt {
                        tablet_id: id,
                        path,
                        detail,
                    },
                ));
            }
        }
    }
    // The metas that forget stale rowsets are durable before any of their
    // files is deleted: never a meta naming a missing file.
    if !rewritten.is_empty() {
        let mut used: Vec<usize> = rewritten.iter().map(|(s, _)| *s).collect();
        used.sort_unstable();
        used.dedup();
        for s in &used {
            file::syncfs(&stores[*s].root)?;
        }
        rewritten
            .par_iter()
            .try_for_each(|(_, p)| file::commit_tmp(p))?;
        for s in &used {
            file::syncfs(&stores[*s].root)?;
        }
    }
    let cleaned: Vec<Result<Cleaned>> = loaded
        .par_iter()
        .map(|(_, meta, dir, _)| clean_tablet_dir(meta, dir, reserved))
        .collect();
    for ((si, mut meta, dir, rewrite), cleaned) in loaded.into_iter().zip(cleaned) {
        let c = cleaned?;
        scan.report.temp_files_removed += c.tmp;
        scan.report.orphan_files_removed += c.orphans;
        scan.report.stale_files_removed += c.stale_files;
        if rewrite {
            scan.report.stale_rowsets_freed += meta.stale_rowsets.len();
            meta.stale_rowsets.clear();
        }
        scan.report.tablets_loaded += 1;
        scan.tablets.push((si, meta, dir));
    }
    Ok(scan)
}

/// Loads and checks a tablet's meta. A meta with stale rowsets gets a temp
/// copy without them (not synced: the caller's barrier covers it).
fn load_tablet(id: u64, dir: &Path) -> Result<Outcome> {
    let meta_path = dir.join(META_FILE_NAME);
    let buf = match fs::read(&meta_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Nothing under this dir was ever committed: creation or install died
            // before its meta rename, the commit point.
            return Ok(Outcome::Uncommitted);
        }
        Err(e) => return Err(Error::io(meta_path, e)),
    };
    let meta = match TabletMeta::decode(&meta_path, &buf) {
        Ok(m) => m,
        Err(e) => return Ok(Outcome::Corrupt(e.to_string())),
    };
    if meta.tablet_id != id {
        return Ok(Outcome::Corrupt(format!(
            "meta names tablet {} but lives in the directory of tablet {id}",
            meta.tablet_id
        )));
    }
    // Stale rowsets wait for readers that may still hold them; before the
    // engine is open there are none, and nothing else would ever free them
    // (an overwrite install that crashed before its GC left them for good).
    let rewrite = !meta.stale_rowsets.is_empty();
    if rewrite {
        let fresh = TabletMeta {
            stale_rowsets: Vec::new(),
            ..meta.clone()
        };
        file::write_tmp(&meta_path, &fresh.encode(), false)?;
    }
    Ok(Outcome::Loaded(meta, rewrite))
}

struct Cleaned {
    tmp: usize,
    orphans: usize,
    stale_files: usize,
}

/// Removes every temp file and every `.dat` file the live rowsets of `meta`
/// do not name (the meta on disk no longer lists stale rowsets by now).
fn clean_tablet_dir(
    meta: &TabletMeta,
    dir: &Path,
    reserved: &crate::reserve::Reservations,
) -> Result<Cleaned> {
    let live: HashSet<String> = meta
        .rowsets
        .iter()
        .flat_map(|r| r.files().map(|(name, _)| name))
        .collect();
    let stale: HashSet<String> = meta
        .stale_rowsets
        .iter()
        .flat_map(|s| s.rowset.files().map(|(name, _)| name))
        .collect();
    let mut c = Cleaned {
        tmp: 0,
        orphans: 0,
        stale_files: 0,
    };
    for e in fs::read_dir(dir).at(dir)? {
        let e = e.at(dir)?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name == META_FILE_NAME || live.contains(&name) {
            continue;
        }
        if name.ends_with(TMP_SUFFIX) {
            c.tmp += 1;
        } else if stale.contains(&name) {
            c.stale_files += 1;
        } else if name.ends_with(".dat") {
            if Engine::reserved_for(reserved, meta.tablet_id, Some(&name)) {
                // Written by an in-place restore still under way.
                continue;
            }
            c.orphans += 1;
        } else {
            continue;
        }
        file::remove_file_if_exists(&e.path())?;
    }
    Ok(c)
}
