//! The backup manifest: every file of every tablet and where its bytes live.
//!
//! Encoding (all integers little-endian, strings are `u32` length + UTF-8):
//!
//! ```text
//! magic "TSNAPMAN" | version u32
//! n_packs u32 | pack key str ...              (keys relative to the repository root)
//! n_tablets u32 | per tablet:
//!     tablet_id u64
//!     n_dirs u32 | dir path str ...            (directories to create, possibly empty)
//!     n_files u32 | per file:
//!         path str | size u64 | crc32 u32
//!         n_pieces u32 | per piece: pack u32 | offset u64 | len u64 | crc32 u32
//! crc32 u32 of everything above
//! ```

use std::collections::{HashMap, HashSet};

use crate::backend::validate_key;
use crate::codec::{check_crc_trailer, check_header, Reader, Writer};
use crate::error::{Error, Result};
use crate::names::validate_rel_path;

/// Magic bytes opening every manifest.
pub const MANIFEST_MAGIC: &[u8; 8] = b"TSNAPMAN";
/// The manifest format version this build writes and the newest it reads.
pub const MANIFEST_VERSION: u32 = 1;

/// A contiguous range of one file's bytes stored in a pack object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Index into [`Manifest::packs`].
    pub pack: u32,
    /// Byte offset of the piece inside the pack object.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// crc32 of the piece's bytes.
    pub crc32: u32,
}

/// One file of a tablet; its pieces, in order, concatenate to the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the tablet directory (`file` or `dir/file`).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// crc32 of the whole file.
    pub crc32: u32,
    /// Pieces in file order; empty for a zero-byte file.
    pub pieces: Vec<Piece>,
}

/// One tablet: its files and the directories to create even when empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TabletEntry {
    /// The tablet id; the download caller maps it to a target directory.
    pub tablet_id: u64,
    /// Relative directories to create (a tablet with no files still gets its root).
    pub dirs: Vec<String>,
    /// The files.
    pub files: Vec<FileEntry>,
}

/// The list of everything a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// Pack object keys, relative to the repository root. Pieces may point at
    /// packs of an earlier backup of the same repository.
    pub packs: Vec<String>,
    /// Tablets in the backup.
    pub tablets: Vec<TabletEntry>,
}

impl Manifest {
    /// Number of files over all tablets.
    pub fn file_count(&self) -> u64 {
        self.tablets
            .iter()
            .fold(0u64, |n, t| n.saturating_add(t.files.len() as u64))
    }

    /// Total bytes of all files. [`Manifest::validate`] refuses a manifest
    /// whose total overflows; an unvalidated one saturates rather than panics.
    pub fn total_bytes(&self) -> u64 {
        self.tablets
            .iter()
            .flat_map(|t| &t.files)
            .fold(0u64, |n, f| n.saturating_add(f.size))
    }

    /// Merges the manifests of a backup's parts (one per writer) into one:
    /// pack lists are concatenated (a key shared by parts appears once) and
    /// piece indices renumbered. A tablet in two parts is an error.
    pub fn merge(parts: Vec<Manifest>) -> Result<Manifest> {
        let mut out = Manifest::default();
        let mut index: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for part in parts {
            let remap: Vec<u32> = part
                .packs
                .iter()
                .map(|k| {
                    *index.entry(k.clone()).or_insert_with(|| {
                        out.packs.push(k.clone());
                        (out.packs.len() - 1) as u32
                    })
                })
                .collect();
            for mut t in part.tablets {
                if !seen.insert(t.tablet_id) {
                    return Err(Error::InvalidInput(format!(
                        "tablet {} appears in two parts of one backup",
                        t.tablet_id
                    )));
                }
                for f in &mut t.files {
                    for p in &mut f.pieces {
                        p.pack = *remap.get(p.pack as usize).ok_or_else(|| {
                            Error::InvalidInput(format!(
                                "piece of tablet {} names pack {} of {}",
                                t.tablet_id,
                                p.pack,
                                remap.len()
                            ))
                        })?;
                    }
                }
                out.tablets.push(t);
            }
        }
        out.validate()?;
        Ok(out)
    }

    /// The part of the manifest holding `tablet_ids` (pack list unchanged, so
    /// piece indices stay valid): what one node needs to restore its tablets.
    pub fn subset(&self, tablet_ids: &std::collections::HashSet<u64>) -> Manifest {
        Manifest {
            packs: self.packs.clone(),
            tablets: self
                .tablets
                .iter()
                .filter(|t| tablet_ids.contains(&t.tablet_id))
                .cloned()
                .collect(),
        }
    }

