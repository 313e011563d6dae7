//! Data statements: databases, tables, inserts, reads, checksums, SHOWs.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use tabletsnap_engine::{
    Column, ColumnType, CreateTabletRequest, Row, Schema, TabletChecksum, Value,
};

use super::values::{bucket_of, dist_indices, generate, literal_to_value};
use super::{Output, Session};
use crate::catalog::{Database, Partition, Table, TabletInfo};
use crate::sql::ast::{
    self, CreateTable, InsertGenerate, InsertValues, PartitionBound, QualifiedName,
};
use crate::sql::ResultSet;

fn ok(n: usize) -> Result<Output> {
    Ok(Output::Message(format!(
        "Query OK, {n} row{} affected",
        if n == 1 { "" } else { "s" }
    )))
}

pub(super) fn create_database(s: &Session, name: &str, if_not_exists: bool) -> Result<Output> {
    s.cluster.update_catalog(|c| {
        if c.databases.contains_key(name) {
            if if_not_exists {
                return Ok(());
            }
            return Err(crate::errcode::coded(
                crate::errcode::ErrorCode::DbExists,
                format!(
                    "database '{name}' already exists (CREATE DATABASE IF NOT EXISTS skips it)"
                ),
            ));
        }
        let id = c.alloc_id();
        c.databases.insert(
            name.to_string(),
            Database {
                id,
                tables: BTreeMap::new(),
            },
        );
        Ok(())
    })?;
    ok(1)
}

pub(super) fn drop_database(s: &Session, name: &str, if_exists: bool) -> Result<Output> {
    if let Some(j) = s.cluster.jobs().running_in(name) {
        bail!(
            "database '{name}' has a running job (JobId {}); cancel it first",
            j.id
        );
    }
    let removed = s
        .cluster
        .update_catalog(|c| match c.databases.remove(name) {
            Some(db) => Ok(Some(db)),
            None if if_exists => Ok(None),
            None => Err(crate::catalog::unknown_db(name)),
        })?;
    if let Some(db) = removed {
        for t in db.tables.values() {
            drop_tablets(s, t)?;
        }
    }
    ok(0)
}

fn drop_tablets(s: &Session, t: &Table) -> Result<()> {
    for p in &t.partitions {
        for tab in &p.tablets {
            for be in &tab.replicas {
                s.cluster.backend(*be)?.drop_tablets(&[tab.id])?;
            }
        }
    }
    Ok(())
}

fn engine_type(t: ast::ColumnType) -> ColumnType {
    match t {
        ast::ColumnType::Boolean => ColumnType::Boolean,
        ast::ColumnType::Int => ColumnType::Int,
        ast::ColumnType::BigInt => ColumnType::BigInt,
        ast::ColumnType::Double => ColumnType::Double,
        ast::ColumnType::Date => ColumnType::Date,
        ast::ColumnType::DateTime => ColumnType::DateTime,
        ast::ColumnType::Varchar(n) => ColumnType::Varchar(n),
    }
}

