//! Small self-describing objects: the repository info and the snapshot info
//! (the commit point of a backup).

use crate::codec::{check_crc_trailer, check_header, Reader, Writer};
use crate::error::Result;

/// Magic of the repository info object.
pub const REPO_INFO_MAGIC: &[u8; 8] = b"TSNAPREP";
/// Magic of a snapshot info object.
pub const SNAPSHOT_INFO_MAGIC: &[u8; 8] = b"TSNAPINF";
/// Repository layout version this build writes and the newest it reads.
pub const REPO_FORMAT_VERSION: u32 = 1;

/// Names one backup: a label and a timestamp (both validated).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotId {
    /// The label, e.g. `nightly`.
    pub label: String,
    /// The timestamp, `YYYY-MM-DD-HH-MM-SS`.
    pub timestamp: String,
}

impl SnapshotId {
    /// Validates and builds an id.
    pub fn new(label: &str, timestamp: &str) -> Result<Self> {
        crate::names::validate_label(label)?;
        crate::names::validate_timestamp(timestamp)?;
        Ok(Self {
            label: label.to_string(),
            timestamp: timestamp.to_string(),
        })
    }
}

impl std::fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.label, self.timestamp)
    }
}

/// The content of a snapshot's `info` object, written last: its presence
/// commits the backup, and it pins the manifest and meta by size and crc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The snapshot.
    pub id: SnapshotId,
    /// Size of the `manifest` object.
    pub manifest_len: u64,
    /// crc32 of the `manifest` object.
    pub manifest_crc: u32,
    /// Size of the `meta` object.
    pub meta_len: u64,
    /// crc32 of the `meta` object.
    pub meta_crc: u32,
    /// Files in the backup.
    pub file_count: u64,
    /// Bytes of all files.
    pub total_bytes: u64,
    /// Pack objects the manifest references.
    pub pack_count: u64,
}

impl SnapshotInfo {
    /// Encodes: magic, version, fields little-endian, crc32 trailer.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(SNAPSHOT_INFO_MAGIC);
        w.u32(REPO_FORMAT_VERSION);
        w.str(&self.id.label);
        w.str(&self.id.timestamp);
        w.u64(self.manifest_len);
        w.u32(self.manifest_crc);
        w.u64(self.meta_len);
        w.u32(self.meta_crc);
        w.u64(self.file_count);
        w.u64(self.total_bytes);
        w.u64(self.pack_count);
        w.finish_with_crc()
    }

    /// Decodes and validates; `what` names the object in errors.
    pub fn decode(data: &[u8], what: &str) -> Result<Self> {
        let mut r = Reader::new(data, what);
        check_header(&mut r, SNAPSHOT_INFO_MAGIC, REPO_FORMAT_VERSION)?;
        let body = check_crc_trailer(data, what)?;
        let mut r = Reader::new(&body[12..], what);
        let label = r.str()?;
        let timestamp = r.str()?;
        let info = Self {
            id: SnapshotId::new(&label, &timestamp)?,
            manifest_len: r.u64()?,
            manifest_crc: r.u32()?,
            meta_len: r.u64()?,
            meta_crc: r.u32()?,
            file_count: r.u64()?,
            total_bytes: r.u64()?,
            pack_count: r.u64()?,
        };
        r.expect_end()?;
        Ok(info)
    }
}

/// Encodes the repository info object.
pub fn encode_repo_info(name: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(REPO_INFO_MAGIC);
    w.u32(REPO_FORMAT_VERSION);
    w.str(name);
    w.finish_with_crc()
}

/// Decodes the repository info object, returning the repository name.
pub fn decode_repo_info(data: &[u8], what: &str) -> Result<String> {
    let mut r = Reader::new(data, what);
    check_header(&mut r, REPO_INFO_MAGIC, REPO_FORMAT_VERSION)?;
    let body = check_crc_trailer(data, what)?;
    let mut r = Reader::new(&body[12..], what);
    let name = r.str()?;
    r.expect_end()?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_round_trip_and_flips() -> Result<()> {
        let info = SnapshotInfo {
            id: SnapshotId::new("nightly", "2026-11-26-13-14-46")?,
            manifest_len: 1,
            manifest_crc: 2,
            meta_len: 3,
            meta_crc: 4,
            file_count: 5,
            total_bytes: 6,
            pack_count: 7,
        };
        let b = info.encode();
        assert_eq!(SnapshotInfo::decode(&b, "info")?, info);
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x10;
            assert!(SnapshotInfo::decode(&c, "info").is_err(), "flip {i}");
        }
        assert_eq!(decode_repo_info(&encode_repo_info("oss"), "x")?, "oss");
        Ok(())
    }
}
