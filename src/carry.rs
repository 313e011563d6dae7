//! The backend's side of an incremental backup's carry-over: which of the
//! tablets to snapshot are, at the captured version, exactly what an earlier
//! committed backup (the carry base) stored. Those need no snapshot dir, no
//! hard links and no upload: the job copies their manifest entries from the
//! base's manifest. The check reads only the tablet's meta in memory and the
//! base's manifest, never a data file.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use anyhow::{Context, Result};
use rayon::prelude::*;
use tabletsnap_engine::tablet_meta::META_FILE_NAME;
use tabletsnap_engine::Engine;
use tabletsnap_transfer::reuse::crc_identifies;
use tabletsnap_transfer::TabletEntry;

use crate::backend::{CarryFrom, SnapshotMade, SnapshotTarget};

/// The targets marked `carry` whose files at their version are exactly the
/// files `base` stored for them, as `carried` results by tablet id.
///
/// Markers are read before the manifest, as for file reuse: a pack a
/// pending-delete marker names is never carried (the GC protocol in
/// docs/design.md).
pub(crate) fn unchanged_tablets(
    engine: &Engine,
    targets: &[SnapshotTarget],
    base: &CarryFrom,
) -> Result<HashMap<u64, SnapshotMade>> {
    let candidates: HashSet<u64> = targets
        .iter()
        .filter(|t| t.carry)
        .map(|t| t.tablet_id)
        .collect();
    let repo = crate::repo::open_repository(&base.repo.name, &base.repo.location)?;
    let what = || {
        format!(
            "reading backup {} of repository '{}' to carry unchanged tablets over",
            base.snapshot, base.repo.name
        )
    };
    let excluded = crate::repo::with_retries(|| repo.pending_delete_packs()).with_context(what)?;
    let manifest =
        crate::repo::with_retries(|| repo.read_manifest_subset(&base.snapshot, Some(&candidates)))
            .with_context(what)?;
    let marked: Vec<bool> = manifest
        .packs
        .iter()
        .map(|k| excluded.contains(k))
        .collect();
    let entries: HashMap<u64, &TabletEntry> =
        manifest.tablets.iter().map(|e| (e.tablet_id, e)).collect();
    Ok(targets
        .par_iter()
        .filter(|t| t.carry)
        .filter_map(|t| {
            let entry = entries.get(&t.tablet_id)?;
            unchanged(engine, t, entry, &marked).then(|| {
                let bytes = entry
                    .files
                    .iter()
                    .fold(0u64, |b, f| b.saturating_add(f.size));
                (
                    t.tablet_id,
                    SnapshotMade {
                        tablet_id: t.tablet_id,
                        version: t.version,
                        path: PathBuf::new(),
                        files: entry.files.len() as u64,
                        bytes,
                        carried: true,
                    },
                )
            })
        })
        .collect())
}

/// Whether the tablet's rowsets covering `[0, t.version]` have exactly the
/// segment files of `entry` (same names, which carry the never-reused rowset
/// ids, sizes and crc32s from the tablet meta), `entry` also holds the tablet
/// meta, and none of its pieces lies in a `marked` pack. The caller knows
/// the base holds the tablet at the same version, so the base's tablet meta
/// describes the same rowsets.
fn unchanged(engine: &Engine, t: &SnapshotTarget, entry: &TabletEntry, marked: &[bool]) -> bool {
    let Ok(meta) = engine.tablet_meta(t.tablet_id) else {
        return false;
    };
    let Ok(rowsets) = meta.rowsets_for(t.version) else {
        return false;
    };
    let stored: HashMap<&str, (u64, u32)> = entry
        .files
        .iter()
        .filter(|f| f.path != META_FILE_NAME)
        .map(|f| (f.path.as_str(), (f.size, f.crc32)))
        .collect();
    let mut count = 0usize;
    for (name, seg) in rowsets.iter().flat_map(|rs| rs.files()) {
        count += 1;
        if !crc_identifies(seg.crc32) || stored.get(name.as_str()) != Some(&(seg.size, seg.crc32)) {
            return false;
        }
    }
    let has_meta = entry
        .files
        .iter()
        .any(|f| f.path == META_FILE_NAME && !f.pieces.is_empty());
    let in_marked_pack = entry
        .files
        .iter()
        .flat_map(|f| &f.pieces)
        .any(|p| marked.get(p.pack as usize).copied().unwrap_or(true));
    count == stored.len() && has_meta && !in_marked_pack
}
