//! Install for restore: register tablets from directories of segment files and
//! their (source) metas under new ids, atomically. The meta rename is the
//! commit point: before it the old tablet (or none) is intact, after it the new
//! one is complete; the replaced rowsets are garbage only after it is durable.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rayon::prelude::*;

use crate::engine::{now_ms, Engine};
use crate::error::{Error, Result};
use crate::file;
use crate::reserve::PlacedIds;
use crate::rowset::{RowsetId, RowsetMeta};
use crate::tablet::{Tablet, WriterPermit};
use crate::tablet_meta::{StaleRowset, TabletMeta, META_FILE_NAME};

/// How much of each source file to check before install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Read every file and compare size and crc32 with the meta.
    Full,
    /// Compare sizes only: for a caller that verified these very crc32s while
    /// writing the files (the download path does).
    SizeOnly,
}

/// One tablet to install.
#[derive(Debug, Clone)]
pub struct InstallRequest {
    /// Directory holding the source segment files, named by the source rowset ids.
    pub src_dir: PathBuf,
    /// The source tablet's meta (source ids; versions are kept).
    pub source: TabletMeta,
    /// New table id.
    pub table_id: u64,
    /// New partition id.
    pub partition_id: u64,
    /// New tablet id.
    pub tablet_id: u64,
    /// Schema hash of the target.
    pub schema_hash: u32,
    /// Replace an existing tablet with the same id and schema.
    pub overwrite: bool,
    /// In place: the segment files are already in the target tablet's dir
    /// (`src_dir` is that dir) under the ids a restore reserved from this
    /// base ([`crate::reserve::PlacedIds`]); nothing is linked or copied.
    pub placed: Option<RowsetId>,
}

/// What an install did for one tablet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallOutcome {
    /// The tablet now holds the source data.
    Installed {
        /// Segment files linked in.
        files: usize,
    },
    /// The tablet already held exactly this data (a re-run after a crash).
    AlreadyInstalled,
}

/// The same versions made of the same bytes, whatever the ids.
pub(crate) fn same_content(a: &[RowsetMeta], b: &[RowsetMeta]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.start_version == y.start_version
                && x.end_version == y.end_version
                && x.num_rows == y.num_rows
                && x.segments == y.segments
        })
}

/// One tablet of an install batch, decided and ready to link: its new meta
/// and the files to link in (source, destination).
pub(crate) struct Staged {
    pub(crate) store: usize,
    pub(crate) dir: PathBuf,
    pub(crate) meta: TabletMeta,
    pub(crate) existing: Option<WriterPermit>,
    pub(crate) links: Vec<(PathBuf, PathBuf)>,
    pub(crate) linked: Vec<PathBuf>,
    /// The files were written in place under reserved ids: an error leaves
    /// them (and a new tablet's dir) to the reservation's release.
    pub(crate) placed: bool,
}

fn link_or_copy(src: &Path, dst: &Path) -> Result<()> {
    match std::fs::hard_link(src, dst) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => std::fs::copy(src, dst)
            .map(|_| ())
            .map_err(|e| Error::io(dst, e)),
        Err(e) => Err(Error::io(dst, e)),
    }
}

/// Checks one install source as [`Engine::install_tablets`] does before it
/// changes anything (the meta's invariants, then every file); returns its
/// file count. Lets a caller that installs a large batch in parts verify the
/// whole batch first.
pub fn verify_install_source(req: &InstallRequest, verify: Verify) -> Result<usize> {
    verify_sources(req, verify)
}

fn verify_sources(req: &InstallRequest, verify: Verify) -> Result<usize> {
    req.source
        .validate()
        .map_err(|e| Error::corrupt(req.src_dir.join(META_FILE_NAME), e))?;
    match req.placed {
        Some(base) => {
            let placed = placed_rowsets(req.tablet_id, base, &req.source.rowsets)?;
            verify_files(&req.src_dir, &placed, req.tablet_id, verify)
        }
        None => verify_files(&req.src_dir, &req.source.rowsets, req.tablet_id, verify),
    }
}

