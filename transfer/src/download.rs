//! Download: fetch packs in parallel, verify every piece and file, and rename
//! each file into its tablet directory only once verified.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::hash::BuildHasher;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use rayon::prelude::*;
use tabletsnap_durable::{Barrier, Flusher};

use crate::backend::{Backend, STREAM_BLOCK};
use crate::error::{Error, Result};
use crate::fsutil::{self, temp_path_for};
use crate::info::SnapshotId;
use crate::manifest::{FileEntry, Manifest, Piece};
use crate::options::TransferOptions;
use crate::progress::ProgressTracker;
use crate::rate::RateLimiter;
use crate::repository::Repository;
use crate::runs::{self, MAX_RUN};

/// Maps a tablet id from the manifest to the directory to restore it into.
/// The directory should be empty (it is created if missing); files already
/// in it with the right size and crc are kept when resuming.
pub trait TargetDirs: Sync {
    /// The target directory of `tablet_id`, or `None` if the caller has none.
    fn dir_for(&self, tablet_id: u64) -> Option<PathBuf>;

    /// Where file `path` of tablet `tablet_id` goes (`dir` is the tablet's
    /// [`TargetDirs::dir_for`]); by default `dir/path`. A caller may put some
    /// files elsewhere under other names (an in-place restore writes segment
    /// files straight into the tablet's data dir under reserved names); the
    /// parent directory of such a path must exist.
    fn file_path(&self, tablet_id: u64, dir: &Path, path: &str) -> PathBuf {
        let _ = tablet_id;
        dir.join(path)
    }

    /// Whether the download creates `tablet_id`'s dir (by default it does).
    /// A caller that puts every file of the tablet elsewhere
    /// ([`TargetDirs::file_path`], [`TargetDirs::keeps`]) answers `false`:
    /// the dir is then only a name.
    fn creates_dir(&self, tablet_id: u64) -> bool {
        let _ = tablet_id;
        true
    }

    /// Whether file `path` of tablet `tablet_id` is handed to
    /// [`TargetDirs::keep`] instead of written to a file (by default none
    /// is). Only single-piece and empty files can be kept.
    fn keeps(&self, tablet_id: u64, path: &str) -> bool {
        let _ = (tablet_id, path);
        false
    }

    /// Receives the bytes of a file [`TargetDirs::keeps`] claims, verified
    /// against the manifest's crc32.
    fn keep(&self, tablet_id: u64, path: &str, data: &[u8]) -> Result<()> {
        let _ = data;
        Err(Error::Target(format!(
            "tablet {tablet_id} file '{path}': this download target keeps no files"
        )))
    }

    /// Whether a file [`TargetDirs::keeps`] claims is held already with this
    /// size and crc32 (a resumed download skips it).
    fn kept(&self, tablet_id: u64, path: &str, size: u64, crc32: u32) -> bool {
        let _ = (tablet_id, path, size, crc32);
        false
    }

    /// A path on the filesystem that receives `tablet_id`'s files (`dir` is
    /// its [`TargetDirs::dir_for`]): the download's end barrier syncs each
    /// distinct one's filesystem. By default `dir`.
    fn sync_path(&self, tablet_id: u64, dir: &Path) -> PathBuf {
        let _ = tablet_id;
        dir.to_path_buf()
    }
}

impl<S: BuildHasher + Sync> TargetDirs for HashMap<u64, PathBuf, S> {
    fn dir_for(&self, tablet_id: u64) -> Option<PathBuf> {
        self.get(&tablet_id).cloned()
    }
}

impl TargetDirs for BTreeMap<u64, PathBuf> {
    fn dir_for(&self, tablet_id: u64) -> Option<PathBuf> {
        self.get(&tablet_id).cloned()
    }
}

impl<F: Fn(u64) -> Option<PathBuf> + Sync> TargetDirs for F {
    fn dir_for(&self, tablet_id: u64) -> Option<PathBuf> {
        self(tablet_id)
    }
}

/// How to download.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DownloadOptions {
    /// Keep files already present with the right size and crc.
    pub resume: bool,
    /// End with one `syncfs` per target filesystem so the restored files are
    /// durable when the call returns. Never an fsync per file.
    pub sync: bool,
    /// Download only the tablets `targets` has a directory for (one node's
    /// share of a snapshot). Off: every tablet needs a target.
    pub only_targeted: bool,
    /// Write each file once, directly under its final name: no temp name, no
    /// rename. Only for targets whose files nothing reads until the caller
    /// commits them (a restore's meta swap): an error or a crash can leave a
    /// partial file under its final name, which a rerun with `resume`
    /// rewrites (every present file's crc is checked) and which the caller
    /// deletes if it gives up. Off: a file appears only once verified.
    pub in_place: bool,
    /// With `sync`: small files' bytes between two background flushes that
    /// start their writeback while the download goes on ([`Flusher`]); 0
    /// leaves all of it to the end barrier.
    pub flush_step: u64,
    /// Threads, retries, cancellation, rate limit, progress.
    pub transfer: TransferOptions,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            resume: true,
            sync: true,
            only_targeted: false,
            in_place: false,
            flush_step: FLUSH_STEP,
            transfer: TransferOptions::default(),
        }
    }
}

