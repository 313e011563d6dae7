//! Download: fetch packs in parallel, verify every piece and file, and rename
//! each file into its tablet directory only once verified.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::hash::BuildHasher;
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::fsutil::{self, temp_path_for};
use crate::info::SnapshotId;
use crate::manifest::{FileEntry, Manifest};
use crate::options::{pool, TransferOptions};
use crate::progress::ProgressTracker;
use crate::rate::RateLimiter;
use crate::repository::Repository;

/// Maps a tablet id from the manifest to the directory to restore it into.
/// The directory should be empty (it is created if missing); files already
/// in it with the right size and crc are kept when resuming.
pub trait TargetDirs: Sync {
    /// The target directory of `tablet_id`, or `None` if the caller has none.
    fn dir_for(&self, tablet_id: u64) -> Option<PathBuf>;
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
    /// Threads, retries, cancellation, rate limit, progress.
    pub transfer: TransferOptions,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            resume: true,
            sync: true,
            only_targeted: false,
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
    backend: &'a dyn Backend,
    repo: &'a Repository,
    opts: &'a TransferOptions,
    partials: HashMap<(u32, u32), Partial>,
    limiter: Option<RateLimiter>,
    progress: ProgressTracker,
}

impl Ctx<'_> {
    fn file(&self, r: PieceRef) -> &FileEntry {
        &self.manifest.tablets[r.tablet as usize].files[r.file as usize]
    }

    fn final_path(&self, tablet: u32, f: &FileEntry) -> PathBuf {
        self.dirs[tablet as usize].join(&f.path)
    }

    fn describe(&self, r: PieceRef, key: &str) -> String {
        let t = &self.manifest.tablets[r.tablet as usize];
        format!(
            "tablet {} file '{}' piece {} in pack '{key}'",
            t.tablet_id, t.files[r.file as usize].path, r.piece
        )
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
    let mut manifest = repo.read_manifest(id)?;
    if opts.only_targeted {
        manifest
            .tablets
            .retain(|tab| targets.dir_for(tab.tablet_id).is_some());
    }
    let mut dirs = Vec::with_capacity(manifest.tablets.len());
    for tab in &manifest.tablets {
        dirs.push(targets.dir_for(tab.tablet_id).ok_or(Error::NoTarget {
            tablet_id: tab.tablet_id,
        })?);
    }
    let pool = pool(t.threads)?;
    let fresh = pool.install(|| {
        manifest
            .tablets
            .par_iter()
            .zip(dirs.par_iter())
            .map(|(tab, dir)| prepare_dirs(dir, tab))
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
    let present: Vec<bool> = pool.install(|| {
        candidates
            .par_iter()
            .map(|&(ti, fi)| {
                if !opts.resume || fresh[ti as usize] {
                    return Ok(false);
                }
                t.cancel.check()?;
                let f = &manifest.tablets[ti as usize].files[fi as usize];
                already_present(&dirs[ti as usize].join(&f.path), f)
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let files_total = manifest.file_count();
    let bytes_total = manifest.total_bytes();
    let mut report = DownloadReport::default();
    let mut ctx = Ctx {
        manifest: &manifest,
        dirs: &dirs,
        backend: repo.backend().as_ref(),
        repo,
        opts: t,
        partials: HashMap::new(),
        limiter: t.rate_limit.map(RateLimiter::new),
        progress: ProgressTracker::new(files_total, bytes_total, t.progress.clone()),
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
            match f.pieces.len() {
                0 => {
                    write_new_file(&ctx.final_path(ti, f), &[])?;
                    report.files_written += 1;
                }
                1 => {}
                n => {
                    let final_path = ctx.final_path(ti, f);
                    let tmp = temp_path_for(&final_path);
                    let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
                    ctx.partials.insert(
                        (ti, fi),
                        Partial {
                            tmp,
                            file,
                            remaining: AtomicUsize::new(n),
                            renamed: AtomicBool::new(false),
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
    result?;
    report.files_skipped = skipped.0;
    if opts.sync {
        let mut devs = HashSet::new();
        for d in &dirs {
            let dev = fs::metadata(d).map_err(|e| Error::io(d, e))?.dev();
            if devs.insert(dev) {
                fsutil::syncfs(d)?;
            }
        }
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

/// Fetches the byte span of one pack holding `refs`, verifies every piece
/// (re-fetching once, in case the corruption happened in transit) and writes
/// them. Returns files completed and bytes written.
fn download_pack(ctx: &Ctx<'_>, pack: u32, refs: &[PieceRef]) -> Result<(u64, u64)> {
    let t = ctx.opts;
    t.cancel.check()?;
    let key = ctx.repo.key(&ctx.manifest.packs[pack as usize]);
    let piece = |r: PieceRef| &ctx.file(r).pieces[r.piece as usize];
    let start = refs.iter().map(|&r| piece(r).offset).min().unwrap_or(0);
    let end = refs
        .iter()
        .map(|&r| piece(r).offset + piece(r).len)
        .max()
        .unwrap_or(0);
    let mut attempt = 0;
    let data = loop {
        if let Some(l) = &ctx.limiter {
            l.acquire(end - start, &t.cancel)?;
        }
        let data = t.retry.run(&key, &t.cancel, || {
            ctx.backend.get_range(&key, start, end - start)
        })?;
        let bad = refs.iter().find_map(|&r| {
            let p = piece(r);
            let at = (p.offset - start) as usize;
            let actual = crc32fast::hash(&data[at..at + p.len as usize]);
            (actual != p.crc32).then(|| Error::ChecksumMismatch {
                what: ctx.describe(r, &key),
                expected: p.crc32,
                actual,
            })
        });
        match bad {
            None => break data,
            Some(_) if attempt == 0 => attempt += 1,
            Some(e) => return Err(e),
        }
    };
    let (mut files, mut bytes) = (0, 0);
    // Consecutive pieces mostly share a directory: open it once.
    let mut dir: Option<(u32, String, PathBuf, File)> = None;
    for &r in refs {
        t.cancel.check()?;
        let f = ctx.file(r);
        let p = piece(r);
        let at = (p.offset - start) as usize;
        let slice = &data[at..at + p.len as usize];
        let path = ctx.final_path(r.tablet, f);
        bytes += p.len;
        if f.pieces.len() == 1 {
            let (parent, name) = f.path.rsplit_once('/').unwrap_or(("", &f.path));
            let reuse = matches!(&dir, Some((tab, par, _, _)) if *tab == r.tablet && par == parent);
            if !reuse {
                let dir_path = ctx.dirs[r.tablet as usize].join(parent);
                let handle = fsutil::open_dir(&dir_path)?;
                dir = Some((r.tablet, parent.to_string(), dir_path, handle));
            }
            if let Some((_, _, dir_path, handle)) = &dir {
                write_new_file_at(handle, dir_path, name, slice)?;
            }
            files += 1;
            continue;
        }
        let Some(partial) = ctx.partials.get(&(r.tablet, r.file)) else {
            return Err(Error::InvalidInput(format!(
                "no temp file for {}",
                path.display()
            )));
        };
        let file_offset: u64 = f.pieces[..r.piece as usize].iter().map(|p| p.len).sum();
        partial
            .file
            .write_all_at(slice, file_offset)
            .map_err(|e| Error::io(&partial.tmp, e))?;
        if partial.remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
            // Every piece passed its crc and the manifest checked that piece
            // crcs combine to the file crc, so the file is verified.
            rename_into_place(&partial.tmp, &path)?;
            partial.renamed.store(true, Ordering::SeqCst);
            files += 1;
        }
    }
    ctx.progress.add(files, bytes);
    Ok((files, bytes))
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
        f.write_all(data)
            .map_err(|e| Error::io(dir_path.join(&tmp), e))?;
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
        f.write_all(data).map_err(|e| Error::io(&tmp, e))?;
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
