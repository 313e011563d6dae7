//! The coordinator's durable metadata in redb (`<home>/meta.redb`): the
//! catalog, one key per object, and the job records, one key per job.
//!
//! Every value is sealed: a format byte, the JSON payload, and a crc32 of
//! both (little-endian), so an edited or damaged value is named at open
//! rather than trusted. A catalog change writes only the objects it touched
//! (compared by `Arc` identity), in one transaction: an INSERT into one
//! partition writes that partition's key and the cluster header, whatever
//! the size of the catalog.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::catalog::{Catalog, Partition, RepoDef, Table, User};
use crate::job::JobRecord;

/// File name of the store inside a home.
pub const META_FILE: &str = "meta.redb";

/// Format byte of every sealed value.
const VALUE_FORMAT: u8 = 1;

/// redb's page cache per open store. Its default (1 GiB) kept every page a
/// job-record save wrote: two homes in one process held hundreds of MiB of
/// pages nobody reads again. Values here are small objects read once at
/// open, so a small cache costs no reads that matter.
const CACHE_BYTES: usize = 16 << 20;

fn builder() -> redb::Builder {
    let mut b = redb::Builder::new();
    b.set_cache_size(CACHE_BYTES);
    b
}

const HEADER: TableDefinition<&str, &[u8]> = TableDefinition::new("cluster");
const DATABASES: TableDefinition<&str, &[u8]> = TableDefinition::new("databases");
const TABLES: TableDefinition<u64, &[u8]> = TableDefinition::new("tables");
const PARTITIONS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("partitions");
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
const REPOS: TableDefinition<&str, &[u8]> = TableDefinition::new("repositories");
const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");

/// The cluster-wide fields of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Header {
    format_version: u32,
    cluster_id: u64,
    next_id: u64,
    backends: u32,
}