/// What a download did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DownloadReport {
    /// Files written by this run.
    pub files_written: u64,
    /// Files already present and verified (resume).
    pub files_skipped: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Pack fetches (whole or ranged).
    pub packs_fetched: u64,
    /// Background flushes that started small files' writeback while the
    /// download ran (`flush_step`).
    pub flushes: u64,
}

#[derive(Debug, Clone, Copy)]
struct PieceRef {
    tablet: u32,
    file: u32,
    piece: u32,
}

/// A file assembled from pieces of several packs, written at offsets into a temp file.
struct Partial {
    tmp: PathBuf,
    file: File,
    remaining: AtomicUsize,
    renamed: AtomicBool,
}

struct Ctx<'a> {
    manifest: &'a Manifest,
    dirs: &'a [PathBuf],
    targets: &'a dyn TargetDirs,
    in_place: bool,
    /// The store wants more requests in flight than cores: every worker
    /// fetches (its buffers come from the stream pool, not the pack pool).
    remote: bool,
    backend: &'a dyn Backend,
    repo: &'a Repository,
    opts: &'a TransferOptions,
    partials: HashMap<(u32, u32), Partial>,
    limiter: Option<RateLimiter>,
    progress: ProgressTracker,
    /// Starts the writeback of small files while the download runs (with
    /// `sync` only; large files hint their own writeback as they go).
    flusher: Option<Flusher>,
}

impl Ctx<'_> {
    fn file(&self, r: PieceRef) -> &FileEntry {
        &self.manifest.tablets[r.tablet as usize].files[r.file as usize]
    }

    fn final_path(&self, tablet: u32, f: &FileEntry) -> PathBuf {
        let t = tablet as usize;
        self.targets
            .file_path(self.manifest.tablets[t].tablet_id, &self.dirs[t], &f.path)
    }

    fn piece(&self, r: PieceRef) -> &Piece {
        &self.file(r).pieces[r.piece as usize]
    }

    /// The checksum error for piece `r` of pack `key`, naming tablet, file and pack.
    fn mismatch(&self, r: PieceRef, key: &str, expected: u32, actual: u32) -> Error {
        let t = &self.manifest.tablets[r.tablet as usize];
        Error::ChecksumMismatch {
            what: format!(
                "tablet {} file '{}' piece {} in pack '{key}'",
                t.tablet_id, t.files[r.file as usize].path, r.piece
            ),
            expected,
            actual,
        }
    }
}

/// Restores snapshot `id` of `repo` into the directories `targets` gives.
pub fn download(
    repo: &Repository,
    id: &SnapshotId,
    targets: &dyn TargetDirs,
    opts: &DownloadOptions,
) -> Result<DownloadReport> {
    let t = &opts.transfer;
    t.cancel.check()?;
    let what = format!("{}{}", repo.key(&Repository::snapshot_dir(id)), "manifest");
    let manifest = t.retry.run(&what, &t.cancel, || repo.read_manifest(id))?;
    download_manifest(repo, manifest, targets, opts)
}

/// Restores the tablets of `manifest` (a committed snapshot's manifest, or a
/// [`Manifest::subset`] of it handed out by a coordinator) into the
/// directories `targets` gives. Validates the manifest first.
pub fn download_manifest(
    repo: &Repository,
    manifest: Manifest,
    targets: &dyn TargetDirs,
    opts: &DownloadOptions,
) -> Result<DownloadReport> {
    download_manifest_ref(repo, &manifest, targets, opts)
}

