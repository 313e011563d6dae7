//! The engine's one error type.

use std::io;
use std::path::PathBuf;

/// Result alias for the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O call failed on `path`.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory the call was about.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Stored bytes do not match their checksum.
    #[error("checksum mismatch in {what}: expected {expected:#010x}, found {actual:#010x}")]
    ChecksumMismatch {
        /// What was checked (file, page, footer ...).
        what: String,
        /// The checksum that was recorded.
        expected: u32,
        /// The checksum of the bytes as read.
        actual: u32,
    },
    /// A file is structurally damaged (truncated, bad magic, bad lengths).
    #[error("corrupt file {path}: {detail}")]
    Corruption {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A tablet's meta could not be read on open; the tablet is unavailable until repaired.
    #[error("tablet {tablet_id} has a corrupt meta at {path}: {detail}")]
    TabletCorrupt {
        /// The tablet.
        tablet_id: u64,
        /// Its meta file.
        path: PathBuf,
        /// Why it was rejected.
        detail: String,
    },
    /// No tablet with this id on this engine.
    #[error("tablet {0} not found")]
    TabletNotFound(u64),
    /// A tablet with this id already exists.
    #[error("tablet {0} already exists")]
    TabletExists(u64),
    /// The tablet has no published version `version`.
    #[error("tablet {tablet_id} has no version {version} (max version is {max_version})")]
    VersionNotFound {
        /// The tablet.
        tablet_id: u64,
        /// The version asked for.
        version: u64,
        /// The newest published version.
        max_version: u64,
    },
    /// Compaction merged the versions so that [0, version] can no longer be captured exactly.
    #[error("tablet {tablet_id}: version {version} was merged into rowset [{start}-{end}] by compaction and cannot be captured")]
    VersionAlreadyMerged {
        /// The tablet.
        tablet_id: u64,
        /// The version asked for.
        version: u64,
        /// Start of the rowset that swallowed it.
        start: u64,
        /// End of the rowset that swallowed it.
        end: u64,
    },
    /// A load asked for a version the tablet cannot publish: more than one past
    /// its newest version, inside a merged rowset, or past `u64::MAX`.
    #[error("tablet {tablet_id}: cannot publish version {version}: {detail}")]
    VersionRefused {
        /// The tablet.
        tablet_id: u64,
        /// The version asked for.
        version: u64,
        /// Why not.
        detail: String,
    },
    /// An install would replace a tablet whose schema differs.
    #[error("tablet {tablet_id}: schema differs from the existing tablet ({detail}); refusing to overwrite")]
    SchemaMismatch {
        /// The tablet.
        tablet_id: u64,
        /// Which part differs.
        detail: String,
    },
    /// An incremental install cannot extend the tablet with the snapshot:
    /// not the same source data, or versions the snapshot merged or lacks.
    #[error("tablet {tablet_id}: cannot catch up: {detail}")]
    CatchUpRefused {
        /// The tablet.
        tablet_id: u64,
        /// Why not.
        detail: String,
    },
    /// The caller passed something unusable (bad rows, bad range, bad path).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A meta or format written by a newer version of tabletsnap.
    #[error("{path}: format version {found} is newer than this build supports ({supported}); upgrade tabletsnap")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A directory a store's barrier must cover is on another filesystem than
    /// the store root, so `syncfs` on the root would not make it durable.
    #[error("{path} is on another filesystem than its store root {root} (a mount point or a symlink inside the store?); one syncfs on the root would not make its writes durable: mount the store at its root, with everything under it on that filesystem")]
    NotOnStoreFilesystem {
        /// The offending directory.
        path: PathBuf,
        /// The store root.
        root: PathBuf,
    },
    /// A fail point fired (only with the `failpoints` feature).
    #[error("fail point {0} fired")]
    FailPoint(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A corruption error for `path`.
    pub fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Corruption {
            path: path.into(),
            detail: detail.into(),
        }
    }
}

/// Adds the path to an `io::Result`.
pub trait IoContext<T> {
    /// Maps the error to [`Error::Io`] naming `path`.
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
