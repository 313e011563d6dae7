//! Directory-relative mkdir and link: a snapshot links tens of files per
//! tablet between two deep directories, and resolving each file's full path
//! twice per link costs more than the link itself.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::{mkdirat, Mode};

use crate::error::{Error, Result};

/// An open directory, remembered with its path for error messages.
pub(crate) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

fn io(path: &Path, e: nix::errno::Errno) -> Error {
    Error::io(path, std::io::Error::from(e))
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_CLOEXEC);

impl Dir {
    /// Opens an existing directory.
    pub(crate) fn open(path: &Path) -> Result<Dir> {
        let fd = openat(AT_FDCWD, path, DIR_FLAGS, Mode::empty()).map_err(|e| io(path, e))?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Creates the new subdirectories `a` and `a/b` (failing if `a` exists)
    /// and opens only `a/b`: the middle dir is never linked into, so opening
    /// it would be one syscall pair per tablet for nothing.
    pub(crate) fn mkdir2(&self, a: &str, b: &str) -> Result<Dir> {
        let mode = Mode::from_bits_truncate(0o755);
        mkdirat(&self.fd, a, mode).map_err(|e| io(&self.path.join(a), e))?;
        let rel = format!("{a}/{b}");
        let path = self.path.join(&rel);
        mkdirat(&self.fd, rel.as_str(), mode).map_err(|e| io(&path, e))?;
        let fd =
            openat(&self.fd, rel.as_str(), DIR_FLAGS, Mode::empty()).map_err(|e| io(&path, e))?;
        Ok(Dir { fd, path })
    }

    /// Hard-links `src/name` to `self/name`.
    pub(crate) fn link_from(&self, src: &Dir, name: &str) -> Result<()> {
        nix::unistd::linkat(&src.fd, name, &self.fd, name, AtFlags::empty())
            .map_err(|e| io(&self.path.join(name), e))
    }

    /// The directory's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
