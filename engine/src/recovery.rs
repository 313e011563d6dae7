//! Recovery on open: find every tablet dir, load metas in parallel, remove
//! what no committed meta references (temp files, orphan segments, tablet dirs
//! whose meta never committed), and report corrupt metas by tablet and path.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::engine::Store;
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
    Loaded(TabletMeta, usize, usize),
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

pub(crate) fn recover(stores: &[Store]) -> Result<Scan> {
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
        .map(|(_, id, dir)| recover_tablet(*id, dir))
        .collect();
    let mut scan = Scan {
        tablets: Vec::new(),
        corrupt: Vec::new(),
        report: RecoveryReport::default(),
    };
    for ((si, id, dir), outcome) in candidates.into_iter().zip(outcomes) {
        match outcome? {
            Outcome::Loaded(meta, tmp, orphans) => {
                scan.report.temp_files_removed += tmp;
                scan.report.orphan_files_removed += orphans;
                scan.report.tablets_loaded += 1;
                scan.tablets.push((si, meta, dir));
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
    Ok(scan)
}

fn recover_tablet(id: u64, dir: &Path) -> Result<Outcome> {
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
    let live: HashSet<String> = meta
        .rowsets
        .iter()
        .chain(meta.stale_rowsets.iter().map(|s| &s.rowset))
        .flat_map(|r| r.files().map(|(name, _)| name))
        .collect();
    let (mut tmp, mut orphans) = (0, 0);
    for e in fs::read_dir(dir).at(dir)? {
        let e = e.at(dir)?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name == META_FILE_NAME || live.contains(&name) {
            continue;
        }
        if name.ends_with(TMP_SUFFIX) {
            tmp += 1;
        } else if name.ends_with(".dat") {
            orphans += 1;
        } else {
            continue;
        }
        file::remove_file_if_exists(&e.path())?;
    }
    Ok(Outcome::Loaded(meta, tmp, orphans))
}
