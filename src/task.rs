//! The task interface's wire messages: what a coordinator sends a backend
//! node and what it answers, as serde structs with a version field. The
//! in-process cluster calls [`crate::backend::BackendTasks`] directly; the
//! RPC client ([`crate::node::client`]) and server ([`crate::node::server`])
//! carry the same calls as these messages.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tabletsnap_engine::{CreateTabletRequest, InstallOutcome, Row, Schema, TabletChecksum};

use crate::backend::{RestoreTarget, SnapshotMade, SnapshotTarget};

/// The message format version; a node refuses any other.
pub const PROTOCOL_VERSION: u32 = 1;

/// The header that carries the cluster token.
pub const TOKEN_HEADER: &str = "X-Tabletsnap-Token";

/// What a node knows of one of its tablets (SHOW PARTITIONS, SHOW TABLET,
/// the catalog cross-check at open).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct TabletStat {
    /// Tablet id.
    pub tablet_id: u64,
    /// Highest version held.
    pub max_version: u64,
    /// Rowsets held.
    pub rowsets: u64,
    /// Bytes of all rowsets.
    pub data_size: u64,
    /// Rows visible at the asked version (0 if it cannot be read there).
    pub rows_at: u64,
    /// Bytes visible at the asked version.
    pub size_at: u64,
}

/// A node's heartbeat answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Heartbeat {
    /// Message version.
    pub version: u32,
    /// Tablets on the node.
    pub tablets: u64,
    /// Bytes of their data.
    pub data_used: u64,
    /// Long tasks running now.
    pub running_tasks: u64,
}

/// A new tablet, as sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateTablet {
    /// Owning table.
    pub table_id: u64,
    /// Owning partition.
    pub partition_id: u64,
    /// New tablet id.
    pub tablet_id: u64,
    /// Schema hash.
    pub schema_hash: u32,
    /// Schema.
    pub schema: Schema,
}

impl From<CreateTabletRequest> for CreateTablet {
    fn from(r: CreateTabletRequest) -> Self {
        CreateTablet {
            table_id: r.table_id,
            partition_id: r.partition_id,
            tablet_id: r.tablet_id,
            schema_hash: r.schema_hash,
            schema: r.schema,
        }
    }
}

impl From<CreateTablet> for CreateTabletRequest {
    fn from(r: CreateTablet) -> Self {
        CreateTabletRequest {
            table_id: r.table_id,
            partition_id: r.partition_id,
            tablet_id: r.tablet_id,
            schema_hash: r.schema_hash,
            schema: r.schema,
        }
    }
}

/// A repository as a node needs it to read or write it itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoAccess {
    /// Repository name.
    pub name: String,
    /// Its location.
    pub location: String,
    /// For an S3 location: its properties and secret key, which the node
    /// registers before opening it. Never logged (see [`Debug`] below).
    pub s3: Option<S3Access>,
}

/// An S3 repository's settings, secret included.
#[derive(Clone, Serialize, Deserialize)]
pub struct S3Access {
    /// CREATE REPOSITORY properties.
    pub properties: Vec<(String, String)>,
    /// The secret key, if stored in the home.
    pub secret: Option<String>,
}

impl std::fmt::Debug for S3Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("S3Access(***)")
    }
}

