#![deny(clippy::unwrap_used)]
#![warn(missing_docs)]
//! Repository backends, the backup repository format, and packed, chunked,
//! parallel, checksummed upload and download of tablet files.
//!
//! The job layer calls, in order:
//! [`Repository::open_or_create`], [`Repository::begin_backup`],
//! [`BackupWriter::upload`], [`BackupWriter::commit`]; and to restore,
//! [`Repository::list_snapshots`], [`Repository::read_meta`],
//! [`Repository::download`]. See `docs/design.md (section Transfer)` for the formats.

pub mod backend;
mod cancel;
mod codec;
pub mod conformance;
mod download;
mod error;
mod fsutil;
pub mod gc;
mod info;
pub mod manifest;
pub mod names;
mod options;
mod pack;
mod pack_buffers;
mod progress;
mod rate;
mod repository;
mod retry;
pub mod reuse;
mod rng;
mod runs;
mod secret;
mod source;
mod upload;
pub mod verify;
#[cfg(feature = "workload")]
pub mod workload;

pub use backend::{
    Backend, Counting, Durability, FaultConfig, Faulty, LocalFs, Memory, S3Config, StreamSink,
    Throttled, S3,
};
pub use cancel::CancelToken;
pub use download::{
    download, download_manifest, download_manifest_ref, DownloadOptions, DownloadReport, TargetDirs,
};
pub use error::{Error, Result};
pub use fsutil::TEMP_PREFIX;
pub use gc::{GcReport, Referenced, DEFAULT_GC_GRACE_MS};
pub use info::{SnapshotId, SnapshotInfo, REPO_FORMAT_VERSION};
pub use manifest::{
    Borrowed, BorrowedTablet, FileEntry, Manifest, ManifestSummary, Piece, StoredManifest,
    TabletEntry, MANIFEST_VERSION,
};
pub use options::TransferOptions;
pub use progress::{Progress, ProgressFn};
pub use rate::RateLimiter;
pub use repository::{CommitState, Repository, SnapshotStatus};
pub use retry::RetryPolicy;
pub use reuse::{ReuseIndex, ReuseStats};
pub use rng::SplitMix64;
pub use secret::Secret;
pub use source::{SourceFile, UploadSource};
pub use upload::{
    BackupWriter, UploadOptions, UploadReport, DEFAULT_CHUNK_SIZE, DEFAULT_PACK_SIZE,
};
pub use verify::{verify_snapshot, TabletDamage, VerifyOptions, VerifyReport};

/// Every fail point of this crate (active only with the `failpoints` feature).
pub const FAIL_POINTS: &[&str] = &[
    "upload::before_pack_put",
    "upload::before_manifest",
    "upload::before_info",
    "download::before_rename",
    "download::after_in_place_write",
    "gc::after_info_delete",
    "gc::before_pack_delete",
    "gc::before_marker_delete",
    "gc::before_marker_put",
];