    /// The key of the pack a piece lives in.
    pub fn pack_key(&self, piece: &Piece) -> &str {
        self.packs
            .get(piece.pack as usize)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Encodes the manifest (see the module docs for the layout).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(MANIFEST_MAGIC);
        w.u32(MANIFEST_VERSION);
        w.u32(self.packs.len() as u32);
        for p in &self.packs {
            w.str(p);
        }
        w.u32(self.tablets.len() as u32);
        for t in &self.tablets {
            w.u64(t.tablet_id);
            w.u32(t.dirs.len() as u32);
            for d in &t.dirs {
                w.str(d);
            }
            w.u32(t.files.len() as u32);
            for f in &t.files {
                w.str(&f.path);
                w.u64(f.size);
                w.u32(f.crc32);
                w.u32(f.pieces.len() as u32);
                for p in &f.pieces {
                    w.u32(p.pack);
                    w.u64(p.offset);
                    w.u64(p.len);
                    w.u32(p.crc32);
                }
            }
        }
        w.finish_with_crc()
    }

    /// Decodes and [validates](Self::validate) a manifest. A flipped byte or a
    /// truncation gives a checksum or corruption error; a newer format version
    /// gives [`Error::UnsupportedVersion`].
    pub fn decode(data: &[u8]) -> Result<Self> {
        Self::decode_named(data, "manifest")
    }

    /// Like [`Manifest::decode`]; `what` names the object in errors, e.g.
    /// `manifest of nightly@2026-11-26-13-14-46`.
    pub fn decode_named(data: &[u8], what: &str) -> Result<Self> {
        let mut r = Reader::new(data, what);
        // The version check comes first: a newer format may change the trailer too.
        check_header(&mut r, MANIFEST_MAGIC, MANIFEST_VERSION)?;
        let body = check_crc_trailer(data, what)?;
        let mut r = Reader::new(&body[12..], what);
        let n_packs = r.count(4)?;
        let mut packs = Vec::with_capacity(n_packs);
        for _ in 0..n_packs {
            packs.push(r.str()?);
        }
        let n_tablets = r.count(16)?;
        let mut tablets = Vec::with_capacity(n_tablets);
        for _ in 0..n_tablets {
            let tablet_id = r.u64()?;
            let n_dirs = r.count(4)?;
            let mut dirs = Vec::with_capacity(n_dirs);
            for _ in 0..n_dirs {
                dirs.push(r.str()?);
            }
            let n_files = r.count(20)?;
            let mut files = Vec::with_capacity(n_files);
            for _ in 0..n_files {
                let path = r.str()?;
                let size = r.u64()?;
                let crc32 = r.u32()?;
                let n_pieces = r.count(24)?;
                let mut pieces = Vec::with_capacity(n_pieces);
                for _ in 0..n_pieces {
                    pieces.push(Piece {
                        pack: r.u32()?,
                        offset: r.u64()?,
                        len: r.u64()?,
                        crc32: r.u32()?,
                    });
                }
                files.push(FileEntry {
                    path,
                    size,
                    crc32,
                    pieces,
                });
            }
            tablets.push(TabletEntry {
                tablet_id,
                dirs,
                files,
            });
        }
        r.expect_end()?;
        let m = Manifest { packs, tablets };
        m.validate_named(what)?;
        Ok(m)
    }

    /// Checks the invariants every reader relies on: valid pack keys, safe
    /// relative paths, no duplicate tablet or path, pieces that point at known
    /// packs and add up to the file size and crc, and sizes and offsets whose
    /// sums fit in 64 bits (so readers may add them unchecked).
    pub fn validate(&self) -> Result<()> {
        self.validate_named("manifest")
    }