/// `rowsets` under the ids an in-place restore gave them.
pub(crate) fn placed_rowsets(
    tablet_id: u64,
    base: RowsetId,
    rowsets: &[RowsetMeta],
) -> Result<Vec<RowsetMeta>> {
    PlacedIds::for_rowsets(tablet_id, base, rowsets)?.rename(tablet_id, rowsets)
}

/// Checks every segment file of `rowsets` in `src_dir` (size, and crc32 with
/// `Verify::Full`); returns how many there are.
pub(crate) fn verify_files(
    src_dir: &Path,
    rowsets: &[RowsetMeta],
    tablet_id: u64,
    verify: Verify,
) -> Result<usize> {
    let mut n = 0;
    for rs in rowsets {
        for (name, seg) in rs.files() {
            let path = src_dir.join(&name);
            n += 1;
            if verify == Verify::SizeOnly {
                let len = std::fs::metadata(&path)
                    .map_err(|e| Error::io(&path, e))?
                    .len();
                if len != seg.size {
                    return Err(Error::corrupt(
                        &path,
                        format!("file is {len} bytes, meta says {}", seg.size),
                    ));
                }
                continue;
            }
            crate::read::read_verified(&path, seg, || {
                format!("snapshot file {} of tablet {tablet_id}", path.display())
            })?;
        }
    }
    Ok(n)
}

impl Engine {
    /// Installs tablets from snapshot directories, verified and atomic, with
    /// one durability barrier for the whole batch. Re-running after a crash
    /// completes the install or reports `AlreadyInstalled`.
    pub fn install_tablets(
        &self,
        reqs: &[InstallRequest],
        verify: Verify,
    ) -> Result<Vec<InstallOutcome>> {
        let mut seen = HashSet::new();
        for r in reqs {
            if !seen.insert(r.tablet_id) {
                return Err(Error::InvalidArgument(format!(
                    "tablet {} is listed twice",
                    r.tablet_id
                )));
            }
        }
        let counts: Vec<usize> = reqs
            .par_iter()
            .map(|r| verify_sources(r, verify))
            .collect::<Result<_>>()?;
        // Decide per tablet, taking writer locks of existing tablets in id order.
        let mut order: Vec<usize> = (0..reqs.len()).collect();
        order.sort_by_key(|i| reqs[*i].tablet_id);
        let mut outcomes = vec![InstallOutcome::AlreadyInstalled; reqs.len()];
        let mut staged = Vec::new();
        // A batch restores tablets of a few tables: they share one schema.
        let mut schemas: Vec<crate::schema::Schema> = Vec::new();
        for i in order {
            let r = &reqs[i];
            let schema = match schemas.iter().find(|s| **s == r.source.schema) {
                Some(s) => s.clone(),
                None => {
                    schemas.push(r.source.schema.clone());
                    r.source.schema.clone()
                }
            };
            let existing = self.tablet(r.tablet_id).ok();
            let permit = existing.as_ref().map(|t| t.lock_writer());
            let now = now_ms();
            let mut meta = TabletMeta {
                table_id: r.table_id,
                partition_id: r.partition_id,
                tablet_id: r.tablet_id,
                schema_hash: r.schema_hash,
                schema,
                rowsets: Vec::with_capacity(r.source.rowsets.len()),
                stale_rowsets: Vec::new(),
                creation_time_ms: now,
            };
            let (store, dir) = match &existing {
                Some(t) => {
                    let cur = t.meta();
                    if same_content(&cur.rowsets, &r.source.rowsets)
                        && cur.schema == r.source.schema
                    {
                        continue;
                    }
                    if !r.overwrite {
                        return Err(Error::TabletExists(r.tablet_id));
                    }
                    if cur.schema != r.source.schema || cur.schema_hash != r.schema_hash {
                        return Err(Error::SchemaMismatch {
                            tablet_id: r.tablet_id,
                            detail: "column list or schema hash differs".into(),
                        });
                    }
                    if r.placed.is_some() && r.src_dir != t.dir() {
                        return Err(Error::InvalidArgument(format!(
                            "tablet {}: files placed in {}, but the tablet lives in {}",
                            r.tablet_id,
                            r.src_dir.display(),
                            t.dir().display()
                        )));
                    }
                    meta.creation_time_ms = cur.creation_time_ms;
                    meta.stale_rowsets = cur.stale_rowsets;
                    // stale_since 0: due for GC as soon as the new meta is durable.
                    meta.stale_rowsets
                        .extend(cur.rowsets.into_iter().map(|rowset| StaleRowset {
                            rowset,
                            stale_since_ms: 0,
                        }));
                    (t.store, t.dir().to_path_buf())
                }
                None => {
                    let store = self.pick_store(Some(&r.src_dir));
                    let dir = self.stores[store].tablet_dir(r.tablet_id, r.schema_hash);
                    if dir.join(META_FILE_NAME).exists() {
                        return Err(Error::TabletExists(r.tablet_id));
                    }
                    if r.placed.is_some() {
                        if r.src_dir != dir {
                            return Err(Error::InvalidArgument(format!(
                                "tablet {}: files placed in {}, not in its dir {}",
                                r.tablet_id,
                                r.src_dir.display(),
                                dir.display()
                            )));
                        }
                    } else {
                        // Leftovers of an install that died before its commit point.
                        file::remove_dir_all_if_exists(&dir)?;
                        file::create_dir_all(&dir)?;
                    }
                    (store, dir)
                }
            };
            let links = self.renamed_rowsets(
                r.tablet_id,
                &r.source.rowsets,
                &r.src_dir,
                &dir,
                r.placed,
                &mut meta,
            )?;
            outcomes[i] = InstallOutcome::Installed { files: counts[i] };
            staged.push(Staged {
                store,
                dir,
                meta,
                existing: permit,
                links,
                linked: Vec::new(),
                placed: r.placed.is_some(),
            });
        }
        self.finish_install(staged)?;
        Ok(outcomes)
    }

