//! Releasing a snapshot: delete a dir only if it really is inside a store's
//! snapshot root, judged after canonicalization, so that no argument (`..`,
//! a symlink, the root itself, a tablet's data dir) can delete anything else.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::fs;
use std::path::{Component, Path, PathBuf};

use tabletsnap_engine::{file, Engine};

use crate::error::{Error, Result};
use crate::name::{top_component, DirKind, DirName};

/// Deepest accepted path below a snapshot root: `<top>/<tablet_id>/<schema_hash>`.
const MAX_DEPTH: usize = 3;

fn refuse(path: &Path, reason: impl Into<String>) -> Error {
    Error::PathRefused {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Deletes a snapshot or restore dir (a top dir, or a tablet's dir inside
/// one) and then its parents that became empty, up to and including the top
/// dir. Refuses anything that is not a directory strictly inside some store's
/// `snapshot/` dir under a name this crate made. Not fsynced: a deletion lost
/// in a crash is redone by the expiry sweeper.
pub fn release_snapshot(engine: &Engine, path: &Path) -> Result<()> {
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(refuse(path, "the path contains '..'"));
    }
    let mut roots = Vec::with_capacity(engine.stores().len());
    for store in engine.stores() {
        let root = store.snapshot_dir();
        roots.push(fs::canonicalize(&root).map_err(|e| Error::io(&root, e))?);
    }
    let canon = match fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return release_named_tablet(engine, &roots, path)
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let Some((root, rel)) = roots
        .iter()
        .find_map(|r| canon.strip_prefix(r).ok().map(|rel| (r, rel)))
    else {
        let list: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        return Err(refuse(
            path,
            format!(
                "it resolves to {}, which is not inside a snapshot dir ({})",
                canon.display(),
                list.join(", ")
            ),
        ));
    };
    let depth = rel.components().count();
    if depth == 0 {
        return Err(refuse(path, "it is the snapshot root itself"));
    }
    if depth > MAX_DEPTH {
        return Err(refuse(path, "it is deeper than a tablet's snapshot dir"));
    }
    let top = top_component(rel).unwrap_or_default();
    if DirName::parse(top).is_none() {
        return Err(refuse(
            path,
            format!("'{top}' is not a snapshot dir name (YYYYmmddHHMMSS.seq.timeout)"),
        ));
    }
    let meta = fs::symlink_metadata(&canon).map_err(|e| Error::io(&canon, e))?;
    if !meta.is_dir() {
        return Err(refuse(path, "it is not a directory"));
    }
    // A restore dir's reservation ends with it: files downloaded in place
    // and never installed are deleted first (the reservation is what kept
    // recovery from deleting them).
    let restore = DirName::parse(top).is_some_and(|n| n.kind == DirKind::Restore);
    let tablet: Option<u64> = rel
        .components()
        .nth(1)
        .and_then(|c| c.as_os_str().to_str())
        .and_then(|s| s.parse().ok());
    if restore {
        engine.release_restore(top, tablet)?;
    }
    file::remove_dir_all_if_exists(&canon)?;
    remove_empty_parents(root, &canon);
    if restore && tablet.is_some() {
        end_top_if_done(engine, &root.join(top), top)?;
    }
    Ok(())
}

/// Releases a restore dir that exists only as a name
/// (`<top>/<tablet_id>/<schema_hash>` of an in-place batch, whose top dir
/// holds the metas file): the tablet's part of the reservation ends, and the
/// top dir with it when no tablet of it is left. `NotFound` when the top dir
/// is not there either, or the path is not shaped so.
fn release_named_tablet(engine: &Engine, roots: &[PathBuf], path: &Path) -> Result<()> {
    let not_found = || Error::NotFound(path.to_path_buf());
    let Some((top, tablet)) = crate::metas::top_and_tablet(path) else {
        return Err(not_found());
    };
    if path.file_name().and_then(OsStr::to_str).is_none() {
        return Err(not_found());
    }
    let top_canon = match fs::canonicalize(top) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
        Err(e) => return Err(Error::io(top, e)),
    };
    let in_root = top_canon
        .parent()
        .is_some_and(|p| roots.iter().any(|r| r == p));
    let name = top_canon
        .file_name()
        .and_then(OsStr::to_str)
        .unwrap_or_default()
        .to_string();
    if !in_root || !DirName::parse(&name).is_some_and(|n| n.kind == DirKind::Restore) {
        return Err(not_found());
    }
    engine.release_restore(&name, Some(tablet))?;
    end_top_if_done(engine, &top_canon, &name)
}

/// Removes restore top dir `top_dir` (named `name`) and ends its
/// reservation once no tablet of it is reserved and no tablet dir is left
/// in it (the metas file alone goes with it); ends the reservation when the
/// top dir is gone already.
fn end_top_if_done(engine: &Engine, top_dir: &Path, name: &str) -> Result<()> {
    match fs::read_dir(top_dir) {
        Ok(_) if engine.reserved_tablets(name) > 0 => return Ok(()),
        Ok(rd) => {
            for e in rd {
                let e = e.map_err(|e| Error::io(top_dir, e))?;
                if e.file_name() != crate::metas::METAS_FILE_NAME {
                    return Ok(());
                }
            }
            file::remove_dir_all_if_exists(top_dir)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(top_dir, e)),
    }
    engine.release_restore(name, None)?;
    Ok(())
}

/// Removes the now-empty parents of `dir` below `root`; stops at the first
/// one still holding something (another tablet of the same batch).
fn remove_empty_parents(root: &Path, dir: &Path) {
    let mut cur: PathBuf = dir.to_path_buf();
    while let Some(parent) = cur.parent() {
        if parent == root || !parent.starts_with(root) {
            break;
        }
        if fs::remove_dir(parent).is_err() {
            break;
        }
        cur = parent.to_path_buf();
    }
}

/// Releases many snapshot or restore dirs, as [`release_snapshot`] does
/// each, but a top dir whose every tablet is named goes in one removal (a
/// job's release names all the tablets a batch made, so it removes one top
/// dir per store, not one tree per tablet), then one fsync per snapshot root
/// makes those removals durable together. A path naming
/// `<top>/<tablet_id>/<schema_hash>` stands for its tablet's dir in that top
/// dir (a batch makes one dir per tablet). Paths that are already gone are
/// skipped, so a retried release succeeds. The first error stops the batch.
pub fn release_snapshots(engine: &Engine, paths: &[PathBuf]) -> Result<()> {
    // Lexical grouping by top dir; what fits no group goes one by one.
    let mut groups: BTreeMap<&Path, HashSet<&OsStr>> = BTreeMap::new();
    let mut members: BTreeMap<&Path, Vec<&PathBuf>> = BTreeMap::new();
    let mut singles: Vec<&PathBuf> = Vec::new();
    for p in paths {
        match tablet_in_top(p) {
            Some((top, tablet)) => {
                groups.entry(top).or_default().insert(tablet);
                members.entry(top).or_default().push(p);
            }
            None => singles.push(p),
        }
    }
    let mut roots = Vec::with_capacity(engine.stores().len());
    for store in engine.stores() {
        let root = store.snapshot_dir();
        roots.push(fs::canonicalize(&root).map_err(|e| Error::io(&root, e))?);
    }
    // Stores whose snapshot root (and trash) a discarded top dir changed.
    let mut touched: Vec<usize> = Vec::new();
    for (top, tablets) in &groups {
        match whole_top(&roots, top, tablets)? {
            Some((store, canon)) => {
                // A restore batch's reservation ends with it, as in
                // `release_snapshot`: placed files no meta names go first.
                let name = canon
                    .file_name()
                    .and_then(OsStr::to_str)
                    .unwrap_or_default();
                if DirName::parse(name).is_some_and(|n| n.kind == DirKind::Restore) {
                    engine.release_restore(name, None)?;
                }
                // One rename; the links go in the background (see
                // `Engine::discard_dir`).
                engine.discard_dir(store, &canon)?;
                if !touched.contains(&store) {
                    touched.push(store);
                }
            }
            None => singles.extend(members.remove(top).unwrap_or_default()),
        }
    }
    for p in singles {
        match release_snapshot(engine, p) {
            Ok(()) | Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    for store in touched {
        file::fsync_dir(&roots[store])?;
        file::fsync_dir(&engine.stores()[store].trash_dir())?;
    }
    Ok(())
}

/// `(top, tablet)` of a path shaped `<top>/<tablet>/<schema_hash>` with
/// plain components.
fn tablet_in_top(p: &Path) -> Option<(&Path, &OsStr)> {
    if p.components()
        .any(|c| c == Component::ParentDir || c == Component::CurDir)
    {
        return None;
    }
    let hash_dir = p.parent()?;
    let top = hash_dir.parent()?;
    let tablet = hash_dir.file_name()?;
    p.file_name()?;
    top.file_name()?;
    Some((top, tablet))
}

/// The store (index into `roots`, the stores' canonical snapshot roots) and
/// canonical path of `top` when it is a top dir this
/// crate made, directly in a snapshot root, and every entry in it is one of
/// `tablets`; `None` when some entry is not named (or `top` is anything
/// else: the caller then releases path by path, with every check).
fn whole_top(
    roots: &[PathBuf],
    top: &Path,
    tablets: &HashSet<&OsStr>,
) -> Result<Option<(usize, PathBuf)>> {
    let canon = match fs::canonicalize(top) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(top, e)),
    };
    let Some(store) = canon
        .parent()
        .and_then(|p| roots.iter().position(|r| r == p))
    else {
        return Ok(None);
    };
    if canon
        .file_name()
        .and_then(OsStr::to_str)
        .and_then(DirName::parse)
        .is_none()
    {
        return Ok(None);
    }
    let rd = match fs::read_dir(&canon) {
        Ok(rd) => rd,
        Err(e) => return Err(Error::io(&canon, e)),
    };
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(&canon, e))?;
        let name = entry.file_name();
        // A restore batch's metas file goes with its tablets.
        if !tablets.contains(name.as_os_str()) && name != crate::metas::METAS_FILE_NAME {
            return Ok(None);
        }
    }
    Ok(Some((store, canon)))
}
