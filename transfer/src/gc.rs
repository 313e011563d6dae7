//! Dropping snapshots and collecting packs (and manifests) no committed
//! manifest references.
//!
//! Since incremental backups point into the packs of earlier ones, a pack
//! outlives the snapshot that wrote it for as long as any committed manifest
//! names it. Another cluster sharing the repository may at any moment be
//! committing a backup whose manifest names an old pack, so a pack is never
//! deleted the moment it looks unreferenced. The protocol (kopia's, with a
//! marker object instead of a rename, which object stores lack):
//!
//! 1. **Mark.** A sweep lists every pack, reads every committed manifest, and
//!    writes one *pending-delete marker* `__gc/pending-<ms>-<nonce>` naming
//!    the packs that no manifest references and no earlier marker names.
//! 2. **Sweep.** A later sweep, at least `grace` after a marker was written,
//!    reads every committed manifest again and deletes the marker's packs that
//!    are still unreferenced (in batches of [`DELETE_BATCH`], one request
//!    each on S3), then the marker once all of them are gone.
//! 3. **Backups.** A backup reuses no pack that any marker names (it reads
//!    the markers when it builds its reuse index), and commits only before its
//!    deadline (creation + timeout).
//!
//! Manifest objects are collected the same way: an incremental backup's
//! manifest borrows the entries of unchanged tablets from the manifest that
//! holds them (see [`crate::StoredManifest`]), so DROP SNAPSHOT deletes a
//! snapshot's `info` and meta but leaves its manifest, which a sweep marks and
//! later deletes once no committed manifest borrows from it, and a backup
//! borrows from no manifest a marker names.
//!
//! Why that is safe with `grace` longer than any job's timeout: a backup that
//! will reference pack P either read the markers before P's marker was
//! written, so it started before the mark and commits (if ever) before
//! `mark + timeout < mark + grace`, hence before the sweep reads the
//! manifests, which then show P referenced; or it read them after, saw P
//! pending and did not reuse it. See docs/design.md (Repository GC).

use std::collections::{BTreeSet, HashSet};

use crate::backend::DELETE_BATCH;
use crate::codec::{check_crc_trailer, check_header, Reader, Writer};
use crate::error::{Error, Result};
use crate::info::SnapshotId;
use crate::repository::{CommitState, Repository, SNAPSHOT_DIR_PREFIX};
use crate::{CancelToken, RetryPolicy};

/// Directory (relative to the repository root) of the GC's marker objects.
pub const GC_DIR: &str = "__gc/";
/// Prefix of a pending-delete marker, relative to the repository root.
pub const PENDING_PREFIX: &str = "__gc/pending-";
/// Magic of a pending-delete marker.
pub const MARKER_MAGIC: &[u8; 8] = b"TSNAPGCP";
/// Marker format version this build writes and the newest it reads.
pub const MARKER_VERSION: u32 = 1;
/// Default grace between marking a pack and deleting it: the longest job
/// timeout (30 days) plus a day for clock skew between clusters.
pub const DEFAULT_GC_GRACE_MS: u64 = 31 * 86_400 * 1000;

/// A pending-delete marker: packs found unreferenced at `created_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDelete {
    /// When the mark was made (ms since the epoch, the marking cluster's clock).
    pub created_ms: u64,
    /// Pack keys relative to the repository root, sorted.
    pub packs: Vec<String>,
}

impl PendingDelete {
    /// `"TSNAPGCP" | version u32 | created_ms u64 | n u32 | key str ... | crc32`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(MARKER_MAGIC);
        w.u32(MARKER_VERSION);
        w.u64(self.created_ms);
        w.u32(self.packs.len() as u32);
        for p in &self.packs {
            w.str(p);
        }
        w.finish_with_crc()
    }

    /// Decodes and checks a marker; `what` names it in errors.
    pub fn decode(data: &[u8], what: &str) -> Result<Self> {
        let mut r = Reader::new(data, what);
        check_header(&mut r, MARKER_MAGIC, MARKER_VERSION)?;
        let body = check_crc_trailer(data, what)?;
        let mut r = Reader::new(body.get(12..).unwrap_or_default(), what);
        let created_ms = r.u64()?;
        let n = r.count(4)?;
        let mut packs = Vec::with_capacity(n);
        for _ in 0..n {
            let p = r.str()?;
            crate::backend::validate_key(&p)?;
            packs.push(p);
        }
        r.expect_end()?;
        Ok(Self { created_ms, packs })
    }
}