    /// Appends `rowsets` to `meta` under fresh rowset ids (versions kept);
    /// returns the links that put their files from `src_dir` into `dir`.
    /// With `placed` the files are in `dir` already under the reserved ids:
    /// no links.
    pub(crate) fn renamed_rowsets(
        &self,
        tablet_id: u64,
        rowsets: &[RowsetMeta],
        src_dir: &Path,
        dir: &Path,
        placed: Option<RowsetId>,
        meta: &mut TabletMeta,
    ) -> Result<Vec<(PathBuf, PathBuf)>> {
        if let Some(base) = placed {
            meta.rowsets
                .extend(placed_rowsets(tablet_id, base, rowsets)?);
            return Ok(Vec::new());
        }
        let mut links = Vec::new();
        for rs in rowsets {
            let mut n = rs.clone();
            n.rowset_id = self.alloc_rowset_id()?;
            for i in 0..rs.segments.len() {
                links.push((
                    src_dir.join(rs.segment_file_name(i)),
                    dir.join(n.segment_file_name(i)),
                ));
            }
            meta.rowsets.push(n);
        }
        Ok(links)
    }

    /// Links, commits and publishes staged tablets, then frees the rowsets
    /// their new metas list as stale. On error the visible metas are the old
    /// ones or the new ones, per tablet, and no linked file is left orphaned
    /// in a live dir.
    pub(crate) fn finish_install(&self, mut staged: Vec<Staged>) -> Result<()> {
        if let Err(e) = self.link_stage(&mut staged) {
            for s in &staged {
                for p in &s.linked {
                    let _ = file::remove_file_if_exists(p);
                }
                // An overwrite's temp meta sits in the live dir; recovery would
                // only remove it at the next restart.
                let _ = file::remove_file_if_exists(&file::tmp_path(&s.dir.join(META_FILE_NAME)));
                if !s.placed && s.existing.is_none() && !s.dir.join(META_FILE_NAME).exists() {
                    let _ = file::remove_dir_all_if_exists(&s.dir);
                }
            }
            return Err(e);
        }
        if let Err(e) = self.commit_stage(&staged) {
            // Some metas may have swapped: trust the disk, as a restart would.
            self.reload_from_disk(staged);
            return Err(e);
        }
        // Publish in memory, then free the replaced rowsets.
        let mut replaced = Vec::new();
        {
            let mut map = self.tablets.write();
            for s in staged {
                match s.existing {
                    Some(permit) => {
                        let stale = !s.meta.stale_rowsets.is_empty();
                        permit.tablet().set_meta(s.meta);
                        if stale {
                            replaced.push(Arc::clone(permit.tablet()));
                        }
                    }
                    None => {
                        self.stores[s.store].tablets.fetch_add(1, Ordering::Relaxed);
                        map.insert(
                            s.meta.tablet_id,
                            Arc::new(Tablet::new(s.meta, s.dir, s.store)),
                        );
                    }
                }
            }
        }
        fail::fail_point!("engine::install::before_gc", |_| Err(Error::FailPoint(
            "engine::install::before_gc".into()
        )));
        self.gc_tablets(&replaced, 0)?;
        Ok(())
    }

