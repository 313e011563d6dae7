//! Loads: each publishes a new version as immutable segment files, then
//! commits the rowset into the tablet meta. A `LoadBatch` publishes many
//! versions on many tablets behind one durability barrier.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use rayon::prelude::*;

use crate::engine::{now_ms, Engine};
use crate::error::{Error, Result};
use crate::file;
use crate::rowset::{RowsetMeta, SegmentMeta};
use crate::schema::Row;
use crate::segment::encode_segment;
use crate::tablet::{Tablet, WriterPermit};
use crate::tablet_meta::{StaleRowset, TabletMeta};

/// How a batch makes itself durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync every file and directory: right for a single small load.
    PerFile,
    /// One `syncfs` barrier before the metas and one after: right for many files.
    Barrier,
}

struct Pending {
    permit: WriterPermit,
    base: Arc<TabletMeta>,
    /// The version the next `add` publishes.
    next_version: u64,
    /// Set when the first version of this batch is at or below the tablet's
    /// newest: the rowsets from there up are leftovers of a load the caller
    /// never made visible, and the commit drops them in the same meta swap.
    replace_from: Option<u64>,
    new_rowsets: Vec<RowsetMeta>,
    /// Segment files written, by name in the tablet's dir (a full path per
    /// file was ~100 bytes each, 400k of them in a 100k-tablet INSERT).
    written: Vec<String>,
}

impl Pending {
    /// Removes the segment files this batch wrote for the tablet.
    fn discard(&mut self) {
        let dir = self.permit.tablet().dir();
        for name in self.written.drain(..) {
            let _ = file::remove_file_if_exists(&dir.join(name));
        }
    }
}

/// Versions in flight on a set of tablets; published together by [`LoadBatch::commit`].
pub struct LoadBatch<'e> {
    engine: &'e Engine,
    durability: Durability,
    pending: HashMap<u64, Mutex<Pending>>,
}

/// The first version a batch publishes on a tablet and, if that replaces
/// unpublished rowsets, the version from which they are dropped.
fn plan_version(meta: &TabletMeta, requested: Option<u64>) -> Result<(u64, Option<u64>)> {
    let max = meta.max_version();
    let next = max.checked_add(1);
    let version = requested.or(next).unwrap_or(u64::MAX);
    let refuse = |detail: String| Error::VersionRefused {
        tablet_id: meta.tablet_id,
        version,
        detail,
    };
    // Validated metas keep every version below u64::MAX, so this is only
    // reached by a caller asking for it.
    let Some(next) = next.filter(|_| version != u64::MAX) else {
        return Err(refuse("versions stop below u64::MAX".into()));
    };
    if version > next {
        return Err(refuse(format!(
            "its newest version is {max}, so the next one must be {next} (versions are published without gaps)"
        )));
    }
    if let Some(r) = meta
        .rowsets
        .iter()
        .find(|r| r.start_version < version && version <= r.end_version)
    {
        return Err(refuse(format!(
            "it lies inside rowset {}, which also holds older versions",
            r.version_label()
        )));
    }
    let replace_from = (version <= max).then_some(version);
    Ok((version, replace_from))
}

