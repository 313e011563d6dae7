//! What a restore changes in the catalog: the tables and partitions it
//! creates (visible, not readable), the fences against loads and readers,
//! and lifting them. Each function is idempotent, run inside one catalog
//! transaction.

use std::sync::Arc;

use anyhow::{bail, Context, Result};

use super::{PartitionPlan, RestoreJob, TablePlan};
use crate::catalog::{Catalog, Partition, Table, TabletInfo};
use crate::job::meta::BackupMeta;

/// Fences what a restore will replace against loads: the existing target
/// tables (all loads refused unless `allow_load`) and the existing
/// partitions it overwrites (loads always refused). Called when the job is
/// accepted and again in PENDING; idempotent. Fails if another restore
/// already holds a target table.
pub fn fence_loads(cat: &mut Catalog, job: &RestoreJob, plan: &[TablePlan]) -> Result<()> {
    let db = cat.db_mut(&job.db)?;
    for tp in plan {
        let Some(t) = db.tables.get_mut(&tp.target).map(Arc::make_mut) else {
            continue;
        };
        if let Some(other) = t.restoring_job.filter(|j| *j != job.id) {
            bail!(
                "table '{}.{}' is being restored by job {other}",
                job.db,
                tp.target
            );
        }
        t.restoring_job = Some(job.id);
        t.allow_load_while_restoring = job.allow_load;
        let replaced: std::collections::HashSet<u64> = tp
            .partitions
            .iter()
            .filter(|p| !p.created)
            .map(|p| p.partition_id)
            .collect();
        for p in t.partitions.iter_mut() {
            if replaced.contains(&p.id) && p.load_fence != Some(job.id) {
                Arc::make_mut(p).load_fence = Some(job.id);
            }
        }
    }
    Ok(())
}

/// Lifts every fence `job` set on `db` (tables, partitions, load fences).
pub(super) fn lift_fences(cat: &mut Catalog, db: &str, job: u64) -> Result<()> {
    let db = cat.db_mut(db)?;
    // Only the tables and partitions the job fenced are copied and written.
    let fenced = |p: &Partition| p.restoring_job == Some(job) || p.load_fence == Some(job);
    for t in db.tables.values_mut() {
        if t.restoring_job != Some(job) && !t.partitions.iter().any(|p| fenced(p)) {
            continue;
        }
        let t = Arc::make_mut(t);
        if t.restoring_job == Some(job) {
            t.restoring_job = None;
        }
        for p in t.partitions.iter_mut().filter(|p| fenced(p)) {
            let p = Arc::make_mut(p);
            if p.restoring_job == Some(job) {
                p.restoring_job = None;
            }
            if p.load_fence == Some(job) {
                p.load_fence = None;
            }
        }
    }
    Ok(())
}

/// Applies a plan to the catalog: creates tables and partitions (restoring,
/// unreadable) and fences existing tables. Idempotent.
pub(super) fn apply_plan(
    cat: &mut Catalog,
    job: &RestoreJob,
    meta: &BackupMeta,
    plan: &[TablePlan],
) -> Result<()> {
    let db = cat.db_mut(&job.db)?;
    for tp in plan {
        let b = meta
            .table(&tp.source)
            .with_context(|| format!("table '{}' vanished from the backup meta", tp.source))?;
        let entry = db.tables.entry(tp.target.clone()).or_insert_with(|| {
            Arc::new(Table {
                id: tp.table_id,
                name: tp.target.clone(),
                schema: b.schema.clone(),
                partition_column: b.partition_column.clone(),
                partitions: Vec::new(),
                distribution: b.distribution.clone(),
                buckets: b.buckets,
                replication_num: tp.replication_num,
                restoring_job: Some(job.id),
                allow_load_while_restoring: job.allow_load,
                restored_from: None,
            })
        });
        let present: std::collections::HashSet<u64> =
            entry.partitions.iter().map(|p| p.id).collect();
        let missing: Vec<&PartitionPlan> = tp
            .partitions
            .iter()
            .filter(|p| p.created && !present.contains(&p.partition_id))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let table = Arc::make_mut(entry);
        for pp in missing {
            let part = Partition {
                id: pp.partition_id,
                name: pp.name.clone(),
                upper: pp.upper.clone(),
                // Explicit: the partition before it may not be restored.
                lower: pp.lower.clone(),
                visible_version: 1,
                tablets: pp
                    .tablets
                    .iter()
                    .map(|(_, id, replicas)| TabletInfo {
                        id: *id,
                        replicas: replicas.clone(),
                    })
                    .collect(),
                restoring_job: Some(job.id),
                load_fence: None,
                restored_from: None,
                lineage: job.id,
            };
            // Keep range order: insert before the first partition whose upper is above ours.
            let pos = table
                .partitions
                .iter()
                .position(|p| match (&p.upper, &pp.upper) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(a), Some(b)) => crate::catalog::value_lt(b, a),
                })
                .unwrap_or(table.partitions.len());
            table.partitions.insert(pos, Arc::new(part));
        }
    }
    fence_loads(cat, job, plan)
}
