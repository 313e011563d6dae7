#![deny(clippy::unwrap_used)]
#![deny(missing_docs)]
//! tabletsnap-snapshot: hard-link snapshots of tablets (make, release,
//! expire) on the backup side, and verified, atomic install of downloaded
//! snapshot dirs on the restore side. The on-disk layout and the crash-safety
//! argument are in `docs/design.md (section Snapshots)`.

pub mod error;
mod failpoint;
mod link;
pub mod make;
pub mod metas;
pub mod name;
pub mod release;
pub mod restore;
pub mod sweep;

pub use error::{Error, Result};
pub use make::{make_snapshots, SnapshotFile, SnapshotInfo, SnapshotRequest};
pub use metas::{MetasWriter, RestoreMetas, METAS_FILE_NAME};
pub use name::{DirKind, DirName};
pub use release::{release_snapshot, release_snapshots};
pub use restore::{
    catch_up_files, catch_up_snapshots, load_snapshot, load_snapshots, load_snapshots_in_parts,
    prepare_restore_dir, prepare_restore_dirs, read_snapshot_meta, restore_slot, CatchUpRequest,
    LoadSnapshotRequest, RESTORE_DIR_TIMEOUT,
};
pub use sweep::{sweep_expired, SweepStats};
pub use tabletsnap_engine::{InstallOutcome, Verify};

/// Every fail point of this crate, for crash tests that walk them all.
/// `snapshot::make::tablet` takes an optional tablet id argument
/// (`return(10003)`) to fail only that tablet.
pub const FAIL_POINTS: &[&str] = &[
    "snapshot::make::tablet",
    "snapshot::make::before_barrier",
    "snapshot::restore::after_prepare",
];
