//! Upload: pack tablet files into pack objects, put them in parallel, then
//! commit manifest, meta and info.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::path::Path;

use nix::fcntl::OFlag;
use rayon::prelude::*;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::info::{SnapshotId, SnapshotInfo};
use crate::manifest::{FileEntry, Manifest, Piece, TabletEntry};
use crate::options::{pool, TransferOptions};
use crate::pack::{self, PackPlan};
use crate::progress::ProgressTracker;
use crate::rate::RateLimiter;
use crate::repository::Repository;
use crate::retry::RetryPolicy;
use crate::source::{normalize, UploadSource};
use crate::CancelToken;

/// Default target size of a pack object: 64 MiB.
pub const DEFAULT_PACK_SIZE: u64 = 64 << 20;
/// Default largest piece: files above 16 MiB are split into 16 MiB chunks.
pub const DEFAULT_CHUNK_SIZE: u64 = 16 << 20;

/// How to upload.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UploadOptions {
    /// Target pack object size in bytes.
    pub pack_size: u64,
    /// Largest piece in bytes; bigger files are chunked.
    pub chunk_size: u64,
    /// Reuse packs an interrupted run of the same backup already stored.
    pub resume: bool,
    /// Threads, retries, cancellation, rate limit, progress.
    pub transfer: TransferOptions,
    /// Files earlier backups stored: a file found here with the same
    /// identity is not uploaded, its manifest entry points at those pieces
    /// (an incremental backup). `None`: upload everything (a full backup).
    pub reuse: Option<std::sync::Arc<crate::reuse::ReuseIndex>>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            pack_size: DEFAULT_PACK_SIZE,
            chunk_size: DEFAULT_CHUNK_SIZE,
            resume: true,
            transfer: TransferOptions::default(),
            reuse: None,
        }
    }
}

/// What an upload did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadReport {
    /// Files in the backup.
    pub files: u64,
    /// Bytes of all files.
    pub bytes: u64,
    /// Pack objects the backup consists of.
    pub packs: u64,
    /// Packs put by this run.
    pub packs_put: u64,
    /// Packs found already stored and verified (resume).
    pub packs_reused: u64,
    /// Files not uploaded because an earlier backup stored them
    /// ([`UploadOptions::reuse`]); counted in `files` too.
    pub files_reused: u64,
    /// Bytes of those files; counted in `bytes` too.
    pub bytes_reused: u64,
}

/// An uncommitted backup: [`upload`](Self::upload) data, then
/// [`commit`](Self::commit) with the job layer's meta.
#[derive(Debug)]
pub struct BackupWriter {
    repo: Repository,
    id: SnapshotId,
    part: Option<String>,
    manifest: Option<Manifest>,
    retry: RetryPolicy,
    cancel: CancelToken,
}

struct Ctx<'a> {
    backend: &'a dyn Backend,
    repo: &'a Repository,
    sources: &'a [UploadSource],
    opts: &'a UploadOptions,
    existing: HashSet<String>,
    limiter: Option<RateLimiter>,
    progress: ProgressTracker,
}

impl BackupWriter {
    pub(crate) fn new(repo: Repository, id: SnapshotId, part: Option<String>) -> Self {
        Self {
            repo,
            id,
            part,
            manifest: None,
            retry: RetryPolicy::default(),
            cancel: CancelToken::new(),
        }
    }

    /// The snapshot being written.
    pub fn id(&self) -> &SnapshotId {
        &self.id
    }

