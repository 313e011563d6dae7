//! The restore planner: what a RESTORE statement asks for, checked against
//! the backup's meta and the catalog, as ids and tablets to fill. Pure: it
//! reads the catalog it is given and allocates ids from it, nothing else.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tabletsnap_transfer::SnapshotId;

use super::RestoreJob;
use crate::backend::RepoRef;
use crate::catalog::{Catalog, Partition, Table};
use crate::job::meta::{BackupMeta, BackupPartition, BackupTable};

/// One table named in `ON (...)`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RestoreObj {
    /// Table name in the backup.
    pub table: String,
    /// Partitions to restore (empty: all in the backup).
    pub partitions: Vec<String>,
    /// Name to restore as.
    pub alias: Option<String>,
}

/// A partition in the plan.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartitionPlan {
    /// Name.
    pub name: String,
    /// Target partition id.
    pub partition_id: u64,
    /// Created by this job (dropped on cancel).
    pub created: bool,
    /// Version restored.
    pub version: u64,
    /// Rows expected.
    pub rows: u64,
    /// (source tablet, target tablet, replica backends), per bucket.
    pub tablets: Vec<(u64, u64, Vec<u32>)>,
    /// Bounds, for a created partition.
    pub lower: Option<tabletsnap_engine::Value>,
    /// Upper bound.
    pub upper: Option<tabletsnap_engine::Value>,
    /// Source partition id (recorded in the catalog at publish).
    #[serde(default)]
    pub source_partition_id: u64,
    /// Catch-up: the version the existing partition holds; only the
    /// versions above it are downloaded and appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up_from: Option<u64>,
    /// The source partition's lineage at the backup (recorded in the
    /// catalog at publish).
    #[serde(default)]
    pub source_lineage: u64,
}

/// A table in the plan.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TablePlan {
    /// Name in the backup.
    pub source: String,
    /// Name restored as.
    pub target: String,
    /// Target table id.
    pub table_id: u64,
    /// Created by this job (dropped on cancel).
    pub created: bool,
    /// Replicas per tablet.
    pub replication_num: u16,
    /// Partitions.
    pub partitions: Vec<PartitionPlan>,
    /// Source cluster id (recorded in the catalog at publish).
    #[serde(default)]
    pub source_cluster_id: u64,
    /// Source table id (recorded in the catalog at publish).
    #[serde(default)]
    pub source_table_id: u64,
}

/// Reads and checks the backup's info and meta.
pub fn read_backup_meta(repo: &RepoRef, label: &str, timestamp: &str) -> Result<BackupMeta> {
    let r = crate::repo::open_repository(&repo.name, &repo.location)?;
    let id = SnapshotId::new(label, timestamp)?;
    // read_info tells a missing backup (never committed) from a damaged or
    // newer-format one, so the user gets the real reason.
    if let Err(e) = crate::repo::with_retries(|| r.read_info(&id)) {
        if matches!(e, tabletsnap_transfer::Error::SnapshotNotFound { .. }) {
            bail!(
                "snapshot '{label}' with timestamp '{timestamp}' not found in repository '{}' (SHOW SNAPSHOT ON {} lists them)",
                repo.name,
                repo.name
            );
        }
        return Err(anyhow::Error::new(e).context(format!(
            "snapshot '{label}' at '{timestamp}' in repository '{}' cannot be read",
            repo.name
        )));
    }
    let bytes = crate::repo::with_retries(|| r.read_meta(&id))?;
    BackupMeta::decode(
        &bytes,
        &format!("snapshot {label}/{timestamp} in repository '{}'", repo.name),
    )
}

