//! VERIFY: read back a committed snapshot and check it without restoring
//! anything, like `restic check --read-data`.
//!
//! Every referenced pack must exist. The full check reads every piece (in
//! runs of neighbours, one streamed ranged read per run, in parallel with
//! one reused buffer per worker; a remote store's runs are whole and as many
//! are in flight as it asks for), checks each piece's crc32 as its bytes
//! arrive, and combines the piece crcs of each file into its whole-file crc;
//! the quick check only asks each pack's size and checks every piece lies
//! inside it.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::backend::Backend;
use crate::error::Result;
use crate::info::SnapshotId;
use crate::manifest::Manifest;
use crate::options::TransferOptions;
use crate::repository::{Repository, VERIFIED_READS};
use crate::runs::{self, MAX_RUN};

/// How to verify.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Check presence and sizes only; read no data.
    pub quick: bool,
    /// Threads, retries, cancellation.
    pub transfer: TransferOptions,
}

/// What is wrong with one tablet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TabletDamage {
    /// The tablet id in the backup.
    pub tablet_id: u64,
    /// One sentence per damaged file or missing pack.
    pub problems: Vec<String>,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Tablets in the snapshot.
    pub tablets: u64,
    /// Files in the snapshot.
    pub files: u64,
    /// Bytes of all files.
    pub bytes: u64,
    /// Packs the manifest references.
    pub packs: u64,
    /// Bytes read from the repository (0 for a quick check).
    pub bytes_read: u64,
    /// Referenced packs that are not stored.
    pub missing_packs: Vec<String>,
    /// Damaged tablets, by id.
    pub damaged: Vec<TabletDamage>,
}

impl VerifyReport {
    /// True when nothing is damaged or missing.
    pub fn is_ok(&self) -> bool {
        self.missing_packs.is_empty() && self.damaged.is_empty()
    }
}

#[derive(Clone, Copy)]
struct Ref {
    tablet: u32,
    file: u32,
    piece: u32,
    offset: u64,
    len: u64,
    crc32: u32,
}

