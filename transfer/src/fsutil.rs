//! Durable local writes: the one place that fsyncs, renames and syncs filesystems.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Prefix of every temp file this crate creates; such names are never keys or
/// manifest paths, so a reader can always tell them apart.
pub const TEMP_PREFIX: &str = ".tstmp-";

/// Files are written at most this many bytes per `write`. With large folios in
/// the page cache (ext4 on recent kernels) one 4 or 64 MiB write asks for
/// high-order pages, and once memory is full of cached pages that lands in
/// direct compaction and slow copies: W2's writes ran 2x slower, with
/// thousands of `compact_stall`s per download in /proc/vmstat. At 32 KiB
/// (order 3, the kernel's PAGE_ALLOC_COSTLY_ORDER) we saw almost none; `cp`
/// writes pieces as small through `copy_file_range`.
pub const WRITE_PIECE: usize = 32 << 10;

/// Writes all of `data` with `write`s of at most [`WRITE_PIECE`] bytes.
pub fn write_in_pieces(f: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    data.chunks(WRITE_PIECE)
        .try_for_each(|piece| f.write_all(piece))
}

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
    let tmp = temp_path_for(path);
    let result = (|| {
        let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        write_in_pieces(&mut f, bytes).map_err(|e| Error::io(&tmp, e))?;
        if durable {
            f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        }
        drop(f);
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    if durable {
        if let Some(dir) = path.parent() {
            fsync_dir(dir)?;
        }
    }
    Ok(())
}

/// Like [`write_atomic`], but only if `path` does not exist: the temp file
/// is hard-linked to `path`, which fails if the name is taken, so of two
/// writers (in any processes) exactly one wins. Returns whether this call
/// created `path`; an existing one is left untouched.
pub fn write_new(path: &Path, bytes: &[u8], durable: bool) -> Result<bool> {
    let tmp = temp_path_for(path);
    let result = (|| {
        let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        write_in_pieces(&mut f, bytes).map_err(|e| Error::io(&tmp, e))?;
        if durable {
            f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        }
        drop(f);
        match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(Error::io(path, e)),
        }
    })();
    let _ = fs::remove_file(&tmp);
    if durable && matches!(result, Ok(true)) {
        if let Some(dir) = path.parent() {
            fsync_dir(dir)?;
        }
    }
    result
}

/// Fsyncs a directory so entries created or renamed in it survive a crash.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Flushes the whole filesystem holding `path` (one `syncfs(2)`): the batch
/// durability barrier, far cheaper than an fsync per file.
pub fn syncfs(path: &Path) -> Result<()> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    nix::unistd::syncfs(&f).map_err(|e| Error::io(path, std::io::Error::from(e)))
}

/// Creates `dir` and its missing parents; with `durable`, fsyncs each parent
/// whose entry list changed.
pub fn create_dir_all(dir: &Path, durable: bool) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_all(parent, durable)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {
            if durable {
                if let Some(parent) = dir.parent() {
                    fsync_dir(parent)?;
                }
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io(dir, e)),
    }
}