/// What committed snapshots reference (keys relative to the repository root).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Referenced {
    /// Packs named by committed manifests, borrowed entries included.
    pub packs: HashSet<String>,
    /// Committed snapshots' manifests and the manifests they borrow from.
    pub manifests: HashSet<String>,
}

impl Referenced {
    /// Whether a pack or manifest key is referenced.
    pub fn contains(&self, key: &str) -> bool {
        self.packs.contains(key) || self.manifests.contains(key)
    }
}

/// What one GC pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Packs written into a new pending-delete marker.
    pub packs_marked: u64,
    /// Packs deleted (their marker's grace had passed and they were still unreferenced).
    pub packs_deleted: u64,
    /// Packs of due markers that a manifest references again; kept.
    pub packs_rescued: u64,
    /// Due markers processed and removed.
    pub markers_swept: u64,
    /// Markers still inside their grace period.
    pub markers_waiting: u64,
    /// Markers that could not be decoded (left alone; their packs are re-marked).
    pub markers_damaged: u64,
    /// Manifests of dropped backups marked (no committed manifest borrows from them).
    pub manifests_marked: u64,
    /// Manifests of dropped backups deleted after the grace.
    pub manifests_deleted: u64,
}

/// Whether a collected key is a manifest object (else a pack).
fn is_manifest(key: &str) -> bool {
    key.ends_with("/manifest")
}

fn fail(name: &str) -> Result<()> {
    fail::fail_point!(name, |_| Err(Error::FailPoint(name.to_string())));
    let _ = name; // only read by the fail point, which builds without `failpoints` drop
    Ok(())
}

impl Repository {
    /// Drops a committed (or damaged) snapshot: deletes its `info` first, so
    /// from then on it is not listed and nothing new can reference it, then
    /// its meta. Its packs and its manifest stay until [`Repository::gc`]
    /// finds them unreferenced across a grace period (later backups may point
    /// into the packs and borrow entries from the manifest). A snapshot that is not listed is [`Error::SnapshotNotFound`].
    pub fn drop_snapshot(&self, id: &SnapshotId) -> Result<()> {
        let retry = RetryPolicy::default();
        let cancel = CancelToken::new();
        let info = self.object_key(id, "info");
        if retry
            .run(&info, &cancel, || self.backend().head(&info))?
            .is_none()
        {
            return Err(Error::SnapshotNotFound {
                repo: self.name().to_string(),
                label: id.label.clone(),
                timestamp: id.timestamp.clone(),
            });
        }
        retry.run(&info, &cancel, || self.backend().delete(&info))?;
        retry.run(&info, &cancel, || self.backend().barrier())?;
        fail("gc::after_info_delete")?;
        // Nothing reads an uncommitted snapshot's meta. Its manifest stays:
        // later backups may borrow entries from it, and one being committed
        // may be about to, so only the two-phase sweep removes it, like a pack.
        let meta = self.object_key(id, "meta");
        retry.run(&meta, &cancel, || self.backend().delete(&meta))?;
        self.backend().barrier()
    }

    /// Drops the committed snapshots of `label` beyond the newest `keep`;
    /// returns the dropped ones, oldest first.
    pub fn apply_retention(&self, label: &str, keep: usize) -> Result<Vec<SnapshotId>> {
        let mut ids: Vec<SnapshotId> = self
            .list_snapshots()?
            .into_iter()
            .filter(|id| id.label == label)
            .collect();
        ids.sort();
        let n = ids.len().saturating_sub(keep);
        let doomed: Vec<SnapshotId> = ids.into_iter().take(n).collect();
        for id in &doomed {
            self.drop_snapshot(id)?;
        }
        Ok(doomed)
    }

    /// Every pack key (relative to the repository root) that a committed
    /// snapshot's manifest names, its borrowed entries included. An `info`
    /// that cannot be read, or a committed manifest that cannot, is an
    /// error: what it references is unknown, so nothing may be collected
    /// until it is dropped or readable.
    pub fn referenced_packs(&self) -> Result<HashSet<String>> {
        Ok(self.referenced_objects()?.packs)
    }

