#![deny(clippy::unwrap_used)]
//! tabletsnap-engine: a tablet storage engine. Tablets hold versioned rowsets
//! of immutable, checksummed segment files; loads publish versions, compaction
//! merges them, GC frees replaced files, recovery cleans up after crashes, and
//! capture/install give the snapshot layer a consistent view in and out.

pub mod capture;
pub mod compaction;
mod discard;
pub mod engine;
pub mod error;
mod failpoint;
pub mod file;
pub mod hash;
pub mod idgen;
pub mod install;
pub mod install_incremental;
pub mod load;
pub mod read;
pub mod recovery;
pub mod reserve;
pub mod rowset;
pub mod schema;
pub mod segment;
pub mod tablet;
pub mod tablet_meta;
#[cfg(feature = "workload")]
pub mod workload;

pub use capture::Capture;
pub use compaction::GcStats;
pub use discard::wait_for_discards;
pub use engine::{CreateTabletRequest, Engine, EngineOptions, Store};
pub use error::{Error, Result};
pub use install::{InstallOutcome, InstallRequest, Verify};
pub use install_incremental::IncrementalRequest;
pub use load::{Durability, LoadBatch};
pub use read::TabletChecksum;
pub use recovery::RecoveryReport;
pub use reserve::{PlacedIds, RestoreSlot};
pub use rowset::{RowsetId, RowsetMeta, SegmentMeta};
pub use schema::{Column, ColumnType, Row, Schema, Value};
pub use tablet_meta::{StaleRowset, TabletMeta};
#[cfg(feature = "workload")]
pub use workload::WorkloadSpec;

/// Every fail point the engine defines (active with the `failpoints` feature).
pub const FAIL_POINTS: &[&str] = &[
    "engine::before_meta_rename",
    "engine::after_meta_commit",
    "engine::load::tablet",
    "engine::load::before_segment_write",
    "engine::load::before_meta_commit",
    "engine::gc::before_meta",
    "engine::install::before_link",
    "engine::install::after_link",
    "engine::install::before_meta_swap",
    "engine::install::after_meta_swap",
    "engine::install::before_gc",
    "engine::reserve::after_release",
];
