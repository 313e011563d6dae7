//! The snapshot crate's one error type.

use std::io;
use std::path::PathBuf;

/// Result alias for the snapshot crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong making, releasing, expiring or loading snapshots.
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
    /// A file's bytes do not match the crc32 its meta records.
    #[error("checksum mismatch in {what}: expected {expected:#010x}, found {actual:#010x}")]
    ChecksumMismatch {
        /// What was checked.
        what: String,
        /// The checksum the meta records.
        expected: u32,
        /// The checksum of the bytes as read.
        actual: u32,
    },
    /// A file in a snapshot dir is damaged (wrong size, truncated, bad format).
    #[error("corrupt snapshot file {path}: {detail}")]
    Corruption {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// One tablet of a batch failed; the others are unaffected.
    #[error("snapshot of tablet {tablet_id} failed: {source}")]
    Tablet {
        /// The tablet.
        tablet_id: u64,
        /// Why.
        source: Box<Error>,
    },
    /// A snapshot dir holds no tablet meta (download incomplete, or not a snapshot dir).
    #[error("snapshot dir {dir} has no tablet meta ({file}); download it again")]
    MetaMissing {
        /// The snapshot dir.
        dir: PathBuf,
        /// The meta file name looked for.
        file: &'static str,
    },
    /// A snapshot dir's tablet meta does not decode or fails its checksum.
    #[error("snapshot dir {dir} has a corrupt tablet meta: {source}; download it again")]
    MetaCorrupt {
        /// The snapshot dir.
        dir: PathBuf,
        /// What the decoder said.
        source: Box<tabletsnap_engine::Error>,
    },
    /// Overwrite refused: the snapshot's schema differs from the existing tablet's.
    #[error("cannot load snapshot {dir} over tablet {tablet_id}: {detail}; restore into a new tablet or drop the old one first")]
    SchemaMismatch {
        /// The target tablet.
        tablet_id: u64,
        /// The snapshot dir.
        dir: PathBuf,
        /// What differs.
        detail: String,
    },
    /// A path given to `release_snapshot` is not a snapshot dir; nothing was deleted.
    #[error("refusing to release {path}: {reason}")]
    PathRefused {
        /// The path as given.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// The snapshot dir does not exist (already released or expired).
    #[error("snapshot dir {0} does not exist (already released or expired)")]
    NotFound(PathBuf),
    /// The caller passed something unusable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A fail point fired (only with the `failpoints` feature).
    #[error("fail point {0} fired")]
    FailPoint(String),
    /// The engine refused or failed an operation.
    #[error(transparent)]
    Engine(tabletsnap_engine::Error),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The engine error at the root of this one, if any (looks through `Tablet`).
    pub fn engine_error(&self) -> Option<&tabletsnap_engine::Error> {
        match self {
            Error::Engine(e) => Some(e),
            Error::Tablet { source, .. } => source.engine_error(),
            Error::MetaCorrupt { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<tabletsnap_engine::Error> for Error {
    /// Lifts the engine's I/O and integrity errors into ours so callers match
    /// one `Io` and one `ChecksumMismatch`, whichever layer noticed.
    fn from(e: tabletsnap_engine::Error) -> Self {
        use tabletsnap_engine::Error as E;
        match e {
            E::Io { path, source } => Error::Io { path, source },
            E::ChecksumMismatch {
                what,
                expected,
                actual,
            } => Error::ChecksumMismatch {
                what,
                expected,
                actual,
            },
            E::Corruption { path, detail } => Error::Corruption { path, detail },
            E::FailPoint(name) => Error::FailPoint(name),
            other => Error::Engine(other),
        }
    }
}