/// For a catch-up of partition `p` of table `target` from backup partition
/// `bp` (of table `table_id` on cluster `cluster_id`): the version `p`
/// holds, above which the backup's versions are appended; `None` when it
/// already holds the backup's version. Refuses, saying why and what to do,
/// a partition that does not hold the same source's data at exactly its
/// restored version.
fn catch_up_base(
    target: &str,
    p: &Partition,
    cluster_id: u64,
    table_id: u64,
    bp: &BackupPartition,
) -> Result<Option<u64>> {
    let what = format!("partition '{}' of table '{target}'", p.name);
    let overwrite = "restore without \"catch_up\" to overwrite it";
    let Some(r) = p.restored_from else {
        bail!(
            "{what} has no restore record (it was not made by a RESTORE, or by one older than catch-up restores), so no backup chain leads to it: {overwrite}"
        );
    };
    if (r.cluster_id, r.table_id, r.partition_id) != (cluster_id, table_id, bp.id) {
        bail!(
            "{what} was restored from table {} partition {} of cluster {:016x}, the snapshot holds table {table_id} partition {} of cluster {cluster_id:016x}: not the same source, a catch-up would mix data; {overwrite}",
            r.table_id,
            r.partition_id,
            r.cluster_id,
            bp.id
        );
    }
    if r.lineage != bp.lineage {
        bail!(
            "{what} was restored from data that a RESTORE at the source has replaced since (the source's versions up to {} now name other data): a catch-up would mix data; {overwrite}",
            r.version
        );
    }
    if p.visible_version != r.version {
        bail!(
            "{what} was loaded since it was restored (version {}, restored at {}): a catch-up would drop those loads; {overwrite}",
            p.visible_version,
            r.version
        );
    }
    if bp.version < r.version {
        bail!(
            "the snapshot holds version {} of {what}, older than the version {} restored: catch up from a later snapshot (SHOW SNAPSHOT lists them)",
            bp.version,
            r.version
        );
    }
    Ok((bp.version > r.version).then_some(r.version))
}

fn same_shape(existing: &Table, b: &BackupTable) -> Result<()> {
    if existing.schema != b.schema {
        bail!(
            "table '{}' exists with a different schema than in the backup; restore it AS another name or drop it first",
            existing.name
        );
    }
    if existing.partition_column != b.partition_column || existing.buckets != b.buckets {
        bail!(
            "table '{}' exists with a different partitioning or bucket count than in the backup",
            existing.name
        );
    }
    Ok(())
}