/// [`download_manifest`] without taking the manifest: a node restoring a
/// large part of a backup keeps one copy of its entries, not two.
pub fn download_manifest_ref(
    repo: &Repository,
    manifest: &Manifest,
    targets: &dyn TargetDirs,
    opts: &DownloadOptions,
) -> Result<DownloadReport> {
    let t = &opts.transfer;
    t.cancel.check()?;
    manifest.validate()?;
    // Copied only when some of its tablets are not this caller's to restore.
    let targeted: Option<HashSet<u64>> = opts.only_targeted.then(|| {
        manifest
            .tablets
            .iter()
            .map(|tab| tab.tablet_id)
            .filter(|id| targets.dir_for(*id).is_some())
            .collect()
    });
    let narrowed;
    let manifest = match targeted {
        Some(ids) if ids.len() < manifest.tablets.len() => {
            narrowed = manifest.subset(&ids);
            &narrowed
        }
        _ => manifest,
    };
    let mut dirs = Vec::with_capacity(manifest.tablets.len());
    for tab in &manifest.tablets {
        dirs.push(targets.dir_for(tab.tablet_id).ok_or(Error::NoTarget {
            tablet_id: tab.tablet_id,
        })?);
    }
    let (pool, remote) = runs::reading_pool(t.threads, repo.backend().as_ref())?;
    let fresh = pool.install(|| {
        manifest
            .tablets
            .par_iter()
            .zip(dirs.par_iter())
            .map(|(tab, dir)| {
                if targets.creates_dir(tab.tablet_id) {
                    prepare_dirs(dir, tab)
                } else {
                    // Nothing goes into the dir: nothing shows what is there.
                    Ok(false)
                }
            })
            .collect::<Result<Vec<bool>>>()
    })?;

    // Which files are still needed: all of them in fresh dirs; otherwise skip
    // those already complete and verified.
    let candidates: Vec<(u32, u32)> = manifest
        .tablets
        .iter()
        .enumerate()
        .flat_map(|(ti, tab)| (0..tab.files.len()).map(move |fi| (ti as u32, fi as u32)))
        .collect();
    // Per tablet, in `candidates` order.
    let present: Vec<bool> = pool
        .install(|| {
            manifest
                .tablets
                .par_iter()
                .enumerate()
                .map(|(ti, tab)| {
                    // In place, files go elsewhere than the tablet dir whose
                    // emptiness `fresh` reports: always look.
                    if !opts.resume || (fresh[ti] && !opts.in_place) {
                        return Ok(vec![false; tab.files.len()]);
                    }
                    t.cancel.check()?;
                    present_files(
                        tab,
                        |f| targets.file_path(tab.tablet_id, &dirs[ti], &f.path),
                        |f| {
                            targets
                                .keeps(tab.tablet_id, &f.path)
                                .then(|| targets.kept(tab.tablet_id, &f.path, f.size, f.crc32))
                        },
                    )
                })
                .collect::<Result<Vec<Vec<bool>>>>()
        })?
        .into_iter()
        .flatten()
        .collect();
    let files_total = manifest.file_count();
    let bytes_total = manifest.total_bytes();
    let mut report = DownloadReport::default();
    // The end barrier's filesystems, opened before the first byte is
    // written so that their `syncfs` reports any writeback error since.
    let barrier = if opts.sync {
        let paths: HashSet<PathBuf> = manifest
            .tablets
            .iter()
            .zip(&dirs)
            .map(|(tab, d)| targets.sync_path(tab.tablet_id, d))
            .collect();
        Some(Arc::new(Barrier::open(&paths)?))
    } else {
        None
    };
    let mut ctx = Ctx {
        manifest,
        dirs: &dirs,
        targets,
        in_place: opts.in_place,
        remote,
        backend: repo.backend().as_ref(),
        repo,
        opts: t,
        partials: HashMap::new(),
        limiter: t.rate_limit.map(RateLimiter::new),
        progress: ProgressTracker::new(files_total, bytes_total, t.progress.clone()),
        flusher: barrier
            .as_ref()
            .filter(|_| opts.flush_step > 0)
            .map(|b| Flusher::start(Arc::clone(b), opts.flush_step)),
    };
    let mut by_pack: BTreeMap<u32, Vec<PieceRef>> = BTreeMap::new();
    let mut skipped = (0u64, 0u64);
    let result = (|| {
        for (&(ti, fi), &is_present) in candidates.iter().zip(&present) {
            let f = &manifest.tablets[ti as usize].files[fi as usize];
            if is_present {
                skipped.0 += 1;
                skipped.1 += f.size;
                continue;
            }
            let tablet_id = manifest.tablets[ti as usize].tablet_id;
            let kept = targets.keeps(tablet_id, &f.path);
            if kept && f.pieces.len() > 1 {
                return Err(Error::Target(format!(
                    "tablet {tablet_id} file '{}' is stored in {} pieces; this download target keeps it whole and takes single-piece files only",
                    f.path,
                    f.pieces.len()
                )));
            }
            match f.pieces.len() {
                0 if kept => {
                    targets.keep(tablet_id, &f.path, &[])?;
                    report.files_written += 1;
                }
                0 => {
                    let path = ctx.final_path(ti, f);
                    if ctx.in_place {
                        File::create(&path).map_err(|e| Error::io(&path, e))?;
                    } else {
                        write_new_file(&path, &[])?;
                    }
                    report.files_written += 1;
                }
                1 => {}
                n => {
                    let final_path = ctx.final_path(ti, f);
                    // In place the file is written under its final name and
                    // counts as renamed from the start: nothing to clean up.
                    let tmp = if ctx.in_place {
                        final_path
                    } else {
                        temp_path_for(&final_path)
                    };
                    let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
                    ctx.partials.insert(
                        (ti, fi),
                        Partial {
                            tmp,
                            file,
                            remaining: AtomicUsize::new(n),
                            renamed: AtomicBool::new(ctx.in_place),
                        },
                    );
                }
            }
            for (pi, p) in f.pieces.iter().enumerate() {
                by_pack.entry(p.pack).or_default().push(PieceRef {
                    tablet: ti,
                    file: fi,
                    piece: pi as u32,
                });
            }
        }
        ctx.progress
            .add(skipped.0 + report.files_written, skipped.1);
        let work: Vec<(u32, Vec<PieceRef>)> = by_pack.into_iter().collect();
        let done = pool.install(|| {
            work.par_iter()
                .map(|(pack, refs)| download_pack(&ctx, *pack, refs))
                .collect::<Result<Vec<(u64, u64)>>>()
        })?;
        for (files, bytes) in &done {
            report.files_written += files;
            report.bytes_written += bytes;
        }
        report.packs_fetched = done.len() as u64;
        Ok(())
    })();
    // Whatever happened, no half-assembled file stays behind.
    for p in ctx.partials.values() {
        if !p.renamed.load(Ordering::SeqCst) {
            let _ = fs::remove_file(&p.tmp);
        }
    }
    let flushed = ctx.flusher.take().map(Flusher::finish);
    result?;
    report.files_skipped = skipped.0;
    if let Some(f) = flushed {
        report.flushes = f.flushes;
        if let Some(e) = f.error {
            return Err(e.into());
        }
    }
    if let Some(b) = &barrier {
        b.sync()?;
    }
    Ok(report)
}

