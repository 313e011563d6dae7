//! Deterministic workload generation (library code, shared by tests, benches
//! and the CLI): tablets x versions x rows per version, from a seed.

use rayon::prelude::*;

use crate::engine::{CreateTabletRequest, Engine};
use crate::error::Result;
use crate::load::Durability;
use crate::schema::{Column, ColumnType, Row, Schema, Value};

pub use crate::hash::splitmix64;

/// A small deterministic PRNG (splitmix64 stream).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        splitmix64(self.0)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The schema used by generated workloads: every column type once.
pub fn default_schema() -> Schema {
    Schema::new(vec![
        Column::new("id", ColumnType::BigInt).key(),
        Column::new("k2", ColumnType::Int).key(),
        Column::new("flag", ColumnType::Boolean),
        Column::new("price", ColumnType::Double),
        Column::new("day", ColumnType::Date),
        Column::new("ts", ColumnType::DateTime),
        Column::new("name", ColumnType::Varchar(32)),
    ])
}

/// Deterministic rows for any schema: the same (seed, stream, n) gives the same rows.
pub fn generate_rows(schema: &Schema, seed: u64, stream: u64, n: usize) -> Vec<Row> {
    let mut rng = Rng::new(splitmix64(seed ^ splitmix64(stream)));
    (0..n)
        .map(|_| {
            schema
                .columns
                .iter()
                .map(|c| {
                    if c.nullable && !c.is_key && rng.below(20) == 0 {
                        return Value::Null;
                    }
                    match c.ty {
                        ColumnType::Boolean => Value::Boolean(rng.below(2) == 1),
                        ColumnType::Int => Value::Int(rng.next_u64() as i32),
                        ColumnType::BigInt => Value::BigInt(rng.next_u64() as i64),
                        ColumnType::Double => Value::Double((rng.below(1_000_000) as f64) / 100.0),
                        ColumnType::Date => Value::Date(18_000 + rng.below(3_000) as i32),
                        ColumnType::DateTime => {
                            Value::DateTime(1_600_000_000_000_000 + rng.below(1 << 40) as i64)
                        }
                        ColumnType::Varchar(max) => {
                            let len = rng.below(u64::from(max.min(24)) + 1) as usize;
                            Value::Varchar(
                                (0..len)
                                    .map(|_| char::from(b'a' + rng.below(26) as u8))
                                    .collect(),
                            )
                        }
                    }
                })
                .collect()
        })
        .collect()
}

/// The shape of a generated workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadSpec {
    /// Number of tablets.
    pub tablets: u64,
    /// Loads (versions) per tablet.
    pub versions: u64,
    /// Rows in each version.
    pub rows_per_version: usize,
    /// Segment files in each version.
    pub segments_per_version: usize,
    /// First tablet id.
    pub first_tablet_id: u64,
    /// Seed.
    pub seed: u64,
}

impl WorkloadSpec {
    /// W1: many tablets, many small versions (10,000 x 20 versions x 2 files of ~4 KiB).
    pub fn w1() -> Self {
        WorkloadSpec {
            tablets: 10_000,
            versions: 20,
            rows_per_version: 160,
            segments_per_version: 2,
            first_tablet_id: 10_001,
            seed: 1,
        }
    }

    /// Scales the tablet count by `f` (at least 1 tablet).
    pub fn scaled(mut self, f: f64) -> Self {
        self.tablets = ((self.tablets as f64 * f).round() as u64).max(1);
        self
    }
}

/// Rows per version from which [`populate`] loads one tablet at a time.
const BIG_VERSION_ROWS: usize = 500_000;

/// Creates the workload's tablets and loads all its versions, in batches of
/// tablets with one durability barrier each. Returns the tablet ids.
pub fn populate(engine: &Engine, spec: &WorkloadSpec) -> Result<Vec<u64>> {
    let schema = default_schema();
    let schema_hash = schema.stable_hash();
    let ids: Vec<u64> = (0..spec.tablets)
        .map(|i| spec.first_tablet_id + i)
        .collect();
    const TABLETS_PER_BATCH: usize = 2_500;
    // Generating rows costs more than storing them: small versions draw from a
    // pool of distinct blocks, chosen per (tablet, version) by hash.
    let total = spec.tablets.saturating_mul(spec.versions);
    let pool_len = total.min(1024) as usize;
    let pool: Vec<Vec<Row>> =
        if spec.rows_per_version.saturating_mul(pool_len) <= 4_000_000 && total > 1024 {
            (0..pool_len as u64)
                .into_par_iter()
                .map(|i| generate_rows(&schema, spec.seed, i, spec.rows_per_version))
                .collect()
        } else {
            Vec::new()
        };
    for chunk in ids.chunks(TABLETS_PER_BATCH) {
        engine.create_tablets(
            chunk
                .iter()
                .map(|id| CreateTabletRequest {
                    table_id: 1,
                    partition_id: 1,
                    tablet_id: *id,
                    schema_hash,
                    schema: schema.clone(),
                })
                .collect(),
        )?;
        let batch = engine.begin_load(chunk, Durability::Barrier)?;
        let load_tablet = |id: &u64| -> Result<()> {
            for v in 0..spec.versions {
                let stream = id.wrapping_mul(1_000_003) ^ v;
                let generated;
                let rows: &[Row] = if pool.is_empty() {
                    generated = generate_rows(&schema, spec.seed, stream, spec.rows_per_version);
                    &generated
                } else {
                    &pool[(splitmix64(stream) % pool.len() as u64) as usize]
                };
                let per = rows.len().div_ceil(spec.segments_per_version.max(1)).max(1);
                let segs: Vec<&[Row]> = rows.chunks(per).collect();
                batch.add(*id, &segs)?;
            }
            Ok(())
        };
        // A version of W2's size is ~240 MB of generated rows plus its 64 MiB
        // segment image while encoded: two tablets at once passed 512 MiB.
        if spec.rows_per_version >= BIG_VERSION_ROWS {
            chunk.iter().try_for_each(load_tablet)?;
        } else {
            chunk.par_iter().try_for_each(load_tablet)?;
        }
        batch.commit()?;
    }
    Ok(ids)
}

/// The baseline the engine is measured against: the same tree of files as
/// `spec` (tablet dirs, `versions x segments_per_version` files of
/// `file_size` bytes and a small meta per tablet), created and written with
/// nothing else. Returns the number of files.
pub fn plain_write(
    root: &std::path::Path,
    spec: &WorkloadSpec,
    file_size: usize,
) -> std::io::Result<u64> {
    let buf = vec![0x5au8; file_size.max(1)];
    let ids: Vec<u64> = (0..spec.tablets)
        .map(|i| spec.first_tablet_id + i)
        .collect();
    ids.par_iter()
        .map(|id| {
            let dir = root
                .join("data")
                .join((id % crate::engine::NUM_SHARDS).to_string())
                .join(id.to_string())
                .join("1");
            std::fs::create_dir_all(&dir)?;
            for v in 0..spec.versions {
                for s in 0..spec.segments_per_version {
                    std::fs::write(dir.join(format!("{v:032x}_{s}.dat")), &buf)?;
                }
            }
            std::fs::write(dir.join("tablet.meta"), &buf[..buf.len().min(512)])?;
            Ok(spec.versions * spec.segments_per_version as u64 + 1)
        })
        .sum()
}
