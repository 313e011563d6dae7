//! The engine's file helpers: its temp-file naming (recovery removes any
//! `*.tmp`) over `tabletsnap-durable`, the workspace's one durable-write module.

use std::fs;
use std::path::{Path, PathBuf};

use tabletsnap_durable::{self as durable, Opts};

use crate::error::{IoContext, Result};

/// Suffix of temporary files; recovery removes any file carrying it.
pub const TMP_SUFFIX: &str = ".tmp";

/// The temp name used while `path` is being written.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(TMP_SUFFIX);
    path.with_file_name(name)
}

/// Writes `bytes` to `path` atomically and durably: temp file in the same
/// directory, write, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    d(durable::write_atomic(
        path,
        &tmp_path(path),
        bytes,
        Opts::DURABLE,
    ))
}

/// Writes `bytes` to the temp name of `path` without making it visible.
/// With `sync` false the caller owes a barrier ([`syncfs`]) before [`commit_tmp`].
pub fn write_tmp(path: &Path, bytes: &[u8], sync: bool) -> Result<()> {
    d(durable::write_file(&tmp_path(path), bytes, opts(sync)))
}

/// Renames the temp file written by [`write_tmp`] over `path`. Durable only
/// after the directory is fsynced or a barrier runs.
pub fn commit_tmp(path: &Path) -> Result<()> {
    fs::rename(tmp_path(path), path).at(path)
}

/// Writes a new file (not atomically) without fsync; for data files whose
/// visibility is controlled by a meta written later.
pub fn write_new(path: &Path, bytes: &[u8], sync: bool) -> Result<()> {
    d(durable::write_new_file(path, bytes, opts(sync)))
}

fn opts(sync: bool) -> Opts {
    if sync {
        Opts::DURABLE
    } else {
        Opts::BATCHED
    }
}

/// Renames `from` to `to` and fsyncs both parent directories (once when they
/// are the same): a rename across directories changes an entry in each, and
/// either one lost in a crash would resurrect or lose the file.
pub fn rename_durable(from: &Path, to: &Path) -> Result<()> {
    d(durable::rename_durable(from, to))
}

/// Renames `from` to `to` without making it durable: the caller runs a
/// barrier ([`syncfs`]) covering both parents before relying on it.
pub fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).at(from)
}

/// Fsyncs a directory so that entries created, renamed or removed in it persist.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    d(durable::fsync_dir(dir))
}

/// One barrier for everything written on the filesystem holding `path`
/// (`syncfs(2)`): far cheaper than an fsync per file for large batches.
pub fn syncfs(path: &Path) -> Result<()> {
    d(durable::syncfs(path))
}

/// Checks that every directory in `dirs` (with its `st_dev`) is on the
/// device of `root`, the path a barrier ([`syncfs`]) is called on: syncfs
/// covers one filesystem, so a dir elsewhere (a mount point, a symlink out)
/// would silently miss every barrier. Errors name the first dir that is not.
pub fn check_same_device(root: &Path, root_dev: u64, dirs: &[(PathBuf, u64)]) -> Result<()> {
    match dirs.iter().find(|(_, dev)| *dev != root_dev) {
        Some((path, _)) => Err(crate::Error::NotOnStoreFilesystem {
            path: path.clone(),
            root: root.to_path_buf(),
        }),
        None => Ok(()),
    }
}

/// The device (`st_dev`) of `path`, following symlinks.
pub fn device_of(path: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).map(|m| m.dev()).at(path)
}

/// Creates `dir` and its missing parents, then fsyncs each directory whose
/// entries changed, so the new path survives a crash.
pub fn create_dir_all_durable(dir: &Path) -> Result<()> {
    d(durable::create_dir_all(dir, true))
}

/// Creates `dir` and its parents without fsync (the caller runs a barrier).
pub fn create_dir_all(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).at(dir)
}

/// [`create_dir_all`] for a `dir` whose parent is most likely new too (a
/// new tablet's `<tablet_id>/<schema_hash>`): the parent is made first, so
/// the usual case costs two `mkdir` calls instead of the three a
/// child-first walk takes (child fails, parent, child again).
pub fn create_dir_and_parent(dir: &Path) -> Result<()> {
    if let Some(parent) = dir.parent() {
        match fs::create_dir(parent) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(_) => return create_dir_all(dir),
        }
    }
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(_) => create_dir_all(dir),
    }
}

/// Reads a whole file.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).at(path)
}

/// Removes a directory tree if it exists.
pub fn remove_dir_all_if_exists(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(crate::Error::io(dir, e)),
    }
}

/// Removes a file if it exists.
pub fn remove_file_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(crate::Error::io(path, e)),
    }
}

/// The parent directory, or `.` for a bare name.
pub fn parent_of(path: &Path) -> &Path {
    durable::parent_of(path)
}

/// Wraps a durable-write error into this crate's error, keeping its path.
fn d<T>(r: durable::Result<T>) -> Result<T> {
    r.map_err(|e| crate::Error::io(e.path, e.source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| crate::Error::io("tempdir", e))?;
        let p = dir.path().join("meta");
        write_atomic(&p, b"one")?;
        write_atomic(&p, b"two")?;
        assert_eq!(read(&p)?, b"two");
        assert!(!tmp_path(&p).exists());
        Ok(())
    }

    #[test]
    fn a_dir_on_another_device_is_named() {
        let root = Path::new("/s");
        let ok = vec![
            (PathBuf::from("/s/data"), 7),
            (PathBuf::from("/s/trash"), 7),
        ];
        assert!(check_same_device(root, 7, &ok).is_ok());
        assert!(check_same_device(root, 7, &[]).is_ok());
        let mut bad = ok.clone();
        bad.insert(1, (PathBuf::from("/s/snapshot"), 9));
        bad.push((PathBuf::from("/s/data/3"), 8));
        let err = check_same_device(root, 7, &bad).expect_err("mount point accepted");
        assert!(
            matches!(&err, crate::Error::NotOnStoreFilesystem { path, root }
                if path == Path::new("/s/snapshot") && root == Path::new("/s")),
            "{err}"
        );
        assert!(err.to_string().contains("/s/snapshot"));
    }

    #[test]
    fn durable_rename_across_directories() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| crate::Error::io("tempdir", e))?;
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        create_dir_all_durable(&a.join("x"))?;
        create_dir_all_durable(&b)?;
        rename_durable(&a.join("x"), &b.join("y"))?;
        assert!(b.join("y").is_dir() && !a.join("x").exists());
        rename_durable(&b.join("y"), &b.join("z"))?;
        assert!(b.join("z").is_dir());
        assert!(rename_durable(&a.join("gone"), &b.join("w")).is_err());
        Ok(())
    }

    #[test]
    fn durable_dir_creation_makes_all_parents() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| crate::Error::io("tempdir", e))?;
        let d = dir.path().join("a/b/c");
        create_dir_all_durable(&d)?;
        assert!(d.is_dir());
        syncfs(&d)?;
        Ok(())
    }
}
