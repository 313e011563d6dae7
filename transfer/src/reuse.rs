//! Incremental backups: an index of files earlier committed backups already
//! stored, so a new backup's manifest can point at their pieces instead of
//! uploading the bytes again.
//!
//! A file is reused only on exact identity: the same tablet id, the same path
//! (segment files are named after their rowset id, which is never reused), the
//! same size and the same crc32. Packs named by a pending-delete marker are
//! never reused (see the GC protocol in `gc.rs`), and the commit checks every
//! referenced pack is stored before it writes the `info`.

use std::collections::{HashMap, HashSet};

use crate::error::Result;
use crate::info::SnapshotId;
use crate::manifest::{FileEntry, Manifest, Piece};
use crate::repository::Repository;

/// At most this many earlier backups are indexed: the newest of each label,
/// newest first, the backup's own label before the others.
pub const MAX_REUSE_BASES: usize = 4;

/// The CRC-32 of any byte string that ends with its own CRC-32 (little-endian):
/// the residue of the polynomial. Tablet metas end that way, so every meta
/// has this whole-file crc32 whatever it holds.
pub const CRC32_RESIDUE: u32 = 0x2144_df1c;

/// Whether a whole-file crc32 says anything about the file's content: not
/// for a file that carries its own crc32 at its end (its crc32 is always
/// [`CRC32_RESIDUE`]). Such files are never reused: two tablets' metas of
/// one size would otherwise pass for the same file.
pub fn crc_identifies(crc32: u32) -> bool {
    crc32 != CRC32_RESIDUE
}

/// Where an already-stored file's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Size in bytes.
    pub size: u64,
    /// Whole-file crc32.
    pub crc32: u32,
    /// Its pieces; `pack` indexes [`ReuseIndex::packs`].
    pub pieces: Vec<Piece>,
}

/// Files stored by earlier committed backups, by (tablet id, path).
#[derive(Debug, Clone, Default)]
pub struct ReuseIndex {
    packs: Vec<String>,
    files: HashMap<(u64, String), StoredFile>,
}

/// How much of a backup is new and how much points into earlier backups' packs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReuseStats {
    /// Files whose bytes this backup stored.
    pub new_files: u64,
    /// Bytes of those files.
    pub new_bytes: u64,
    /// Files that point into packs of earlier backups.
    pub reused_files: u64,
    /// Bytes of those files.
    pub reused_bytes: u64,
}

impl Manifest {
    /// Splits the files into new ones (every piece in a pack under
    /// `snapshot_dir`, e.g. [`Repository::snapshot_dir`]; zero-byte files count
    /// as new) and reused ones.
    pub fn reuse_stats(&self, snapshot_dir: &str) -> ReuseStats {
        let own: Vec<bool> = self
            .packs
            .iter()
            .map(|p| p.starts_with(snapshot_dir))
            .collect();
        let mut s = ReuseStats::default();
        for f in self.tablets.iter().flat_map(|t| &t.files) {
            let reused = !f.pieces.is_empty()
                && f.pieces
                    .iter()
                    .all(|p| !own.get(p.pack as usize).copied().unwrap_or(true));
            if reused {
                s.reused_files += 1;
                s.reused_bytes = s.reused_bytes.saturating_add(f.size);
            } else {
                s.new_files += 1;
                s.new_bytes = s.new_bytes.saturating_add(f.size);
            }
        }
        s
    }
}

