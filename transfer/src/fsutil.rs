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
pub use tabletsnap_durable::{write_in_pieces, WRITE_PIECE};

/// A unique temp file name for `name` (in the same directory, so rename is atomic).
pub fn temp_name(name: &str) -> String {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{TEMP_PREFIX}{name}-{}-{n}", std::process::id())
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
    r.map_err(|e| Error::io(e.path, e.source))
}
