//! Cancellation stops a slow transfer with `Cancelled`; the rate limit slows a
//! transfer down to about the configured rate (only lower bounds are asserted).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tabletsnap_transfer::{Backend, Error, Memory, Repository, SnapshotId, Throttled};

#[test]
fn cancel_stops_a_slow_upload() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = write_tree(&tmp.path().join("src"), &sample_tablets());
    // 200 ms per operation and ~40 packs: about 4 s of puts on 2 threads if not cancelled.
    let backend: Arc<dyn Backend> = Arc::new(Throttled::new(
        Memory::new(),
        Duration::from_millis(200),
        None,
    ));
    let repo = Repository::create(backend, "r").expect("create");
    let opts = upload_opts(200, 128);
    let cancel = opts.transfer.cancel.clone();
    let started = Instant::now();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        cancel.cancel();
    });
    let err = repo
        .backup("l", TS, &sources, b"", &opts)
        .expect_err("cancelled");
    canceller.join().expect("join");
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    eprintln!("cancel returned after {:?}", started.elapsed());
    assert!(repo.list_snapshots().expect("list").is_empty());
}

#[test]
fn cancel_stops_a_download() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sources = write_tree(&tmp.path().join("src"), &sample_tablets());
    let (_, repo) = memory_repo();
    repo.backup("l", TS, &sources, b"", &upload_opts(200, 128))
        .expect("backup");
    let opts = download_opts();
    opts.transfer.cancel.cancel();
    let id = SnapshotId::new("l", TS).expect("id");
    let err = repo
        .download(&id, &targets(&tmp.path().join("out")), &opts)
        .expect_err("cancelled");
    assert!(matches!(err, Error::Cancelled), "{err:?}");
}

#[test]
fn rate_limit_is_respected() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // 2 MiB of data at 4 MiB/s: at least ~0.4 s after the 0.1 s burst.
    let tablets = vec![TestTablet {
        id: 1,
        files: (0..32)
            .map(|i| (format!("f{i}"), vec![i as u8; 64 << 10]))
            .collect(),
        dirs: vec![],
    }];
    let sources = write_tree(&tmp.path().join("src"), &tablets);
    let (_, repo) = memory_repo();
    let mut opts = upload_opts(256 << 10, 256 << 10);
    opts.transfer.rate_limit = Some(4 << 20);
    let started = Instant::now();
    repo.backup("l", TS, &sources, b"", &opts).expect("backup");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300),
        "took only {elapsed:?}"
    );

    let mut d = download_opts();
    d.transfer.rate_limit = Some(4 << 20);
    let started = Instant::now();
    let id = SnapshotId::new("l", TS).expect("id");
    repo.download(&id, &targets(&tmp.path().join("out")), &d)
        .expect("download");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300),
        "took only {elapsed:?}"
    );
}