    /// The manifest built by the last successful upload.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    /// Packs and puts every file of `sources`, verifying each file's crc32
    /// against the expected one in the same read pass. Packs already stored by
    /// an interrupted run with the same plan are verified and skipped.
    pub fn upload(
        &mut self,
        sources: &[UploadSource],
        opts: &UploadOptions,
    ) -> Result<UploadReport> {
        let t = &opts.transfer;
        self.retry = t.retry.clone();
        self.cancel = t.cancel.clone();
        let (sources, reused) = split_reused(normalize(sources)?, opts.reuse.as_deref());
        let plans = pack::plan(&sources, opts.pack_size.max(1), opts.chunk_size.max(1));
        let backend = self.repo.backend().as_ref();
        let snap_dir = Repository::snapshot_dir(&self.id);
        let packs_dir = match &self.part {
            Some(part) => format!("{snap_dir}packs/{part}/"),
            None => format!("{snap_dir}packs/"),
        };
        let existing = if opts.resume {
            let prefix = self.repo.key(&packs_dir);
            t.retry
                .run(&prefix, &t.cancel, || backend.list(&prefix))?
                .into_iter()
                .collect()
        } else {
            HashSet::new()
        };
        let files_reused = reused.iter().map(|r| r.len() as u64).sum::<u64>();
        let bytes_reused: u64 = reused.iter().flatten().map(|(_, f)| f.size).sum();
        let files_total: u64 =
            sources.iter().map(|s| s.files.len() as u64).sum::<u64>() + files_reused;
        let bytes_total: u64 =
            sources.iter().map(UploadSource::total_bytes).sum::<u64>() + bytes_reused;
        let ctx = Ctx {
            backend,
            repo: &self.repo,
            sources: &sources,
            opts,
            existing,
            limiter: t.rate_limit.map(RateLimiter::new),
            progress: ProgressTracker::new(files_total, bytes_total, t.progress.clone()),
        };
        ctx.progress.add(files_reused, bytes_reused);
        let keys: Vec<String> = plans
            .iter()
            .map(|p| format!("{packs_dir}{:08}.pack", p.seq))
            .collect();
        let results: Vec<(Vec<(u64, u32)>, bool)> = pool(t.threads)?.install(|| {
            plans
                .par_iter()
                .zip(keys.par_iter())
                .map(|(p, k)| upload_pack(&ctx, p, k))
                .collect::<Result<Vec<_>>>()
        })?;
        let zero_files = sources
            .iter()
            .flat_map(|s| &s.files)
            .filter(|f| f.size == 0)
            .count() as u64;
        ctx.progress.add(zero_files, 0);
        let mut manifest = build_manifest(&sources, &plans, keys, &results)?;
        if let Some(index) = opts.reuse.as_deref() {
            let mut pack_map = std::collections::HashMap::new();
            for (pos, files) in reused.iter().enumerate() {
                for (path, stored) in files {
                    index.attach(&mut manifest, pos, path, stored, &mut pack_map);
                }
            }
            for t in &mut manifest.tablets {
                t.files.sort_by(|a, b| a.path.cmp(&b.path));
            }
            manifest.validate()?;
        }
        let reused_packs = results.iter().filter(|r| r.1).count() as u64;
        self.manifest = Some(manifest);
        Ok(UploadReport {
            files: files_total,
            bytes: bytes_total,
            packs: plans.len() as u64,
            packs_put: plans.len() as u64 - reused_packs,
            packs_reused: reused_packs,
            files_reused,
            bytes_reused,
        })
    }

    /// The manifest of what was uploaded: for a part of a multi-writer
    /// backup, merged by the caller and committed with
    /// [`Repository::commit_backup`].
    pub fn into_manifest(self) -> Result<Manifest> {
        self.manifest.ok_or_else(|| {
            Error::InvalidInput("into_manifest called before a successful upload".into())
        })
    }

    /// Commits the backup: barrier (packs durable), manifest, meta, barrier,
    /// then `info`, the commit point, and a final barrier.
    pub fn commit(self, meta: &[u8]) -> Result<SnapshotInfo> {
        let manifest = self.manifest.as_ref().ok_or_else(|| {
            Error::InvalidInput("commit called before a successful upload".into())
        })?;
        commit_snapshot(
            &self.repo,
            &self.id,
            manifest,
            &[],
            meta,
            &self.retry,
            &self.cancel,
        )
    }
}

/// Per upload source, the files reused from earlier backups with their stored copies.
type Reused = Vec<Vec<(String, crate::reuse::StoredFile)>>;

