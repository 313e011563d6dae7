//! The one place that makes local files durable, shared by every crate of
//! the workspace: atomic writes (temp name in the same directory, write,
//! fsync, rename, fsync the directory), directory fsyncs, cross-directory
//! renames that sync both parents, and the filesystem-wide `syncfs(2)`
//! barrier that replaces an fsync per file for batches.
//!
//! Each crate keeps its own temp-file naming (its recovery or sweep
//! recognises its names) and wraps [`IoError`] into its own error type; the
//! sequence of syscalls and their order live here only.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

mod batch;
pub use batch::{Barrier, FlushReport, Flusher};

/// An I/O error with the path it happened on.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct IoError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

pub type Result<T> = std::result::Result<T, IoError>;

trait At<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> At<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| IoError {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Files are written at most this many bytes per `write`. With large folios in
/// the page cache (ext4 on recent kernels) one 4 or 64 MiB write asks for
/// high-order pages, and once memory is full of cached pages that lands in
/// direct compaction and slow copies: W2's writes ran 2x slower, with
/// thousands of `compact_stall`s per download in /proc/vmstat. At 32 KiB
/// (order 3, the kernel's PAGE_ALLOC_COSTLY_ORDER) we saw almost none; `cp`
/// writes pieces as small through `copy_file_range`.
pub const WRITE_PIECE: usize = 32 << 10;

/// Writes all of `data` with `write`s of at most [`WRITE_PIECE`] bytes.
pub fn write_in_pieces(f: &mut impl Write, data: &[u8]) -> io::Result<()> {
    data.chunks(WRITE_PIECE)
        .try_for_each(|piece| f.write_all(piece))
}

/// A file written in one go hints the kernel to start its writeback every
/// this many bytes ([`start_writeback`]).
pub const WRITEBACK_STEP: usize = 8 << 20;

/// Asks the kernel to start writing `len` bytes at `offset` of `f` to disk
/// now (`sync_file_range(SYNC_FILE_RANGE_WRITE)`). Not a barrier: nothing
/// waits for the disk and nothing is promised durable. Without it a large
/// batch's dirty pages sit in the page cache until the batch's one barrier
/// writes them all while everything waits; with it the disk writes while
/// the batch goes on (reading, checking, writing the next file). A hint:
/// an error is ignored.
pub fn start_writeback(f: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range only reads its integer arguments; the fd is
    // owned by `f`, open for the duration of the call.
    unsafe {
        nix::libc::sync_file_range(f.as_raw_fd(), off, n, nix::libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Writes all of `data` to `f`, just opened (at offset 0), in pieces of
/// [`WRITE_PIECE`] bytes, starting the writeback of every
/// [`WRITEBACK_STEP`] bytes written ([`start_writeback`]) when `data` is at
/// least that large.
pub fn write_file_data(f: &mut File, data: &[u8]) -> io::Result<()> {
    if data.len() < WRITEBACK_STEP {
        return write_in_pieces(f, data);
    }
    let mut at = 0u64;
    for step in data.chunks(WRITEBACK_STEP) {
        write_in_pieces(f, step)?;
        start_writeback(f, at, step.len() as u64);
        at += step.len() as u64;
    }
    Ok(())
}

/// How a file is written.
#[derive(Clone, Copy, Debug)]
pub struct Opts {
    /// `sync_all` the file (and, for [`write_atomic`], fsync its directory
    /// after the rename). Without it the caller owes a barrier ([`syncfs`]).
    pub sync: bool,
    /// Permission bits for a newly created file (0o600 for secrets: set at
    /// creation, so the bytes are never readable by others, even briefly).
    pub mode: u32,
}

impl Opts {
    /// fsync before the file counts as written.
    pub const DURABLE: Opts = Opts {
        sync: true,
        mode: 0o644,
    };
    /// No fsync: the caller runs one barrier for the whole batch.
    pub const BATCHED: Opts = Opts {
        sync: false,
        mode: 0o644,
    };
    /// Durable and readable by the owner only.
    pub const PRIVATE: Opts = Opts {
        sync: true,
        mode: 0o600,
    };
}

/// Writes `bytes` to `path`, creating or truncating it (not atomic: for temp
/// files, and data files whose visibility a meta written later controls).
pub fn write_file(path: &Path, bytes: &[u8], opts: Opts) -> Result<()> {
    write_opened(
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(opts.mode),
        path,
        bytes,
        opts,
    )
}

/// Writes `bytes` to a new file at `path`; fails if the name exists.
pub fn write_new_file(path: &Path, bytes: &[u8], opts: Opts) -> Result<()> {
    write_opened(
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(opts.mode),
        path,
        bytes,
        opts,
    )
}

fn write_opened(open: &OpenOptions, path: &Path, bytes: &[u8], opts: Opts) -> Result<()> {
    let mut f = open.open(path).at(path)?;
    // The mode given at creation is masked by the umask; an existing file
    // keeps its old bits. Either way a private file must end up private.
    if opts.mode & 0o077 == 0 {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(opts.mode))
            .at(path)?;
    }
    write_file_data(&mut f, bytes).at(path)?;
    if opts.sync {
        f.sync_all().at(path)?;
    }
    Ok(())
}

/// Replaces `path` with `bytes` atomically: writes the temp file `tmp` (in
/// the same directory, named by the caller), renames it over `path` and, with
/// `opts.sync`, fsyncs the file before and the directory after. A failure
/// removes the temp file and leaves `path` as it was.
pub fn write_atomic(path: &Path, tmp: &Path, bytes: &[u8], opts: Opts) -> Result<()> {
    let result = write_file(tmp, bytes, opts).and_then(|()| fs::rename(tmp, path).at(path));
    if result.is_err() {
        let _ = fs::remove_file(tmp);
        return result;
    }
    if opts.sync {
        fsync_dir(parent_of(path))?;
    }
    Ok(())
}

/// Like [`write_atomic`], but only if `path` does not exist yet: the temp file
/// is hard-linked to `path`, which fails when the name is taken, so of two
/// writers (in any processes) exactly one wins. Returns whether this call
/// created `path`; an existing one is left untouched.
pub fn write_new_atomic(path: &Path, tmp: &Path, bytes: &[u8], opts: Opts) -> Result<bool> {
    let result = write_file(tmp, bytes, opts).and_then(|()| match fs::hard_link(tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).at(path),
    });
    let _ = fs::remove_file(tmp);
    if opts.sync && matches!(result, Ok(true)) {
        fsync_dir(parent_of(path))?;
    }
    result
}

/// Renames `from` to `to` and fsyncs both parent directories (once when they
/// are the same): a rename across directories changes an entry in each, and
/// either one lost in a crash would resurrect or lose the file.
pub fn rename_durable(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).at(from)?;
    let (a, b) = (parent_of(from), parent_of(to));
    fsync_dir(a)?;
    if a != b {
        fsync_dir(b)?;
    }
    Ok(())
}

/// Fsyncs a directory so entries created, renamed or removed in it persist.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// One barrier for everything written on the filesystem holding `path`
/// (`syncfs(2)`): far cheaper than an fsync per file for large batches. It
/// covers one filesystem only: callers check their dirs share its device.
pub fn syncfs(path: &Path) -> Result<()> {
    syncfs_handle(path, &File::open(path).at(path)?)
}

/// `syncfs` through `f`, an open handle of `path` (named in the error).
fn syncfs_handle(path: &Path, f: &File) -> Result<()> {
    nix::unistd::syncfs(f).map_err(|e| IoError {
        path: path.to_path_buf(),
        source: io::Error::from(e),
    })
}

/// Creates `dir` and its missing parents; with `sync`, fsyncs the parent of
/// each directory it created, so the whole new path survives a crash.
pub fn create_dir_all(dir: &Path, sync: bool) -> Result<()> {
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.is_dir() {
        missing.push(cur);
        match cur.parent() {
            Some(p) if !p.as_os_str().is_empty() => cur = p,
            _ => break,
        }
    }
    for d in missing.iter().rev() {
        match fs::create_dir(d) {
            Ok(()) => {
                if sync {
                    fsync_dir(parent_of(d))?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(e).at(d),
        }
    }
    Ok(())
}

/// The parent directory, or `.` for a bare name.
pub fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() -> Result<()> {
        let dir = tempfile::tempdir().at(Path::new("tempdir"))?;
        let (p, tmp) = (dir.path().join("meta"), dir.path().join("meta.tmp"));
        write_atomic(&p, &tmp, b"one", Opts::DURABLE)?;
        write_atomic(&p, &tmp, b"two", Opts::BATCHED)?;
        assert_eq!(fs::read(&p).at(&p)?, b"two");
        assert!(!tmp.exists());
        Ok(())
    }

    #[test]
    fn failed_atomic_write_keeps_the_old_file() -> Result<()> {
        let dir = tempfile::tempdir().at(Path::new("tempdir"))?;
        let p = dir.path().join("meta");
        write_atomic(&p, &dir.path().join("t"), b"old", Opts::DURABLE)?;
        let bad_tmp = dir.path().join("no-such-dir/t");
        assert!(write_atomic(&p, &bad_tmp, b"new", Opts::DURABLE).is_err());
        assert_eq!(fs::read(&p).at(&p)?, b"old");
        Ok(())
    }

    #[test]
    fn exactly_one_new_atomic_write_wins() -> Result<()> {
        let dir = tempfile::tempdir().at(Path::new("tempdir"))?;
        let p = dir.path().join("info");
        assert!(write_new_atomic(
            &p,
            &dir.path().join("a"),
            b"first",
            Opts::DURABLE
        )?);
        assert!(!write_new_atomic(
            &p,
            &dir.path().join("b"),
            b"second",
            Opts::DURABLE
        )?);
        assert_eq!(fs::read(&p).at(&p)?, b"first");
        assert_eq!(fs::read_dir(dir.path()).at(dir.path())?.count(), 1);
        Ok(())
    }

    #[test]
    fn private_files_are_owner_only_even_when_replacing() -> Result<()> {
        let dir = tempfile::tempdir().at(Path::new("tempdir"))?;
        let (p, tmp) = (dir.path().join("secret"), dir.path().join("secret.tmp"));
        write_file(&tmp, b"x", Opts::DURABLE)?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o666)).at(&tmp)?;
        write_atomic(&p, &tmp, b"key", Opts::PRIVATE)?;
        let mode = fs::metadata(&p).at(&p)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        Ok(())
    }

    #[test]
    fn durable_dirs_and_renames() -> Result<()> {
        let dir = tempfile::tempdir().at(Path::new("tempdir"))?;
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        create_dir_all(&a.join("x/y"), true)?;
        create_dir_all(&b, false)?;
        create_dir_all(&b, true)?;
        rename_durable(&a.join("x"), &b.join("x"))?;
        assert!(b.join("x/y").is_dir() && !a.join("x").exists());
        assert!(rename_durable(&a.join("gone"), &b.join("w")).is_err());
        write_new_file(&b.join("f"), b"1", Opts::BATCHED)?;
        assert!(write_new_file(&b.join("f"), b"2", Opts::BATCHED).is_err());
        assert!(create_dir_all(&b.join("f/z"), true).is_err());
        syncfs(&b)?;
        Ok(())
    }
}