pub(super) fn create_table(s: &Session, ct: &CreateTable) -> Result<Output> {
    let (db, name) = s.resolve(&ct.name)?;
    {
        let cat = s.cluster.catalog();
        if cat.db(&db)?.tables.contains_key(&name) {
            if ct.if_not_exists {
                return ok(0);
            }
            return Err(crate::errcode::coded(
                crate::errcode::ErrorCode::TableExists,
                format!("table '{db}.{name}' already exists"),
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for c in &ct.columns {
        if !seen.insert(c.name.as_str()) {
            bail!("column '{}' is defined twice", c.name);
        }
    }
    let keys: Vec<String> = match &ct.duplicate_key {
        Some(k) => k.clone(),
        None => ct
            .columns
            .first()
            .map(|c| vec![c.name.clone()])
            .unwrap_or_default(),
    };
    for k in &keys {
        if !ct.columns.iter().any(|c| &c.name == k) {
            bail!("DUPLICATE KEY column '{k}' is not a column of the table");
        }
    }
    let schema = Schema::new(
        ct.columns
            .iter()
            .map(|c| Column {
                name: c.name.clone(),
                ty: engine_type(c.ty),
                is_key: keys.contains(&c.name),
                nullable: c.nullable && !keys.contains(&c.name),
            })
            .collect(),
    );
    for d in &ct.distribution.columns {
        if !ct.columns.iter().any(|c| &c.name == d) {
            bail!("DISTRIBUTED BY column '{d}' is not a column of the table");
        }
    }
    let buckets = ct.distribution.buckets;
    if buckets == 0 || buckets > 1024 {
        bail!("BUCKETS must be between 1 and 1024, not {buckets}");
    }
    // New replicas go to live backends only.
    let live = s.cluster.live_backend_ids();
    let backends = u32::try_from(live.len()).unwrap_or(u32::MAX);
    if backends == 0 {
        bail!("no live backend to place tablets on (SHOW BACKENDS says why)");
    }
    let mut replication_num = backends.min(3) as u16;
    for (k, v) in &ct.properties {
        match k.as_str() {
            "replication_num" => {
                replication_num = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    anyhow!("property replication_num must be a positive integer, not '{v}'")
                })?;
                if u32::from(replication_num) > backends {
                    bail!("replication_num {replication_num} is more than the {backends} backends of this cluster");
                }
            }
            other => bail!("unknown table property '{other}' (known: replication_num)"),
        }
    }
    // Partitions: (name, upper).
    let (partition_column, bounds): (Option<String>, Vec<(String, Option<Value>)>) = match &ct
        .partition
    {
        None => (None, vec![(name.clone(), None)]),
        Some(spec) => {
            let col = schema
                .columns
                .iter()
                .find(|c| c.name == spec.column)
                .ok_or_else(|| {
                    anyhow!(
                        "PARTITION BY column '{}' is not a column of the table",
                        spec.column
                    )
                })?;
            if !matches!(
                col.ty,
                ColumnType::Int | ColumnType::BigInt | ColumnType::Date | ColumnType::DateTime
            ) {
                bail!(
                    "PARTITION BY RANGE column '{}' must be INT, BIGINT, DATE or DATETIME",
                    col.name
                );
            }
            let mut out = Vec::new();
            let mut names = std::collections::HashSet::new();
            for (i, p) in spec.partitions.iter().enumerate() {
                if !names.insert(p.name.clone()) {
                    bail!("partition '{}' is defined twice", p.name);
                }
                let upper = match &p.bound {
                    PartitionBound::MaxValue if i + 1 == spec.partitions.len() => None,
                    PartitionBound::MaxValue => {
                        bail!("only the last partition may be MAXVALUE ('{}')", p.name)
                    }
                    PartitionBound::LessThan(l) => Some(literal_to_value(l, col.ty, &col.name)?),
                };
                if let (Some((_, Some(prev))), Some(u)) = (out.last(), &upper) {
                    if !crate::catalog::value_lt(prev, u) {
                        bail!(
                            "partition '{}' must have a higher bound than the one before it",
                            p.name
                        );
                    }
                }
                out.push((p.name.clone(), upper));
            }
            if out.is_empty() {
                bail!("PARTITION BY RANGE needs at least one partition");
            }
            (Some(spec.column.clone()), out)
        }
    };
    let schema_hash = schema.stable_hash();
    let (table, per_be) = s.cluster.update_catalog(|c| {
        let table_id = c.alloc_id();
        let mut next = (table_id % u64::from(backends)) as u32;
        let mut per_be: BTreeMap<u32, Vec<CreateTabletRequest>> = BTreeMap::new();
        let mut partitions = Vec::new();
        for (pname, upper) in &bounds {
            let pid = c.alloc_id();
            let mut tablets = Vec::new();
            for _ in 0..buckets {
                let tid = c.alloc_id();
                let replicas: Vec<u32> = (0..u32::from(replication_num))
                    .map(|k| live[((next + k) % backends) as usize])
                    .collect();
                next = (next + 1) % backends;
                for be in &replicas {
                    per_be.entry(*be).or_default().push(CreateTabletRequest {
                        table_id,
                        partition_id: pid,
                        tablet_id: tid,
                        schema_hash,
                        schema: schema.clone(),
                    });
                }
                tablets.push(TabletInfo { id: tid, replicas });
            }
            partitions.push(Arc::new(Partition {
                id: pid,
                name: pname.clone(),
                upper: upper.clone(),
                lower: None,
                visible_version: 1,
                tablets,
                restoring_job: None,
                load_fence: None,
                restored_from: None,
                lineage: 0,
            }));
        }
        let table = Table {
            id: table_id,
            name: name.clone(),
            schema: schema.clone(),
            partition_column: partition_column.clone(),
            partitions,
            distribution: ct.distribution.columns.clone(),
            buckets,
            replication_num,
            restoring_job: None,
            allow_load_while_restoring: false,
            restored_from: None,
        };
        Ok((table, per_be))
    })?;
    // Tablets first, then the catalog entry: a crash in between leaves unused
    // tablets, never a table whose tablets are missing.
    let results: Vec<Result<()>> = std::thread::scope(|sc| {
        let hs: Vec<_> = per_be
            .into_iter()
            .map(|(be, reqs)| {
                let c = &s.cluster;
                sc.spawn(move || c.backend(be)?.create_tablets(reqs))
            })
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("create tablets panicked")))
            })
            .collect()
    });
    for r in results {
        r?;
    }
    s.cluster.update_catalog(|c| {
        c.db_mut(&db)?.tables.insert(name.clone(), Arc::new(table));
        Ok(())
    })?;
    ok(0)
}

