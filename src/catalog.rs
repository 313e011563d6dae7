//! The cluster catalog: databases, tables, partitions, tablets and their
//! replicas, users and repositories, persisted as one JSON document written
//! atomically (`<home>/catalog.json`). Ids are unique within a cluster and
//! never reused: the next id is persisted with every change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tabletsnap_engine::{Schema, Value};

/// File name of the JSON catalog of homes made before the metadata store
/// (imported into `meta.redb` at the first open).
pub const CATALOG_FILE: &str = "catalog.json";

/// A user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    /// May run BACKUP, RESTORE, CANCEL and REPOSITORY statements.
    pub admin: bool,
}

/// A repository mapping: a name for a location. Dropping it never touches the data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RepoDef {
    /// Repository name.
    pub name: String,
    /// `file:///abs/path` or `mem://name`.
    pub location: String,
    /// Broker name, kept for SHOW REPOSITORIES.
    pub broker: Option<String>,
    /// PROPERTIES as given, less the secret key (kept in `secrets.json`).
    pub properties: Vec<(String, String)>,
    /// Creation time (ms).
    pub create_time_ms: u64,
    /// `CREATE READ ONLY REPOSITORY`: restores only, BACKUP is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// One tablet of a partition and the backends holding its replicas.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TabletInfo {
    /// Tablet id (the same on every replica).
    pub id: u64,
    /// Backend ids holding a replica.
    pub replicas: Vec<u32>,
}

/// Where a restore took a partition's data from: the chain a catch-up
/// restore checks before it appends a later backup's versions.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct RestoredFrom {
    /// Cluster id of the backup's source.
    pub cluster_id: u64,
    /// Source table id.
    pub table_id: u64,
    /// Source partition id.
    pub partition_id: u64,
    /// The version restored (the partition's visible version right after).
    pub version: u64,
    /// The source partition's [`Partition::lineage`] at the backup (0 in
    /// records written before lineages existed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lineage: u64,
}

/// For `skip_serializing_if`: a 0 that older records lack.
pub(crate) fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Where a restore took a table from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableSource {
    /// Cluster id of the backup's source.
    pub cluster_id: u64,
    /// Source table id.
    pub table_id: u64,
}

/// A range partition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Partition {
    /// Partition id.
    pub id: u64,
    /// Partition name.
    pub name: String,
    /// Exclusive upper bound; `None` is MAXVALUE.
    pub upper: Option<Value>,
    /// Inclusive lower bound when it is not the previous partition's upper
    /// (a restore of some partitions leaves gaps); `None`: contiguous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower: Option<Value>,
    /// The newest version readers may see.
    pub visible_version: u64,
    /// Tablets, one per bucket.
    pub tablets: Vec<TabletInfo>,
    /// Set while a restore job fills this partition: not readable.
    pub restoring_job: Option<u64>,
    /// Set from the moment a restore that replaces this partition is
    /// accepted until that job ends: loads are refused, so no acknowledged
    /// write is overwritten by the restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_fence: Option<u64>,
    /// Set by the last restore that filled this partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<RestoredFrom>,
    /// Which data the versions up to `visible_version` name: the id of the
    /// last RESTORE job that replaced this partition's data (0: never
    /// replaced). An overwrite restore rolls versions back, and the loads
    /// after it reuse version numbers for other data, so a catch-up restore
    /// checks the lineage along with the version.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lineage: u64,
}

/// A table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Table {
    /// Table id.
    pub id: u64,
    /// Table name.
    pub name: String,
    /// Columns (key flags from DUPLICATE KEY).
    pub schema: Schema,
    /// The RANGE partition column, if partitioned.
    pub partition_column: Option<String>,
    /// Partitions in range order (shared: a catalog copy costs a pointer
    /// per partition, and a change writes only the partitions it touched).
    pub partitions: Vec<Arc<Partition>>,
    /// HASH distribution columns.
    pub distribution: Vec<String>,
    /// Buckets (tablets) per partition.
    pub buckets: u32,
    /// Replicas per tablet.
    pub replication_num: u16,
    /// Set while a restore job fills this table.
    pub restoring_job: Option<u64>,
    /// Whether INSERT is allowed while restoring.
    pub allow_load_while_restoring: bool,
    /// Set by the last restore into this table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<TableSource>,
}

impl Table {
    /// The partition named `name`.
    pub fn partition(&self, name: &str) -> Option<&Partition> {
        self.partitions
            .iter()
            .find(|p| p.name == name)
            .map(AsRef::as_ref)
    }

