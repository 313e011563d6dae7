//! Compaction merges a run of consecutive rowsets into one covering their
//! range; the replaced rowsets become stale and GC deletes their files after
//! a delay, once no reader pins them.

use std::collections::HashSet;
use std::sync::Arc;

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
    pub fn compact(&self, tablet_id: u64, start: u64, end: u64) -> Result<RowsetMeta> {
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
        let mut stats = GcStats::default();
        let tablets: Vec<_> = self.tablets.read().values().cloned().collect();
        for tablet in tablets {
            let s = self.gc_tablet(&tablet, cutoff_ms)?;
            stats.rowsets_removed += s.rowsets_removed;
            stats.files_removed += s.files_removed;
        }
        Ok(stats)
    }

    /// GC of one tablet's stale rowsets that went stale at or before `cutoff_ms`.
    pub(crate) fn gc_tablet(&self, tablet: &Arc<Tablet>, cutoff_ms: u64) -> Result<GcStats> {
        let mut stats = GcStats::default();
        let due = |s: &StaleRowset| {
            s.stale_since_ms <= cutoff_ms && !tablet.is_pinned(s.rowset.rowset_id)
        };
        if !tablet.with_meta(|m| m.stale_rowsets.iter().any(due)) {
            return Ok(stats);
        }
        let _permit = tablet.lock_writer();
        let mut meta = tablet.meta();
        let (gone, keep): (Vec<StaleRowset>, Vec<StaleRowset>) =
            meta.stale_rowsets.drain(..).partition(due);
        meta.stale_rowsets = keep;
        fail::fail_point!("engine::gc::before_meta", |_| Err(Error::FailPoint(
            "engine::gc::before_meta".into()
        )));
        file::write_atomic(&tablet.meta_path(), &meta.encode())?;
        tablet.set_meta(meta);
        for s in gone {
            stats.rowsets_removed += 1;
            for (name, _) in s.rowset.files() {
                file::remove_file_if_exists(&tablet.dir().join(name))?;
                stats.files_removed += 1;
            }
        }
        Ok(stats)
    }
}
