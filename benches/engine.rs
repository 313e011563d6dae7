//! Engine hot paths: load throughput (rows/s and MB/s via criterion's
//! throughput) and open time of a store holding 10,000 tablets x 20 versions.
//!
//! `cargo bench --bench engine`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tabletsnap_engine::workload::{default_schema, generate_rows, populate, WorkloadSpec};
use tabletsnap_engine::{CreateTabletRequest, Durability, Engine, EngineOptions};

fn load_throughput(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::open(EngineOptions::new(vec![dir.path().join("s")])).expect("open");
    let schema = default_schema();
    let tablets: Vec<u64> = (1..=64).collect();
    engine
        .create_tablets(
            tablets
                .iter()
                .map(|id| CreateTabletRequest {
                    table_id: 1,
                    partition_id: 1,
                    tablet_id: *id,
                    schema_hash: schema.stable_hash(),
                    schema: schema.clone(),
                })
                .collect(),
        )
        .expect("create");
    let rows = generate_rows(&schema, 1, 1, 4096);
    let bytes: usize = {
        let img = tabletsnap_engine::segment::encode_segment(&schema, &rows, 4096);
        img.len()
    };
    let mut g = c.benchmark_group("load");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements((rows.len() * tablets.len()) as u64));
    g.bench_function("batch_64_tablets_x_4096_rows_rows", |b| {
        b.iter(|| {
            let batch = engine
                .begin_load(&tablets, Durability::Barrier)
                .expect("begin");
            for t in &tablets {
                batch.add(*t, &[&rows]).expect("add");
            }
            batch.commit().expect("commit");
        })
    });
    g.throughput(Throughput::Bytes((bytes * tablets.len()) as u64));
    g.bench_function("batch_64_tablets_x_4096_rows_bytes", |b| {
        b.iter(|| {
            let batch = engine
                .begin_load(&tablets, Durability::Barrier)
                .expect("begin");
            for t in &tablets {
                batch.add(*t, &[&rows]).expect("add");
            }
            batch.commit().expect("commit");
        })
    });
    g.finish();
}

fn open_w1(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("w1");
    {
        let e = Engine::open(EngineOptions::new(vec![store.clone()])).expect("open");
        populate(&e, &WorkloadSpec::w1()).expect("populate W1");
    }
    let mut g = c.benchmark_group("open");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("w1_10000_tablets_x_20_versions", |b| {
        b.iter_batched(
            || (),
            |_| Engine::open(EngineOptions::new(vec![store.clone()])).expect("open"),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, load_throughput, open_w1);
criterion_main!(benches);