/// Builds the plan against the catalog. With `alloc`, new ids are taken from
/// `cat` (the caller saves it); without, ids are placeholders (validation only).
/// New replicas go to the `live` backends only.
pub fn make_plan(
    cat: &mut Catalog,
    job: &RestoreJob,
    meta: &BackupMeta,
    alloc: bool,
    live: &[u32],
) -> Result<Vec<TablePlan>> {
    let objs: Vec<RestoreObj> = if job.objs.is_empty() {
        meta.tables
            .iter()
            .map(|t| RestoreObj {
                table: t.name.clone(),
                partitions: Vec::new(),
                alias: None,
            })
            .collect()
    } else {
        job.objs.clone()
    };
    let backends = u32::try_from(live.len()).unwrap_or(u32::MAX);
    if backends == 0 {
        bail!("no live backend to restore onto (SHOW BACKENDS says why)");
    }
    let mut next_replica = 0u32;
    let mut plans = Vec::new();
    let mut targets_seen = std::collections::HashSet::new();
    for o in &objs {
        let b = meta.table(&o.table).with_context(|| {
            format!("table '{}' is not in snapshot '{}' (SHOW SNAPSHOT ... WHERE SNAPSHOT = \"{}\" lists its contents)", o.table, job.label, job.label)
        })?;
        let target = o.alias.clone().unwrap_or_else(|| o.table.clone());
        if !targets_seen.insert(target.clone()) {
            bail!("table '{target}' is restored twice in one job");
        }
        for p in &o.partitions {
            if !b.partitions.iter().any(|bp| &bp.name == p) {
                bail!(
                    "partition '{p}' of table '{}' is not in snapshot '{}'",
                    o.table,
                    job.label
                );
            }
        }
        let wanted: Vec<_> = b
            .partitions
            .iter()
            .filter(|p| o.partitions.is_empty() || o.partitions.contains(&p.name))
            .collect();
        let existing = cat
            .db(&job.db)
            .ok()
            .and_then(|d| d.tables.get(&target))
            .cloned();
        if existing.is_none() && job.catch_up {
            bail!(
                "table '{target}' does not exist: a catch-up restore appends to tables an earlier RESTORE made; restore without \"catch_up\" first"
            );
        }
        if let Some(t) = &existing {
            same_shape(t, b)?;
            if t.restoring_job.is_some_and(|j| j != job.id) {
                bail!("table '{target}' is being restored by another job");
            }
        }
        let replication_num = match &existing {
            Some(t) => {
                if let Some(asked) = job.replication_num.filter(|n| *n != t.replication_num) {
                    bail!(
                        "table '{target}' exists with replication_num {}: a restore over it keeps its replicas, so \"replication_num\" = \"{asked}\" cannot apply; leave the property out, or restore AS a new table",
                        t.replication_num
                    );
                }
                t.replication_num
            }
            None => job.replication_num.unwrap_or(b.replication_num),
        };
        if u32::from(replication_num) > backends {
            bail!("replication_num {replication_num} is more than the {backends} backends of this cluster");
        }
        let alloc_id = |cat: &mut Catalog| if alloc { cat.alloc_id() } else { 0 };
        let table_id = existing.as_ref().map_or_else(|| alloc_id(cat), |t| t.id);
        let mut parts = Vec::new();
        for bp in wanted {
            let ex_part = existing.as_ref().and_then(|t| {
                t.partitions
                    .iter()
                    .position(|p| p.name == bp.name)
                    .map(|i| (t, i))
            });
            let mut catch_up_from = None;
            let (partition_id, created, tablets) = match ex_part {
                Some((t, i)) => {
                    let lower = t.lower_bound(i).cloned();
                    if lower != bp.lower || t.partitions[i].upper != bp.upper {
                        bail!(
                            "partition '{}' of table '{target}' has a different range than in the backup",
                            bp.name
                        );
                    }
                    if job.catch_up {
                        match catch_up_base(&target, &t.partitions[i], meta.cluster_id, b.id, bp)? {
                            Some(v) => catch_up_from = Some(v),
                            // Already at the backup's version: nothing to do.
                            None => continue,
                        }
                    }
                    let tablets = t.partitions[i]
                        .tablets
                        .iter()
                        .zip(&bp.tablets)
                        .map(|(ti, src)| (*src, ti.id, ti.replicas.clone()))
                        .collect();
                    (t.partitions[i].id, false, tablets)
                }
                None => {
                    if let Some(t) = &existing {
                        if ranges_overlap(t, bp.lower.as_ref(), bp.upper.as_ref()) {
                            bail!("partition '{}' of the backup overlaps an existing partition of table '{target}'", bp.name);
                        }
                    }
                    let pid = alloc_id(cat);
                    let tablets = bp
                        .tablets
                        .iter()
                        .map(|src| {
                            let replicas = (0..u32::from(replication_num))
                                .map(|k| live[((next_replica + k) % backends) as usize])
                                .collect();
                            next_replica = (next_replica + 1) % backends;
                            (*src, alloc_id(cat), replicas)
                        })
                        .collect();
                    (pid, true, tablets)
                }
            };
            parts.push(PartitionPlan {
                name: bp.name.clone(),
                partition_id,
                created,
                version: bp.version,
                rows: bp.rows,
                tablets,
                lower: bp.lower.clone(),
                upper: bp.upper.clone(),
                source_partition_id: bp.id,
                catch_up_from,
                source_lineage: bp.lineage,
            });
        }
        if parts.is_empty() && job.catch_up {
            continue;
        }
        plans.push(TablePlan {
            source: o.table.clone(),
            target,
            table_id,
            created: existing.is_none(),
            replication_num,
            partitions: parts,
            source_cluster_id: meta.cluster_id,
            source_table_id: b.id,
        });
    }
    Ok(plans)
}

fn ranges_overlap(
    t: &Table,
    lower: Option<&tabletsnap_engine::Value>,
    upper: Option<&tabletsnap_engine::Value>,
) -> bool {
    use crate::catalog::value_lt;
    (0..t.partitions.len()).any(|i| {
        let (l2, u2) = (t.lower_bound(i), t.partitions[i].upper.as_ref());
        // [l1,u1) and [l2,u2) overlap iff l1 < u2 and l2 < u1 (None = infinite).
        let a = match (lower, u2) {
            (_, None) | (None, _) => true,
            (Some(l), Some(u)) => value_lt(l, u),
        };
        let b = match (l2, upper) {
            (_, None) | (None, _) => true,
            (Some(l), Some(u)) => value_lt(l, u),
        };
        a && b
    })
}