    /// The partition whose range holds `v` (none if `v` falls in a gap).
    pub fn partition_for(&self, v: &Value) -> Option<usize> {
        let i = self.partitions.iter().position(|p| match &p.upper {
            None => true,
            Some(u) => value_lt(v, u),
        })?;
        match self.lower_bound(i) {
            Some(l) if value_lt(v, l) => None,
            _ => Some(i),
        }
    }

    /// Index of the partition column, if partitioned.
    pub fn partition_column_index(&self) -> Option<usize> {
        let name = self.partition_column.as_ref()?;
        self.schema.columns.iter().position(|c| &c.name == name)
    }

    /// The inclusive lower bound of partition `i`: its own, or else the
    /// previous partition's upper (`None`: unbounded).
    pub fn lower_bound(&self, i: usize) -> Option<&Value> {
        if let Some(l) = &self.partitions[i].lower {
            return Some(l);
        }
        if i == 0 {
            None
        } else {
            self.partitions[i - 1].upper.as_ref()
        }
    }
}

/// Orders values of one partition column type; NULL sorts first.
pub fn value_lt(a: &Value, b: &Value) -> bool {
    use Value::*;
    match (a, b) {
        (Null, Null) => false,
        (Null, _) => true,
        (_, Null) => false,
        (Int(x), Int(y)) | (Date(x), Date(y)) => x < y,
        (BigInt(x), BigInt(y)) | (DateTime(x), DateTime(y)) => x < y,
        (Int(x), BigInt(y)) => i64::from(*x) < *y,
        (BigInt(x), Int(y)) => *x < i64::from(*y),
        (Double(x), Double(y)) => x < y,
        (Varchar(x), Varchar(y)) => x < y,
        (Boolean(x), Boolean(y)) => x < y,
        _ => false,
    }
}

/// A database.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Database {
    /// Database id.
    pub id: u64,
    /// Tables by name (shared: see [`Table::partitions`]).
    pub tables: BTreeMap<String, Arc<Table>>,
}

/// The whole catalog.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Catalog {
    /// Format version of this document.
    pub format_version: u32,
    /// Cluster id (random at creation).
    pub cluster_id: u64,
    /// Next id to hand out (databases, tables, partitions, tablets, jobs).
    pub next_id: u64,
    /// Number of backends.
    pub backends: u32,
    /// Databases by name.
    pub databases: BTreeMap<String, Database>,
    /// Users by name.
    pub users: BTreeMap<String, User>,
    /// Repositories by name.
    pub repositories: BTreeMap<String, RepoDef>,
}

/// Newest catalog format this build reads (2: the document is wrapped with
/// a crc32 of its canonical encoding).
pub const CATALOG_FORMAT_VERSION: u32 = 2;

#[derive(Deserialize)]
struct Sealed {
    crc32: u32,
    catalog: serde_json::Value,
}

impl Catalog {
    /// A fresh catalog with the root admin user.
    pub fn new(backends: u32) -> Catalog {
        let mut users = BTreeMap::new();
        users.insert("root".to_string(), User { admin: true });
        let seed = tabletsnap_engine::engine::now_ms() ^ u64::from(std::process::id()) << 40;
        Catalog {
            format_version: CATALOG_FORMAT_VERSION,
            cluster_id: tabletsnap_engine::hash::splitmix64(seed),
            next_id: 10_000,
            backends,
            databases: BTreeMap::new(),
            users,
            repositories: BTreeMap::new(),
        }
    }

    /// Path of the catalog in `home`.
    pub fn path(home: &Path) -> PathBuf {
        home.join(CATALOG_FILE)
    }

    /// Reads the catalog of a home that no process has open (the metadata
    /// store, or the JSON catalog of an older home).
    pub fn load(home: &Path) -> Result<Catalog> {
        if crate::meta_store::MetaStore::path(home).exists() {
            return crate::meta_store::MetaStore::open(home)?.load_catalog();
        }
        Self::load_legacy_json(home)
    }