impl Header {
    fn of(c: &Catalog) -> Header {
        Header {
            format_version: c.format_version,
            cluster_id: c.cluster_id,
            next_id: c.next_id,
            backends: c.backends,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct DbRecord {
    id: u64,
}

/// A table without its partitions (each has its own key), and the order of
/// their ids.
#[derive(Debug, Serialize, Deserialize)]
struct TableRecord {
    db: String,
    table: Table,
    partition_ids: Vec<u64>,
}

fn seal<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    let mut out = vec![VALUE_FORMAT];
    serde_json::to_writer(&mut out, v).context("encoding a metadata value")?;
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

fn unseal<T: DeserializeOwned>(bytes: &[u8], what: &dyn Fn() -> String) -> Result<T> {
    if bytes.len() < 5 {
        bail!("{} is damaged: {} bytes is too short", what(), bytes.len());
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(tail);
    let stored = u32::from_le_bytes(crc);
    let actual = crc32fast::hash(body);
    if stored != actual {
        bail!(
            "{} is damaged or was changed outside tabletsnap: checksum {actual:#010x}, recorded {stored:#010x}",
            what()
        );
    }
    if body[0] != VALUE_FORMAT {
        bail!(
            "{} has format {}, newer than this tabletsnap reads ({VALUE_FORMAT}); upgrade tabletsnap",
            what(),
            body[0]
        );
    }
    serde_json::from_slice(&body[1..]).with_context(|| format!("{} is damaged", what()))
}

/// The metadata store of one home. One process opens it at a time (the
/// home's lock file guards it).
pub struct MetaStore {
    path: PathBuf,
    db: Database,
}

impl std::fmt::Debug for MetaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaStore")
            .field("path", &self.path)
            .finish()
    }
}

impl MetaStore {
    /// Path of the store in `home`.
    pub fn path(home: &Path) -> PathBuf {
        home.join(META_FILE)
    }

    /// Opens the store of `home`, which must exist.
    pub fn open(home: &Path) -> Result<MetaStore> {
        let path = Self::path(home);
        let db = builder().open(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => anyhow::anyhow!(
                "metadata store {} is in use by another process (a running `tabletsnap serve` or `cluster`, or another command on this home): stop it or wait for it",
                path.display()
            ),
            e => anyhow::anyhow!(
                "metadata store {} cannot be opened: {e}; restore it from a copy",
                path.display()
            ),
        })?;
        Ok(MetaStore { path, db })
    }

    /// Creates the store of a new home holding `catalog` (and no jobs).
    /// The file appears under its name only once whole.
    pub fn create(home: &Path, catalog: &Catalog, jobs: &[JobRecord]) -> Result<MetaStore> {
        let path = Self::path(home);
        let tmp = home.join(format!("{META_FILE}.creating"));
        let _ = std::fs::remove_file(&tmp);
        {
            let db = builder()
                .create(&tmp)
                .with_context(|| format!("creating metadata store {}", tmp.display()))?;
            let store = MetaStore {
                path: tmp.clone(),
                db,
            };
            store.write(None, catalog)?;
            for j in jobs {
                store.save_job(j)?;
            }
        }
        tabletsnap_engine::file::rename_durable(&tmp, &path)
            .with_context(|| format!("creating metadata store {}", path.display()))?;
        Self::open(home)
    }

    fn err(&self, e: impl std::fmt::Display) -> anyhow::Error {
        anyhow::anyhow!("metadata store {}: {e}", self.path.display())
    }

    /// Reads the whole catalog, checking every value.
    pub fn load_catalog(&self) -> Result<Catalog> {
        let p = self.path.display().to_string();
        let rtx = self.db.begin_read().map_err(|e| self.err(e))?;
        let header: Header = {
            let t = rtx.open_table(HEADER).map_err(|e| self.err(e))?;
            let v = t
                .get("header")
                .map_err(|e| self.err(e))?
                .with_context(|| format!("metadata store {p} has no cluster header"))?;
            unseal(v.value(), &|| format!("cluster header in {p}"))?
        };
        let mut cat = Catalog::new(header.backends);
        cat.format_version = header.format_version;
        cat.cluster_id = header.cluster_id;
        cat.next_id = header.next_id;
        cat.users.clear();
        let mut db_ids = HashMap::new();
        {
            let t = rtx.open_table(DATABASES).map_err(|e| self.err(e))?;
            for row in t.iter().map_err(|e| self.err(e))? {
                let (k, v) = row.map_err(|e| self.err(e))?;
                let name = k.value().to_string();
                let r: DbRecord = unseal(v.value(), &|| format!("database '{name}' in {p}"))?;
                db_ids.insert(name.clone(), r.id);
                cat.databases.insert(
                    name,
                    crate::catalog::Database {
                        id: r.id,
                        tables: BTreeMap::new(),
                    },
                );
            }
        }
        {
            let tables = rtx.open_table(TABLES).map_err(|e| self.err(e))?;
            let parts = rtx.open_table(PARTITIONS).map_err(|e| self.err(e))?;
            for row in tables.iter().map_err(|e| self.err(e))? {
                let (k, v) = row.map_err(|e| self.err(e))?;
                let id = k.value();
                let r: TableRecord = unseal(v.value(), &|| format!("table id {id} in {p}"))?;
                let what = format!("table '{}.{}' (id {id}) in {p}", r.db, r.table.name);
                let mut by_id: HashMap<u64, Partition> = HashMap::new();
                for prow in parts
                    .range((id, 0)..=(id, u64::MAX))
                    .map_err(|e| self.err(e))?
                {
                    let (pk, pv) = prow.map_err(|e| self.err(e))?;
                    let pid = pk.value().1;
                    let part: Partition =
                        unseal(pv.value(), &|| format!("partition id {pid} of {what}"))?;
                    by_id.insert(pid, part);
                }
                let mut table = r.table;
                table.partitions = r
                    .partition_ids
                    .iter()
                    .map(|pid| {
                        by_id
                            .remove(pid)
                            .map(Arc::new)
                            .with_context(|| format!("{what}: partition id {pid} is missing"))
                    })
                    .collect::<Result<_>>()?;
                let db = cat
                    .databases
                    .get_mut(&r.db)
                    .with_context(|| format!("{what} names a database that does not exist"))?;
                db.tables.insert(table.name.clone(), Arc::new(table));
            }
        }
        {
            let t = rtx.open_table(USERS).map_err(|e| self.err(e))?;
            for row in t.iter().map_err(|e| self.err(e))? {
                let (k, v) = row.map_err(|e| self.err(e))?;
                let name = k.value().to_string();
                let u: User = unseal(v.value(), &|| format!("user '{name}' in {p}"))?;
                cat.users.insert(name, u);
            }
        }
        {
            let t = rtx.open_table(REPOS).map_err(|e| self.err(e))?;
            for row in t.iter().map_err(|e| self.err(e))? {
                let (k, v) = row.map_err(|e| self.err(e))?;
                let name = k.value().to_string();
                let r: RepoDef = unseal(v.value(), &|| format!("repository '{name}' in {p}"))?;
                cat.repositories.insert(name, r);
            }
        }
        Ok(cat)
    }

    /// Writes what changed from `old` to `new` in one transaction (all of
    /// `new` when `old` is `None`).
    pub fn write(&self, old: Option<&Catalog>, new: &Catalog) -> Result<()> {
        let wtx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            if old.map(Header::of) != Some(Header::of(new)) {
                let mut t = wtx.open_table(HEADER).map_err(|e| self.err(e))?;
                t.insert("header", seal(&Header::of(new))?.as_slice())
                    .map_err(|e| self.err(e))?;
            }
            let mut dbs = wtx.open_table(DATABASES).map_err(|e| self.err(e))?;
            let mut tables = wtx.open_table(TABLES).map_err(|e| self.err(e))?;
            let mut parts = wtx.open_table(PARTITIONS).map_err(|e| self.err(e))?;
            let mut live_tables: HashSet<u64> = HashSet::new();
            for (dbname, db) in &new.databases {
                let old_db = old.and_then(|o| o.databases.get(dbname));
                if old_db.map(|d| d.id) != Some(db.id) {
                    dbs.insert(dbname.as_str(), seal(&DbRecord { id: db.id })?.as_slice())
                        .map_err(|e| self.err(e))?;
                }
                for (tname, t) in &db.tables {
                    live_tables.insert(t.id);
                    let old_t = old_db.and_then(|d| d.tables.get(tname));
                    if old_t.is_some_and(|o| Arc::ptr_eq(o, t)) {
                        continue;
                    }
                    // Only the partitions that changed (or are new) are written.
                    let old_parts: HashMap<u64, &Arc<Partition>> = old_t
                        .filter(|o| o.id == t.id)
                        .map(|o| o.partitions.iter().map(|p| (p.id, p)).collect())
                        .unwrap_or_default();
                    for p in &t.partitions {
                        if old_parts.get(&p.id).is_some_and(|o| Arc::ptr_eq(o, p)) {
                            continue;
                        }
                        parts
                            .insert((t.id, p.id), seal(p.as_ref())?.as_slice())
                            .map_err(|e| self.err(e))?;
                    }
                    let live: HashSet<u64> = t.partitions.iter().map(|p| p.id).collect();
                    for pid in old_parts.keys().filter(|pid| !live.contains(pid)) {
                        parts.remove((t.id, *pid)).map_err(|e| self.err(e))?;
                    }
                    let mut header = Table::clone(t);
                    header.partitions = Vec::new();
                    let rec = TableRecord {
                        db: dbname.clone(),
                        table: header,
                        partition_ids: t.partitions.iter().map(|p| p.id).collect(),
                    };
                    tables
                        .insert(t.id, seal(&rec)?.as_slice())
                        .map_err(|e| self.err(e))?;
                }
            }
            if let Some(old) = old {
                for (dbname, db) in &old.databases {
                    if !new.databases.contains_key(dbname) {
                        dbs.remove(dbname.as_str()).map_err(|e| self.err(e))?;
                    }
                    for t in db.tables.values() {
                        if live_tables.contains(&t.id) {
                            continue;
                        }
                        tables.remove(t.id).map_err(|e| self.err(e))?;
                        for p in &t.partitions {
                            parts.remove((t.id, p.id)).map_err(|e| self.err(e))?;
                        }
                    }
                }
            }
            write_map(self, &wtx, USERS, old.map(|o| &o.users), &new.users)?;
            write_map(
                self,
                &wtx,
                REPOS,
                old.map(|o| &o.repositories),
                &new.repositories,
            )?;
        }
        wtx.commit().map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every job record, oldest first.
    pub fn load_jobs(&self) -> Result<Vec<JobRecord>> {
        let p = self.path.display().to_string();
        let rtx = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = match rtx.open_table(JOBS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let id = k.value();
            out.push(unseal(v.value(), &|| format!("job record {id} in {p}"))?);
        }
        Ok(out)
    }

    /// Writes one job record (one transaction).
    pub fn save_job(&self, rec: &JobRecord) -> Result<()> {
        let bytes = seal(rec)?;
        let wtx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = wtx.open_table(JOBS).map_err(|e| self.err(e))?;
            t.insert(rec.id(), bytes.as_slice())
                .map_err(|e| self.err(e))?;
        }
        wtx.commit().map_err(|e| self.err(e))?;
        Ok(())
    }
}