thread_local! {
    static VERIFY_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Verifies committed snapshot `id` of `repo`. An unreadable info or
/// manifest is an error; damage to packs and files is reported per tablet.
pub fn verify_snapshot(
    repo: &Repository,
    id: &SnapshotId,
    opts: &VerifyOptions,
) -> Result<VerifyReport> {
    let t = &opts.transfer;
    let what = repo.key(&Repository::manifest_key(id));
    let manifest = t.retry.run(&what, &t.cancel, || repo.read_manifest(id))?;
    verify_manifest(repo, &manifest, opts)
}

/// Verifies the packs and files `manifest` references (see [`verify_snapshot`]).
pub fn verify_manifest(
    repo: &Repository,
    manifest: &Manifest,
    opts: &VerifyOptions,
) -> Result<VerifyReport> {
    let t = &opts.transfer;
    manifest.validate()?;
    let backend = repo.backend().as_ref();
    // A remote store's runs are whole: one streamed read each.
    let (pool, remote) = runs::reading_pool(t.threads, backend)?;
    let max_run = if remote { u64::MAX } else { MAX_RUN };
    let keys: Vec<String> = manifest.packs.iter().map(|p| repo.key(p)).collect();
    let sizes: Vec<Result<Option<u64>>> = pool.install(|| {
        keys.par_iter()
            .map(|k| t.retry.run(k, &t.cancel, || backend.head(k)))
            .collect()
    });
    let mut by_pack: Vec<Vec<Ref>> = vec![Vec::new(); manifest.packs.len()];
    for (ti, tab) in manifest.tablets.iter().enumerate() {
        for (fi, f) in tab.files.iter().enumerate() {
            for (pi, p) in f.pieces.iter().enumerate() {
                if let Some(v) = by_pack.get_mut(p.pack as usize) {
                    v.push(Ref {
                        tablet: ti as u32,
                        file: fi as u32,
                        piece: pi as u32,
                        offset: p.offset,
                        len: p.len,
                        crc32: p.crc32,
                    });
                }
            }
        }
    }
    let mut problems: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let mut report = VerifyReport {
        tablets: manifest.tablets.len() as u64,
        files: manifest.file_count(),
        bytes: manifest.total_bytes(),
        packs: manifest.packs.len() as u64,
        ..Default::default()
    };
    // Packs that are present and long enough; the rest are reported here.
    let mut readable = vec![false; manifest.packs.len()];
    for (i, size) in sizes.into_iter().enumerate() {
        let refs = &by_pack[i];
        let key = &manifest.packs[i];
        let need = refs
            .iter()
            .map(|r| r.offset.saturating_add(r.len))
            .max()
            .unwrap_or(0);
        let problem = match size {
            Err(e) => Some(format!("pack {key} could not be checked: {e}")),
            Ok(None) => {
                report.missing_packs.push(key.clone());
                Some(format!("pack {key} is missing"))
            }
            Ok(Some(n)) if n < need => Some(format!(
                "pack {key} is {n} bytes, shorter than the {need} its pieces need"
            )),
            Ok(Some(_)) => None,
        };
        match problem {
            None => readable[i] = true,
            Some(msg) => {
                let mut tablets: Vec<u32> = refs.iter().map(|r| r.tablet).collect();
                tablets.dedup();
                for ti in tablets {
                    let v = problems.entry(ti).or_default();
                    if v.last() != Some(&msg) {
                        v.push(msg.clone());
                    }
                }
            }
        }
    }
    // piece crcs actually read: per tablet, per file, per piece.
    let mut seen: Vec<Vec<Vec<Option<u32>>>> = manifest
        .tablets
        .iter()
        .map(|tab| {
            tab.files
                .iter()
                .map(|f| vec![None; f.pieces.len()])
                .collect()
        })
        .collect();
    if !opts.quick {
        let mut runs: Vec<(usize, &[Ref])> = Vec::new();
        for (i, refs) in by_pack.iter_mut().enumerate() {
            if readable[i] {
                refs.sort_by_key(|r| r.offset);
            }
        }
        for (i, refs) in by_pack.iter().enumerate() {
            if !readable[i] {
                continue;
            }
            let mut rest = &refs[..];
            while !rest.is_empty() {
                let n = runs::run_len(rest.iter().map(|r| (r.offset, r.len)), max_run);
                let (run, tail) = rest.split_at(n);
                runs.push((i, run));
                rest = tail;
            }
        }
        type RunOut = (u64, std::result::Result<Vec<(Ref, u32)>, String>);
        let results: Vec<RunOut> = pool.install(|| {
            runs.par_iter()
                .map(|&(pack, run)| read_run(backend, &keys[pack], run, t))
                .collect()
        });
        t.cancel.check()?;
        for (&(pack, run), (read, res)) in runs.iter().zip(results) {
            report.bytes_read += read;
            match res {
                Ok(crcs) => {
                    for (r, crc) in crcs {
                        seen[r.tablet as usize][r.file as usize][r.piece as usize] = Some(crc);
                    }
                }
                Err(e) => {
                    for r in run {
                        let f = &manifest.tablets[r.tablet as usize].files[r.file as usize];
                        let msg = format!(
                            "file {} could not be read from pack {}: {e}",
                            f.path, manifest.packs[pack]
                        );
                        let v = problems.entry(r.tablet).or_default();
                        if !v.contains(&msg) {
                            v.push(msg);
                        }
                    }
                }
            }
        }
    }
    for (ti, tab) in manifest.tablets.iter().enumerate() {
        for (fi, f) in tab.files.iter().enumerate() {
            let mut size = 0u64;
            let mut h = crc32fast::Hasher::new();
            let mut complete = true;
            for (pi, p) in f.pieces.iter().enumerate() {
                size = size.saturating_add(p.len);
                if opts.quick {
                    continue;
                }
                match seen[ti][fi][pi] {
                    Some(actual) if actual == p.crc32 => {
                        h.combine(&crc32fast::Hasher::new_with_initial_len(actual, p.len));
                    }
                    Some(actual) => {
                        complete = false;
                        problems.entry(ti as u32).or_default().push(format!(
                            "file {} piece {pi} in pack {} at offset {}: checksum mismatch (expected {:#010x}, got {actual:#010x})",
                            f.path,
                            manifest.pack_key(p),
                            p.offset,
                            p.crc32
                        ));
                    }
                    None => complete = false,
                }
            }
            if size != f.size {
                problems.entry(ti as u32).or_default().push(format!(
                    "file {}: pieces hold {size} bytes, the file has {}",
                    f.path, f.size
                ));
            }
            if !opts.quick && complete && h.finalize() != f.crc32 {
                problems
                    .entry(ti as u32)
                    .or_default()
                    .push(format!("file {}: whole-file checksum mismatch", f.path));
            }
        }
    }
    report.damaged = problems
        .into_iter()
        .map(|(ti, problems)| TabletDamage {
            tablet_id: manifest.tablets[ti as usize].tablet_id,
            problems,
        })
        .collect();
    Ok(report)
}

/// Reads one run and returns each piece's crc, or why the read failed. A
/// piece whose crc does not match is read again on its own (up to
/// [`VERIFIED_READS`] reads in all, as the repository's own objects are),
/// so bytes damaged in transit are not reported as damage in the repository.
fn read_run(
    backend: &dyn Backend,
    key: &str,
    run: &[Ref],
    t: &TransferOptions,
) -> (u64, std::result::Result<Vec<(Ref, u32)>, String>) {
    let (mut read, res) = stream_crcs(backend, key, run, t);
    let Ok(mut crcs) = res else {
        return (read, res);
    };
    for (r, crc) in crcs.iter_mut().filter(|(r, crc)| *crc != r.crc32) {
        for _ in 1..VERIFIED_READS {
            let (again, res) = stream_crcs(backend, key, std::slice::from_ref(r), t);
            read += again;
            match res.map(|c| c.first().map(|&(_, c)| c)) {
                Ok(Some(c)) => *crc = c,
                Ok(None) => {}
                Err(e) => return (read, Err(e)),
            }
            if *crc == r.crc32 {
                break;
            }
        }
    }
    (read, Ok(crcs))
}

/// Reads one run with one streamed read and returns each piece's crc, or
/// why the read failed. Each piece's crc is computed as its bytes arrive
/// (pieces may overlap: a carried file can share another's bytes); a read
/// cut short resumes at the first byte not received.
fn stream_crcs(
    backend: &dyn Backend,
    key: &str,
    run: &[Ref],
    t: &TransferOptions,
) -> (u64, std::result::Result<Vec<(Ref, u32)>, String>) {
    let Some(first) = run.first() else {
        return (0, Ok(Vec::new()));
    };
    let start = first.offset;
    let end = run
        .iter()
        .map(|r| r.offset.saturating_add(r.len))
        .max()
        .unwrap_or(start);
    let mut crcs = Vec::with_capacity(run.len());
    // Pieces not started yet begin at `run[next]`; `active` are under way.
    let mut next = 0;
    let mut active: Vec<(Ref, crc32fast::Hasher)> = Vec::new();
    let at = Cell::new(start);
    let mut sink = |slice: &[u8]| -> Result<()> {
        t.cancel.check()?;
        let (s, e) = (at.get(), at.get().saturating_add(slice.len() as u64));
        while let Some(r) = run.get(next).filter(|r| r.offset < e) {
            active.push((*r, crc32fast::Hasher::new()));
            next += 1;
        }
        active.retain_mut(|(r, h)| {
            let piece_end = r.offset.saturating_add(r.len);
            let (a, b) = (r.offset.max(s), piece_end.min(e));
            if a < b {
                h.update(&slice[(a - s) as usize..(b - s) as usize]);
            }
            if piece_end > e {
                return true;
            }
            crcs.push((*r, h.clone().finalize()));
            false
        });
        at.set(e);
        Ok(())
    };
    let read = VERIFY_BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        t.retry.run(key, &t.cancel, || {
            // After a cut, ask for the rest only.
            let from = at.get();
            backend.get_range_stream(key, from, end - from, &mut buf, &mut sink)
        })
    });
    let got = at.get() - start;
    if let Err(e) = read {
        return (got, Err(e.to_string()));
    }
    if got != end - start {
        return (got, Err(format!("read {got} bytes of {}", end - start)));
    }
    // Empty pieces at the very end of the run: no byte starts them.
    crcs.extend(run[next..].iter().map(|r| (*r, crc32fast::hash(&[]))));
    (got, Ok(crcs))
}
