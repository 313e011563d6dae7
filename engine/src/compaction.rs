//! Compaction merges a run of consecutive rowsets into one covering their
//! range; the replaced rowsets become stale and GC deletes their files after
//! a delay, once no reader pins them.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use crate::engine::{now_ms, Engine};
use crate::error::{Error, Result};
use crate::file;
use crate::rowset::{RowsetMeta, SegmentMeta};
use crate::segment::encode_segment;
use crate::tablet::Tablet;
use crate::tablet_meta::StaleRowset;

/// What a GC pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GcStats {
    /// Stale rowsets dropped from metas.
    pub rowsets_removed: usize,
    /// Segment files deleted.
    pub files_removed: usize,
}

impl Engine {
    /// Merges the rowsets exactly covering versions `[start, end]` into one.
    ///
    /// `visible_version` is the newest version the caller (the coordinator)
    /// has made visible: versions above it may be leftovers of a load that
    /// failed elsewhere, which the next load at that version replaces, so
    /// they are never merged (a merged rowset could not be replaced without
    /// losing the visible versions in it). A range ending above it is refused.
    pub fn compact(
        &self,
        tablet_id: u64,
        start: u64,
        end: u64,
        visible_version: u64,
    ) -> Result<RowsetMeta> {
        if end > visible_version {
            return Err(Error::InvalidArgument(format!(
                "tablet {tablet_id}: cannot compact [{start}-{end}]: versions above the visible version {visible_version} may still be replaced"
            )));
        }
        let tablet = self.tablet(tablet_id)?;
        let (schema, inputs, pin) = tablet.with_meta(|m| {
            let run: Vec<RowsetMeta> = m
                .rowsets
                .iter()
                .filter(|r| r.start_version >= start && r.end_version <= end)
                .cloned()
                .collect();
            let exact = run.first().is_some_and(|r| r.start_version == start)
                && run.last().is_some_and(|r| r.end_version == end);
            if !exact || run.len() < 2 {
                return Err(Error::InvalidArgument(format!(
                    "tablet {tablet_id}: no run of two or more rowsets covers exactly [{start}-{end}]"
                )));
            }
            let pin = tablet.pin(&run);
            Ok((m.schema.clone(), run, pin))
        })?;
        let mut rows = Vec::new();
        for rs in &inputs {
            for i in 0..rs.segments.len() {
                let path = self.segment_path(&tablet, rs, i);
                rows.append(&mut crate::read::read_segment(&path, &schema, rs, i)?);
            }
        }
        drop(pin);
        let rowset_id = self.alloc_rowset_id()?;
        let per = self.opts.max_rows_per_segment.max(1);
        let chunks: Vec<&[crate::schema::Row]> = if rows.is_empty() {
            Vec::new()
        } else {
            rows.chunks(per).collect()
        };
        let mut segments = Vec::with_capacity(chunks.len());
        let mut written = Vec::new();
        let out = chunks.iter().enumerate().try_for_each(|(i, chunk)| {
            let img = encode_segment(&schema, chunk, self.opts.rows_per_page);
            let path = tablet
                .dir()
                .join(crate::rowset::segment_file_name(rowset_id, i));
            file::write_new(&path, &img, true)?;
            written.push(path);
            segments.push(SegmentMeta {
                size: img.len() as u64,
                crc32: crc32fast::hash(&img),
                num_rows: chunk.len() as u64,
            });
            Ok(())
        });
        let cleanup = |written: &[std::path::PathBuf]| {
            for p in written {
                let _ = file::remove_file_if_exists(p);
            }
        };
        if let Err(e) = out {
            cleanup(&written);
            return Err(e);
        }
        let merged = RowsetMeta {
            rowset_id,
            start_version: start,
            end_version: end,
            num_rows: segments.iter().map(|s| s.num_rows).sum(),
            data_size: segments.iter().map(|s| s.size).sum(),
            segments,
            creation_time_ms: now_ms(),
        };
        let _permit = tablet.lock_writer();
        let mut meta = tablet.meta();
        let input_ids: HashSet<_> = inputs.iter().map(|r| r.rowset_id).collect();
        let still_there = meta
            .rowsets
            .iter()
            .filter(|r| input_ids.contains(&r.rowset_id))
            .count();
        if still_there != inputs.len() {
            cleanup(&written);
            return Err(Error::InvalidArgument(format!(
                "tablet {tablet_id}: rowsets of [{start}-{end}] changed during compaction"
            )));
        }
        let now = now_ms();
        let pos = meta
            .rowsets
            .iter()
            .position(|r| r.rowset_id == inputs[0].rowset_id)
            .unwrap_or(0);
        meta.rowsets.retain(|r| !input_ids.contains(&r.rowset_id));
        meta.rowsets.insert(pos, merged.clone());
        meta.stale_rowsets
            .extend(inputs.into_iter().map(|rowset| StaleRowset {
                rowset,
                stale_since_ms: now,
            }));
        if let Err(e) = file::write_atomic(&tablet.meta_path(), &meta.encode()) {
            cleanup(&written);
            return Err(e);
        }
        tablet.set_meta(meta);
        Ok(merged)
    }

