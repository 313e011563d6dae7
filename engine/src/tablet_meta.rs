//! Tablet meta: identity, schema and rowsets, stored as one file per tablet
//! (`<tablet dir>/tablet.meta`) with a magic, a format version and a crc32 trailer.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rowset::RowsetMeta;
use crate::schema::Schema;

/// File name of a tablet's meta inside its directory.
pub const META_FILE_NAME: &str = "tablet.meta";
/// Leading magic of a meta file.
pub const META_MAGIC: &[u8; 4] = b"TSMT";
/// Newest meta format this build writes and reads.
pub const META_FORMAT_VERSION: u32 = 2;

/// Format 2's encoding: bincode with variable-width integers. A tablet's
/// meta lists every rowset (versions, sizes, row counts, times), and fixed
/// 8-byte integers made it twice the size: ~2 KB for 24 rowsets, uploaded
/// again by every incremental backup of the tablet. Format 1 (bincode 1's
/// legacy fixed-width options) is still read.
fn varint() -> impl bincode::Options {
    use bincode::Options;
    bincode::DefaultOptions::new()
        .with_varint_encoding()
        .with_little_endian()
}

/// A rowset replaced by compaction or overwrite, kept until GC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleRowset {
    /// The replaced rowset.
    pub rowset: RowsetMeta,
    /// When it became stale, milliseconds since the epoch.
    pub stale_since_ms: u64,
}

/// Everything that describes a tablet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TabletMeta {
    /// Owning table.
    pub table_id: u64,
    /// Owning partition.
    pub partition_id: u64,
    /// This tablet.
    pub tablet_id: u64,
    /// Schema hash (part of the directory path).
    pub schema_hash: u32,
    /// Column schema.
    pub schema: Schema,
    /// Visible rowsets, sorted by version, contiguous from version 0.
    pub rowsets: Vec<RowsetMeta>,
    /// Replaced rowsets awaiting garbage collection.
    pub stale_rowsets: Vec<StaleRowset>,
    /// Creation time, milliseconds since the epoch.
    pub creation_time_ms: u64,
}

/// A rowset's row count and size equal the sums over its segments, and
/// those sums do not overflow.
fn check_rowset_sums(t: u64, r: &RowsetMeta) -> std::result::Result<(), String> {
    let overflow = |what: &str| {
        format!(
            "tablet {t}: rowset {} has segment {what} whose sum overflows u64",
            r.rowset_id
        )
    };
    let rows = r
        .segments
        .iter()
        .try_fold(0u64, |acc, s| acc.checked_add(s.num_rows))
        .ok_or_else(|| overflow("row counts"))?;
    let size = r
        .segments
        .iter()
        .try_fold(0u64, |acc, s| acc.checked_add(s.size))
        .ok_or_else(|| overflow("sizes"))?;
    if rows != r.num_rows || size != r.data_size {
        return Err(format!(
            "tablet {t}: rowset {} row count or size disagrees with its segments",
            r.rowset_id
        ));
    }
    Ok(())
}

impl TabletMeta {
    /// The newest published version (the end of the last rowset).
    pub fn max_version(&self) -> u64 {
        self.rowsets.last().map_or(0, |r| r.end_version)
    }

    /// Total rows visible at the max version. A validated meta's total fits
    /// (`validate` checks it); beyond that it saturates rather than wrap.
    pub fn num_rows(&self) -> u64 {
        self.rowsets
            .iter()
            .fold(0u64, |acc, r| acc.saturating_add(r.num_rows))
    }

    /// Total bytes of visible segment files (saturating, like [`TabletMeta::num_rows`]).
    pub fn data_size(&self) -> u64 {
        self.rowsets
            .iter()
            .fold(0u64, |acc, r| acc.saturating_add(r.data_size))
    }

    /// The rowsets that exactly cover [0, version], or why not.
    pub fn rowsets_for(&self, version: u64) -> Result<&[RowsetMeta]> {
        let max = self.max_version();
        if version > max {
            return Err(Error::VersionNotFound {
                tablet_id: self.tablet_id,
                version,
                max_version: max,
            });
        }
        for (i, r) in self.rowsets.iter().enumerate() {
            if r.end_version == version {
                return Ok(&self.rowsets[..=i]);
            }
            if r.start_version <= version && version < r.end_version {
                return Err(Error::VersionAlreadyMerged {
                    tablet_id: self.tablet_id,
                    version,
                    start: r.start_version,
                    end: r.end_version,
                });
            }
        }
        Err(Error::VersionNotFound {
            tablet_id: self.tablet_id,
            version,
            max_version: max,
        })
    }

    /// The rowsets exactly covering (version, max]: what a copy of this
    /// tablet at `version` lacks. Fails like [`TabletMeta::rowsets_for`] when
    /// `version` is not the end of a rowset (merged by compaction, or past max).
    pub fn rowsets_after(&self, version: u64) -> Result<&[RowsetMeta]> {
        let n = self.rowsets_for(version)?.len();
        Ok(&self.rowsets[n..])
    }