/// Drops from `sources` the files `index` holds with the same identity;
/// returns what remains to upload and, per source (same order), the reused
/// files with their stored copies.
fn split_reused<'a>(
    sources: Cow<'a, [UploadSource]>,
    index: Option<&crate::reuse::ReuseIndex>,
) -> (Cow<'a, [UploadSource]>, Reused) {
    let mut reused = vec![Vec::new(); sources.len()];
    let Some(index) = index else {
        return (sources, reused);
    };
    // Only the files to upload are copied.
    let mut kept = Vec::with_capacity(sources.len());
    for (s, out) in sources.iter().zip(&mut reused) {
        let files = s
            .files
            .iter()
            .filter(
                |f| match index.lookup(s.tablet_id, &f.name, f.size, f.crc32) {
                    Some(stored) => {
                        out.push((f.name.clone(), stored.clone()));
                        false
                    }
                    None => true,
                },
            )
            .cloned()
            .collect();
        kept.push(UploadSource {
            tablet_id: s.tablet_id,
            dir: s.dir.clone(),
            files,
            dirs: s.dirs.clone(),
        });
    }
    (Cow::Owned(kept), reused)
}

/// Writes manifest, meta and (last, the commit point) info of snapshot `id`,
/// with barriers so every pack is durable before the manifest and everything
/// before the info.
pub(crate) fn commit_snapshot(
    repo: &Repository,
    id: &SnapshotId,
    manifest: &Manifest,
    borrowed: &[crate::manifest::Borrowed],
    meta: &[u8],
    retry: &RetryPolicy,
    cancel: &CancelToken,
) -> Result<SnapshotInfo> {
    let backend = repo.backend();
    let dir = Repository::snapshot_dir(id);
    let put = |name: &str, data: &[u8]| {
        let key = repo.key(&format!("{dir}{name}"));
        retry.run(&key, cancel, || backend.put(&key, data))
    };
    // A rerun after a crash or a lost reply finds what the earlier attempt
    // stored: the same bytes stay (no second write of a large manifest, and
    // nothing to refuse for a store whose objects cannot be replaced).
    let put_unless_stored = |name: &str, data: &[u8]| {
        let key = repo.key(&format!("{dir}{name}"));
        let stored = retry.run(&key, cancel, || match backend.head(&key)? {
            Some(len) if len == data.len() as u64 => match backend.get(&key) {
                Ok(d) => Ok(d == data),
                Err(e) if e.is_not_found() => Ok(false),
                Err(e) => Err(e),
            },
            _ => Ok(false),
        })?;
        if stored {
            Ok(())
        } else {
            put(name, data)
        }
    };
    let mbytes = manifest.encode_borrowing(borrowed);
    let (borrowed_files, borrowed_bytes) = crate::manifest::borrowed_totals(borrowed);
    // No barrier yet: the packs, the manifest and the meta only have to be
    // durable before `info` names them, so one barrier covers all three.
    fail::fail_point!("upload::before_manifest", |_| Err(Error::FailPoint(
        "upload::before_manifest".into()
    )));
    put_unless_stored("manifest", &mbytes)?;
    put_unless_stored("meta", meta)?;
    backend.barrier()?;
    fail::fail_point!("upload::before_info", |_| Err(Error::FailPoint(
        "upload::before_info".into()
    )));
    let info = SnapshotInfo {
        id: id.clone(),
        manifest_len: mbytes.len() as u64,
        manifest_crc: crc32fast::hash(&mbytes),
        meta_len: meta.len() as u64,
        meta_crc: crc32fast::hash(meta),
        file_count: manifest.file_count().saturating_add(borrowed_files),
        total_bytes: manifest.total_bytes().saturating_add(borrowed_bytes),
        pack_count: crate::manifest::packs_with_borrowed(&manifest.packs, borrowed).len() as u64,
    };
    cancel.check()?;
    // The commit point is written only if absent (S3: If-None-Match: *), so
    // of two clusters committing the same label and timestamp one wins and
    // the other is told. Finding an info recording this very manifest means
    // an earlier attempt of ours stored it and its reply was lost.
    let info_key = repo.key(&format!("{dir}info"));
    let info_bytes = info.encode();
    if !retry.run(&info_key, cancel, || {
        backend.put_if_absent(&info_key, &info_bytes)
    })? {
        let stored = retry
            .run(&info_key, cancel, || repo.read_info(id))
            .map_err(|e| Error::CommitStateUnknown {
                repo: repo.name().to_string(),
                label: id.label.clone(),
                timestamp: id.timestamp.clone(),
                reason: e.to_string(),
            })?;
        // The whole info, not just the manifest's crc32: a manifest ends in
        // its own crc32, so the crc32 of any manifest object is one constant.
        if stored != info {
            return Err(Error::SnapshotExists {
                repo: repo.name().to_string(),
                label: id.label.clone(),
                timestamp: id.timestamp.clone(),
            });
        }
        return Ok(stored);
    }
    backend.barrier()?;
    Ok(info)
}

