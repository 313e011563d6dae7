//! Manifests that borrow entries from other manifests.
//!
//! An incremental backup of 10,000 tablets of which 100 changed would copy
//! the 9,900 unchanged tablets' entries out of the previous backup's
//! manifest and write them again: reading, merging and writing a manifest as
//! large as the full backup's, however small the change. Instead its
//! manifest *borrows* them: for each manifest that holds entries of tablets
//! it carries over, it names that object (key, length and trailing crc32,
//! which pin its bytes), the packs that object's own entries name, and the
//! tablets taken with their file and byte counts. Only the changed tablets'
//! entries are written.
//!
//! Borrowing is one level deep: a writer borrows from the manifest that
//! holds the entries itself, never from one that borrows them in turn (when
//! the previous backup borrowed a tablet, the new one names the same source).
//! [`crate::Repository::read_manifest`] resolves the borrowed entries, so
//! every reader (restore, VERIFY, reuse, GC) sees whole manifests; GC keeps a
//! borrowed-from manifest for as long as a committed manifest borrows from it.

use std::collections::HashSet;

use super::{skip_tablet, Manifest, MANIFEST_MAGIC, MANIFEST_VERSION};
use crate::backend::validate_key;
use crate::codec::{check_crc_trailer, check_header, Reader, Writer};
use crate::error::{Error, Result};

/// A tablet whose entry is borrowed, with its entry's counts (what SHOW
/// BACKUP and the info report without reading the source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BorrowedTablet {
    /// The tablet id.
    pub tablet_id: u64,
    /// Files in its entry.
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
}

/// Entries a manifest takes from another manifest object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Borrowed {
    /// Key of the manifest object holding the entries, relative to the
    /// repository root (`__ss_<label>/<timestamp>/manifest`).
    pub manifest: String,
    /// That object's length in bytes.
    pub len: u64,
    /// That object's trailing crc32 (the crc32 of everything before it).
    pub crc32: u32,
    /// Every pack key the source's own entries name: a superset of the packs
    /// the borrowed entries use (checked at commit, matched against GC markers).
    pub packs: Vec<String>,
    /// The tablets taken, ascending by id.
    pub tablets: Vec<BorrowedTablet>,
}

/// A manifest as stored: its own entries and the entries it borrows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredManifest {
    /// The entries this manifest holds itself.
    pub entries: Manifest,
    /// The entries it takes from other manifests.
    pub borrowed: Vec<Borrowed>,
}

/// What a backup needs to borrow from a manifest, read without building
/// its entries: its identity, its packs, and per tablet where the entry is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManifestSummary {
    /// The object's length.
    pub len: u64,
    /// The object's trailing crc32.
    pub crc32: u32,
    /// Its pack keys.
    pub packs: Vec<String>,
    /// The tablets whose entries it holds itself.
    pub own: Vec<BorrowedTablet>,
    /// The entries it borrows.
    pub borrowed: Vec<Borrowed>,
}

/// The crc32 a manifest object ends with (0 for one too short to have it).
pub fn trailing_crc(data: &[u8]) -> u32 {
    match data.len().checked_sub(4).and_then(|n| data.get(n..)) {
        Some(t) => u32::from_le_bytes([t[0], t[1], t[2], t[3]]),
        None => 0,
    }
}

pub(super) fn encode_borrowed(w: &mut Writer, borrowed: &[Borrowed]) {
    w.u32(borrowed.len() as u32);
    for b in borrowed {
        w.str(&b.manifest);
        w.u64(b.len);
        w.u32(b.crc32);
        w.u32(b.packs.len() as u32);
        for p in &b.packs {
            w.str(p);
        }
        w.u32(b.tablets.len() as u32);
        for t in &b.tablets {
            w.u64(t.tablet_id);
            w.u64(t.files);
            w.u64(t.bytes);
        }
    }
}

fn decode_borrowed(r: &mut Reader<'_>) -> Result<Vec<Borrowed>> {
    let n = r.count(20)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let manifest = r.str()?;
        let len = r.u64()?;
        let crc32 = r.u32()?;
        let n_packs = r.count(4)?;
        let mut packs = Vec::with_capacity(n_packs);
        for _ in 0..n_packs {
            packs.push(r.str()?);
        }
        let n_tablets = r.count(24)?;
        let mut tablets = Vec::with_capacity(n_tablets);
        for _ in 0..n_tablets {
            tablets.push(BorrowedTablet {
                tablet_id: r.u64()?,
                files: r.u64()?,
                bytes: r.u64()?,
            });
        }
        out.push(Borrowed {
            manifest,
            len,
            crc32,
            packs,
            tablets,
        });
    }
    Ok(out)
}

/// Checks the borrowed part: safe keys naming manifest objects, ascending
/// ids, and no tablet both held and borrowed or borrowed twice.
pub(crate) fn validate_borrowed(own: &[u64], borrowed: &[Borrowed], what: &str) -> Result<()> {
    let corrupt = |reason: String| Error::Corrupt {
        what: what.to_string(),
        reason,
    };
    let mut seen: HashSet<u64> = own.iter().copied().collect();
    for b in borrowed {
        validate_key(&b.manifest)?;
        if !b.manifest.ends_with("/manifest") {
            return Err(corrupt(format!(
                "it borrows entries from '{}', which is not a manifest object",
                b.manifest
            )));
        }
        for p in &b.packs {
            validate_key(p)?;
        }
        if b.tablets.is_empty() {
            return Err(corrupt(format!("it borrows no tablet from {}", b.manifest)));
        }
        for pair in b.tablets.windows(2) {
            if pair[0].tablet_id >= pair[1].tablet_id {
                return Err(corrupt(format!(
                    "the tablets it borrows from {} are not in ascending order",
                    b.manifest
                )));
            }
        }
        for t in &b.tablets {
            if !seen.insert(t.tablet_id) {
                return Err(corrupt(format!("tablet {} listed twice", t.tablet_id)));
            }
        }
    }
    Ok(())
}