    /// The packs and manifest objects committed snapshots reference: each
    /// one's own manifest, the manifests it borrows entries from, and the
    /// packs of its entries, borrowed ones included.
    pub fn referenced_objects(&self) -> Result<Referenced> {
        let retry = RetryPolicy::default();
        let cancel = CancelToken::new();
        let mut out = Referenced::default();
        for id in self.info_ids()? {
            let key = self.object_key(&id, "info");
            let unknown = |e: Error| {
                Error::Corrupt {
                what: format!("snapshot {id}"),
                reason: format!("its manifest cannot be read ({e}), so the packs it references are unknown: DROP SNAPSHOT it before collecting garbage"),
            }
            };
            let stored = match retry.run(&key, &cancel, || self.try_commit_state(&id))? {
                CommitState::Absent => continue,
                CommitState::Committed(_) => {
                    retry.run(&key, &cancel, || self.read_stored_manifest(&id, None))
                }
                CommitState::Unreadable(why) => {
                    // The manifest's own crc still proves it whole.
                    self.read_manifest_uncommitted(&id).map_err(|e| Error::Corrupt {
                        what: format!("snapshot {id}"),
                        reason: format!("{why}; its manifest cannot be read either ({e}): DROP SNAPSHOT it before collecting garbage"),
                    })
                }
            }
            .map_err(unknown)?;
            out.manifests.insert(Self::manifest_key(&id));
            out.manifests
                .extend(stored.borrowed.iter().map(|b| b.manifest.clone()));
            let manifest = self
                .resolve_manifest(stored, &format!("manifest of {id}"))
                .map_err(unknown)?;
            out.packs.extend(manifest.packs);
        }
        Ok(out)
    }

    /// Every pack key stored under any snapshot directory, committed or not.
    pub fn stored_packs(&self) -> Result<BTreeSet<String>> {
        Ok(self.stored_objects()?.0)
    }

