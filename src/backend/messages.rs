//! What the task calls carry: snapshot targets and results, restore
//! targets, repository references and the per-task controls.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tabletsnap_transfer::{CancelToken, ProgressFn};

/// A tablet to snapshot at a version.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnapshotTarget {
    /// Tablet id.
    pub tablet_id: u64,
    /// Version to capture.
    pub version: u64,
    /// The backup's carry base holds this tablet at this version, with
    /// this digest of its segment files (see [`crate::carry::files_digest`]):
    /// if the tablet's files at `version` have the same digest, the tablet is
    /// carried over (no snapshot dir, no upload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carry_digest: Option<u64>,
}

/// A snapshot a backend made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnapshotMade {
    /// Tablet id.
    pub tablet_id: u64,
    /// Captured version.
    pub version: u64,
    /// The snapshot dir on the backend.
    pub path: PathBuf,
    /// Files in the dir, the meta file included. Only counts: the job
    /// record stays small whatever the file count; the upload reads the
    /// file list from the snapshot's own meta.
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
    /// Carried over from the carry base unchanged: no dir was made (`path`
    /// is empty) and nothing is uploaded; the backup's manifest borrows the
    /// base's entry.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub carried: bool,
    /// Digest of the segment files at `version` (`None` when a file's crc32
    /// does not identify it): recorded in the backup's meta, so the next
    /// backup can tell the tablet unchanged without reading any manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<u64>,
}

/// Where a repository is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RepoRef {
    /// Repository name.
    pub name: String,
    /// Its location.
    pub location: String,
}

/// Options every transfer task carries.
#[derive(Clone, Default)]
pub struct TaskControl {
    /// Cancels the task between pieces.
    pub cancel: CancelToken,
    /// Progress events.
    pub progress: Option<ProgressFn>,
    /// Bytes/s cap shared by the task's threads.
    pub rate_limit: Option<u64>,
    /// Earlier committed backups whose stored files an upload reuses
    /// (incremental backup); empty: upload every file.
    pub reuse_from: Vec<tabletsnap_transfer::SnapshotId>,
    /// The index of those files for every tablet the job uploads, loaded
    /// once by the job for the backends that share its memory (each of them
    /// would otherwise read the same manifests); others load their own.
    pub reuse_index: Option<std::sync::Arc<tabletsnap_transfer::ReuseIndex>>,
    /// Per tablet to upload, the index into `reuse_from` of the base that
    /// holds its newest version: a backend loading its own index reads each
    /// base only for the tablets it is the newest for (`None`: every base
    /// for every tablet).
    pub reuse_newest: Option<std::sync::Arc<std::collections::HashMap<u64, usize>>>,
}

/// `reuse_from` with, per base, the tablets of `tablets` it is the newest
/// for (see [`TaskControl::reuse_newest`]).
pub fn reuse_per_base(
    ctl: &TaskControl,
    newest: &std::collections::HashMap<u64, usize>,
    tablets: impl IntoIterator<Item = u64>,
) -> Vec<(
    tabletsnap_transfer::SnapshotId,
    std::collections::HashSet<u64>,
)> {
    let mut per_base: Vec<_> = ctl
        .reuse_from
        .iter()
        .map(|id| (id.clone(), std::collections::HashSet::new()))
        .collect();
    for t in tablets {
        if let Some((_, set)) = newest.get(&t).and_then(|i| per_base.get_mut(*i)) {
            set.insert(t);
        }
    }
    per_base
}

impl std::fmt::Debug for TaskControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskControl")
            .field("cancelled", &self.cancel.is_cancelled())
            .finish()
    }
}

/// A restored tablet replica to download and later commit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RestoreTarget {
    /// The tablet id in the backup.
    pub source_tablet_id: u64,
    /// The new tablet id.
    pub tablet_id: u64,
    /// Its schema hash.
    pub schema_hash: u32,
    /// New table id.
    pub table_id: u64,
    /// New partition id.
    pub partition_id: u64,
    /// Replace an existing tablet.
    pub overwrite: bool,
    /// The download dir, once prepared.
    pub dir: Option<PathBuf>,
    /// The version the backup holds the tablet at: the node checks the
    /// downloaded meta against it (records made before it: unchecked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Catch-up: the tablet exists at this version of the same source; only
    /// the backup's rowsets above it are downloaded and appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up_from: Option<u64>,
}