fn write_map<V: Serialize + PartialEq>(
    store: &MetaStore,
    wtx: &redb::WriteTransaction,
    def: TableDefinition<&str, &[u8]>,
    old: Option<&BTreeMap<String, V>>,
    new: &BTreeMap<String, V>,
) -> Result<()> {
    if old == Some(new) {
        return Ok(());
    }
    let mut t = wtx.open_table(def).map_err(|e| store.err(e))?;
    for (k, v) in new {
        if old.and_then(|o| o.get(k)) != Some(v) {
            t.insert(k.as_str(), seal(v)?.as_slice())
                .map_err(|e| store.err(e))?;
        }
    }
    if let Some(old) = old {
        for k in old.keys().filter(|k| !new.contains_key(*k)) {
            t.remove(k.as_str()).map_err(|e| store.err(e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flipped_byte_in_a_value_is_named() {
        let v = seal(&DbRecord { id: 7 }).expect("seal");
        for i in 0..v.len() {
            let mut bad = v.clone();
            bad[i] ^= 0x20;
            let e = unseal::<DbRecord>(&bad, &|| "database 'd'".into())
                .expect_err("a flipped byte is caught");
            assert!(format!("{e:#}").contains("database 'd'"), "{e:#}");
        }
        let back: DbRecord = unseal(&v, &|| "x".into()).expect("round trip");
        assert_eq!(back.id, 7);
    }
}