/// Creates the tablet dir and its subdirectories; returns whether the tablet
/// dir was empty beforehand (then no file can be present and resume checks are skipped).
fn prepare_dirs(dir: &Path, tab: &crate::manifest::TabletEntry) -> Result<bool> {
    fsutil::create_dir_all(dir, false)?;
    let fresh = fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .next()
        .is_none();
    let parents = tab
        .files
        .iter()
        .filter_map(|f| f.path.split_once('/').map(|(p, _)| p));
    let subdirs: HashSet<&str> = tab.dirs.iter().map(String::as_str).chain(parents).collect();
    for sub in subdirs {
        let path = dir.join(sub);
        match fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Never follow a symlink out of the target directory.
                let m = fs::symlink_metadata(&path).map_err(|e| Error::io(&path, e))?;
                if !m.is_dir() {
                    return Err(Error::io(
                        &path,
                        std::io::Error::new(
                            std::io::ErrorKind::AlreadyExists,
                            "exists and is not a directory",
                        ),
                    ));
                }
            }
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Ok(fresh)
}

/// Which files of `tab` are already complete where `path_of` puts them.
/// Each target dir is listed once (a fresh one is empty): a stat per file
/// costs a path walk each, and most files of a new restore are absent.
fn present_files(
    tab: &crate::manifest::TabletEntry,
    path_of: impl Fn(&FileEntry) -> PathBuf,
    kept: impl Fn(&FileEntry) -> Option<bool>,
) -> Result<Vec<bool>> {
    let mut listed: HashMap<PathBuf, HashSet<std::ffi::OsString>> = HashMap::new();
    tab.files
        .iter()
        .map(|f| {
            if let Some(held) = kept(f) {
                return Ok(held);
            }
            let path = path_of(f);
            let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                return already_present(&path, f);
            };
            if !listed.contains_key(parent) {
                let names = match fs::read_dir(parent) {
                    Ok(rd) => rd
                        .map(|e| e.map(|e| e.file_name()))
                        .collect::<std::io::Result<HashSet<_>>>()
                        .map_err(|e| Error::io(parent, e))?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashSet::new(),
                    Err(e) => return Err(Error::io(parent, e)),
                };
                listed.insert(parent.to_path_buf(), names);
            }
            if listed.get(parent).is_some_and(|n| n.contains(name)) {
                already_present(&path, f)
            } else {
                Ok(false)
            }
        })
        .collect()
}

fn already_present(path: &Path, f: &FileEntry) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() && m.len() == f.size => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(path, e)),
    }
    let data = fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(crc32fast::hash(&data) == f.crc32)
}

