//! A backend over a directory of any mounted filesystem (local disk, NFS, ...).
//!
//! No operation follows a symbolic link under the root: a link there (a
//! repository or snapshot directory, or an object, replaced by a link to
//! somewhere else) would make a backup write outside the repository or a
//! restore read files that are not the backup's. Each existing component of
//! a key is `lstat`ed, and final opens use `O_NOFOLLOW`; a link is reported as
//! [`Error::SymlinkRefused`], a permanent error. Listing does not descend into
//! a linked directory either; it reports a link it meets under the listed
//! prefix as that same error rather than skipping it, so a misplaced link
//! shows up as the reason instead of as snapshots or packs that silently
//! went missing. The root itself may be a link (e.g. a mount point's alias).

use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{validate_key, validate_prefix, Backend};
use crate::error::{Error, Result};
use crate::fsutil::{self, TEMP_PREFIX};

/// When [`LocalFs`] puts become durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every put fsyncs its file and directory before returning.
    #[default]
    PerPut,
    /// Puts skip fsync; [`Backend::barrier`] makes all of them durable with one
    /// `syncfs`. Puts stay atomic (temp file + rename) either way.
    Batched,
}

/// Objects stored as files under a root directory; a key `a/b` is `root/a/b`.
#[derive(Debug)]
pub struct LocalFs {
    root: PathBuf,
    durability: Durability,
}

/// Whether an `lstat` error means the path (or a parent of it) is not there.
fn is_absent(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(nix::libc::ENOTDIR)
}

