//! Micro benchmarks: pack build + crc (upload) and fetch + verify + write
//! (download) of a small tree to a LocalFs repository on the same disk.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tabletsnap_transfer::workload::{generate_tree, TreeSpec};
use tabletsnap_transfer::{
    Backend, DownloadOptions, Durability, LocalFs, Memory, Repository, SnapshotId, UploadOptions,
};

fn spec() -> TreeSpec {
    TreeSpec {
        tablets: 100,
        versions: 10,
        files_per_version: 2,
        file_size: 4096,
        shards: 10,
    }
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = generate_tree(&tmp.path().join("src"), &spec()).expect("tree");
    let bytes: u64 = sources.iter().map(|s| s.total_bytes()).sum();
    let mut g = c.benchmark_group("transfer");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(20);

    let mut n = 0u64;
    g.bench_function("upload_pack_crc_memory", |b| {
        let backend: Arc<dyn Backend> = Arc::new(Memory::new());
        let repo = Repository::create(backend, "b").expect("repo");
        b.iter(|| {
            n += 1;
            let ts = format!("2026-01-01-00-00-{:02}", n % 60);
            let label = format!("l{n}");
            repo.backup(&label, &ts, &sources, b"", &UploadOptions::default())
                .expect("backup");
        })
    });

    let backend: Arc<dyn Backend> = Arc::new(
        LocalFs::with_durability(tmp.path().join("repo"), Durability::Batched).expect("fs"),
    );
    let repo = Repository::create(backend, "b").expect("repo");
    let ts = "2026-01-01-00-00-00";
    repo.backup("d", ts, &sources, b"", &UploadOptions::default())
        .expect("backup");
    let id = SnapshotId::new("d", ts).expect("id");
    let mut opts = DownloadOptions::default();
    opts.sync = false;
    let mut round = 0u64;
    g.bench_function("download_verify_local_fs", |b| {
        b.iter(|| {
            round += 1;
            let out = tmp.path().join(format!("out-{round}"));
            let targets = |id: u64| Some(out.join(id.to_string()));
            repo.download(&id, &targets, &opts).expect("download");
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