/// Fetches, verifies and writes the pieces of one pack that `refs` names.
/// Returns files completed and bytes written.
fn download_pack(ctx: &Ctx<'_>, pack: u32, refs: &[PieceRef]) -> Result<(u64, u64)> {
    ctx.opts.cancel.check()?;
    let key = ctx.repo.key(&ctx.manifest.packs[pack as usize]);
    let (mut small, chunks): (Vec<PieceRef>, Vec<PieceRef>) = refs
        .iter()
        .copied()
        .partition(|&r| ctx.file(r).pieces.len() == 1);
    small.sort_by_key(|&r| ctx.piece(r).offset);
    let mut files = 0;
    if !small.is_empty() {
        // One of the process's transfer buffers, reused from pack to pack: a
        // fresh `Vec` per pack cost a page fault per 4 KiB page and an unmap (a
        // third of a W2 download's CPU), and one per worker thread held
        // threads x MAX_RUN per download, with a download per backend at once.
        let buffers = if ctx.remote {
            crate::pack_buffers::stream_pool()
        } else {
            crate::pack_buffers::pool()
        };
        let mut buf = buffers.take(&ctx.opts.cancel)?;
        // A remote store: one streamed read per contiguous run.
        let max_run = if ctx.remote { u64::MAX } else { MAX_RUN };
        let mut rest = &small[..];
        while !rest.is_empty() {
            let (run, tail) = rest.split_at(run_len(ctx, rest, max_run));
            files += if ctx.remote {
                stream_small_run(ctx, &key, run, &mut buf)?
            } else {
                write_small_run(ctx, &key, run, &mut buf)?
            };
            rest = tail;
        }
    }
    if !chunks.is_empty() {
        let mut chunks = chunks;
        chunks.sort_by_key(|&r| ctx.piece(r).offset);
        let mut buf = crate::pack_buffers::stream_pool().take(&ctx.opts.cancel)?;
        let mut rest = &chunks[..];
        while !rest.is_empty() {
            let (run, tail) = rest.split_at(run_len(ctx, rest, u64::MAX));
            files += stream_chunks(ctx, &key, run, &mut buf)?;
            rest = tail;
        }
    }
    let bytes = refs.iter().map(|&r| ctx.piece(r).len).sum();
    ctx.progress.add(files, bytes);
    Ok((files, bytes))
}

/// How many of `refs` (sorted by offset) to fetch in one read
/// ([`runs::run_len`]).
fn run_len(ctx: &Ctx<'_>, refs: &[PieceRef], max_run: u64) -> usize {
    runs::run_len(
        refs.iter()
            .map(|&r| (ctx.piece(r).offset, ctx.piece(r).len)),
        max_run,
    )
}

/// Reads `len` bytes at `offset` of `key` into `buf` and checks them with
/// `verify`, re-fetching once in case the corruption happened in transit.
fn fetch_verified(
    ctx: &Ctx<'_>,
    key: &str,
    offset: u64,
    len: u64,
    buf: &mut Vec<u8>,
    verify: impl Fn(&[u8]) -> Option<Error>,
) -> Result<()> {
    let t = ctx.opts;
    let mut refetched = false;
    loop {
        if let Some(l) = &ctx.limiter {
            l.acquire(len, &t.cancel)?;
        }
        t.retry.run(key, &t.cancel, || {
            ctx.backend.get_range_into(key, offset, len, buf)
        })?;
        match verify(buf) {
            None => return Ok(()),
            Some(_) if !refetched => refetched = true,
            Some(e) => return Err(e),
        }
    }
}

/// Where a run of pieces (sorted by offset) starts and ends in its pack;
/// `None` for an empty run.
fn run_span(ctx: &Ctx<'_>, run: &[PieceRef]) -> Option<(u64, u64)> {
    let start = ctx.piece(*run.first()?).offset;
    let end = run
        .iter()
        .map(|&r| ctx.piece(r).offset + ctx.piece(r).len)
        .max()
        .unwrap_or(start);
    Some((start, end))
}

/// Fetches one run of single-piece files (sorted by offset), verifies every
/// piece, then writes each file under a temp name and renames it into place.
fn write_small_run(ctx: &Ctx<'_>, key: &str, run: &[PieceRef], buf: &mut Vec<u8>) -> Result<u64> {
    let Some((start, end)) = run_span(ctx, run) else {
        return Ok(0);
    };
    let range = |r: PieceRef| {
        let p = ctx.piece(r);
        let at = (p.offset - start) as usize;
        at..at + p.len as usize
    };
    fetch_verified(ctx, key, start, end - start, buf, |data| {
        run.iter().find_map(|&r| {
            let p = ctx.piece(r);
            let actual = crc32fast::hash(&data[range(r)]);
            (actual != p.crc32).then(|| ctx.mismatch(r, key, p.crc32, actual))
        })
    })?;
    // The files are written on every worker: a small restore's packs are
    // few (one pack can hold every file of a thousand tablets), and file
    // creation in different dirs runs in parallel in the filesystem.
    let data: &[u8] = buf;
    run.par_chunks(WRITE_GROUP)
        .try_for_each(|group| write_files(ctx, group, data, &range))?;
    Ok(run.len() as u64)
}