impl LocalFs {
    /// A backend over `root`, created if missing, with per-put durability.
    /// For tools and tests that own the directory; the job layer opens a
    /// repository location with [`LocalFs::open`].
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        Self::create(root, Durability::PerPut)
    }

    /// Like [`LocalFs::new`] (creating `root` if missing) with the given durability.
    pub fn with_durability(root: impl Into<PathBuf>, durability: Durability) -> Result<Self> {
        Self::create(root, durability)
    }

    /// Creates `root` (and missing parents) if needed and serves it: what
    /// creating a repository location does.
    pub fn create(root: impl Into<PathBuf>, durability: Durability) -> Result<Self> {
        let root = root.into();
        fsutil::create_dir_all(&root, durability == Durability::PerPut)?;
        Ok(Self { root, durability })
    }

    /// Serves an existing `root`; never creates it. A missing root gives
    /// [`Error::LocationNotFound`]: an unmounted mount point must not turn
    /// into an empty repository on the filesystem under it.
    pub fn open(root: impl Into<PathBuf>, durability: Durability) -> Result<Self> {
        let root = root.into();
        match fs::metadata(&root) {
            Ok(m) if m.is_dir() => Ok(Self { root, durability }),
            Ok(_) => Err(Error::io(
                &root,
                std::io::Error::other("repository location is not a directory"),
            )),
            Err(e) if is_absent(&e) => Err(Error::LocationNotFound { path: root }),
            Err(e) => Err(Error::io(&root, e)),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn durable(&self) -> bool {
        self.durability == Durability::PerPut
    }

    fn symlink_refused(&self, key: &str, path: &Path) -> Error {
        Error::SymlinkRefused {
            key: key.to_string(),
            path: path.to_path_buf(),
            root: self.root.clone(),
        }
    }

    /// `lstat`s `path`: `Ok(None)` if it (or a parent) is absent, an error if
    /// it is a symbolic link.
    fn lstat(&self, key: &str, path: &Path) -> Result<Option<fs::Metadata>> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => Err(self.symlink_refused(key, path)),
            Ok(m) => Ok(Some(m)),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// The path of `key` after checking that none of its directory
    /// components is a symbolic link. The last component is left to the
    /// caller (an `O_NOFOLLOW` open or an `lstat` of its own).
    fn path(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        let mut path = self.root.clone();
        let mut parts = key.split('/').peekable();
        let mut present = true;
        while let Some(part) = parts.next() {
            path.push(part);
            if present && parts.peek().is_some() {
                // Below an absent directory nothing exists to be a link.
                present = self.lstat(key, &path)?.is_some();
            }
        }
        Ok(path)
    }

    /// Like [`LocalFs::path`], creating missing directories (never through a
    /// link) and refusing a link as the last component: what a put needs.
    fn path_for_put(&self, key: &str, durable: bool) -> Result<PathBuf> {
        validate_key(key)?;
        let mut path = self.root.clone();
        let mut parts = key.split('/').peekable();
        while let Some(part) = parts.next() {
            path.push(part);
            if parts.peek().is_none() {
                self.lstat(key, &path)?;
                break;
            }
            match self.lstat(key, &path)? {
                Some(m) if m.is_dir() => {}
                Some(_) => {
                    return Err(Error::io(
                        &path,
                        std::io::Error::other("exists and is not a directory"),
                    ))
                }
                None => match fs::create_dir(&path) {
                    Ok(()) => {
                        if durable {
                            if let Some(parent) = path.parent() {
                                fsutil::fsync_dir(parent)?;
                            }
                        }
                    }
                    // Another put made it first; check what it made.
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                        self.lstat(key, &path)?;
                    }
                    Err(e) => return Err(Error::io(&path, e)),
                },
            }
        }
        Ok(path)
    }

    /// Opens the object `key` for reading without following a link.
    fn open_object(&self, key: &str) -> Result<(File, PathBuf)> {
        let path = self.path(key)?;
        match fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => Ok((f, path)),
            Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
                Err(self.symlink_refused(key, &path))
            }
            Err(e) if is_absent(&e) => Err(Error::NotFound {
                key: key.to_string(),
            }),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// The directory a list or sweep prefix names (its complete components),
    /// checked for links; `None` if it does not exist.
    fn prefix_dir(&self, prefix: &str) -> Result<Option<PathBuf>> {
        validate_prefix(prefix)?;
        let dir_part = prefix.rfind('/').map(|i| &prefix[..i]).unwrap_or("");
        let mut dir = self.root.clone();
        for part in dir_part.split('/').filter(|p| !p.is_empty()) {
            dir.push(part);
            match self.lstat(prefix, &dir)? {
                Some(m) if m.is_dir() => {}
                _ => return Ok(None),
            }
        }
        Ok(Some(dir))
    }

    /// The key of a path under the root.
    fn key_of(&self, path: &Path, prefix: &str) -> Result<String> {
        let rel = path.strip_prefix(&self.root).map_err(|_| Error::Corrupt {
            what: format!("listing of '{prefix}'"),
            reason: "walked outside the root".to_string(),
        })?;
        Ok(rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"))
    }

    /// Walks `dir` without following links and without entering hidden
    /// directories other than `dir` itself.
    fn walk(dir: &Path) -> impl Iterator<Item = Result<walkdir::DirEntry>> + '_ {
        walkdir::WalkDir::new(dir)
            .follow_links(false)
            .min_depth(1)
            .into_iter()
            .filter_entry(|e| {
                !(e.file_type().is_dir() && e.file_name().to_string_lossy().starts_with('.'))
            })
            .map(move |entry| {
                entry.map_err(|e| {
                    let path = e
                        .path()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| dir.to_path_buf());
                    Error::io(path, e.into())
                })
            })
    }
}