    /// A copy holding only the rowsets covering [0, version] and no stale ones.
    pub fn restricted_to(&self, version: u64) -> Result<TabletMeta> {
        let rowsets = self.rowsets_for(version)?.to_vec();
        Ok(TabletMeta {
            rowsets,
            stale_rowsets: Vec::new(),
            ..self.clone()
        })
    }

    /// Checks the invariants: rowsets contiguous from 0, every version below
    /// `u64::MAX` (so the next version always fits), segment sums consistent,
    /// and no sum of rows or bytes overflowing. Messages name the tablet; the
    /// decoder adds the file.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let t = self.tablet_id;
        let mut next = 0u64;
        let (mut rows_total, mut size_total) = (0u64, 0u64);
        for r in &self.rowsets {
            if r.start_version != next || r.end_version < r.start_version {
                return Err(format!(
                    "tablet {t}: rowset {} covers {} but version {next} was expected next",
                    r.rowset_id,
                    r.version_label()
                ));
            }
            if r.end_version == u64::MAX {
                return Err(format!(
                    "tablet {t}: rowset {} ends at version u64::MAX; versions stay below it",
                    r.rowset_id
                ));
            }
            next = r.end_version + 1;
            check_rowset_sums(t, r)?;
            rows_total = rows_total.checked_add(r.num_rows).ok_or_else(|| {
                format!("tablet {t}: the total row count of its rowsets overflows u64")
            })?;
            size_total = size_total.checked_add(r.data_size).ok_or_else(|| {
                format!("tablet {t}: the total data size of its rowsets overflows u64")
            })?;
        }
        for stale in &self.stale_rowsets {
            check_rowset_sums(t, &stale.rowset)?;
        }
        Ok(())
    }

    /// Serializes with magic, version and crc trailer.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.rowsets.len() * 96);
        out.extend_from_slice(META_MAGIC);
        out.extend_from_slice(&META_FORMAT_VERSION.to_le_bytes());
        #[expect(
            clippy::expect_used,
            reason = "serializing plain structs to a Vec cannot fail"
        )]
        bincode::Options::serialize_into(varint(), &mut out, self).expect("serialize tablet meta");
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses and verifies a meta image read from `path`.
    pub fn decode(path: &Path, buf: &[u8]) -> Result<TabletMeta> {
        if buf.len() < 12 {
            return Err(Error::corrupt(path, "meta file is truncated"));
        }
        if &buf[..4] != META_MAGIC {
            return Err(Error::corrupt(path, "bad meta magic"));
        }
        let (body, trailer) = buf.split_at(buf.len() - 4);
        let expected = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let actual = crc32fast::hash(body);
        if expected != actual {
            return Err(Error::ChecksumMismatch {
                what: format!("tablet meta {}", path.display()),
                expected,
                actual,
            });
        }
        let version = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let decoded: std::result::Result<TabletMeta, bincode::Error> = match version {
            1 => bincode::deserialize(&body[8..]),
            2 => bincode::Options::deserialize(varint(), &body[8..]),
            _ => {
                return Err(Error::UnsupportedVersion {
                    path: path.to_path_buf(),
                    found: version,
                    supported: META_FORMAT_VERSION,
                })
            }
        };
        let meta =
            decoded.map_err(|e| Error::corrupt(path, format!("meta does not decode: {e}")))?;
        meta.validate().map_err(|e| Error::corrupt(path, e))?;
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rowset::{RowsetId, SegmentMeta};
    use crate::schema::{Column, ColumnType};

    pub(crate) fn sample() -> TabletMeta {
        let rs = |id: u128, s: u64, e: u64| RowsetMeta {
            rowset_id: RowsetId(id),
            start_version: s,
            end_version: e,
            segments: vec![SegmentMeta {
                size: 10,
                crc32: 7,
                num_rows: 2,
            }],
            num_rows: 2,
            data_size: 10,
            creation_time_ms: 1,
        };
        TabletMeta {
            table_id: 1,
            partition_id: 2,
            tablet_id: 3,
            schema_hash: 4,
            schema: Schema::new(vec![Column::new("k", ColumnType::Int).key()]),
            rowsets: vec![rs(1, 0, 1), rs(2, 2, 4), rs(3, 5, 5)],
            stale_rowsets: vec![],
            creation_time_ms: 9,
        }
    }

    /// A meta written by a build before format 2 (fixed-width integers)
    /// still reads; format 2 is much smaller.
    #[test]
    fn format_1_still_reads_and_format_2_is_smaller() -> Result<()> {
        let m = sample();
        let mut v1 = Vec::new();
        v1.extend_from_slice(META_MAGIC);
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(
            &bincode::serialize(&m).map_err(|e| Error::corrupt(Path::new("m"), e.to_string()))?,
        );
        let crc = crc32fast::hash(&v1);
        v1.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(TabletMeta::decode(Path::new("m"), &v1)?, m);
        let v2 = m.encode();
        assert_eq!(v2[4..8], 2u32.to_le_bytes());
        assert!(v2.len() * 3 < v1.len() * 2, "{} vs {}", v2.len(), v1.len());
        Ok(())
    }

    #[test]
    fn round_trip_and_every_flip_detected() -> Result<()> {
        let m = sample();
        let img = m.encode();
        assert_eq!(TabletMeta::decode(Path::new("m"), &img)?, m);
        for i in 0..img.len() {
            let mut bad = img.clone();
            bad[i] ^= 0x10;
            assert!(
                TabletMeta::decode(Path::new("m"), &bad).is_err(),
                "flip at {i}"
            );
        }
        for n in 0..img.len() {
            assert!(
                TabletMeta::decode(Path::new("m"), &img[..n]).is_err(),
                "cut at {n}"
            );
        }
        Ok(())
    }

    /// Decoding `m` (encoded with a valid crc, so only the checks of the
    /// content can refuse it) fails naming the file and the tablet.
    fn assert_refused(m: &TabletMeta, needle: &str) {
        let img = m.encode();
        let err = match TabletMeta::decode(Path::new("dir/tablet.meta"), &img) {
            Ok(_) => panic!("a meta that overflows was accepted ({needle})"),
            Err(e) => e,
        };
        let msg = err.to_string();
        assert!(matches!(err, Error::Corruption { .. }), "{msg}");
        assert!(msg.contains("dir/tablet.meta"), "{msg}");
        assert!(msg.contains("tablet 3"), "{msg}");
        assert!(msg.contains(needle), "{msg}");
    }

    #[test]
    fn overflowing_versions_sizes_and_counts_are_corruption() {
        // A version at u64::MAX: max_version() + 1 would overflow.
        let mut m = sample();
        m.rowsets[2].start_version = 5;
        m.rowsets[2].end_version = u64::MAX;
        assert_refused(&m, "u64::MAX");
        // A version range that wraps the next expected version.
        let mut m = sample();
        m.rowsets.truncate(2);
        m.rowsets[1].end_version = u64::MAX;
        assert_refused(&m, "u64::MAX");
        // Segment sizes whose sum overflows (and wraps to the recorded size).
        let mut m = sample();
        let seg = m.rowsets[1].segments[0].clone();
        m.rowsets[1].segments = vec![
            SegmentMeta {
                size: u64::MAX,
                ..seg.clone()
            },
            SegmentMeta { size: 11, ..seg },
        ];
        m.rowsets[1].data_size = 10;
        m.rowsets[1].num_rows = 4;
        assert_refused(&m, "sizes");
        // Segment row counts whose sum overflows.
        let mut m = sample();
        let seg = m.rowsets[1].segments[0].clone();
        m.rowsets[1].segments = vec![
            SegmentMeta {
                num_rows: u64::MAX,
                ..seg.clone()
            },
            SegmentMeta { num_rows: 3, ..seg },
        ];
        m.rowsets[1].num_rows = 2;
        m.rowsets[1].data_size = 20;
        assert_refused(&m, "row counts");
        // Rowsets whose totals overflow although each is consistent.
        let mut m = sample();
        for r in &mut m.rowsets[1..] {
            r.segments[0].num_rows = u64::MAX / 2 + 1;
            r.num_rows = u64::MAX / 2 + 1;
        }
        assert_refused(&m, "total row count");
        let mut m = sample();
        for r in &mut m.rowsets[1..] {
            r.segments[0].size = u64::MAX / 2 + 1;
            r.data_size = u64::MAX / 2 + 1;
        }
        assert_refused(&m, "total data size");
        // A stale rowset is checked as well.
        let mut m = sample();
        let mut bad = m.rowsets[2].clone();
        bad.segments.push(SegmentMeta {
            size: u64::MAX,
            crc32: 0,
            num_rows: 0,
        });
        m.stale_rowsets.push(StaleRowset {
            rowset: bad,
            stale_since_ms: 0,
        });
        assert_refused(&m, "sizes");
    }

    #[test]
    fn capture_ranges() -> Result<()> {
        let m = sample();
        assert_eq!(m.rowsets_for(4)?.len(), 2);
        assert_eq!(m.rowsets_for(5)?.len(), 3);
        assert!(matches!(
            m.rowsets_for(3),
            Err(Error::VersionAlreadyMerged {
                start: 2,
                end: 4,
                ..
            })
        ));
        assert!(matches!(
            m.rowsets_for(6),
            Err(Error::VersionNotFound { .. })
        ));
        assert_eq!(m.restricted_to(1)?.rowsets.len(), 1);
        Ok(())
    }
}