    /// Like [`Manifest::validate`]; `what` names the manifest in errors.
    pub fn validate_named(&self, what: &str) -> Result<()> {
        let corrupt = |reason: String| Error::Corrupt {
            what: what.to_string(),
            reason,
        };
        let mut total_bytes = 0u64;
        for p in &self.packs {
            validate_key(p)?;
        }
        let mut ids = HashSet::new();
        for t in &self.tablets {
            if !ids.insert(t.tablet_id) {
                return Err(corrupt(format!("tablet {} listed twice", t.tablet_id)));
            }
            let mut seen: HashMap<&str, bool> = HashMap::new(); // path -> is_dir
            for d in &t.dirs {
                validate_rel_path(d)?;
                if seen.insert(d, true).is_some() {
                    return Err(corrupt(format!(
                        "tablet {}: dir '{d}' listed twice",
                        t.tablet_id
                    )));
                }
            }
            for f in &t.files {
                validate_rel_path(&f.path)?;
                if seen.insert(&f.path, false).is_some() {
                    return Err(corrupt(format!(
                        "tablet {}: path '{}' listed twice",
                        t.tablet_id, f.path
                    )));
                }
                self.validate_pieces(what, t.tablet_id, f)?;
                total_bytes = total_bytes.checked_add(f.size).ok_or_else(|| Error::Overflow {
                    what: what.to_string(),
                    detail: format!(
                        "the total size of all files, {total_bytes} bytes before tablet {} file '{}', + its size {}",
                        t.tablet_id, f.path, f.size
                    ),
                })?;
            }
            for f in &t.files {
                if let Some((parent, _)) = f.path.split_once('/') {
                    if seen.get(parent) == Some(&false) {
                        return Err(corrupt(format!(
                            "tablet {}: '{parent}' is both a file and a directory",
                            t.tablet_id
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    fn validate_pieces(&self, what: &str, tablet: u64, f: &FileEntry) -> Result<()> {
        let corrupt = |reason: String| Error::Corrupt {
            what: what.to_string(),
            reason,
        };
        let overflow = |detail: String| Error::Overflow {
            what: what.to_string(),
            detail,
        };
        let mut total = 0u64;
        let mut crc = crc32fast::Hasher::new();
        for (i, p) in f.pieces.iter().enumerate() {
            if p.pack as usize >= self.packs.len() {
                return Err(corrupt(format!(
                    "tablet {tablet} file '{}': piece points at pack {} of {}",
                    f.path,
                    p.pack,
                    self.packs.len()
                )));
            }
            if p.len == 0 {
                return Err(corrupt(format!(
                    "tablet {tablet} file '{}': empty piece",
                    f.path
                )));
            }
            if p.offset.checked_add(p.len).is_none() {
                return Err(overflow(format!(
                    "piece {i} of tablet {tablet} file '{}' at offset {} + len {}",
                    f.path, p.offset, p.len
                )));
            }
            total = total.checked_add(p.len).ok_or_else(|| {
                overflow(format!(
                    "the pieces of tablet {tablet} file '{}', {total} bytes before piece {i}, + its len {}",
                    f.path, p.len
                ))
            })?;
            // After the overflow checks: the hasher adds lengths unchecked.
            let piece_crc = crc32fast::Hasher::new_with_initial_len(p.crc32, p.len);
            crc.combine(&piece_crc);
        }
        if total != f.size {
            return Err(corrupt(format!(
                "tablet {tablet} file '{}': pieces hold {total} bytes, file has {}",
                f.path, f.size
            )));
        }
        if crc.finalize() != f.crc32 {
            return Err(corrupt(format!(
                "tablet {tablet} file '{}': piece checksums do not combine to the file checksum",
                f.path
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let data = b"hello world";
        Manifest {
            packs: vec!["__ss_a/2026-01-01-00-00-00/packs/00000000.pack".to_string()],
            tablets: vec![
                TabletEntry {
                    tablet_id: 7,
                    dirs: vec!["sub".to_string()],
                    files: vec![
                        FileEntry {
                            path: "sub/x.dat".to_string(),
                            size: 11,
                            crc32: crc32fast::hash(data),
                            pieces: vec![
                                Piece {
                                    pack: 0,
                                    offset: 0,
                                    len: 5,
                                    crc32: crc32fast::hash(&data[..5]),
                                },
                                Piece {
                                    pack: 0,
                                    offset: 5,
                                    len: 6,
                                    crc32: crc32fast::hash(&data[5..]),
                                },
                            ],
                        },
                        FileEntry {
                            path: "empty".to_string(),
                            size: 0,
                            crc32: 0,
                            pieces: vec![],
                        },
                    ],
                },
                TabletEntry {
                    tablet_id: 8,
                    dirs: vec![],
                    files: vec![],
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let m = sample();
        assert_eq!(Manifest::decode(&m.encode()).ok(), Some(m));
    }

    #[test]
    fn every_flipped_byte_and_truncation_is_detected() {
        let bytes = sample().encode();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            assert!(Manifest::decode(&b).is_err(), "flip at {i} undetected");
        }
        for n in 0..bytes.len() {
            assert!(
                Manifest::decode(&bytes[..n]).is_err(),
                "truncation to {n} undetected"
            );
        }
    }

    fn with_path(path: &str) -> Manifest {
        let mut m = sample();
        m.tablets[0].files[1].path = path.to_string();
        m
    }

    #[test]
    fn escaping_paths_are_refused() {
        for p in ["../x", "/etc/x", "a/../../x"] {
            let err = Manifest::decode(&with_path(p).encode());
            assert!(
                matches!(err, Err(Error::InvalidName { .. })),
                "{p}: {err:?}"
            );
        }
    }

    #[test]
    fn duplicates_are_refused() {
        let err = Manifest::decode(&with_path("sub/x.dat").encode());
        assert!(matches!(err, Err(Error::Corrupt { .. })), "{err:?}");
        let mut m = sample();
        m.tablets[1].tablet_id = 7;
        assert!(Manifest::decode(&m.encode()).is_err());
    }

    /// A one-tablet manifest whose files have the given pieces (offset, len),
    /// sizes and crcs consistent with them, so only the numbers are wrong.
    fn with_pieces(files: &[&[(u64, u64)]]) -> Manifest {
        let files = files
            .iter()
            .enumerate()
            .map(|(i, pieces)| {
                let mut crc = crc32fast::Hasher::new();
                let mut size = 0u64;
                let mut wrapped = false;
                let pieces = pieces
                    .iter()
                    .map(|&(offset, len)| {
                        // The hasher adds lengths unchecked; an overflowing
                        // file is refused before its crc is looked at.
                        match size.checked_add(len) {
                            Some(s) if !wrapped => {
                                crc.combine(&crc32fast::Hasher::new_with_initial_len(7, len));
                                size = s;
                            }
                            _ => {
                                wrapped = true;
                                size = size.wrapping_add(len);
                            }
                        }
                        Piece {
                            pack: 0,
                            offset,
                            len,
                            crc32: 7,
                        }
                    })
                    .collect();
                FileEntry {
                    path: format!("f{i}"),
                    size,
                    crc32: crc.finalize(),
                    pieces,
                }
            })
            .collect();
        Manifest {
            packs: vec!["p".to_string()],
            tablets: vec![TabletEntry {
                tablet_id: 1,
                dirs: vec![],
                files,
            }],
        }
    }

    fn overflow_message(m: &Manifest) -> String {
        match Manifest::decode_named(&m.encode(), "manifest of nightly@2026-11-26-13-14-46") {
            Err(e @ Error::Overflow { .. }) => e.to_string(),
            other => panic!("expected an overflow error, got {other:?}"),
        }
    }

    #[test]
    fn piece_end_past_u64_is_refused() {
        let msg = overflow_message(&with_pieces(&[&[(u64::MAX, 10)]]));
        assert!(
            msg.contains("manifest of nightly@2026-11-26-13-14-46")
                && msg.contains("file 'f0' at offset 18446744073709551615 + len 10 overflows"),
            "{msg}"
        );
    }

    #[test]
    fn piece_lengths_summing_past_u64_are_refused() {
        // Saturating, the sum would equal the (wrapped) size and pass.
        let msg = overflow_message(&with_pieces(&[&[(0, u64::MAX), (0, 1)]]));
        assert!(
            msg.contains("file 'f0'") && msg.contains("overflows"),
            "{msg}"
        );
    }

    #[test]
    fn file_sizes_summing_past_u64_are_refused() {
        let half = 1u64 << 63;
        let m = with_pieces(&[&[(0, half)], &[(0, half)]]);
        let msg = overflow_message(&m);
        assert!(msg.contains("total size") && msg.contains("f1"), "{msg}");
        assert_eq!(m.total_bytes(), u64::MAX, "unvalidated totals saturate");
    }

    proptest::proptest! {
        #[test]
        fn extreme_offsets_and_lengths_never_panic(
            pieces in proptest::collection::vec(
                (proptest::prop_oneof![proptest::num::u64::ANY, 0..4u64, (u64::MAX - 4)..=u64::MAX],
                 proptest::prop_oneof![proptest::num::u64::ANY, 1..4u64, (u64::MAX - 4)..=u64::MAX]),
                1..4,
            )
        ) {
            let m = with_pieces(&[&pieces]);
            let fits = pieces.iter().all(|(o, l)| o.checked_add(*l).is_some())
                && pieces.iter().try_fold(0u64, |t, (_, l)| t.checked_add(*l)).is_some();
            let r = Manifest::decode(&m.encode());
            proptest::prop_assert_eq!(r.is_ok(), fits, "{:?}", r);
            if let Ok(d) = r {
                proptest::prop_assert_eq!(d.total_bytes(), m.tablets[0].files[0].size);
            }
        }
    }

    #[test]
    fn newer_version_names_the_version() {
        let mut b = sample().encode();
        b[8..12].copy_from_slice(&2u32.to_le_bytes());
        let err = Manifest::decode(&b)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("version 2") && err.contains("upgrade"),
            "{err}"
        );
    }
}
