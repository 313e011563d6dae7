//! A backend over a directory of any mounted filesystem (local disk, NFS, ...).

use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

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

impl LocalFs {
    /// A backend over `root` (created if missing) with per-put durability.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        Self::with_durability(root, Durability::PerPut)
    }

    /// A backend over `root` (created if missing) with the given durability mode.
    pub fn with_durability(root: impl Into<PathBuf>, durability: Durability) -> Result<Self> {
        let root = root.into();
        fsutil::create_dir_all(&root, durability == Durability::PerPut)?;
        Ok(Self { root, durability })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    fn durable(&self) -> bool {
        self.durability == Durability::PerPut
    }

    fn not_found_or_io(key: &str, path: &Path, e: std::io::Error) -> Error {
        if e.kind() == ErrorKind::NotFound {
            Error::NotFound {
                key: key.to_string(),
            }
        } else {
            Error::io(path, e)
        }
    }
}

impl Backend for LocalFs {
    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            fsutil::create_dir_all(parent, self.durable())?;
        }
        fsutil::write_atomic(&path, data, self.durable())
    }

    fn get(&self, key: &str) -> Result<Vec<u8>> {
        let path = self.path(key)?;
        fs::read(&path).map_err(|e| Self::not_found_or_io(key, &path, e))
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.get_range_into(key, offset, len, &mut buf)?;
        Ok(buf)
    }

    fn get_range_into(&self, key: &str, offset: u64, len: u64, buf: &mut Vec<u8>) -> Result<()> {
        let path = self.path(key)?;
        let f = File::open(&path).map_err(|e| Self::not_found_or_io(key, &path, e))?;
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
                Error::Corrupt {
                    what: format!("object '{key}'"),
                    reason: format!("range {offset}+{len} is past the end of the object"),
                }
            } else {
                Error::io(&path, e)
            }
        })
    }

    fn head(&self, key: &str) -> Result<Option<u64>> {
        let path = self.path(key)?;
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        // Walk only the directory the prefix's complete components name.
        let dir_part = prefix.rfind('/').map(|i| &prefix[..i]).unwrap_or("");
        let start = self.root.join(dir_part);
        if !start.is_dir() {
            return Ok(Vec::new());
        }
        let mut keys = Vec::new();
        let walker = walkdir::WalkDir::new(&start)
            .min_depth(1)
            .into_iter()
            .filter_entry(|e| !e.file_name().to_string_lossy().starts_with('.'));
        for entry in walker {
            let entry = entry.map_err(|e| {
                let path = e
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| start.clone());
                Error::io(path, e.into())
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry
                .path()
                .strip_prefix(&self.root)
                .map_err(|_| Error::Corrupt {
                    what: format!("listing of '{prefix}'"),
                    reason: "walked outside the root".to_string(),
                })?;
            let key = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if key.starts_with(prefix) {
                keys.push(key);
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&path, e)),
        }
        // Object stores have no directories: drop the ones left empty.
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
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            fsutil::create_dir_all(parent, false)?;
        }
        let tmp = fsutil::temp_path_for(&path);
        debug_assert!(tmp
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(TEMP_PREFIX)));
        fs::write(&tmp, partial).map_err(|e| Error::io(&tmp, e))
    }
}