/// Returns the (len, crc) of each piece and whether the pack was reused.
fn upload_pack(ctx: &Ctx<'_>, plan: &PackPlan, rel_key: &str) -> Result<(Vec<(u64, u32)>, bool)> {
    let t = &ctx.opts.transfer;
    t.cancel.check()?;
    let key = ctx.repo.key(rel_key);
    let fp = plan.fingerprint(ctx.sources);
    let files_done = plan
        .pieces
        .iter()
        .filter(|p| {
            p.file_offset + p.len == ctx.sources[p.src as usize].files[p.file as usize].size
        })
        .count() as u64;
    if ctx.existing.contains(&key) {
        if let Some(crcs) = verify_stored(ctx, plan, &key, fp)? {
            ctx.progress.add(files_done, plan.data_len);
            return Ok((crcs, true));
        }
    }
    // One of the process's pack buffers (see `pack_buffers`), reused.
    let mut buf = crate::pack_buffers::pool().take(&t.cancel)?;
    {
        buf.reserve(plan.object_len() as usize);
        let mut crcs = Vec::with_capacity(plan.pieces.len());
        let mut data_crc = crc32fast::Hasher::new();
        // Pieces of one tablet are adjacent: open its directory once and each
        // file relative to it, so the kernel walks one component per file.
        let mut dir: Option<(u32, File)> = None;
        for p in &plan.pieces {
            t.cancel.check()?;
            let s = &ctx.sources[p.src as usize];
            let f = &s.files[p.file as usize];
            let path = s.dir.join(&f.name);
            if !matches!(&dir, Some((src, _)) if *src == p.src) {
                dir = Some((p.src, fsutil::open_dir(&s.dir)?));
            }
            let file = match &dir {
                Some((_, d)) => fsutil::open_at(d, &s.dir, &f.name, OFlag::O_RDONLY)?,
                None => File::open(&path).map_err(|e| Error::io(&path, e))?,
            };
            let crc = read_piece(&mut buf, file, &path, f.size, p.file_offset, p.len)?;
            if p.len == f.size && crc != f.crc32 {
                return Err(Error::ChecksumMismatch {
                    what: format!(
                        "tablet {} file '{}' ({})",
                        s.tablet_id,
                        f.name,
                        path.display()
                    ),
                    expected: f.crc32,
                    actual: crc,
                });
            }
            data_crc.combine(&crc32fast::Hasher::new_with_initial_len(crc, p.len));
            crcs.push((p.len, crc));
        }
        pack::finish(&mut buf, &crcs, data_crc.finalize(), fp);
        fail::fail_point!("upload::before_pack_put", |_| Err(Error::FailPoint(
            "upload::before_pack_put".into()
        )));
        if let Some(l) = &ctx.limiter {
            l.acquire(buf.len() as u64, &t.cancel)?;
        }
        t.retry
            .run(&key, &t.cancel, || ctx.backend.put(&key, &buf))?;
        ctx.progress.add(files_done, plan.data_len);
        Ok((crcs, false))
    }
}

/// Checks a stored pack by size and its index/footer: same plan fingerprint,
/// same piece lengths. Returns its piece crcs, or `None` to re-put it.
fn verify_stored(
    ctx: &Ctx<'_>,
    plan: &PackPlan,
    key: &str,
    fp: u32,
) -> Result<Option<Vec<(u64, u32)>>> {
    let t = &ctx.opts.transfer;
    let size = t.retry.run(key, &t.cancel, || ctx.backend.head(key))?;
    if size != Some(plan.object_len()) {
        return Ok(None);
    }
    let tail = t.retry.run(key, &t.cancel, || {
        ctx.backend.get_range(key, plan.data_len, plan.tail_len())
    })?;
    let Ok(stored) = pack::decode_tail(&tail, key) else {
        return Ok(None);
    };
    let same = stored.plan_fp == fp
        && stored.data_len == plan.data_len
        && stored.pieces.len() == plan.pieces.len()
        && stored
            .pieces
            .iter()
            .zip(&plan.pieces)
            .all(|((len, crc), p)| {
                let f = &ctx.sources[p.src as usize].files[p.file as usize];
                *len == p.len && (p.len != f.size || *crc == f.crc32)
            });
    Ok(same.then_some(stored.pieces))
}

