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
//!
//! Format 2 (written only by a backup that borrows entries, see
//! [`StoredManifest`]) adds, between the pack list and the tablets:
//!
//! ```text
//! n_borrowed u32 | per source manifest:
//!     manifest key str | len u64 | crc32 u32   (the source object's length and trailing crc32)
//!     n_packs u32 | pack key str ...           (every pack the source's own entries name)
//!     n_tablets u32 | per tablet: tablet_id u64 | files u64 | bytes u64   (ascending ids)
//! ```

use std::collections::{HashMap, HashSet};

use crate::backend::validate_key;
use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::names::validate_rel_path;

/// Magic bytes opening every manifest.
pub const MANIFEST_MAGIC: &[u8; 8] = b"TSNAPMAN";
/// The newest manifest format version this build reads. It writes version 1
/// unless the manifest borrows entries (version 2).
pub const MANIFEST_VERSION: u32 = 2;

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

    /// [`Manifest::subset_compact`], moving the entries instead of copying them.
    pub fn into_subset_compact(self, tablet_ids: &HashSet<u64>) -> Manifest {
        let Manifest { packs, tablets } = self;
        let mut out = Manifest::default();
        let mut remap: HashMap<u32, u32> = HashMap::new();
        for mut t in tablets
            .into_iter()
            .filter(|t| tablet_ids.contains(&t.tablet_id))
        {
            for p in t.files.iter_mut().flat_map(|f| &mut f.pieces) {
                p.pack = *remap.entry(p.pack).or_insert_with(|| {
                    out.packs
                        .push(packs.get(p.pack as usize).cloned().unwrap_or_default());
                    (out.packs.len() - 1) as u32
                });
            }
            out.tablets.push(t);
        }
        out
    }

    /// The entries of `tablet_ids` with only the packs they reference
    /// (renumbered): what a backup carries over from an earlier one.
    pub fn subset_compact(&self, tablet_ids: &HashSet<u64>) -> Manifest {
        self.subset(tablet_ids).into_subset_compact(tablet_ids)
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
        self.encode_borrowing(&[])
    }

    /// Encodes the manifest with the entries it borrows (format 1 when it
    /// borrows none, so older readers read every manifest without borrowing).
    pub(crate) fn encode_borrowing(&self, borrowed: &[Borrowed]) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(MANIFEST_MAGIC);
        w.u32(if borrowed.is_empty() { 1 } else { 2 });
        w.u32(self.packs.len() as u32);
        for p in &self.packs {
            w.str(p);
        }
        if !borrowed.is_empty() {
            stored::encode_borrowed(&mut w, borrowed);
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
        Self::decode_filtered(data, what, None)
    }

    /// Like [`Manifest::decode_named`], keeping only the entries of
    /// the tablets in `keep` (when given): the whole object is still checked (crc,
    /// bounds), but entries of other tablets are skipped without being
    /// built, so a node reads its share of a large manifest cheaply. The
    /// pack list is kept whole, so piece indices stay valid.
    ///
    /// A manifest that borrows entries of kept tablets from other manifests
    /// is refused: read it through its repository, which resolves them
    /// ([`StoredManifest`]).
    pub fn decode_filtered(data: &[u8], what: &str, keep: Option<&HashSet<u64>>) -> Result<Self> {
        let stored = StoredManifest::decode_filtered(data, what, keep)?;
        if let Some(b) = stored.borrowed.first() {
            return Err(Error::Corrupt {
                what: what.to_string(),
                reason: format!(
                    "it borrows the entries of {} tablets from {}; read it through its repository",
                    b.tablets.len(),
                    b.manifest
                ),
            });
        }
        Ok(stored.entries)
    }

    /// Decodes the entries part of a manifest object: the pack list is read
    /// by the caller, the tablets here.
    fn decode_tablets(
        r: &mut Reader<'_>,
        packs: Vec<String>,
        what: &str,
        keep: Option<&HashSet<u64>>,
    ) -> Result<Self> {
        let n_tablets = r.count(16)?;
        let mut tablets = Vec::with_capacity(n_tablets);
        for _ in 0..n_tablets {
            let tablet_id = r.u64()?;
            if keep.is_some_and(|set| !set.contains(&tablet_id)) {
                skip_tablet(r)?;
                continue;
            }
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

    /// Reads a manifest's pack list (after the header).
    fn decode_packs(r: &mut Reader<'_>) -> Result<Vec<String>> {
        let n_packs = r.count(4)?;
        let mut packs = Vec::with_capacity(n_packs);
        for _ in 0..n_packs {
            packs.push(r.str()?);
        }
        Ok(packs)
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
            if f.pieces.len() > 1 {
                let piece_crc = crc32fast::Hasher::new_with_initial_len(p.crc32, p.len);
                crc.combine(&piece_crc);
            }
        }
        if total != f.size {
            return Err(corrupt(format!(
                "tablet {tablet} file '{}': pieces hold {total} bytes, file has {}",
                f.path, f.size
            )));
        }
        // One piece (most files) is the whole file: its crc is the file's,
        // no combining needed (combining costs more than the rest of decode).
        let combined = match f.pieces.as_slice() {
            [p] => p.crc32,
            _ => crc.finalize(),
        };
        if combined != f.crc32 {
            return Err(corrupt(format!(
                "tablet {tablet} file '{}': piece checksums do not combine to the file checksum",
                f.path
            )));
        }
        Ok(())
    }
}

/// Reads past one tablet entry without building it (bounds still checked);
/// returns its file count and bytes (saturating: the entry is not validated).
fn skip_tablet(r: &mut Reader<'_>) -> Result<(u64, u64)> {
    let n_dirs = r.count(4)?;
    for _ in 0..n_dirs {
        skip_str(r)?;
    }
    let n_files = r.count(20)?;
    let mut bytes = 0u64;
    for _ in 0..n_files {
        skip_str(r)?;
        let size_crc = r.bytes(12)?;
        let mut size = [0u8; 8];
        size.copy_from_slice(size_crc.get(..8).unwrap_or(&[0; 8]));
        bytes = bytes.saturating_add(u64::from_le_bytes(size));
        let n_pieces = r.count(24)?;
        r.bytes(n_pieces.saturating_mul(24))?;
    }
    Ok((n_files as u64, bytes))
}

fn skip_str(r: &mut Reader<'_>) -> Result<()> {
    let n = r.u32()? as usize;
    r.bytes(n)?;
    Ok(())
}

mod stored;
pub(crate) use stored::validate_parts;
pub use stored::{
    borrowed_totals, packs_with_borrowed, trailing_crc, Borrowed, BorrowedTablet, ManifestSummary,
    StoredManifest,
};

#[cfg(test)]
mod tests;
