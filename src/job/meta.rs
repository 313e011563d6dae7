//! The catalog objects a backup carries (the repository's opaque `meta`
//! object): enough to recreate tables and partitions and to map every backed
//! up tablet to its bucket.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tabletsnap_engine::{Schema, Value};

/// Newest backup meta format this build reads.
pub const BACKUP_META_VERSION: u32 = 1;

/// One backed-up partition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackupPartition {
    /// Source partition id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Inclusive lower bound (`None`: unbounded).
    pub lower: Option<Value>,
    /// Exclusive upper bound (`None`: MAXVALUE).
    pub upper: Option<Value>,
    /// The version backed up.
    pub version: u64,
    /// Source tablet ids, one per bucket, in bucket order.
    pub tablets: Vec<u64>,
    /// Per tablet (same order), the digest of its segment files at
    /// `version` (see `carry::files_digest`): the next incremental backup
    /// carries a tablet whose digest there is the same. Empty in metas
    /// written before digests existed (nothing is carried from them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub digests: Vec<Option<u64>>,
    /// Rows in the partition at `version`.
    pub rows: u64,
    /// The partition's lineage (`Partition::lineage`) at `version`: a
    /// catch-up restore appends this backup's versions only to data of the
    /// same lineage. 0 in metas written before lineages existed.
    #[serde(default, skip_serializing_if = "crate::catalog::is_zero")]
    pub lineage: u64,
}

/// One backed-up table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackupTable {
    /// Source table id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Schema.
    pub schema: Schema,
    /// RANGE partition column.
    pub partition_column: Option<String>,
    /// HASH distribution columns.
    pub distribution: Vec<String>,
    /// Buckets per partition.
    pub buckets: u32,
    /// Replicas per tablet in the source.
    pub replication_num: u16,
    /// The partitions backed up (all, or those named in ON).
    pub partitions: Vec<BackupPartition>,
}

/// The `meta` object of a backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackupMeta {
    /// Format version.
    pub format_version: u32,
    /// Cluster that made it.
    pub cluster_id: u64,
    /// Source database.
    pub db: String,
    /// Label.
    pub label: String,
    /// Repository timestamp.
    pub timestamp: String,
    /// Job creation time (ms).
    pub create_time_ms: u64,
    /// Tables.
    pub tables: Vec<BackupTable>,
}

impl BackupMeta {
    /// Serializes as JSON (compact: a 100k-tablet meta lists 100k ids and
    /// digests, read by every incremental backup's job).
    pub fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).context("encoding backup meta")
    }

    /// Parses and checks a meta object.
    pub fn decode(bytes: &[u8], what: &str) -> Result<BackupMeta> {
        let m: BackupMeta = serde_json::from_slice(bytes)
            .with_context(|| format!("{what}: the backup meta is damaged"))?;
        if m.format_version > BACKUP_META_VERSION {
            bail!(
                "{what}: backup meta format {} is newer than this tabletsnap reads ({BACKUP_META_VERSION}); upgrade tabletsnap",
                m.format_version
            );
        }
        Ok(m)
    }

    /// Table `name`.
    pub fn table(&self, name: &str) -> Option<&BackupTable> {
        self.tables.iter().find(|t| t.name == name)
    }
}