    /// Links every file and writes temp metas; nothing is visible yet.
    fn link_stage(&self, staged: &mut [Staged]) -> Result<()> {
        fail::fail_point!("engine::install::before_link", |_| Err(Error::FailPoint(
            "engine::install::before_link".into()
        )));
        staged.par_iter_mut().try_for_each(|s| {
            for (src, dst) in &s.links {
                link_or_copy(src, dst)?;
                s.linked.push(dst.clone());
            }
            file::write_tmp(&s.dir.join(META_FILE_NAME), &s.meta.encode(), false)
        })?;
        fail::fail_point!("engine::install::after_link", |_| Err(Error::FailPoint(
            "engine::install::after_link".into()
        )));
        Ok(())
    }

    /// The commit point: barrier, meta renames, barrier.
    fn commit_stage(&self, staged: &[Staged]) -> Result<()> {
        let mut stores: Vec<usize> = staged.iter().map(|s| s.store).collect();
        stores.sort_unstable();
        stores.dedup();
        // Links, their target dirs and the temp metas are durable before any meta swaps in.
        self.barrier(&stores)?;
        fail::fail_point!("engine::install::before_meta_swap", |_| Err(
            Error::FailPoint("engine::install::before_meta_swap".into())
        ));
        staged
            .par_iter()
            .try_for_each(|s| file::commit_tmp(&s.dir.join(META_FILE_NAME)))?;
        self.barrier(&stores)?;
        fail::fail_point!("engine::install::after_meta_swap", |_| Err(
            Error::FailPoint("engine::install::after_meta_swap".into())
        ));
        Ok(())
    }

    fn reload_from_disk(&self, staged: Vec<Staged>) {
        let mut map = self.tablets.write();
        for s in staged {
            let path = s.dir.join(META_FILE_NAME);
            let Ok(meta) = std::fs::read(&path)
                .map_err(|e| Error::io(&path, e))
                .and_then(|b| TabletMeta::decode(&path, &b))
            else {
                // No meta: the new tablet never committed. Drop its dir now
                // rather than at the next restart.
                if !s.placed && s.existing.is_none() && !path.exists() {
                    let _ = file::remove_dir_all_if_exists(&s.dir);
                }
                let _ = file::remove_file_if_exists(&file::tmp_path(&path));
                continue;
            };
            // The last rowset is new in every staged meta (an incremental
            // install keeps the first ones).
            let committed = meta.rowsets.last().map(|r| r.rowset_id)
                == s.meta.rowsets.last().map(|r| r.rowset_id);
            if !committed {
                // The old meta is still the visible one and names none of the
                // new links (fresh rowset ids): they are orphans that would
                // otherwise stay in the live tablet dir until a restart.
                for p in &s.linked {
                    let _ = file::remove_file_if_exists(p);
                }
                let _ = file::remove_file_if_exists(&file::tmp_path(&path));
            }
            match s.existing {
                Some(permit) => permit.tablet().set_meta(meta),
                None => {
                    self.stores[s.store].tablets.fetch_add(1, Ordering::Relaxed);
                    map.insert(meta.tablet_id, Arc::new(Tablet::new(meta, s.dir, s.store)));
                }
            }
        }
    }
}