pub(super) fn drop_table(s: &Session, q: &QualifiedName, if_exists: bool) -> Result<Output> {
    let (db, name) = s.resolve(q)?;
    let removed = s.cluster.update_catalog(|c| {
        let d = c.db_mut(&db)?;
        match d.tables.get(&name) {
            None if if_exists => Ok(None),
            None => Err(crate::catalog::unknown_table(&db, &name)),
            Some(t) if t.restoring_job.is_some() => bail!(
                "table '{db}.{name}' is being restored by job {}; CANCEL RESTORE FROM {db} first",
                t.restoring_job.unwrap_or_default()
            ),
            Some(_) => Ok(d.tables.remove(&name)),
        }
    })?;
    if let Some(t) = removed {
        drop_tablets(s, &t)?;
    }
    ok(0)
}

fn check_loadable(t: &Table, db: &str, partitions: &[usize]) -> Result<()> {
    if let Some(job) = t.restoring_job {
        if !t.allow_load_while_restoring {
            bail!("table '{db}.{}' is being restored by job {job} with allow_load = false; INSERT is refused until it finishes", t.name);
        }
    }
    for p in partitions {
        let part = &t.partitions[*p];
        if let Some(job) = part.restoring_job.or(part.load_fence) {
            bail!("partition '{}' of table '{db}.{}' is being restored by job {job}, which replaces it; loads into it are refused until the job ends (SHOW RESTORE FROM {db})", part.name, t.name);
        }
    }
    Ok(())
}

