//! The expiry sweeper: deletes snapshot and restore top dirs whose encoded
//! creation time plus timeout has passed. The engine cannot call up into this
//! crate, so the node runs it once at start (after `Engine::open`) and may
//! run it periodically; it needs no state beyond the dir names.

use std::fs;
use std::path::PathBuf;
use std::time::SystemTime;

use tabletsnap_engine::{file, Engine};

use crate::error::{Error, Result};
use crate::name::{DirKind, DirName};

/// What a sweep found and did.
#[derive(Debug, Default, Clone)]
pub struct SweepStats {
    /// Expired top dirs deleted.
    pub removed: Vec<PathBuf>,
    /// Top dirs not yet expired.
    pub kept: usize,
    /// Entries whose names this crate did not make: left alone, reported.
    pub unparseable: Vec<PathBuf>,
    /// Expired dirs whose deletion failed, with the reason; retried next sweep.
    pub failed: Vec<(PathBuf, String)>,
}

/// Deletes every top dir under each store's `snapshot/` that expired at `now`.
pub fn sweep_expired(engine: &Engine, now: SystemTime) -> Result<SweepStats> {
    let mut stats = SweepStats::default();
    for store in engine.stores() {
        let root = store.snapshot_dir();
        let entries = match fs::read_dir(&root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&root, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&root, e))?;
            let path = entry.path();
            let is_dir = entry.file_type().map_err(|e| Error::io(&path, e))?.is_dir();
            let name = entry.file_name();
            let parsed = name.to_str().and_then(DirName::parse);
            match parsed {
                Some(n) if is_dir => {
                    if !n.expired_at(now) {
                        stats.kept += 1;
                        continue;
                    }
                    if n.kind == DirKind::Restore {
                        if let Some(top) = name.to_str() {
                            if let Err(e) = engine.release_restore(top, None) {
                                stats.failed.push((path, e.to_string()));
                                continue;
                            }
                        }
                    }
                    match file::remove_dir_all_if_exists(&path) {
                        Ok(()) => stats.removed.push(path),
                        Err(e) => stats.failed.push((path, e.to_string())),
                    }
                }
                _ => stats.unparseable.push(path),
            }
        }
    }
    // Reservations whose restore dir is gone (a crash between the two
    // deletions) end when their name says the restore dir would have expired.
    for name in engine.reservation_names() {
        let expired = DirName::parse(&name).is_some_and(|n| n.expired_at(now));
        let dir_left = engine
            .stores()
            .iter()
            .any(|s| s.snapshot_dir().join(&name).exists());
        if expired && !dir_left {
            if let Err(e) = engine.release_restore(&name, None) {
                stats.failed.push((PathBuf::from(&name), e.to_string()));
            }
        }
    }
    stats.removed.sort();
    stats.unparseable.sort();
    Ok(stats)
}
