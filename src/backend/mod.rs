//! The task interface between the job layer and backend nodes: the trait
//! ([`BackendTasks`]), the messages its calls carry ([`messages`]), and the
//! in-process node that implements it ([`node`]). Jobs reach backends only
//! through the trait, so a node may as well be a separate process
//! ([`crate::node::client`] implements it over RPC).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use tabletsnap_engine::{CreateTabletRequest, InstallOutcome, Row, TabletChecksum};
use tabletsnap_transfer::Manifest;

mod messages;
mod node;

pub use messages::{
    reuse_per_base, RepoRef, RestoreTarget, SnapshotMade, SnapshotTarget, TaskControl,
};
pub use node::BackendNode;

/// The tasks a job sends to a backend.
pub trait BackendTasks: Send + Sync {
    /// Backend id.
    fn id(&self) -> u32;
    /// Whether the backend runs in this process and so can use a reuse
    /// index the job loaded once for all backends ([`TaskControl::reuse_index`])
    /// instead of reading the earlier backups' manifests itself.
    fn shares_memory(&self) -> bool {
        false
    }
    /// Hard-link snapshots of tablets at versions; all or an error naming the
    /// tablet. Targets with a `carry_digest` their files at the version
    /// match come back `carried`, without a snapshot.
    fn make_snapshots(
        &self,
        targets: &[SnapshotTarget],
        timeout: Duration,
    ) -> Result<Vec<SnapshotMade>>;
    /// Uploads snapshots as part `part` of backup `label/timestamp` (its packs
    /// go under `packs/<part>/`); returns the part's manifest.
    fn upload(
        &self,
        repo: &RepoRef,
        label: &str,
        timestamp: &str,
        part: &str,
        snaps: &[SnapshotMade],
        ctl: &TaskControl,
    ) -> Result<Manifest>;
    /// Prepares empty download dirs for restore targets (fills `dir`).
    fn prepare_restore(&self, targets: &mut [RestoreTarget]) -> Result<()>;
    /// Downloads the targets' source tablets, verified, using `manifest`: the
    /// coordinator's subset of the backup's manifest holding just those tablets.
    fn download(
        &self,
        repo: &RepoRef,
        manifest: &Manifest,
        targets: &[RestoreTarget],
        ctl: &TaskControl,
    ) -> Result<u64>;
    /// Installs downloaded dirs as tablets (atomic, idempotent).
    fn commit(&self, targets: &[RestoreTarget]) -> Result<Vec<InstallOutcome>>;
    /// Removes snapshot or download dirs.
    fn release(&self, paths: &[PathBuf]) -> Result<()>;
    /// Creates tablets (one barrier).
    fn create_tablets(&self, reqs: Vec<CreateTabletRequest>) -> Result<()>;
    /// Drops tablets that exist; missing ones are fine (idempotent cleanup).
    fn drop_tablets(&self, ids: &[u64]) -> Result<()>;
    /// Publishes exactly the given version on each `(tablet, version, rows)`.
    fn load(&self, items: &[(u64, u64, Vec<Row>)]) -> Result<()>;
    /// Rows of a tablet at a version.
    fn scan(&self, tablet: u64, version: u64) -> Result<Vec<Row>>;
    /// Checksum of a tablet at a version.
    fn checksum(&self, tablet: u64, version: u64) -> Result<TabletChecksum>;
    /// What the node holds of each tablet (`None`: not there or unreadable),
    /// rows and bytes counted at `version` (else at each tablet's max).
    fn tablet_stats(
        &self,
        ids: &[u64],
        version: Option<u64>,
    ) -> Result<Vec<Option<crate::task::TabletStat>>>;
    /// Like [`BackendTasks::tablet_stats`], rows and bytes of `ids[i]`
    /// counted at `at[i]`: one call for a whole backup's tablets, whose
    /// partitions are at different versions.
    fn tablet_stats_at(
        &self,
        ids: &[u64],
        at: &[u64],
    ) -> Result<Vec<Option<crate::task::TabletStat>>>;
    /// Liveness and load: tablets, data size, running tasks.
    fn heartbeat(&self) -> Result<crate::task::Heartbeat>;
    /// The top-level snapshot and download dirs on the node (the orphan
    /// sweep at open releases those no unfinished job names).
    fn snapshot_dirs(&self) -> Result<Vec<PathBuf>>;
}