/// One call of the task interface.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Call {
    /// Liveness and load.
    Heartbeat,
    /// Creates tablets (one barrier).
    CreateTablets(Vec<CreateTablet>),
    /// Drops tablets; missing ones are fine.
    DropTablets(Vec<u64>),
    /// Publishes `(tablet, version, rows)` items.
    Load(Vec<(u64, u64, Vec<Row>)>),
    /// Rows of a tablet at a version.
    Scan {
        /// Tablet.
        tablet: u64,
        /// Version.
        version: u64,
    },
    /// Checksum of a tablet at a version.
    Checksum {
        /// Tablet.
        tablet: u64,
        /// Version.
        version: u64,
    },
    /// Stats of tablets, rows and size read at `version` if given.
    TabletStats {
        /// Tablets.
        ids: Vec<u64>,
        /// The version to count rows at (else each tablet's max).
        version: Option<u64>,
        /// Per tablet, the version to count its rows at (overrides `version`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        at: Vec<u64>,
    },
    /// Top-level snapshot and download dirs on the node.
    SnapshotDirs,
    /// Makes snapshots (long).
    MakeSnapshots {
        /// Targets.
        targets: Vec<SnapshotTarget>,
        /// Lock wait bound.
        timeout_ms: u64,
    },
    /// Uploads snapshots (long); the node writes the repository itself.
    Upload {
        /// Repository.
        repo: RepoAccess,
        /// Backup label.
        label: String,
        /// Backup timestamp.
        timestamp: String,
        /// Manifest part.
        part: String,
        /// Snapshots on this node.
        snaps: Vec<SnapshotMade>,
        /// Bytes/s cap.
        rate_limit: Option<u64>,
        /// Earlier backups to reuse files of, as (label, timestamp).
        reuse_from: Vec<(String, String)>,
        /// Per tablet of this node, the index in `reuse_from` of the base
        /// holding its newest version (empty: every base for every tablet).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reuse_newest: Vec<(u64, u32)>,
    },
    /// Prepares restore dirs.
    PrepareRestore(Vec<RestoreTarget>),
    /// Downloads into prepared dirs (long); the node reads the repository itself.
    Download {
        /// Repository.
        repo: RepoAccess,
        /// The manifest subset, encoded ([`tabletsnap_transfer::Manifest::encode`]) as hex.
        manifest_hex: String,
        /// Targets.
        targets: Vec<RestoreTarget>,
        /// Bytes/s cap.
        rate_limit: Option<u64>,
    },
    /// Installs downloaded dirs (long).
    Commit(Vec<RestoreTarget>),
    /// Removes snapshot or download dirs.
    Release(Vec<PathBuf>),
}

impl Call {
    /// Whether the call runs in the background: the node answers with
    /// [`Reply::Accepted`] at once and the client polls.
    pub fn is_long(&self) -> bool {
        matches!(
            self,
            Call::MakeSnapshots { .. }
                | Call::Upload { .. }
                | Call::Download { .. }
                | Call::Commit(_)
        )
    }

    /// Whether a repeat of the call with the same task id must return the
    /// first answer instead of running again.
    pub fn is_mutation(&self) -> bool {
        matches!(
            self,
            Call::CreateTablets(_)
                | Call::DropTablets(_)
                | Call::Load(_)
                | Call::PrepareRestore(_)
                | Call::Release(_)
        ) || self.is_long()
    }

    /// A short name for logs (never the arguments: they may hold secrets).
    pub fn name(&self) -> &'static str {
        match self {
            Call::Heartbeat => "heartbeat",
            Call::CreateTablets(_) => "create_tablets",
            Call::DropTablets(_) => "drop_tablets",
            Call::Load(_) => "load",
            Call::Scan { .. } => "scan",
            Call::Checksum { .. } => "checksum",
            Call::TabletStats { .. } => "tablet_stats",
            Call::SnapshotDirs => "snapshot_dirs",
            Call::MakeSnapshots { .. } => "make_snapshots",
            Call::Upload { .. } => "upload",
            Call::PrepareRestore(_) => "prepare_restore",
            Call::Download { .. } => "download",
            Call::Commit(_) => "commit",
            Call::Release(_) => "release",
        }
    }
}

/// A request to a node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Runs a call once per task id.
    Submit {
        /// Message version.
        version: u32,
        /// Unique per call; a retry reuses it.
        task_id: String,
        /// The call.
        call: Box<Call>,
    },
    /// Asks how a long task is doing.
    Poll {
        /// Message version.
        version: u32,
        /// The task.
        task_id: String,
    },
    /// Cancels a long task between pieces.
    Cancel {
        /// Message version.
        version: u32,
        /// The task.
        task_id: String,
    },
}