/// Loads rows routed to partitions: every tablet of each touched partition
/// gets one new version (empty where no rows landed) on every replica.
fn load_rows(
    s: &Session,
    db: &str,
    name: &str,
    rows: Vec<(usize, Row)>,
    touched: Vec<usize>,
) -> Result<usize> {
    // Loads of one table run one at a time: each publishes its partitions'
    // visible version + 1, so two at once would pick the same version.
    type LoadLocks = std::sync::Mutex<BTreeMap<u64, std::sync::Arc<std::sync::Mutex<()>>>>;
    static LOAD_LOCKS: LoadLocks = std::sync::Mutex::new(BTreeMap::new());
    let table_id = s.cluster.catalog().table(db, name)?.id;
    let lock = std::sync::Arc::clone(
        LOAD_LOCKS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(table_id)
            .or_default(),
    );
    let _serial = lock.lock().unwrap_or_else(|e| e.into_inner());
    let table = s.cluster.catalog().table(db, name)?.clone();
    if table.id != table_id {
        bail!("table '{db}.{name}' was replaced during the INSERT; run it again");
    }
    check_loadable(&table, db, &touched)?;
    let dist = dist_indices(&table)?;
    let n = rows.len();
    let mut per_tablet: BTreeMap<u64, Vec<Row>> = BTreeMap::new();
    for p in &touched {
        for t in &table.partitions[*p].tablets {
            per_tablet.entry(t.id).or_default();
        }
    }
    for (p, row) in rows {
        table
            .schema
            .check_row(&row)
            .map_err(|e| anyhow!("table {name}: {e}"))?;
        let b = bucket_of(&table, &row, &dist);
        let tid = table.partitions[p].tablets[b].id;
        per_tablet.entry(tid).or_default().push(row);
    }
    // Every tablet of a partition publishes the partition's next version,
    // chosen here: a backend that accepted an earlier load which failed on
    // another backend (so was never made visible) replaces it, instead of
    // stacking this load above it where readers at the catalog version
    // would see the failed load's rows.
    let mut versions: BTreeMap<u64, u64> = BTreeMap::new();
    let mut per_be: BTreeMap<u32, Vec<(u64, u64, Vec<Row>)>> = BTreeMap::new();
    for p in &touched {
        let part = &table.partitions[*p];
        let version = part.visible_version.checked_add(1).ok_or_else(|| {
            anyhow!(
                "partition '{}' of table {name} has no version left",
                part.name
            )
        })?;
        versions.insert(part.id, version);
        for t in &part.tablets {
            // The rows move to the last replica; only extra replicas copy them.
            let rows = per_tablet.remove(&t.id).unwrap_or_default();
            if let Some((last, rest)) = t.replicas.split_last() {
                for be in rest {
                    per_be
                        .entry(*be)
                        .or_default()
                        .push((t.id, version, rows.clone()));
                }
                per_be.entry(*last).or_default().push((t.id, version, rows));
            }
        }
    }
    let results: Vec<Result<()>> = std::thread::scope(|sc| {
        let hs: Vec<_> = per_be
            .iter()
            .map(|(be, items)| {
                let c = &s.cluster;
                sc.spawn(move || c.backend(*be)?.load(items))
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("load panicked"))))
            .collect()
    });
    for r in results {
        r?;
    }
    s.cluster.update_catalog(|c| {
        let t = c.table_mut(db, name)?;
        // The fences again, under the catalog lock the publish holds: a
        // restore accepted while the rows were being written wins, and this
        // load is not acknowledged (its version is replaced by the next one).
        let now: Vec<usize> = versions
            .keys()
            .filter_map(|id| t.partitions.iter().position(|x| x.id == *id))
            .collect();
        if now.len() != versions.len() {
            bail!("a partition of table {db}.{name} was dropped or replaced during the INSERT; nothing was loaded");
        }
        check_loadable(t, db, &now)?;
        // By id, not position: a restore may have added partitions meanwhile.
        for (id, version) in &versions {
            if let Some(part) = t
                .partitions
                .iter_mut()
                .find(|x| x.id == *id)
                .map(Arc::make_mut)
            {
                if part.visible_version + 1 != *version {
                    bail!(
                        "partition '{}' of table {name} changed version during the INSERT; run it again",
                        part.name
                    );
                }
                part.visible_version = *version;
            }
        }
        Ok(())
    })?;
    Ok(n)
}

pub(super) fn insert_values(s: &Session, iv: &InsertValues) -> Result<Output> {
    let (db, name) = s.resolve(&iv.table)?;
    let table = s.cluster.catalog().table(&db, &name)?.clone();
    let cols = &table.schema.columns;
    let positions: Vec<usize> = match &iv.columns {
        None => (0..cols.len()).collect(),
        Some(list) => list
            .iter()
            .map(|c| {
                cols.iter()
                    .position(|x| &x.name == c)
                    .ok_or_else(|| anyhow!("unknown column '{c}' in table {name}"))
            })
            .collect::<Result<_>>()?,
    };
    let pcol = table.partition_column_index();
    let mut rows = Vec::with_capacity(iv.rows.len());
    let mut touched = std::collections::BTreeSet::new();
    for (i, lits) in iv.rows.iter().enumerate() {
        if lits.len() != positions.len() {
            bail!(
                "row {} has {} values, expected {}",
                i + 1,
                lits.len(),
                positions.len()
            );
        }
        let mut row: Row = vec![Value::Null; cols.len()];
        for (lit, pos) in lits.iter().zip(&positions) {
            row[*pos] = literal_to_value(lit, cols[*pos].ty, &cols[*pos].name)?;
        }
        let p = match pcol {
            None => 0,
            Some(ci) => table.partition_for(&row[ci]).ok_or_else(|| {
                anyhow!(
                    "row {}: value {} of column {} is in no partition of table {name}",
                    i + 1,
                    row[ci],
                    cols[ci].name
                )
            })?,
        };
        touched.insert(p);
        rows.push((p, row));
    }
    let n = load_rows(s, &db, &name, rows, touched.into_iter().collect())?;
    ok(n)
}