impl Engine {
    /// Starts a batch on `tablet_ids` whose versions the engine picks: each
    /// tablet's newest version + 1. For a single node that owns its
    /// versions (tools, benches); a coordinator uses [`Engine::begin_load_at`].
    pub fn begin_load(&self, tablet_ids: &[u64], durability: Durability) -> Result<LoadBatch<'_>> {
        let targets = tablet_ids.iter().map(|t| (*t, None)).collect();
        self.begin(targets, durability)
    }

    /// Starts a batch publishing exactly `version` on each `(tablet_id, version)`.
    /// A version at or below the tablet's newest replaces the rowsets from that
    /// version up (leftovers of a load the coordinator never made visible) in
    /// the commit's meta swap; a version above newest + 1 is refused with
    /// [`Error::VersionRefused`] naming the tablet. Writer locks are taken in
    /// tablet-id order, so concurrent batches cannot deadlock.
    pub fn begin_load_at(
        &self,
        targets: &[(u64, u64)],
        durability: Durability,
    ) -> Result<LoadBatch<'_>> {
        let targets = targets.iter().map(|(t, v)| (*t, Some(*v))).collect();
        self.begin(targets, durability)
    }

    fn begin(
        &self,
        mut targets: Vec<(u64, Option<u64>)>,
        durability: Durability,
    ) -> Result<LoadBatch<'_>> {
        targets.sort_unstable();
        targets.dedup();
        if let Some(w) = targets.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::InvalidArgument(format!(
                "tablet {} is listed twice in one load, with versions {:?} and {:?}",
                w[0].0, w[0].1, w[1].1
            )));
        }
        let tablets: Vec<(Arc<Tablet>, Option<u64>)> = targets
            .iter()
            .map(|(id, v)| Ok((self.tablet(*id)?, *v)))
            .collect::<Result<_>>()?;
        let mut pending = HashMap::with_capacity(tablets.len());
        for (t, requested) in tablets {
            let permit = t.lock_writer();
            let base = t.meta_shared();
            let (next_version, replace_from) = plan_version(&base, requested)?;
            pending.insert(
                t.tablet_id,
                Mutex::new(Pending {
                    permit,
                    base,
                    next_version,
                    replace_from,
                    new_rowsets: Vec::new(),
                    written: Vec::new(),
                }),
            );
        }
        Ok(LoadBatch {
            engine: self,
            durability,
            pending,
        })
    }

    /// Loads `rows` into a tablet as its next version (newest + 1), durable on
    /// return, split into segments of at most `max_rows_per_segment` rows.
    pub fn load(&self, tablet_id: u64, rows: &[Row]) -> Result<u64> {
        let batch = self.begin_load(&[tablet_id], Durability::PerFile)?;
        self.load_into(batch, tablet_id, rows)
    }

    /// Loads `rows` into a tablet as exactly `version` (see [`Engine::begin_load_at`]).
    pub fn load_at(&self, tablet_id: u64, version: u64, rows: &[Row]) -> Result<()> {
        let batch = self.begin_load_at(&[(tablet_id, version)], Durability::PerFile)?;
        self.load_into(batch, tablet_id, rows).map(|_| ())
    }

    fn load_into(&self, batch: LoadBatch<'_>, tablet_id: u64, rows: &[Row]) -> Result<u64> {
        let per = self.opts.max_rows_per_segment.max(1);
        let segments: Vec<&[Row]> = if rows.is_empty() {
            vec![rows]
        } else {
            rows.chunks(per).collect()
        };
        let v = batch.add(tablet_id, &segments)?;
        batch.commit()?;
        Ok(v)
    }
}

