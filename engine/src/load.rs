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
use crate::tablet_meta::TabletMeta;

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
    base: TabletMeta,
    new_rowsets: Vec<RowsetMeta>,
    written: Vec<PathBuf>,
}

/// Versions in flight on a set of tablets; published together by [`LoadBatch::commit`].
pub struct LoadBatch<'e> {
    engine: &'e Engine,
    durability: Durability,
    pending: HashMap<u64, Mutex<Pending>>,
}

impl Engine {
    /// Starts a batch on `tablet_ids`, taking their writer locks in id order
    /// (so concurrent batches cannot deadlock).
    pub fn begin_load(&self, tablet_ids: &[u64], durability: Durability) -> Result<LoadBatch<'_>> {
        let mut ids = tablet_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let tablets: Vec<Arc<Tablet>> = ids
            .iter()
            .map(|id| self.tablet(*id))
            .collect::<Result<_>>()?;
        let mut pending = HashMap::with_capacity(tablets.len());
        for t in tablets {
            let permit = t.lock_writer();
            let base = t.meta();
            pending.insert(
                t.tablet_id,
                Mutex::new(Pending {
                    permit,
                    base,
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

    /// Loads `rows` into a tablet as one new version (durable on return),
    /// split into segments of at most `max_rows_per_segment` rows.
    pub fn load(&self, tablet_id: u64, rows: &[Row]) -> Result<u64> {
        let per = self.opts.max_rows_per_segment.max(1);
        let segments: Vec<&[Row]> = if rows.is_empty() {
            vec![rows]
        } else {
            rows.chunks(per).collect()
        };
        let batch = self.begin_load(&[tablet_id], Durability::PerFile)?;
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
        let rowset_id = self.engine.alloc_rowset_id()?;
        let version = p
            .new_rowsets
            .last()
            .map_or(p.base.max_version(), |r| r.end_version)
            + 1;
        let sync = self.durability == Durability::PerFile;
        let dir = p.permit.tablet().dir().to_path_buf();
        let mut metas = Vec::with_capacity(segments.len());
        for (i, seg) in segments.iter().enumerate() {
            let img = encode_segment(schema, seg, self.engine.opts.rows_per_page);
            let path = dir.join(crate::rowset::segment_file_name(rowset_id, i));
            fail::fail_point!("engine::load::before_segment_write", |_| Err(
                Error::FailPoint("engine::load::before_segment_write".into())
            ));
            file::write_new(&path, &img, sync)?;
            p.written.push(path);
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
        Ok(version)
    }

    /// Publishes every added version: segment data before the metas that make
    /// it visible, all durable before this returns. Returns each tablet's new max version.
    pub fn commit(mut self) -> Result<HashMap<u64, u64>> {
        let pending: Vec<Pending> = std::mem::take(&mut self.pending)
            .into_values()
            .map(|m| m.into_inner())
            .filter(|p| !p.new_rowsets.is_empty())
            .collect();
        let written: Vec<PathBuf> = pending
            .iter()
            .flat_map(|p| p.written.iter().cloned())
            .collect();
        let discard = || {
            for path in &written {
                let _ = file::remove_file_if_exists(path);
            }
        };
        let per_file = self.durability == Durability::PerFile;
        let staged: Vec<(Pending, TabletMeta)> = pending
            .into_par_iter()
            .map(|p| {
                let mut meta = p.base.clone();
                meta.rowsets.extend(p.new_rowsets.iter().cloned());
                file::write_tmp(&p.permit.tablet().meta_path(), &meta.encode(), per_file)?;
                Ok((p, meta))
            })
            .collect::<Result<_>>()
            .inspect_err(|_| discard())?;
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
        for (p, meta) in staged {
            out.insert(meta.tablet_id, meta.max_version());
            p.permit.tablet().set_meta(meta);
        }
        Ok(out)
    }

    fn discard_files(&self) {
        for slot in self.pending.values() {
            for path in slot.lock().written.drain(..) {
                let _ = file::remove_file_if_exists(&path);
            }
        }
    }
}

impl Drop for LoadBatch<'_> {
    /// An uncommitted batch leaves nothing behind (recovery would remove it too).
    fn drop(&mut self) {
        self.discard_files();
    }
}