pub(super) fn insert_generate(s: &Session, ig: &InsertGenerate) -> Result<Output> {
    let (db, name) = s.resolve(&ig.table)?;
    let table = s.cluster.catalog().table(&db, &name)?.clone();
    let parts: Vec<usize> = if ig.partitions.is_empty() {
        (0..table.partitions.len()).collect()
    } else {
        ig.partitions
            .iter()
            .map(|p| {
                table
                    .partitions
                    .iter()
                    .position(|x| &x.name == p)
                    .ok_or_else(|| anyhow!("unknown partition '{p}' of table {name} (SHOW PARTITIONS FROM {name} lists them)"))
            })
            .collect::<Result<_>>()?
    };
    let n = usize::try_from(ig.rows)
        .ok()
        .filter(|n| *n <= 10_000_000)
        .context("GENERATE takes at most 10,000,000 rows")?;
    if n == 0 {
        // Nothing to load: no version is published (an empty version in
        // every tablet would only make the next backup bigger).
        return ok(0);
    }
    let seed = ig.seed.unwrap_or_else(|| {
        table
            .partitions
            .iter()
            .map(|p| p.visible_version)
            .sum::<u64>()
            ^ table.id.rotate_left(17)
    });
    let rows = generate(&table, &parts, n, seed);
    let n = load_rows(s, &db, &name, rows, parts)?;
    ok(n)
}

/// Readable partitions of a table, or a clear error while it is being restored.
fn readable(t: &Table, db: &str) -> Result<()> {
    if let Some(job) = t.partitions.iter().find_map(|p| p.restoring_job) {
        bail!("table '{db}.{}' is being restored by job {job} and is not readable until it finishes (SHOW RESTORE FROM {db})", t.name);
    }
    Ok(())
}

fn for_each_tablet(
    t: &Table,
    mut f: impl FnMut(&Partition, &TabletInfo, u32) -> Result<()>,
) -> Result<()> {
    for p in &t.partitions {
        for tab in &p.tablets {
            let be = *tab
                .replicas
                .first()
                .ok_or_else(|| anyhow!("tablet {} has no replica", tab.id))?;
            f(p, tab, be)?;
        }
    }
    Ok(())
}

pub(super) fn table_checksum(s: &Session, db: &str, name: &str) -> Result<TabletChecksum> {
    let t = s.cluster.catalog().table(db, name)?.clone();
    readable(&t, db)?;
    let mut sum = TabletChecksum::default();
    for_each_tablet(&t, |p, tab, be| {
        sum.combine(s.cluster.backend(be)?.checksum(tab.id, p.visible_version)?);
        Ok(())
    })?;
    Ok(sum)
}

pub(super) fn select_count(s: &Session, q: &QualifiedName) -> Result<Output> {
    let (db, name) = s.resolve(q)?;
    let sum = table_checksum(s, &db, &name)?;
    let mut rs = ResultSet::new(["count(*)"]);
    rs.push_row([sum.rows.to_string()]);
    Ok(Output::Rows(rs))
}

pub(super) fn select_all(s: &Session, q: &QualifiedName, limit: Option<u64>) -> Result<Output> {
    let (db, name) = s.resolve(q)?;
    let t = s.cluster.catalog().table(&db, &name)?.clone();
    readable(&t, &db)?;
    let limit = limit.unwrap_or(u64::MAX) as usize;
    let mut rs = ResultSet::new(t.schema.columns.iter().map(|c| c.name.clone()));
    for_each_tablet(&t, |p, tab, be| {
        if rs.rows.len() >= limit {
            return Ok(());
        }
        for row in s.cluster.backend(be)?.scan(tab.id, p.visible_version)? {
            if rs.rows.len() >= limit {
                break;
            }
            rs.push_row(row.iter().map(|v| v.to_string()));
        }
        Ok(())
    })?;
    Ok(Output::Rows(rs))
}

