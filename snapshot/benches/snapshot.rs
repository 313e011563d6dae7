//! make_snapshots of a few hundred small tablets (W1's shape, scaled down).
//! Outputs are moved aside, not deleted, between iterations: deletes slow
//! later file creation on this filesystem (shared/BENCHMARKING.md).

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tabletsnap_engine::workload::{populate, WorkloadSpec};
use tabletsnap_engine::{Engine, EngineOptions};
use tabletsnap_snapshot::{make_snapshots, SnapshotRequest};

fn bench(c: &mut Criterion) {
    let base = tempfile::tempdir().expect("tempdir");
    let engine =
        Engine::open(EngineOptions::new(vec![base.path().join("store")])).expect("open engine");
    let spec = WorkloadSpec::w1().scaled(0.03);
    let ids = populate(&engine, &spec).expect("populate");
    let reqs: Vec<SnapshotRequest> = ids.iter().copied().map(SnapshotRequest::newest).collect();
    let trash = base.path().join("trash_bench");
    std::fs::create_dir_all(&trash).expect("trash dir");
    let files = ids.len() as u64 * spec.versions * spec.segments_per_version as u64;
    let mut g = c.benchmark_group("make_snapshots");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(files));
    let mut n = 0u64;
    g.bench_function(format!("{}_tablets", ids.len()), |b| {
        b.iter(|| {
            let out = make_snapshots(&engine, &reqs, Duration::from_secs(3600)).expect("snapshot");
            let first = out[0].as_ref().expect("tablet snapshot");
            let top = first.path.parent().and_then(Path::parent).expect("top dir");
            std::fs::rename(top, trash.join(n.to_string())).expect("move aside");
            n += 1;
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