impl Backend for LocalFs {
    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        let path = self.path_for_put(key, self.durable())?;
        fsutil::write_atomic(&path, data, self.durable())
    }

    fn put_if_absent(&self, key: &str, data: &[u8]) -> Result<bool> {
        let path = self.path_for_put(key, self.durable())?;
        fsutil::write_new(&path, data, self.durable())
    }

    fn get(&self, key: &str) -> Result<Vec<u8>> {
        let (mut f, path) = self.open_object(key)?;
        let mut data = Vec::new();
        if let Ok(m) = f.metadata() {
            data.reserve_exact(usize::try_from(m.len()).unwrap_or(0));
        }
        f.read_to_end(&mut data).map_err(|e| Error::io(&path, e))?;
        Ok(data)
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.get_range_into(key, offset, len, &mut buf)?;
        Ok(buf)
    }

    fn get_range_into(&self, key: &str, offset: u64, len: u64, buf: &mut Vec<u8>) -> Result<()> {
        let (f, path) = self.open_object(key)?;
        let past_end = |size: &dyn std::fmt::Display| Error::Corrupt {
            what: format!("object '{key}'"),
            reason: format!("range {offset}+{len} is past the end of the {size}-byte object"),
        };
        // The range comes from a manifest, i.e. from the repository: check it
        // against the object before sizing a buffer by it.
        let size = f.metadata().map_err(|e| Error::io(&path, e))?.len();
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(past_end(&size));
        }
        let len_usize = usize::try_from(len).map_err(|_| Error::Corrupt {
            what: format!("object '{key}'"),
            reason: format!("range {offset}+{len} does not fit in memory"),
        })?;
        // The read overwrites every byte, so a reused buffer is only shortened
        // or grown, never cleared: zeroing it again would cost a memset per read.
        if buf.len() < len_usize {
            buf.resize(len_usize, 0);
        } else {
            buf.truncate(len_usize);
        }
        f.read_exact_at(buf, offset).map_err(|e| {
            if e.kind() == ErrorKind::UnexpectedEof {
                past_end(&"shorter")
            } else {
                Error::io(&path, e)
            }
        })
    }

    fn head(&self, key: &str) -> Result<Option<u64>> {
        let path = self.path(key)?;
        Ok(self
            .lstat(key, &path)?
            .filter(fs::Metadata::is_file)
            .map(|m| m.len()))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        // Walk only the directory the prefix's complete components name.
        let Some(start) = self.prefix_dir(prefix)? else {
            return Ok(Vec::new());
        };
        let mut keys = Vec::new();
        for entry in Self::walk(&start) {
            let entry = entry?;
            let ft = entry.file_type();
            if ft.is_dir() || entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let key = self.key_of(entry.path(), prefix)?;
            if ft.is_symlink() {
                // A linked directory could hold keys under the prefix too.
                if key.starts_with(prefix) || prefix.starts_with(&format!("{key}/")) {
                    return Err(self.symlink_refused(&key, entry.path()));
                }
                continue;
            }
            if ft.is_file() && key.starts_with(prefix) {
                keys.push(key);
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        if self.lstat(key, &path)?.is_none() {
            return Ok(());
        }
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&path, e)),
        }
        // Object stores have no directories: drop the ones left empty. None
        // of them is a link (checked above), and `rmdir` never follows one.
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == self.root || fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
        if self.durable() {
            if let Some(parent) = path.parent().filter(|p| p.is_dir()) {
                fsutil::fsync_dir(parent)?;
            }
        }
        Ok(())
    }

    fn barrier(&self) -> Result<()> {
        if self.durable() {
            return Ok(());
        }
        fsutil::syncfs(&self.root)
    }

    fn put_torn(&self, key: &str, partial: &[u8]) -> Result<()> {
        let path = self.path_for_put(key, false)?;
        let tmp = fsutil::temp_path_for(&path);
        debug_assert!(tmp
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(TEMP_PREFIX)));
        fs::write(&tmp, partial).map_err(|e| Error::io(&tmp, e))
    }

    fn sweep_stale_temp(&self, prefix: &str, older_than: Duration) -> Result<u64> {
        let Some(start) = self.prefix_dir(prefix)? else {
            return Ok(0);
        };
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in Self::walk(&start) {
            let entry = entry?;
            if !entry.file_type().is_file()
                || !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
            {
                continue;
            }
            let path = entry.path();
            let modified = match entry.metadata().map(|m| m.modified()) {
                Ok(Ok(t)) => t,
                // Gone since the walk saw it (its put finished or failed).
                Err(e) if e.io_error().is_some_and(is_absent) => continue,
                Ok(Err(e)) => return Err(Error::io(path, e)),
                Err(e) => return Err(Error::io(path, e.into())),
            };
            // A clock step back makes a file look new: keep it this time.
            if now
                .duration_since(modified)
                .is_ok_and(|age| age > older_than)
            {
                match fs::remove_file(path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(path, e)),
                }
            }
        }
        Ok(removed)
    }
}