/// The printed checksum: rows folded in, so equal data gives equal text whatever the tablet ids.
pub fn checksum_text(sum: TabletChecksum) -> String {
    format!(
        "{:016x}",
        sum.checksum ^ tabletsnap_engine::hash::splitmix64(sum.rows)
    )
}

pub(super) fn checksum(s: &Session, tables: &[QualifiedName]) -> Result<Output> {
    let mut rs = ResultSet::new(["Table", "Checksum"]);
    for q in tables {
        let (db, name) = s.resolve(q)?;
        let sum = table_checksum(s, &db, &name)?;
        rs.push_row([format!("{db}.{name}"), checksum_text(sum)]);
    }
    Ok(Output::Rows(rs))
}

pub(super) fn show_databases(s: &Session) -> Result<Output> {
    let mut rs = ResultSet::new(["Database"]);
    for name in s.cluster.catalog().databases.keys() {
        rs.push_row([name.clone()]);
    }
    Ok(Output::Rows(rs))
}

pub(super) fn show_tables(s: &Session, db: Option<&String>) -> Result<Output> {
    let db = s.db_name(db)?;
    let cat = s.cluster.catalog();
    let mut rs = ResultSet::new([format!("Tables_in_{db}")]);
    for name in cat.db(&db)?.tables.keys() {
        rs.push_row([name.clone()]);
    }
    Ok(Output::Rows(rs))
}

pub(super) fn show_partitions(s: &Session, q: &QualifiedName) -> Result<Output> {
    let (db, name) = s.resolve(q)?;
    let t = s.cluster.catalog().table(&db, &name)?.clone();
    let mut rs = ResultSet::new([
        "PartitionId",
        "PartitionName",
        "VisibleVersion",
        "Buckets",
        "ReplicationNum",
        "RowCount",
        "DataSize",
    ]);
    for p in &t.partitions {
        let (mut rows, mut size) = (0u64, 0u64);
        for tab in &p.tablets {
            let Some(be) = tab.replicas.first() else {
                continue;
            };
            let stats = s
                .cluster
                .backend(*be)?
                .tablet_stats(&[tab.id], Some(p.visible_version))?;
            if let Some(Some(st)) = stats.first() {
                rows += st.rows_at;
                size += st.size_at;
            }
        }
        rs.push_row([
            p.id.to_string(),
            p.name.clone(),
            p.visible_version.to_string(),
            t.buckets.to_string(),
            t.replication_num.to_string(),
            rows.to_string(),
            size.to_string(),
        ]);
    }
    Ok(Output::Rows(rs))
}

pub(super) fn show_tablets(s: &Session, q: &QualifiedName) -> Result<Output> {
    let (db, name) = s.resolve(q)?;
    let t = s.cluster.catalog().table(&db, &name)?.clone();
    let mut rs = ResultSet::new([
        "TabletId",
        "PartitionName",
        "BackendId",
        "Version",
        "RowsetCount",
        "DataSize",
    ]);
    for p in &t.partitions {
        for tab in &p.tablets {
            for be in &tab.replicas {
                let meta = s
                    .cluster
                    .backend(*be)?
                    .tablet_stats(&[tab.id], None)
                    .ok()
                    .and_then(|v| v.into_iter().next().flatten());
                rs.push_row([
                    tab.id.to_string(),
                    p.name.clone(),
                    be.to_string(),
                    meta.as_ref()
                        .map_or("NULL".into(), |m| m.max_version.to_string()),
                    meta.as_ref().map_or("0".into(), |m| m.rowsets.to_string()),
                    meta.as_ref()
                        .map_or("0".into(), |m| m.data_size.to_string()),
                ]);
            }
        }
    }
    Ok(Output::Rows(rs))
}