    /// Loads the JSON catalog of a home made before the metadata store
    /// (`catalog.json`), checking its crc32 and its structure, to import it.
    pub fn load_legacy_json(home: &Path) -> Result<Catalog> {
        let path = Self::path(home);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let damaged = || format!("{} is damaged or not a catalog", path.display());
        let cat: Catalog = match serde_json::from_slice::<Sealed>(&bytes) {
            Ok(sealed) => {
                let canonical = serde_json::to_vec(&sealed.catalog).with_context(damaged)?;
                let actual = crc32fast::hash(&canonical);
                if actual != sealed.crc32 {
                    bail!(
                        "{} was changed outside tabletsnap or is damaged: its checksum is {actual:#010x}, the file records {:#010x}; restore the file from a copy",
                        path.display(),
                        sealed.crc32
                    );
                }
                serde_json::from_value(sealed.catalog).with_context(damaged)?
            }
            // Format 1 had no seal; it is sealed at the next save.
            Err(_) => serde_json::from_slice(&bytes).with_context(damaged)?,
        };
        if cat.format_version > CATALOG_FORMAT_VERSION {
            bail!(
                "{} has format version {}, newer than this tabletsnap reads ({CATALOG_FORMAT_VERSION}); upgrade tabletsnap",
                path.display(),
                cat.format_version
            );
        }
        cat.check()
            .with_context(|| format!("{} is inconsistent", path.display()))?;
        Ok(cat)
    }

    /// Checks what the code relies on: one tablet per bucket, replicas on
    /// existing backends, columns that exist, ids below the next id.
    pub fn check(&self) -> Result<()> {
        let max = crate::cluster::MAX_BACKENDS;
        if self.backends == 0 || self.backends > max {
            bail!(
                "the cluster has {} backends; 1 to {max} are supported",
                self.backends
            );
        }
        for (dbname, db) in &self.databases {
            for (name, t) in &db.tables {
                let what = format!("table '{dbname}.{name}'");
                if t.buckets == 0 {
                    bail!("{what} has 0 buckets");
                }
                if t.partitions.is_empty() {
                    bail!("{what} has no partitions");
                }
                if let Some(pc) = &t.partition_column {
                    if t.partition_column_index().is_none() {
                        bail!("{what}: partition column '{pc}' is not a column");
                    }
                }
                for d in &t.distribution {
                    if !t.schema.columns.iter().any(|c| &c.name == d) {
                        bail!("{what}: distribution column '{d}' is not a column");
                    }
                }
                for p in &t.partitions {
                    if p.tablets.len() != t.buckets as usize {
                        bail!(
                            "{what}, partition '{}': {} tablets for {} buckets",
                            p.name,
                            p.tablets.len(),
                            t.buckets
                        );
                    }
                    if p.visible_version == 0 {
                        bail!("{what}, partition '{}': visible version 0", p.name);
                    }
                    for tab in &p.tablets {
                        if tab.replicas.is_empty()
                            || tab.replicas.iter().any(|b| *b == 0 || *b > self.backends)
                        {
                            bail!(
                                "{what}, partition '{}': tablet {} has replicas {:?} on a cluster of {} backends",
                                p.name,
                                tab.id,
                                tab.replicas,
                                self.backends
                            );
                        }
                        if tab.id >= self.next_id {
                            bail!(
                                "{what}: tablet id {} is not below the next id {}",
                                tab.id,
                                self.next_id
                            );
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// A fresh id.
    pub fn alloc_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Database `name`, or an error saying how to list them.
    pub fn db(&self, name: &str) -> Result<&Database> {
        self.databases.get(name).ok_or_else(|| unknown_db(name))
    }

    /// Database `name`, mutable.
    pub fn db_mut(&mut self, name: &str) -> Result<&mut Database> {
        self.databases.get_mut(name).ok_or_else(|| unknown_db(name))
    }

    /// Table `db.name` (clone the `Arc` to keep it past the catalog lock).
    pub fn table(&self, db: &str, name: &str) -> Result<&Arc<Table>> {
        self.db(db)?
            .tables
            .get(name)
            .ok_or_else(|| unknown_table(db, name))
    }

    /// Table `db.name`, mutable.
    pub fn table_mut(&mut self, db: &str, name: &str) -> Result<&mut Table> {
        self.db_mut(db)?
            .tables
            .get_mut(name)
            .map(Arc::make_mut)
            .ok_or_else(|| unknown_table(db, name))
    }

    /// Repository `name`.
    pub fn repo(&self, name: &str) -> Result<&RepoDef> {
        self.repositories
            .get(name)
            .with_context(|| format!("unknown repository '{name}' (SHOW REPOSITORIES lists them)"))
    }
}

/// The 1049 error for an unknown database.
pub(crate) fn unknown_db(name: &str) -> anyhow::Error {
    crate::errcode::coded(
        crate::errcode::ErrorCode::BadDb,
        format!("unknown database '{name}' (SHOW DATABASES lists them)"),
    )
}

/// The 1146 error for an unknown table.
pub(crate) fn unknown_table(db: &str, name: &str) -> anyhow::Error {
    crate::errcode::coded(
        crate::errcode::ErrorCode::NoSuchTable,
        format!("unknown table '{db}.{name}' (SHOW TABLES FROM {db} lists them)"),
    )
}