/// Files and bytes of the borrowed tablets' entries.
pub fn borrowed_totals(borrowed: &[Borrowed]) -> (u64, u64) {
    borrowed
        .iter()
        .flat_map(|b| &b.tablets)
        .fold((0u64, 0u64), |(f, n), t| {
            (f.saturating_add(t.files), n.saturating_add(t.bytes))
        })
}

/// Distinct pack keys of `packs` and of the borrowed sources, in that order.
pub fn packs_with_borrowed<'a>(packs: &'a [String], borrowed: &'a [Borrowed]) -> Vec<&'a String> {
    let mut seen = HashSet::new();
    packs
        .iter()
        .chain(borrowed.iter().flat_map(|b| &b.packs))
        .filter(|p| seen.insert(p.as_str()))
        .collect()
}

/// Checks a manifest's own entries and its borrowed part together.
pub(crate) fn validate_parts(entries: &Manifest, borrowed: &[Borrowed], what: &str) -> Result<()> {
    entries.validate_named(what)?;
    let own: Vec<u64> = entries.tablets.iter().map(|t| t.tablet_id).collect();
    validate_borrowed(&own, borrowed, what)
}

/// Reads a manifest object's header, checks its crc trailer, and decodes
/// the pack list and (format 2) the borrowed part; the reader is left at
/// the tablets.
fn decode_head<'a>(
    data: &'a [u8],
    what: &'a str,
) -> Result<(Reader<'a>, Vec<String>, Vec<Borrowed>)> {
    let mut r = Reader::new(data, what);
    // The version check comes first: a newer format may change the trailer too.
    let version = check_header(&mut r, MANIFEST_MAGIC, MANIFEST_VERSION)?;
    let body = check_crc_trailer(data, what)?;
    let mut r = Reader::new(body.get(12..).unwrap_or_default(), what);
    let packs = Manifest::decode_packs(&mut r)?;
    let borrowed = if version >= 2 {
        decode_borrowed(&mut r)?
    } else {
        Vec::new()
    };
    Ok((r, packs, borrowed))
}

impl StoredManifest {
    /// Encodes it (format 1 when nothing is borrowed, else format 2).
    pub fn encode(&self) -> Vec<u8> {
        self.entries.encode_borrowing(&self.borrowed)
    }

    /// Checks the entries and the borrowed part.
    pub fn validate_named(&self, what: &str) -> Result<()> {
        validate_parts(&self.entries, &self.borrowed, what)
    }

    /// Every tablet id, held or borrowed.
    pub fn tablet_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.entries.tablets.iter().map(|t| t.tablet_id).chain(
            self.borrowed
                .iter()
                .flat_map(|b| b.tablets.iter().map(|t| t.tablet_id)),
        )
    }

    /// Files over held and borrowed entries.
    pub fn file_count(&self) -> u64 {
        (self.entries.file_count()).saturating_add(borrowed_totals(&self.borrowed).0)
    }

    /// Bytes over held and borrowed entries.
    pub fn total_bytes(&self) -> u64 {
        (self.entries.total_bytes()).saturating_add(borrowed_totals(&self.borrowed).1)
    }

    /// Distinct pack keys named by the entries and the borrowed sources.
    pub fn all_packs(&self) -> Vec<String> {
        packs_with_borrowed(&self.entries.packs, &self.borrowed)
            .into_iter()
            .cloned()
            .collect()
    }

    /// Decodes a stored manifest of either format, keeping only the entries
    /// (held or borrowed) of the tablets in `keep` when given. The whole
    /// object is checked (crc, bounds, borrowed part) either way.
    pub fn decode_filtered(data: &[u8], what: &str, keep: Option<&HashSet<u64>>) -> Result<Self> {
        let (mut r, packs, mut borrowed) = decode_head(data, what)?;
        let entries = Manifest::decode_tablets(&mut r, packs, what, keep)?;
        // Filtered, the held ids the filter skipped are not known here, so
        // overlaps with them go unchecked; a whole decode (GC, VERIFY)
        // checks them.
        let own: Vec<u64> = entries.tablets.iter().map(|t| t.tablet_id).collect();
        validate_borrowed(&own, &borrowed, what)?;
        if let Some(keep) = keep {
            for b in &mut borrowed {
                b.tablets.retain(|t| keep.contains(&t.tablet_id));
            }
            borrowed.retain(|b| !b.tablets.is_empty());
        }
        Ok(StoredManifest { entries, borrowed })
    }

    /// Reads what a backup borrowing from this manifest needs, without
    /// building its entries: held tablets with counts, packs, borrowed part.
    pub fn summary(data: &[u8], what: &str) -> Result<ManifestSummary> {
        let (mut r, packs, borrowed) = decode_head(data, what)?;
        for p in &packs {
            validate_key(p)?;
        }
        let n = r.count(16)?;
        let mut own = Vec::with_capacity(n);
        for _ in 0..n {
            let tablet_id = r.u64()?;
            let (files, bytes) = skip_tablet(&mut r)?;
            own.push(BorrowedTablet {
                tablet_id,
                files,
                bytes,
            });
        }
        r.expect_end()?;
        let ids: Vec<u64> = own.iter().map(|t| t.tablet_id).collect();
        validate_borrowed(&ids, &borrowed, what)?;
        Ok(ManifestSummary {
            len: data.len() as u64,
            crc32: trailing_crc(data),
            packs,
            own,
            borrowed,
        })
    }
}
