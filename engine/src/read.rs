//! Reads: the rows visible at a version, and an order-independent checksum
//! of them that proves a restore equals its source.

use std::path::Path;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::rowset::{RowsetMeta, SegmentMeta};
use crate::schema::{Row, Schema};
use crate::segment::decode_segment;

/// An order-independent digest of a tablet's rows at a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TabletChecksum {
    /// Wrapping sum of a 64-bit hash of each row.
    pub checksum: u64,
    /// Number of rows.
    pub rows: u64,
}

impl TabletChecksum {
    /// Folds another digest in (digests of disjoint row sets add up).
    pub fn combine(&mut self, other: TabletChecksum) {
        self.checksum = self.checksum.wrapping_add(other.checksum);
        self.rows += other.rows;
    }
}

/// 64-bit hash of a row's canonical encoding.
pub fn row_hash(row: &Row, scratch: &mut Vec<u8>) -> u64 {
    scratch.clear();
    for v in row {
        v.encode_canonical(scratch);
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in scratch.iter() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    crate::hash::splitmix64(h)
}

/// Reads a segment file and checks its size and whole-file crc32 against its
/// meta; `what` names the file in a checksum error.
pub fn read_verified(
    path: &Path,
    seg: &SegmentMeta,
    what: impl FnOnce() -> String,
) -> Result<Vec<u8>> {
    let buf = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if buf.len() as u64 != seg.size {
        return Err(Error::corrupt(
            path,
            format!("file is {} bytes, meta says {}", buf.len(), seg.size),
        ));
    }
    let actual = crc32fast::hash(&buf);
    if actual != seg.crc32 {
        return Err(Error::ChecksumMismatch {
            what: what(),
            expected: seg.crc32,
            actual,
        });
    }
    Ok(buf)
}

/// Reads and verifies one segment file against its meta (size, whole-file crc, then format).
pub fn read_segment(path: &Path, schema: &Schema, rs: &RowsetMeta, i: usize) -> Result<Vec<Row>> {
    let buf = read_verified(path, &rs.segments[i], || {
        format!("segment file {}", path.display())
    })?;
    decode_segment(path, schema, &buf)
}

impl Engine {
    /// Calls `f` with the rows of every segment visible at `version`
    /// (the newest when `None`), in version order.
    pub fn for_each_segment(
        &self,
        tablet_id: u64,
        version: Option<u64>,
        mut f: impl FnMut(Vec<Row>) -> Result<()>,
    ) -> Result<u64> {
        let tablet = self.tablet(tablet_id)?;
        // Pin under the meta lock, so GC cannot free a rowset between lookup and read.
        let (schema, rowsets, version, _pin) = tablet.with_meta(|m| {
            let v = version.unwrap_or_else(|| m.max_version());
            m.rowsets_for(v)
                .map(|r| (m.schema.clone(), r.to_vec(), v, tablet.pin(r)))
        })?;
        for rs in &rowsets {
            for i in 0..rs.segments.len() {
                f(read_segment(
                    &self.segment_path(&tablet, rs, i),
                    &schema,
                    rs,
                    i,
                )?)?;
            }
        }
        Ok(version)
    }

    /// All rows of `tablet_id` visible at `version` (the newest when `None`).
    pub fn scan(&self, tablet_id: u64, version: Option<u64>) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        self.for_each_segment(tablet_id, version, |mut seg| {
            rows.append(&mut seg);
            Ok(())
        })?;
        Ok(rows)
    }

    /// The order-independent checksum of the rows visible at `version`.
    pub fn checksum(&self, tablet_id: u64, version: Option<u64>) -> Result<TabletChecksum> {
        let mut sum = TabletChecksum::default();
        let mut scratch = Vec::new();
        self.for_each_segment(tablet_id, version, |seg| {
            for row in &seg {
                sum.checksum = sum.checksum.wrapping_add(row_hash(row, &mut scratch));
                sum.rows += 1;
            }
            Ok(())
        })?;
        Ok(sum)
    }
}