/// What a call returned.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Output {
    /// Nothing.
    Unit,
    /// A heartbeat.
    Heartbeat(Heartbeat),
    /// Rows.
    Rows(Vec<Row>),
    /// (checksum, rows).
    Checksum(u64, u64),
    /// Tablet stats, `None` for a tablet the node does not have.
    Stats(Vec<Option<TabletStat>>),
    /// Paths.
    Paths(Vec<PathBuf>),
    /// Snapshots made.
    Snapshots(Vec<SnapshotMade>),
    /// An uploaded part's manifest, encoded as hex.
    Manifest(String),
    /// Restore targets with their dirs filled.
    Targets(Vec<RestoreTarget>),
    /// Bytes downloaded.
    Bytes(u64),
    /// Install outcomes: `None` already installed, `Some(files)` installed.
    Installed(Vec<Option<u64>>),
}

/// A failed call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskError {
    /// The error chain, as text.
    pub message: String,
    /// Whether the job layer must not retry (missing or damaged repository data).
    pub permanent: bool,
}

/// A node's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Reply {
    /// A short call's result, or a finished long task's.
    Done {
        /// Message version.
        version: u32,
        /// The result.
        result: Result<Output, TaskError>,
    },
    /// A long task started (or was already running).
    Accepted {
        /// Message version.
        version: u32,
    },
    /// A long task is still running.
    Running {
        /// Message version.
        version: u32,
        /// Files done so far.
        files_done: u64,
        /// Files in the task.
        files_total: u64,
        /// Bytes done so far.
        bytes_done: u64,
        /// Bytes in the task.
        bytes_total: u64,
    },
    /// The node does not know the task (it restarted): submit it again.
    Unknown {
        /// Message version.
        version: u32,
    },
    /// The request was refused (bad version, path outside the node's dirs...).
    Refused {
        /// Message version.
        version: u32,
        /// Why.
        message: String,
    },
}

/// Install outcomes as sent.
pub fn outcomes_to_wire(o: &[InstallOutcome]) -> Vec<Option<u64>> {
    o.iter()
        .map(|x| match x {
            InstallOutcome::Installed { files } => Some(*files as u64),
            InstallOutcome::AlreadyInstalled => None,
        })
        .collect()
}

/// Install outcomes as received.
pub fn outcomes_from_wire(o: &[Option<u64>]) -> Vec<InstallOutcome> {
    o.iter()
        .map(|x| match x {
            Some(files) => InstallOutcome::Installed {
                files: usize::try_from(*files).unwrap_or(usize::MAX),
            },
            None => InstallOutcome::AlreadyInstalled,
        })
        .collect()
}

/// A checksum as received.
pub fn checksum_from_wire(checksum: u64, rows: u64) -> TabletChecksum {
    TabletChecksum { checksum, rows }
}

/// Lower-case hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Bytes of lower-case or upper-case hex; `None` if it is not hex.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return None;
    }
    b.chunks(2)
        .map(|p| {
            let hi = (p[0] as char).to_digit(16)?;
            let lo = (p[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        let data = [0u8, 1, 0x7f, 0x80, 0xff];
        assert_eq!(from_hex(&to_hex(&data)).as_deref(), Some(&data[..]));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
    }

    #[test]
    fn requests_round_trip_through_json() {
        let r = Request::Submit {
            version: PROTOCOL_VERSION,
            task_id: "t1".into(),
            call: Box::new(Call::Scan {
                tablet: 7,
                version: 2,
            }),
        };
        let back: Request =
            serde_json::from_slice(&serde_json::to_vec(&r).expect("encode")).expect("decode");
        let Request::Submit { call, .. } = back else {
            panic!("not a submit");
        };
        assert!(matches!(*call, Call::Scan { tablet: 7, .. }));
    }
}