impl LoadBatch<'_> {
    /// Writes one new version of `tablet_id` made of these segments (not yet
    /// visible) and returns the version it will have. Safe to call from many
    /// threads for different tablets.
    pub fn add(&self, tablet_id: u64, segments: &[&[Row]]) -> Result<u64> {
        let slot = self.pending.get(&tablet_id).ok_or_else(|| {
            Error::InvalidArgument(format!("tablet {tablet_id} is not part of this load batch"))
        })?;
        crate::failpoint::check("engine::load::tablet", tablet_id)?;
        let mut guard = slot.lock();
        let p = &mut *guard;
        let schema = &p.base.schema;
        for seg in segments {
            for row in seg.iter() {
                schema
                    .check_row(row)
                    .map_err(|e| Error::InvalidArgument(format!("tablet {tablet_id}: {e}")))?;
            }
        }
        let version = p.next_version;
        if version == u64::MAX {
            return Err(Error::VersionRefused {
                tablet_id,
                version,
                detail: "versions stop below u64::MAX".into(),
            });
        }
        let rowset_id = self.engine.alloc_rowset_id()?;
        let sync = self.durability == Durability::PerFile;
        let dir = p.permit.tablet().dir().to_path_buf();
        let mut metas = Vec::with_capacity(segments.len());
        for (i, seg) in segments.iter().enumerate() {
            let img = encode_segment(schema, seg, self.engine.opts.rows_per_page);
            let name = crate::rowset::segment_file_name(rowset_id, i);
            let path = dir.join(&name);
            fail::fail_point!("engine::load::before_segment_write", |_| Err(
                Error::FailPoint("engine::load::before_segment_write".into())
            ));
            file::write_new(&path, &img, sync)?;
            p.written.push(name);
            metas.push(SegmentMeta {
                size: img.len() as u64,
                crc32: crc32fast::hash(&img),
                num_rows: seg.len() as u64,
            });
        }
        let rs = RowsetMeta {
            rowset_id,
            start_version: version,
            end_version: version,
            num_rows: metas.iter().map(|s| s.num_rows).sum(),
            data_size: metas.iter().map(|s| s.size).sum(),
            segments: metas,
            creation_time_ms: now_ms(),
        };
        p.new_rowsets.push(rs);
        p.next_version = version + 1;
        Ok(version)
    }

    /// Publishes every added version: segment data before the metas that make
    /// it visible, all durable before this returns. Returns each tablet's new max version.
    pub fn commit(mut self) -> Result<HashMap<u64, u64>> {
        let mut pending: Vec<Pending> = std::mem::take(&mut self.pending)
            .into_values()
            .map(|m| m.into_inner())
            .filter(|p| !p.new_rowsets.is_empty())
            .collect();
        let per_file = self.durability == Durability::PerFile;
        let metas: Result<Vec<TabletMeta>> = pending
            .par_iter()
            .map(|p| {
                let mut meta = TabletMeta::clone(&p.base);
                if let Some(from) = p.replace_from {
                    // Unpublished leftovers go stale in this very swap; GC
                    // frees their files once no reader pins them.
                    let (keep, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut meta.rowsets)
                        .into_iter()
                        .partition(|r| r.end_version < from);
                    meta.rowsets = keep;
                    meta.stale_rowsets
                        .extend(gone.into_iter().map(|rowset| StaleRowset {
                            rowset,
                            stale_since_ms: 0,
                        }));
                }
                meta.rowsets.extend(p.new_rowsets.iter().cloned());
                file::write_tmp(&p.permit.tablet().meta_path(), &meta.encode(), per_file)?;
                Ok(meta)
            })
            .collect();
        let metas = match metas {
            Ok(m) => m,
            Err(e) => {
                pending.iter_mut().for_each(Pending::discard);
                return Err(e);
            }
        };
        // Each base is the tablet's own meta, shared until the swap replaces it.
        let staged: Vec<(Pending, TabletMeta)> = pending.into_iter().zip(metas).collect();
        // A crash here leaves segment files and temp metas that recovery removes.
        fail::fail_point!("engine::load::before_meta_commit", |_| Err(
            Error::FailPoint("engine::load::before_meta_commit".into())
        ));
        let metas: Vec<(usize, PathBuf)> = staged
            .iter()
            .map(|(p, _)| (p.permit.tablet().store, p.permit.tablet().meta_path()))
            .collect();
        if let Err(e) = self.engine.commit_metas(&metas, per_file) {
            // Which metas were renamed is unknown: reload from disk is the only honest state.
            for (p, _) in &staged {
                if let Ok(buf) = std::fs::read(p.permit.tablet().meta_path()) {
                    if let Ok(m) = TabletMeta::decode(&p.permit.tablet().meta_path(), &buf) {
                        p.permit.tablet().set_meta(m);
                    }
                }
            }
            return Err(e);
        }
        let mut out = HashMap::with_capacity(staged.len());
        let mut replaced = Vec::new();
        for (p, meta) in staged {
            out.insert(meta.tablet_id, meta.max_version());
            p.permit.tablet().set_meta(meta);
            if p.replace_from.is_some() {
                replaced.push(Arc::clone(p.permit.tablet()));
            }
        }
        // The versions are published; freeing the replaced files is best
        // effort: what is left stays listed as stale, for the next GC or
        // recovery on open.
        if !replaced.is_empty() {
            let _ = self.engine.gc_tablets(&replaced, 0);
        }
        Ok(out)
    }

    fn discard_files(&self) {
        for slot in self.pending.values() {
            slot.lock().discard();
        }
    }
}

impl Drop for LoadBatch<'_> {
    /// An uncommitted batch leaves nothing behind (recovery would remove it too).
    fn drop(&mut self) {
        self.discard_files();
    }
}
