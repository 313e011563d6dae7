//! Rowsets: the immutable output of one load (or one compaction), covering a
//! version range, made of segment files.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A 128-bit rowset id, never reused by an engine (across restarts too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RowsetId(pub u128);

impl fmt::Display for RowsetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl RowsetId {
    /// Parses the 32-hex-digit form used in file names.
    pub fn parse(s: &str) -> Option<RowsetId> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u128::from_str_radix(s, 16).ok().map(RowsetId)
    }
}

/// One segment file of a rowset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// File size in bytes.
    pub size: u64,
    /// crc32 of the whole file.
    pub crc32: u32,
    /// Rows in the segment.
    pub num_rows: u64,
}

/// A rowset's meta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowsetMeta {
    /// Unique id; names the files.
    pub rowset_id: RowsetId,
    /// First version covered.
    pub start_version: u64,
    /// Last version covered (inclusive).
    pub end_version: u64,
    /// Segment files in order.
    pub segments: Vec<SegmentMeta>,
    /// Total rows.
    pub num_rows: u64,
    /// Total bytes of the segment files.
    pub data_size: u64,
    /// Creation time, milliseconds since the epoch.
    pub creation_time_ms: u64,
}

impl RowsetMeta {
    /// The file name of segment `i`: `<rowset_id>_<i>.dat`.
    pub fn segment_file_name(&self, i: usize) -> String {
        segment_file_name(self.rowset_id, i)
    }

    /// All segment file names with their metas.
    pub fn files(&self) -> impl Iterator<Item = (String, &SegmentMeta)> + '_ {
        self.segments
            .iter()
            .enumerate()
            .map(|(i, s)| (self.segment_file_name(i), s))
    }

    /// `[start-end]`, for messages.
    pub fn version_label(&self) -> String {
        format!("[{}-{}]", self.start_version, self.end_version)
    }
}

/// The file name of segment `i` of rowset `id`.
pub fn segment_file_name(id: RowsetId, i: usize) -> String {
    format!("{id}_{i}.dat")
}

/// Splits a segment file name into rowset id and segment index.
pub fn parse_segment_file_name(name: &str) -> Option<(RowsetId, usize)> {
    let stem = name.strip_suffix(".dat")?;
    let (id, idx) = stem.split_once('_')?;
    Some((RowsetId::parse(id)?, idx.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        let id = RowsetId(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        let name = segment_file_name(id, 3);
        assert_eq!(name, "0123456789abcdef0011223344556677_3.dat");
        assert_eq!(parse_segment_file_name(&name), Some((id, 3)));
        assert_eq!(parse_segment_file_name("meta"), None);
        assert_eq!(parse_segment_file_name("zz_1.dat"), None);
    }
}