impl ReuseIndex {
    /// An index from committed manifests, leaving out files with a piece in
    /// an `excluded` pack and tablets not in `tablets` (when given).
    pub fn from_manifests<'a>(
        manifests: impl IntoIterator<Item = &'a Manifest>,
        excluded: &HashSet<String>,
        tablets: Option<&HashSet<u64>>,
    ) -> Self {
        let mut out = ReuseIndex::default();
        let mut pack_index: HashMap<String, u32> = HashMap::new();
        for m in manifests {
            for t in &m.tablets {
                if tablets.is_some_and(|set| !set.contains(&t.tablet_id)) {
                    continue;
                }
                for f in &t.files {
                    let key = (t.tablet_id, f.path.clone());
                    if f.pieces.is_empty()
                        || !crc_identifies(f.crc32)
                        || out.files.contains_key(&key)
                    {
                        continue;
                    }
                    let mut pieces = Vec::with_capacity(f.pieces.len());
                    let mut usable = true;
                    for p in &f.pieces {
                        let Some(k) = m.packs.get(p.pack as usize) else {
                            usable = false;
                            break;
                        };
                        if excluded.contains(k) {
                            usable = false;
                            break;
                        }
                        let next = out.packs.len() as u32;
                        let idx = *pack_index.entry(k.clone()).or_insert_with(|| {
                            out.packs.push(k.clone());
                            next
                        });
                        pieces.push(Piece { pack: idx, ..*p });
                    }
                    if usable {
                        out.files.insert(
                            key,
                            StoredFile {
                                size: f.size,
                                crc32: f.crc32,
                                pieces,
                            },
                        );
                    }
                }
            }
        }
        out
    }

    /// Loads the manifests of `bases` (committed snapshots of `repo`) and
    /// the pending-delete markers, and indexes the files of `tablets`.
    pub fn load(
        repo: &Repository,
        bases: &[SnapshotId],
        tablets: Option<&HashSet<u64>>,
    ) -> Result<Self> {
        // Markers first: a mark made after this read is safe (module docs of gc.rs).
        let excluded = repo.pending_delete_packs()?;
        let mut manifests = Vec::with_capacity(bases.len());
        for id in bases {
            manifests.push(repo.read_manifest_subset(id, tablets)?);
        }
        Ok(Self::from_manifests(&manifests, &excluded, tablets))
    }

    /// Like [`ReuseIndex::load`], reading from each base only the tablets
    /// given with it (a base with none is not read): the caller picked, per
    /// tablet, the base that holds its newest version.
    pub fn load_per_base(repo: &Repository, bases: &[(SnapshotId, HashSet<u64>)]) -> Result<Self> {
        // Markers first: a mark made after this read is safe (module docs of gc.rs).
        let excluded = repo.pending_delete_packs()?;
        let mut manifests = Vec::with_capacity(bases.len());
        for (id, tablets) in bases.iter().filter(|(_, t)| !t.is_empty()) {
            manifests.push(repo.read_manifest_subset(id, Some(tablets))?);
        }
        Ok(Self::from_manifests(&manifests, &excluded, None))
    }

    /// Pack keys (relative to the repository root) the index points into.
    pub fn packs(&self) -> &[String] {
        &self.packs
    }

    /// Files indexed.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The stored copy of a file, if one with exactly this identity exists.
    pub fn lookup(&self, tablet_id: u64, path: &str, size: u64, crc32: u32) -> Option<&StoredFile> {
        if !crc_identifies(crc32) {
            return None;
        }
        self.files
            .get(&(tablet_id, path.to_string()))
            .filter(|s| s.size == size && s.crc32 == crc32)
    }

    /// Adds `file`'s stored pieces to `manifest` as an entry of its tablet at
    /// `tablet_pos`, appending pack keys the manifest lacks.
    pub(crate) fn attach(
        &self,
        manifest: &mut Manifest,
        tablet_pos: usize,
        path: &str,
        stored: &StoredFile,
        pack_map: &mut HashMap<u32, u32>,
    ) {
        let pieces = stored
            .pieces
            .iter()
            .map(|p| {
                let idx = *pack_map.entry(p.pack).or_insert_with(|| {
                    manifest
                        .packs
                        .push(self.packs.get(p.pack as usize).cloned().unwrap_or_default());
                    (manifest.packs.len() - 1) as u32
                });
                Piece { pack: idx, ..*p }
            })
            .collect();
        if let Some(t) = manifest.tablets.get_mut(tablet_pos) {
            if let Some((parent, _)) = path.split_once('/') {
                if !t.dirs.iter().any(|d| d == parent) {
                    t.dirs.push(parent.to_string());
                    t.dirs.sort();
                }
            }
            t.files.push(FileEntry {
                path: path.to_string(),
                size: stored.size,
                crc32: stored.crc32,
                pieces,
            });
        }
    }
}

impl Repository {
    /// The earlier backups an incremental backup of `label` indexes: the
    /// newest committed snapshot of each label, `label` first, then the
    /// others newest first, at most [`MAX_REUSE_BASES`].
    pub fn reuse_bases(&self, label: &str) -> Result<Vec<SnapshotId>> {
        self.reuse_bases_where(label, |_| true)
    }

    /// Like [`reuse_bases`](Self::reuse_bases), with the newest snapshot of
    /// each label that `accept` takes: a writer sharing the repository with
    /// others (whose files never match its own) skips theirs, so another
    /// cluster's newer backup under the same label does not hide its own.
    /// `accept` sees at most [`MAX_TRIES_PER_LABEL`] snapshots of a label,
    /// newest first.
    pub fn reuse_bases_where(
        &self,
        label: &str,
        mut accept: impl FnMut(&SnapshotId) -> bool,
    ) -> Result<Vec<SnapshotId>> {
        let mut by_label: HashMap<String, Vec<SnapshotId>> = HashMap::new();
        for id in self.list_snapshots()? {
            by_label.entry(id.label.clone()).or_default().push(id);
        }
        let mut labels: Vec<(String, Vec<SnapshotId>)> = by_label
            .into_iter()
            .map(|(l, mut ids)| {
                ids.sort_by(|a, b| b.timestamp.cmp(&a.timestamp));
                (l, ids)
            })
            .collect();
        // `label` first, then the label with the newest snapshot.
        labels.sort_by(|(la, a), (lb, b)| {
            (lb == label)
                .cmp(&(la == label))
                .then(b[0].timestamp.cmp(&a[0].timestamp))
                .then(la.cmp(lb))
        });
        let mut out = Vec::new();
        for (_, ids) in labels {
            if out.len() == MAX_REUSE_BASES {
                break;
            }
            if let Some(id) = ids
                .into_iter()
                .take(MAX_TRIES_PER_LABEL)
                .find(|id| accept(id))
            {
                out.push(id);
            }
        }
        Ok(out)
    }
}

/// How many snapshots of one label [`Repository::reuse_bases_where`] offers
/// its filter, newest first.
pub const MAX_TRIES_PER_LABEL: usize = 4;

#[cfg(test)]
mod residue_tests {
    use super::*;

    #[test]
    fn a_file_ending_in_its_own_crc_has_the_residue_crc() {
        for body in [&b"tablet meta one"[..], b"another, longer tablet meta"] {
            let mut f = body.to_vec();
            f.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
            assert_eq!(crc32fast::hash(&f), CRC32_RESIDUE);
            assert!(!crc_identifies(crc32fast::hash(&f)));
        }
        assert!(crc_identifies(crc32fast::hash(b"a segment")));
    }
}