/// Appends `len` bytes of `path` at `offset` to `buf` and returns their
/// crc32. The piece ending the file asks for one byte more in the same read,
/// so a file longer than its metadata says shows without another call: a
/// small file costs an open, one `pread` and a close.
fn read_piece(
    buf: &mut Vec<u8>,
    f: File,
    path: &Path,
    size: u64,
    offset: u64,
    len: u64,
) -> Result<u32> {
    let io = |e| Error::io(path, e);
    let ends_file = offset.checked_add(len) == Some(size);
    let want = usize::try_from(len + u64::from(ends_file)).map_err(|_| Error::SizeMismatch {
        what: format!("{} (too large to read into memory)", path.display()),
        expected: size,
        actual: size,
    })?;
    let start = buf.len();
    let n = fsutil::pread_append(&f, offset, want, buf).map_err(io)? as u64;
    if n < len {
        buf.truncate(start);
        return Err(Error::SizeMismatch {
            what: format!("{} (shorter than its metadata says)", path.display()),
            expected: size,
            actual: offset + n,
        });
    }
    if n > len {
        buf.truncate(start);
        let actual = f.metadata().map(|m| m.len()).unwrap_or(size + 1);
        return Err(Error::SizeMismatch {
            what: format!("{} (longer than its metadata says)", path.display()),
            expected: size,
            actual,
        });
    }
    Ok(crc32fast::hash(&buf[start..]))
}

fn build_manifest(
    sources: &[UploadSource],
    plans: &[PackPlan],
    keys: Vec<String>,
    results: &[(Vec<(u64, u32)>, bool)],
) -> Result<Manifest> {
    let mut pieces: Vec<Vec<Vec<Piece>>> = sources
        .iter()
        .map(|s| vec![Vec::new(); s.files.len()])
        .collect();
    for (plan, (crcs, _)) in plans.iter().zip(results) {
        let mut offset = 0;
        for (p, (len, crc)) in plan.pieces.iter().zip(crcs) {
            pieces[p.src as usize][p.file as usize].push(Piece {
                pack: plan.seq,
                offset,
                len: *len,
                crc32: *crc,
            });
            offset += len;
        }
    }
    let mut tablets = Vec::with_capacity(sources.len());
    for (s, file_pieces) in sources.iter().zip(pieces) {
        let mut dirs: BTreeSet<String> = s.dirs.iter().cloned().collect();
        let mut files = Vec::with_capacity(s.files.len());
        for (f, ps) in s.files.iter().zip(file_pieces) {
            if let Some((parent, _)) = f.name.split_once('/') {
                dirs.insert(parent.to_string());
            }
            if ps.len() != 1 {
                // Chunks were read in separate passes (and empty files not at
                // all): check the whole file now, before anything commits it.
                let mut h = crc32fast::Hasher::new();
                for p in &ps {
                    h.combine(&crc32fast::Hasher::new_with_initial_len(p.crc32, p.len));
                }
                let actual = h.finalize();
                if actual != f.crc32 {
                    return Err(Error::ChecksumMismatch {
                        what: format!(
                            "tablet {} file '{}' ({})",
                            s.tablet_id,
                            f.name,
                            s.dir.join(&f.name).display()
                        ),
                        expected: f.crc32,
                        actual,
                    });
                }
            }
            files.push(FileEntry {
                path: f.name.clone(),
                size: f.size,
                crc32: f.crc32,
                pieces: ps,
            });
        }
        tablets.push(TabletEntry {
            tablet_id: s.tablet_id,
            dirs: dirs.into_iter().collect(),
            files,
        });
    }
    let m = Manifest {
        packs: keys,
        tablets,
    };
    m.validate()?;
    Ok(m)
}