    /// Deletes the files of stale rowsets older than the configured delay that
    /// no reader pins. The meta forgets them first, so a crash leaves only
    /// orphans that recovery removes.
    pub fn gc(&self) -> Result<GcStats> {
        let delay = self.opts.stale_rowset_delay.as_millis() as u64;
        self.gc_older_than(now_ms().saturating_sub(delay))
    }

    /// GC with an explicit cutoff: stale rowsets that went stale at or before `cutoff_ms`.
    pub fn gc_older_than(&self, cutoff_ms: u64) -> Result<GcStats> {
        let tablets: Vec<_> = self.tablets.read().values().cloned().collect();
        self.gc_tablets(&tablets, cutoff_ms)
    }

    /// GC of these tablets' stale rowsets that went stale at or before
    /// `cutoff_ms` and no reader pins. All their new metas are written and
    /// made durable together (two barriers for the batch, not two fsyncs a
    /// tablet), then the files are deleted. Writer locks are taken in
    /// tablet-id order, as load batches do.
    pub(crate) fn gc_tablets(&self, tablets: &[Arc<Tablet>], cutoff_ms: u64) -> Result<GcStats> {
        let mut stats = GcStats::default();
        let due = |t: &Tablet, s: &StaleRowset| {
            s.stale_since_ms <= cutoff_ms && !t.is_pinned(s.rowset.rowset_id)
        };
        let mut candidates: Vec<&Arc<Tablet>> = tablets
            .iter()
            .filter(|t| t.with_meta(|m| m.stale_rowsets.iter().any(|s| due(t, s))))
            .collect();
        if candidates.is_empty() {
            return Ok(stats);
        }
        candidates.sort_by_key(|t| t.tablet_id);
        candidates.dedup_by_key(|t| t.tablet_id);
        let mut staged = Vec::with_capacity(candidates.len());
        for t in candidates {
            let permit = t.lock_writer();
            let mut meta = t.meta();
            let (gone, keep): (Vec<StaleRowset>, Vec<StaleRowset>) =
                meta.stale_rowsets.drain(..).partition(|s| due(t, s));
            if gone.is_empty() {
                continue;
            }
            meta.stale_rowsets = keep;
            staged.push((permit, meta, gone));
        }
        fail::fail_point!("engine::gc::before_meta", |_| Err(Error::FailPoint(
            "engine::gc::before_meta".into()
        )));
        let per_file = staged.len() == 1;
        let metas: Vec<(usize, PathBuf)> = staged
            .iter()
            .map(|(p, _, _)| (p.tablet().store, p.tablet().meta_path()))
            .collect();
        let written = staged.par_iter().try_for_each(|(p, meta, _)| {
            file::write_tmp(&p.tablet().meta_path(), &meta.encode(), per_file)
        });
        if let Err(e) = written.and_then(|()| self.commit_metas(&metas, per_file)) {
            // Memory still lists every stale rowset and no file was deleted,
            // so whichever metas did swap, the next GC finishes the job.
            for (_, p) in &metas {
                let _ = file::remove_file_if_exists(&file::tmp_path(p));
            }
            return Err(e);
        }
        for (permit, meta, gone) in staged {
            permit.tablet().set_meta(meta);
            for s in gone {
                stats.rowsets_removed += 1;
                for (name, _) in s.rowset.files() {
                    // Not synced: a deletion lost in a crash leaves an orphan
                    // that recovery removes.
                    file::remove_file_if_exists(&permit.tablet().dir().join(name))?;
                    stats.files_removed += 1;
                }
            }
        }
        Ok(stats)
    }
}
