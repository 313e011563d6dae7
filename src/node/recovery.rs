//! What a node does at start, before it answers any task, about downloads
//! an earlier run of it left half done (it was killed mid-DOWNLOADING).
//!
//! A restore's download writes in place: segment files under their final
//! names in the target tablet's dir (the engine's recovery keeps them, their
//! rowset ids being reserved for the restore) and each tablet's meta under
//! its own name in its `restore.*` dir; the resumed download checks every
//! such file's size and crc32, skips the whole ones and rewrites a torn one.
//! A download that is not in place (the tablet metas a catch-up restore
//! fetches first) writes under a temp name (`.tstmp-...`) and renames once
//! verified, so a killed one can leave temp files in `restore.*` dirs that
//! no run will ever finish (the next run writes under new temp names). The
//! node removes them at start. Nothing here needs to be durable: a removal
//! lost in a crash is redone at the next start, and the restore dirs
//! themselves belong to their job (released when it ends or, orphaned, by
//! the coordinator's sweep or the expiry sweep).

use std::path::Path;

use anyhow::{Context, Result};
use tabletsnap_snapshot::name::RESTORE_PREFIX;
use tabletsnap_transfer::TEMP_PREFIX;

use crate::backend::BackendNode;

/// How deep below a restore top dir files are looked for:
/// `<tablet>/<schema_hash>/<file>`, with room for subdirs in file paths.
const MAX_DEPTH: usize = 8;

/// Removes the temp files of unfinished downloads from every restore dir
/// of `node`'s stores; returns how many it removed.
pub fn remove_partial_downloads(node: &BackendNode) -> Result<u64> {
    let mut removed = 0;
    for store in node.engine().stores() {
        let root = store.snapshot_dir();
        let entries = match std::fs::read_dir(&root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("listing {}", root.display())),
        };
        for e in entries {
            let e = e.with_context(|| format!("listing {}", root.display()))?;
            if e.file_name().to_string_lossy().starts_with(RESTORE_PREFIX)
                && e.file_type().is_ok_and(|t| t.is_dir())
            {
                removed += remove_temp_files(&e.path(), MAX_DEPTH)?;
            }
        }
    }
    Ok(removed)
}

fn remove_temp_files(dir: &Path, depth: usize) -> Result<u64> {
    let mut removed = 0;
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        // Released meanwhile: nothing left to clean.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for e in rd {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        let path = e.path();
        let kind = e
            .file_type()
            .with_context(|| format!("reading the type of {}", path.display()))?;
        if kind.is_dir() {
            if depth > 0 {
                removed += remove_temp_files(&path, depth - 1)?;
            }
        } else if e.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("removing the partial download file {}", path.display())
                    })
                }
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_files_in_restore_dirs_go_and_everything_else_stays() {
        let d = tempfile::tempdir().expect("tempdir");
        let node = BackendNode::open(1, d.path(), 1, 1).expect("open");
        let snap = d.path().join("store0/snapshot");
        let restore = snap.join("restore.20260101000000.0.86400/7/11");
        let backup = snap.join("20260101000000.1.3600/8/11");
        for dir in [&restore, &backup] {
            std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
            std::fs::write(dir.join("1_0.dat"), b"done").expect("write");
            std::fs::write(dir.join(".tstmp-1_1.dat-99-0"), b"half").expect("write");
            std::fs::write(dir.join("sub/.tstmp-x-99-1"), b"half").expect("write");
        }
        assert_eq!(remove_partial_downloads(&node).expect("clean"), 2);
        assert!(restore.join("1_0.dat").exists(), "a complete file stays");
        assert!(!restore.join(".tstmp-1_1.dat-99-0").exists());
        assert!(!restore.join("sub/.tstmp-x-99-1").exists());
        // Snapshot (backup-side) dirs are not downloads: untouched.
        assert!(backup.join(".tstmp-1_1.dat-99-0").exists());
        assert_eq!(remove_partial_downloads(&node).expect("again"), 0);
    }
}
