//! Capture for snapshots: under the tablet's lock, the rowsets exactly
//! covering [0, v] and a meta copy restricted to them, pinned against GC
//! until the caller has linked the files.

use std::path::PathBuf;

use crate::engine::Engine;
use crate::error::Result;
use crate::tablet::RowsetPin;
use crate::tablet_meta::TabletMeta;

/// A consistent view of a tablet at one version.
#[derive(Debug)]
pub struct Capture {
    /// The meta restricted to the rowsets covering [0, version].
    pub meta: TabletMeta,
    /// The captured version.
    pub version: u64,
    /// The tablet's directory, where the segment files are.
    pub dir: PathBuf,
    /// Index of the store holding the tablet.
    pub store: usize,
    _pin: RowsetPin,
}

impl Capture {
    /// Every file of the capture: (file name, size, crc32), from the meta alone.
    pub fn files(&self) -> Vec<(String, u64, u32)> {
        self.meta
            .rowsets
            .iter()
            .flat_map(|r| r.files().map(|(n, s)| (n, s.size, s.crc32)))
            .collect()
    }
}

impl Engine {
    /// Captures tablet `tablet_id` at `version` (the newest when `None`), or
    /// fails with `VersionAlreadyMerged` when compaction made that impossible.
    pub fn capture(&self, tablet_id: u64, version: Option<u64>) -> Result<Capture> {
        let tablet = self.tablet(tablet_id)?;
        tablet.with_meta(|m| {
            let v = version.unwrap_or_else(|| m.max_version());
            let meta = m.restricted_to(v)?;
            let pin = tablet.pin(&meta.rowsets);
            Ok(Capture {
                meta,
                version: v,
                dir: tablet.dir().to_path_buf(),
                store: tablet.store,
                _pin: pin,
            })
        })
    }
}
