//! The transfer crate's local-file helpers: its temp names (`.tstmp-`, swept
//! by the repository) and `*at` calls, over `tabletsnap-durable`, the
//! workspace's one durable-write module.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Prefix of every temp file this crate creates; such names are never keys or
/// manifest paths, so a reader can always tell them apart.
pub const TEMP_PREFIX: &str = ".tstmp-";

use tabletsnap_durable::{self as durable, Opts};
pub use tabletsnap_durable::{start_writeback, write_file_data, WRITE_PIECE};

/// A unique temp file name for `name` (in the same directory, so rename is atomic).
pub fn temp_name(name: &str) -> String {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{TEMP_PREFIX}{name}-{}-{n}", std::process::id())
}

/// Appends up to `want` bytes of `f` at `offset` to `buf` with positioned
/// reads straight into the vector's spare capacity (nothing is zeroed
/// first, no seek): one `pread` for a regular file read whole. Returns the
/// bytes read, fewer than `want` only at the end of the file.
pub fn pread_append(
    f: &File,
    offset: u64,
    want: usize,
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    buf.reserve(want);
    let start = buf.len();
    let mut got = 0usize;
    while got < want {
        let at = offset
            .checked_add(got as u64)
            .and_then(|o| i64::try_from(o).ok())
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "read offset out of range")
            })?;
        let spare = &mut buf.spare_capacity_mut()[..want - got];
        // SAFETY: pread writes at most `spare.len()` bytes into `spare`,
        // memory the vector owns (its capacity, reserved above), and
        // returns how many it wrote.
        let n =
            unsafe { nix::libc::pread(f.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len(), at) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        got += n as usize;
        // SAFETY: the `got` bytes after `start` were written by pread above.
        unsafe { buf.set_len(start + got) };
    }
    Ok(got)
}

/// Opens a directory handle for `*at` calls: per-file opens and renames then
/// walk one path component instead of the whole path.
pub fn open_dir(dir: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY)
        .open(dir)
        .map_err(|e| Error::io(dir, e))
}

/// Opens `name` inside the directory `dir` (a handle from [`open_dir`]) with `flags`.
pub fn open_at(dir: &File, dir_path: &Path, name: &str, flags: nix::fcntl::OFlag) -> Result<File> {
    nix::fcntl::openat(
        dir,
        name,
        flags | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .map(File::from)
    .map_err(|e| Error::io(dir_path.join(name), std::io::Error::from(e)))
}

/// Renames `from` to `to`, both inside the directory handle `dir`.
pub fn rename_at(dir: &File, dir_path: &Path, from: &str, to: &str) -> Result<()> {
    nix::fcntl::renameat(dir, from, dir, to)
        .map_err(|e| Error::io(dir_path.join(to), std::io::Error::from(e)))
}

/// A unique temp path next to `path` (same directory, so rename is atomic).
pub fn temp_path_for(path: &Path) -> PathBuf {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{TEMP_PREFIX}{name}-{}-{n}", std::process::id()))
}

/// Writes `bytes` to `path` atomically: temp file in the same directory, write,
/// optionally `sync_all`, rename over `path`, optionally fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    d(durable::write_atomic(
        path,
        &temp_path_for(path),
        bytes,
        opts(durable),
    ))
}

/// Like [`write_atomic`], but only if `path` does not exist: the temp file
/// is hard-linked to `path`, which fails if the name is taken, so of two
/// writers (in any processes) exactly one wins. Returns whether this call
/// created `path`; an existing one is left untouched.
pub fn write_new(path: &Path, bytes: &[u8], durable: bool) -> Result<bool> {
    d(durable::write_new_atomic(
        path,
        &temp_path_for(path),
        bytes,
        opts(durable),
    ))
}

fn opts(durable: bool) -> Opts {
    if durable {
        Opts::DURABLE
    } else {
        Opts::BATCHED
    }
}

/// Fsyncs a directory so entries created or renamed in it survive a crash.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    d(durable::fsync_dir(dir))
}

/// Flushes the whole filesystem holding `path` (one `syncfs(2)`): the batch
/// durability barrier, far cheaper than an fsync per file.
pub fn syncfs(path: &Path) -> Result<()> {
    d(durable::syncfs(path))
}

/// Creates `dir` and its missing parents; with `durable`, fsyncs each parent
/// whose entry list changed.
pub fn create_dir_all(dir: &Path, durable: bool) -> Result<()> {
    d(durable::create_dir_all(dir, durable))
}

/// Wraps a durable-write error into this crate's error, keeping its path.
fn d<T>(r: durable::Result<T>) -> Result<T> {
    r.map_err(Error::from)
}