    /// Every pack key stored under any snapshot directory, and the manifest
    /// objects of snapshot directories that hold no `info` (dropped or
    /// unfinished backups: a later backup may still borrow from them).
    fn stored_objects(&self) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
        let prefix = self.key(SNAPSHOT_DIR_PREFIX);
        let root = self.key("");
        let mut packs = BTreeSet::new();
        let mut manifests = BTreeSet::new();
        let mut with_info = HashSet::new();
        for key in self.backend().list(&prefix)? {
            let Some(rel) = key.strip_prefix(&root) else {
                continue;
            };
            // __ss_<label>/<timestamp>/packs/... or .../manifest, .../info
            let mut parts = rel.splitn(4, '/');
            let (label, ts, name) = (parts.next(), parts.next(), parts.next());
            let rest = parts.next();
            match (label, ts, name, rest) {
                (Some(_), Some(_), Some("packs"), Some(_)) => {
                    packs.insert(rel.to_string());
                }
                (Some(l), Some(t), Some("manifest"), None) => {
                    manifests.insert((format!("{l}/{t}/"), rel.to_string()));
                }
                (Some(l), Some(t), Some("info"), None) => {
                    with_info.insert(format!("{l}/{t}/"));
                }
                _ => {}
            }
        }
        let manifests = manifests
            .into_iter()
            .filter(|(dir, _)| !with_info.contains(dir))
            .map(|(_, key)| key)
            .collect();
        Ok((packs, manifests))
    }

    /// The markers under `__gc/`: (key, decoded marker or `None` if damaged).
    fn markers(&self) -> Result<Vec<(String, Option<PendingDelete>)>> {
        let retry = RetryPolicy::default();
        let cancel = CancelToken::new();
        let prefix = self.key(PENDING_PREFIX);
        let mut out = Vec::new();
        for key in retry.run(&prefix, &cancel, || self.backend().list(&prefix))? {
            let data = match retry.run(&key, &cancel, || self.backend().get(&key)) {
                Ok(d) => d,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            let marker = PendingDelete::decode(&data, &key).ok();
            out.push((key, marker));
        }
        Ok(out)
    }

    /// Packs some readable pending-delete marker names: a backup must not
    /// reuse them (they may be deleted once the marker's grace has passed).
    pub fn pending_delete_packs(&self) -> Result<HashSet<String>> {
        Ok(self
            .markers()?
            .into_iter()
            .filter_map(|(_, m)| m)
            .flat_map(|m| m.packs)
            .collect())
    }

    /// One GC pass at time `now_ms`: sweeps markers at least `grace_ms` old
    /// (deleting their packs that are still unreferenced), then marks the
    /// packs that are unreferenced and not yet marked. Use
    /// [`DEFAULT_GC_GRACE_MS`] unless every job that can write to this
    /// repository has a shorter timeout. Interrupted at any point, a rerun
    /// finishes the work; no committed snapshot ever loses a pack.
    pub fn gc(&self, now_ms: u64, grace_ms: u64) -> Result<GcReport> {
        let retry = RetryPolicy::default();
        let cancel = CancelToken::new();
        let mut report = GcReport::default();
        let markers = self.markers()?;
        // Read after the markers: a manifest committed before a due marker's
        // sweep is in this set (see the module docs).
        let referenced = self.referenced_objects()?;
        let mut still_pending = HashSet::new();
        for (key, marker) in &markers {
            let Some(m) = marker else {
                report.markers_damaged += 1;
                continue;
            };
            if m.created_ms.saturating_add(grace_ms) > now_ms {
                report.markers_waiting += 1;
                still_pending.extend(m.packs.iter().cloned());
                continue;
            }
            let (rescued, doomed): (Vec<&String>, Vec<&String>) =
                m.packs.iter().partition(|p| referenced.contains(p));
            report.packs_rescued += rescued.iter().filter(|p| !is_manifest(p)).count() as u64;
            let doomed: Vec<String> = doomed.into_iter().map(|p| self.key(p)).collect();
            // One request per batch on S3 (DeleteObjects), each retried on
            // its own; a batch that fails counts none of its packs, and the
            // marker stays so a rerun deletes them.
            for batch in doomed.chunks(DELETE_BATCH) {
                fail("gc::before_pack_delete")?;
                let name = batch_name(batch);
                retry.run(&name, &cancel, || self.backend().delete_many(batch))?;
                let manifests = batch.iter().filter(|k| is_manifest(k)).count() as u64;
                report.manifests_deleted += manifests;
                report.packs_deleted += batch.len() as u64 - manifests;
            }
            retry.run(key, &cancel, || self.backend().barrier())?;
            fail("gc::before_marker_delete")?;
            retry.run(key, &cancel, || self.backend().delete(key))?;
            report.markers_swept += 1;
        }
        let (packs, manifests) = self.stored_objects()?;
        let candidates: Vec<String> = packs
            .into_iter()
            .chain(manifests)
            .filter(|p| !referenced.contains(p) && !still_pending.contains(p))
            .collect();
        if !candidates.is_empty() {
            let marker = PendingDelete {
                created_ms: now_ms,
                packs: candidates,
            };
            let nonce = crate::SplitMix64::new(
                now_ms ^ u64::from(std::process::id()).rotate_left(32) ^ nonce_seed(),
            )
            .next_u64();
            let key = self.key(&format!("{PENDING_PREFIX}{now_ms:020}-{nonce:016x}"));
            fail("gc::before_marker_put")?;
            retry.run(&key, &cancel, || self.backend().put(&key, &marker.encode()))?;
            retry.run(&key, &cancel, || self.backend().barrier())?;
            let manifests = marker.packs.iter().filter(|k| is_manifest(k)).count() as u64;
            report.manifests_marked = manifests;
            report.packs_marked = marker.packs.len() as u64 - manifests;
        }
        Ok(report)
    }
}

/// How errors name a batch of deletes: its first key and how many follow.
fn batch_name(batch: &[String]) -> String {
    match batch {
        [] => String::new(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
    }
}

/// A per-call value so two markers made in one millisecond differ.
fn nonce_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    t ^ N
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trip_and_flips() -> Result<()> {
        let m = PendingDelete {
            created_ms: 42,
            packs: vec!["__ss_a/2026-01-01-00-00-00/packs/00000000.pack".into()],
        };
        let b = m.encode();
        assert_eq!(PendingDelete::decode(&b, "m")?, m);
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x01;
            assert!(PendingDelete::decode(&c, "m").is_err(), "flip {i}");
        }
        Ok(())
    }
}