/// Streams one run of single-piece files (sorted by offset, neighbours at
/// most [`runs::MAX_GAP`] apart, any length) with one read of the pack, through a
/// window of [`MAX_RUN`] bytes (or the run's largest piece): each time the
/// window fills, the files it holds whole are verified and written, and the
/// bytes of the file under way move to its front. A read cut short resumes
/// at the first byte not received; a file whose crc does not match is
/// fetched once more on its own ([`write_small_run`]). Returns the files it
/// wrote.
fn stream_small_run(
    ctx: &Ctx<'_>,
    key: &str,
    run: &[PieceRef],
    window: &mut Vec<u8>,
) -> Result<u64> {
    let t = ctx.opts;
    let Some((start, end)) = run_span(ctx, run) else {
        return Ok(0);
    };
    let largest = run.iter().map(|&r| ctx.piece(r).len).max().unwrap_or(0);
    let cap = usize::try_from(MAX_RUN.max(largest)).map_err(|_| Error::Corrupt {
        what: format!("pack '{key}'"),
        reason: format!("a piece of {largest} bytes does not fit in memory"),
    })?;
    window.clear();
    window.reserve(cap);
    let mut w = Window { start, done: 0 };
    // The next pack offset to receive: read by the retry to resume.
    let at = std::cell::Cell::new(start);
    let mut sink = |mut slice: &[u8]| -> Result<()> {
        t.cancel.check()?;
        if let Some(l) = &ctx.limiter {
            l.acquire(slice.len() as u64, &t.cancel)?;
        }
        while !slice.is_empty() {
            if window.len() == cap {
                w.write_whole(ctx, key, run, window)?;
                if window.len() == cap {
                    // Cannot happen: the window holds the largest piece.
                    return Err(Error::Corrupt {
                        what: format!("pack '{key}'"),
                        reason: "a run's window filled without a whole file".into(),
                    });
                }
            }
            let take = (cap - window.len()).min(slice.len());
            window.extend_from_slice(&slice[..take]);
            at.set(at.get() + take as u64);
            slice = &slice[take..];
        }
        Ok(())
    };
    // A small transfer buffer: the window holds the bytes.
    let mut transfer = Vec::new();
    t.retry.run(key, &t.cancel, || {
        let from = at.get();
        ctx.backend
            .get_range_stream(key, from, end - from, &mut transfer, &mut sink)
    })?;
    w.write_whole(ctx, key, run, window)?;
    if at.get() != end || w.done < run.len() {
        return Err(ended_early(key, start, end, at.get()));
    }
    Ok(w.done as u64)
}

/// A store ended a ranged read of `start..end` of `key` at `at` without an
/// error: the pieces it did not hand over must not count as written.
fn ended_early(key: &str, start: u64, end: u64, at: u64) -> Error {
    Error::Corrupt {
        what: format!("pack '{key}'"),
        reason: format!("a ranged read of {start}..{end} ended at {at} without an error"),
    }
}

/// Where a streamed run of single-piece files stands ([`stream_small_run`]).
struct Window {
    /// The pack offset of the window's first byte.
    start: u64,
    /// Pieces of the run written so far (a prefix): one file each.
    done: usize,
}

impl Window {
    /// Verifies and writes the files `window` holds whole (in run order, up to
    /// the first one not whole yet), then drops the bytes before the next.
    fn write_whole(
        &mut self,
        ctx: &Ctx<'_>,
        key: &str,
        run: &[PieceRef],
        window: &mut Vec<u8>,
    ) -> Result<()> {
        let win_end = self.start + window.len() as u64;
        let ready = run[self.done..]
            .iter()
            .take_while(|&&r| ctx.piece(r).offset + ctx.piece(r).len <= win_end)
            .count();
        let ready = &run[self.done..self.done + ready];
        let base = self.start;
        let range = |r: PieceRef| {
            let p = ctx.piece(r);
            let at = (p.offset - base) as usize;
            at..at + p.len as usize
        };
        let data: &[u8] = window;
        let (good, bad): (Vec<PieceRef>, Vec<PieceRef>) = ready
            .iter()
            .partition(|&&r| crc32fast::hash(&data[range(r)]) == ctx.piece(r).crc32);
        good.par_chunks(WRITE_GROUP)
            .try_for_each(|group| write_files(ctx, group, data, &range))?;
        for r in bad {
            // Damaged in transit, or in the store: read once more alone.
            write_small_run(ctx, key, &[r], &mut Vec::new())?;
        }
        self.done += ready.len();
        let next = match run.get(self.done) {
            Some(&r) => ctx.piece(r).offset.clamp(self.start, win_end),
            None => win_end,
        };
        window.drain(..(next - self.start) as usize);
        self.start = next;
        Ok(())
    }
}

/// Files of a fetched run written by one worker at a time.
const WRITE_GROUP: usize = 64;

/// Small files' bytes between two of the download's background flushes
/// ([`Flusher`]), by default.
pub const FLUSH_STEP: u64 = 64 << 20;

