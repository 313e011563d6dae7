//! The crate's error type and its retry classification.

use std::io;
use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure the transfer crate reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A local I/O operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Data did not match its recorded crc32.
    #[error("checksum mismatch in {what}: expected {expected:#010x}, got {actual:#010x}")]
    ChecksumMismatch {
        /// What was checked (names the tablet, file and object when known).
        what: String,
        /// The recorded checksum.
        expected: u32,
        /// The checksum of the bytes actually seen.
        actual: u32,
    },
    /// Data did not have its recorded size.
    #[error("size mismatch in {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// What was checked.
        what: String,
        /// The recorded size.
        expected: u64,
        /// The size actually seen.
        actual: u64,
    },
    /// The object does not exist in the backend.
    #[error("object '{key}' not found")]
    NotFound {
        /// The key that was looked up.
        key: String,
    },
    /// A backend operation failed (remote stores, fault injection).
    #[error("{op} of '{key}' failed ({}): {message}", if *.transient { "transient" } else { "permanent" })]
    Backend {
        /// The operation: put, get, get_range, head, list, delete.
        op: &'static str,
        /// The key (or prefix) involved.
        key: String,
        /// Whether retrying may succeed.
        transient: bool,
        /// What the backend said.
        message: String,
    },
    /// A transient error persisted through every allowed attempt.
    #[error("gave up on '{key}' after {attempts} attempts: {source}")]
    RetriesExhausted {
        /// The object key.
        key: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        source: Box<Error>,
    },
    /// An object key is not acceptable to a backend.
    #[error("invalid object key '{key}': {reason}")]
    InvalidKey {
        /// The offending key.
        key: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A label, timestamp, repository name or file path is not acceptable.
    #[error("invalid {kind} '{value}': {reason}")]
    InvalidName {
        /// What kind of name: label, timestamp, repository name, path.
        kind: &'static str,
        /// The offending value (control characters escaped).
        value: String,
        /// Why it is refused and what is allowed.
        reason: std::borrow::Cow<'static, str>,
    },
    /// A stored object is malformed (bad magic, truncated, bad counts).
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// The object or structure.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A stored object was written by a newer tabletsnap.
    #[error("{what} has format version {found}, this tabletsnap reads up to version {supported}: upgrade tabletsnap to read it")]
    UnsupportedVersion {
        /// The object.
        what: String,
        /// The version found.
        found: u32,
        /// The newest version this build understands.
        supported: u32,
    },
    /// A path under a [`crate::LocalFs`] root is a symbolic link. Following it
    /// could read or write outside the repository, so every operation refuses.
    #[error("repository path {} is a symbolic link; refusing to follow it out of the repository root {} (key '{key}'): replace the link with the directory or file itself", path.display(), root.display())]
    SymlinkRefused {
        /// The key whose path met the link.
        key: String,
        /// The symbolic link.
        path: PathBuf,
        /// The backend's root directory.
        root: PathBuf,
    },
    /// The directory a repository location names does not exist.
    #[error("repository location {} does not exist (is the filesystem mounted?)", path.display())]
    LocationNotFound {
        /// The missing directory.
        path: PathBuf,
    },
    /// Numbers read from a repository object overflow when added or multiplied.
    #[error("{what}: {detail} overflows")]
    Overflow {
        /// The object (and entry) holding the numbers.
        what: String,
        /// The operation that overflows, with its operands.
        detail: String,
    },
    /// Whether a snapshot is committed could not be told (its `info` object
    /// exists but could not be read).
    #[error("cannot tell whether snapshot '{label}' at {timestamp} is committed in repository '{repo}': {reason}")]
    CommitStateUnknown {
        /// The repository name.
        repo: String,
        /// The snapshot label.
        label: String,
        /// The snapshot timestamp.
        timestamp: String,
        /// Why the info could not be read.
        reason: String,
    },
    /// The repository does not exist under the backend root.
    #[error("repository '{name}' not found (create it first)")]
    RepositoryNotFound {
        /// The repository name.
        name: String,
    },
    /// The snapshot is absent or was never committed (no `info` object).
    #[error("snapshot '{label}' at {timestamp} not found in repository '{repo}' (list_snapshots lists the committed ones)")]
    SnapshotNotFound {
        /// The repository name.
        repo: String,
        /// The snapshot label.
        label: String,
        /// The snapshot timestamp.
        timestamp: String,
    },
    /// The snapshot is already committed; a new backup needs a new label or timestamp.
    #[error("snapshot '{label}' at {timestamp} already exists in repository '{repo}'")]
    SnapshotExists {
        /// The repository name.
        repo: String,
        /// The snapshot label.
        label: String,
        /// The snapshot timestamp.
        timestamp: String,
    },
    /// Upload input is inconsistent (duplicate tablet or file, ...).
    #[error("invalid upload input: {0}")]
    InvalidInput(String),
    /// A repository location or its properties cannot be used as given
    /// (missing credentials, a bad value): the sentence says which and why.
    #[error("{0}")]
    Config(String),
    /// A download target that keeps some files itself
    /// ([`crate::download::TargetDirs::keep`]) failed; the sentence names
    /// the file and the cause.
    #[error("{0}")]
    Target(String),
    /// The download caller gave no target directory for a tablet in the manifest.
    #[error("no target directory given for tablet {tablet_id}")]
    NoTarget {
        /// The tablet without a target.
        tablet_id: u64,
    },
    /// The operation was cancelled through its [`crate::CancelToken`].
    #[error("transfer cancelled")]
    Cancelled,
    /// A fail point fired (only with the `failpoints` feature).
    #[error("fail point '{0}' triggered")]
    FailPoint(String),
}

impl Error {
    /// Builds an [`Error::Io`] from a path and an I/O error.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether retrying the same operation may succeed.
    ///
    /// Only transient backend errors and I/O errors of the interrupted/timed-out
    /// kinds are retryable: a missing object, a checksum mismatch or a refused key
    /// will not change by asking again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Backend { transient, .. } => *transient,
            Error::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::Interrupted
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::WouldBlock
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
            ),
            _ => false,
        }
    }

    /// Whether the bytes read failed their check (checksum, size, format):
    /// damage in the object, or in the read that fetched it.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            Error::ChecksumMismatch { .. } | Error::SizeMismatch { .. } | Error::Corrupt { .. }
        )
    }

    /// Whether this is [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}

/// Escapes control characters so an error message shows what was refused.
pub(crate) fn printable(s: &str) -> String {
    s.escape_debug().to_string()
}

/// A durable-write error keeps its path.
impl From<tabletsnap_durable::IoError> for Error {
    fn from(e: tabletsnap_durable::IoError) -> Self {
        Error::io(e.path, e.source)
    }
}
