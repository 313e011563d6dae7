//! The backend's side of an incremental backup's carry-over: which of the
//! tablets to snapshot are, at the captured version, exactly what an earlier
//! committed backup (the carry base) stored. Those need no snapshot dir, no
//! hard links and no upload: the backup's manifest borrows their entries
//! from the base's. The check compares a digest of the tablet's segment
//! files (from its meta in memory) with the digest the base's meta recorded
//! for it: no data file and no manifest is read.

use std::collections::HashMap;
use std::path::PathBuf;

use rayon::prelude::*;
use tabletsnap_engine::rowset::RowsetMeta;
use tabletsnap_engine::Engine;
use tabletsnap_transfer::reuse::crc_identifies;

use crate::backend::{SnapshotMade, SnapshotTarget};

/// A digest of a tablet's segment files at a version, from the rowsets
/// covering it: FNV-1a (64 bit) over each segment's rowset id, index, size
/// and crc32, in (rowset id, index) order. Rowset ids are never reused (and
/// name the files), so equal digests mean the same rowsets with the same
/// bytes. `None` when a file's crc32 does not identify its content (such a
/// tablet is never carried).
pub fn files_digest(rowsets: &[RowsetMeta]) -> Option<u64> {
    let mut files: Vec<(u128, u64, u64, u32)> = rowsets
        .iter()
        .flat_map(|rs| {
            rs.segments
                .iter()
                .enumerate()
                .map(move |(i, s)| (rs.rowset_id.0, i as u64, s.size, s.crc32))
        })
        .collect();
    if files.iter().any(|f| !crc_identifies(f.3)) {
        return None;
    }
    files.sort_unstable();
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(PRIME);
        }
    };
    feed(&(files.len() as u64).to_le_bytes());
    for (rowset, index, size, crc) in files {
        feed(&rowset.to_le_bytes());
        feed(&index.to_le_bytes());
        feed(&size.to_le_bytes());
        feed(&crc.to_le_bytes());
    }
    Some(h)
}

/// The targets with a `carry_digest` whose segment files at their version
/// have exactly that digest, as `carried` results by tablet id. The
/// coordinator set the digest only where the base holds the tablet at the
/// same version, so the base's entry (tablet meta included) stands for it.
pub(crate) fn unchanged_tablets(
    engine: &Engine,
    targets: &[SnapshotTarget],
) -> HashMap<u64, SnapshotMade> {
    targets
        .par_iter()
        .filter_map(|t| {
            let want = t.carry_digest?;
            let meta = engine.tablet_meta_shared(t.tablet_id).ok()?;
            let rowsets = meta.rowsets_for(t.version).ok()?;
            let digest = files_digest(rowsets)?;
            // Counts for progress only: the segment files and the tablet meta.
            let segments = rowsets.iter().flat_map(|rs| &rs.segments);
            let files = segments.clone().count() as u64 + 1;
            let bytes = segments.fold(0u64, |b, s| b.saturating_add(s.size));
            (digest == want).then(|| {
                (
                    t.tablet_id,
                    SnapshotMade {
                        tablet_id: t.tablet_id,
                        version: t.version,
                        path: PathBuf::new(),
                        files,
                        bytes,
                        carried: true,
                        digest: Some(digest),
                    },
                )
            })
        })
        .collect()
}