/// Writes the files of `group` from the fetched run `data` (`range` gives
/// each one's bytes in it).
fn write_files(
    ctx: &Ctx<'_>,
    group: &[PieceRef],
    data: &[u8],
    range: &(dyn Fn(PieceRef) -> std::ops::Range<usize> + Sync),
) -> Result<()> {
    // Consecutive pieces mostly share a directory: open it once.
    let mut dir: Option<(PathBuf, File)> = None;
    let mut written = 0u64;
    for &r in group {
        ctx.opts.cancel.check()?;
        let tablet_id = ctx.manifest.tablets[r.tablet as usize].tablet_id;
        let f = ctx.file(r);
        if ctx.targets.keeps(tablet_id, &f.path) {
            ctx.targets.keep(tablet_id, &f.path, &data[range(r)])?;
            continue;
        }
        let path = ctx.final_path(r.tablet, f);
        let (Some(parent), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
        else {
            return Err(Error::InvalidInput(format!(
                "no file name in {}",
                path.display()
            )));
        };
        if !matches!(&dir, Some((p, _)) if p == parent) {
            let handle = fsutil::open_dir(parent)?;
            dir = Some((parent.to_path_buf(), handle));
        }
        if let Some((dir_path, handle)) = &dir {
            if ctx.in_place {
                write_in_place_at(handle, dir_path, name, &data[range(r)])?;
            } else {
                write_new_file_at(handle, dir_path, name, &data[range(r)])?;
            }
            written += f.size;
        }
    }
    if let Some(flusher) = &ctx.flusher {
        flusher.wrote(written);
    }
    Ok(())
}

/// Where a streamed run of multi-piece files' pieces stands: the piece the
/// next byte falls in, and that piece's crc so far.
struct RunCursor {
    piece: usize,
    crc: crc32fast::Hasher,
    /// Bytes of the current piece whose writeback has not been started.
    unhinted_from: u64,
}

/// Streams a run of pieces of multi-piece files (sorted by offset, at most
/// [`runs::MAX_GAP`] apart) with one read of the pack, writing each piece into
/// its file as it arrives with its crc computed in the same pass. A dropped
/// read resumes where it stopped (the retry policy's attempts); a piece whose
/// crc does not match is fetched once more on its own, in case it was
/// damaged in transit. The file's temp name is renamed into place by
/// whichever worker verifies its last piece; a failed download deletes it,
/// so no unverified byte is ever visible under the final name. Returns the
/// files it completed.
fn stream_chunks(ctx: &Ctx<'_>, key: &str, run: &[PieceRef], buf: &mut Vec<u8>) -> Result<u64> {
    let mut bad = Vec::new();
    stream_run(ctx, key, run, buf, &mut |r, actual| {
        if actual != ctx.piece(r).crc32 {
            bad.push(r);
        }
    })?;
    for r in bad {
        let mut again = None;
        stream_run(ctx, key, &[r], buf, &mut |_, actual| again = Some(actual))?;
        let expected = ctx.piece(r).crc32;
        // `stream_run` returned Ok, so the piece ended and `again` is set.
        if let Some(actual) = again.filter(|&a| a != expected) {
            return Err(ctx.mismatch(r, key, expected, actual));
        }
    }
    let mut files = 0;
    for &r in run {
        files += piece_verified(ctx, r)?;
    }
    Ok(files)
}

/// Counts piece `r` as verified; when it is its file's last, the file is
/// complete: renamed into place (not in place) and counted. Every piece
/// passed its crc and the manifest checked that piece crcs combine to the
/// file crc, so the file is verified.
fn piece_verified(ctx: &Ctx<'_>, r: PieceRef) -> Result<u64> {
    let partial = partial_of(ctx, r)?;
    if partial.remaining.fetch_sub(1, Ordering::SeqCst) != 1 {
        return Ok(0);
    }
    if !ctx.in_place {
        rename_into_place(&partial.tmp, &ctx.final_path(r.tablet, ctx.file(r)))?;
        partial.renamed.store(true, Ordering::SeqCst);
    }
    Ok(1)
}

/// Where piece `r` starts in its file.
fn file_offset(ctx: &Ctx<'_>, r: PieceRef) -> u64 {
    ctx.file(r).pieces[..r.piece as usize]
        .iter()
        .map(|p| p.len)
        .sum()
}

/// The file piece `r` is written into (its temp file, or its final file in
/// place).
fn partial_of<'c>(ctx: &'c Ctx<'_>, r: PieceRef) -> Result<&'c Partial> {
    ctx.partials.get(&(r.tablet, r.file)).ok_or_else(|| {
        Error::InvalidInput(format!(
            "no temp file for {}",
            ctx.final_path(r.tablet, ctx.file(r)).display()
        ))
    })
}

/// One streamed read of `run` (pieces sorted by offset): writes every byte
/// into its file and reports each piece as it ends, with its crc32.
fn stream_run(
    ctx: &Ctx<'_>,
    key: &str,
    run: &[PieceRef],
    buf: &mut Vec<u8>,
    ended: &mut dyn FnMut(PieceRef, u32),
) -> Result<()> {
    let t = ctx.opts;
    let (Some(&first), Some(&last)) = (run.first(), run.last()) else {
        return Ok(());
    };
    let start = ctx.piece(first).offset;
    let end = ctx.piece(last).offset + ctx.piece(last).len;
    let targets: Vec<(&Partial, u64)> = run
        .iter()
        .map(|&r| partial_of(ctx, r).map(|p| (p, file_offset(ctx, r))))
        .collect::<Result<_>>()?;
    // The next pack offset to receive: read by the retry to resume.
    let at = std::cell::Cell::new(start);
    let mut cur = RunCursor {
        piece: 0,
        crc: crc32fast::Hasher::new(),
        unhinted_from: 0,
    };
    let mut sink = |mut slice: &[u8]| -> Result<()> {
        t.cancel.check()?;
        if let Some(l) = &ctx.limiter {
            l.acquire(slice.len() as u64, &t.cancel)?;
        }
        while !slice.is_empty() {
            let Some(&r) = run.get(cur.piece) else {
                return Err(Error::Corrupt {
                    what: format!("pack '{key}'"),
                    reason: "a ranged read returned more bytes than asked".into(),
                });
            };
            let p = ctx.piece(r);
            if at.get() < p.offset {
                // A gap between pieces: read and dropped.
                let skip = usize::try_from(p.offset - at.get())
                    .unwrap_or(usize::MAX)
                    .min(slice.len());
                slice = &slice[skip..];
                at.set(at.get() + skip as u64);
                continue;
            }
            let (partial, base) = targets[cur.piece];
            let in_piece = at.get() - p.offset;
            let take = usize::try_from(p.len - in_piece)
                .unwrap_or(usize::MAX)
                .min(slice.len());
            let mut file_at = base + in_piece;
            // The crc reads each slice just before its write does, while it
            // is still in the CPU cache.
            for part in slice[..take].chunks(fsutil::WRITE_PIECE) {
                partial
                    .file
                    .write_all_at(part, file_at)
                    .map_err(|e| Error::io(&partial.tmp, e))?;
                cur.crc.update(part);
                at.set(at.get() + part.len() as u64);
                file_at += part.len() as u64;
            }
            slice = &slice[take..];
            let written = at.get() - p.offset;
            if written - cur.unhinted_from >= STREAM_BLOCK || written == p.len {
                // The block's writeback starts now, not at the download's barrier.
                fsutil::start_writeback(
                    &partial.file,
                    base + cur.unhinted_from,
                    written - cur.unhinted_from,
                );
                cur.unhinted_from = written;
            }
            if written == p.len {
                let crc = std::mem::replace(&mut cur.crc, crc32fast::Hasher::new());
                ended(r, crc.finalize());
                cur.piece += 1;
                cur.unhinted_from = 0;
            }
        }
        Ok(())
    };
    t.retry.run(key, &t.cancel, || {
        // After a dropped read, ask for the rest only.
        let from = at.get();
        ctx.backend
            .get_range_stream(key, from, end - from, buf, &mut sink)
    })?;
    // A store that ends a read early without an error must not leave a
    // piece counted as verified that never ended.
    if cur.piece < run.len() || at.get() != end {
        return Err(ended_early(key, start, end, at.get()));
    }
    Ok(())
}

/// Writes `data` straight to `name` in `dir` (created or truncated): one
/// namespace operation per file. See [`DownloadOptions::in_place`].
fn write_in_place_at(dir: &File, dir_path: &Path, name: &str, data: &[u8]) -> Result<()> {
    use nix::fcntl::OFlag;
    let mut f = fsutil::open_at(
        dir,
        dir_path,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC,
    )?;
    fsutil::write_file_data(&mut f, data).map_err(|e| Error::io(dir_path.join(name), e))?;
    fail::fail_point!("download::after_in_place_write", |_| Err(Error::FailPoint(
        "download::after_in_place_write".into()
    )));
    Ok(())
}

/// Writes `data` to a temp name in `dir` and renames it to `name`.
fn write_new_file_at(dir: &File, dir_path: &Path, name: &str, data: &[u8]) -> Result<()> {
    use nix::fcntl::OFlag;
    let tmp = fsutil::temp_name(name);
    let r = (|| {
        let mut f = fsutil::open_at(
            dir,
            dir_path,
            &tmp,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
        )?;
        fsutil::write_file_data(&mut f, data).map_err(|e| Error::io(dir_path.join(&tmp), e))?;
        drop(f);
        fail::fail_point!("download::before_rename", |_| Err(Error::FailPoint(
            "download::before_rename".into()
        )));
        fsutil::rename_at(dir, dir_path, &tmp, name)
    })();
    if r.is_err() {
        let _ = fs::remove_file(dir_path.join(&tmp));
    }
    r
}

/// Writes `data` to a temp name next to `path` and renames it into place.
fn write_new_file(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = temp_path_for(path);
    let r = (|| {
        let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        fsutil::write_file_data(&mut f, data).map_err(|e| Error::io(&tmp, e))?;
        drop(f);
        rename_into_place(&tmp, path)
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

fn rename_into_place(tmp: &Path, path: &Path) -> Result<()> {
    fail::fail_point!("download::before_rename", |_| Err(Error::FailPoint(
        "download::before_rename".into()
    )));
    fs::rename(tmp, path).map_err(|e| Error::io(path, e))
}
