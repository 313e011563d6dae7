//! Random trees survive upload and download bit-exact, with tiny packs and
//! chunks so every boundary case (empty files, exactly one chunk, one byte
//! over, many tiny files, empty dirs, empty tablets) is crossed.

mod common;

use std::sync::Arc;

use common::*;
use proptest::prelude::*;
use tabletsnap_transfer::{Backend, LocalFs, Repository, SnapshotId};

const CHUNK: u64 = 64;

fn file_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        Just(CHUNK as usize),
        Just(CHUNK as usize + 1),
        Just(2 * CHUNK as usize),
        1usize..8,
        0usize..400,
    ]
}

fn tablet() -> impl Strategy<Value = TestTablet> {
    (
        prop::collection::btree_map("[a-z]{1,6}", (file_len(), any::<u8>()), 0..12),
        prop::collection::btree_map("[a-z]{1,4}", (file_len(), any::<u8>()), 0..3),
        prop::bool::ANY,
    )
        .prop_map(|(flat, nested, empty_dir)| {
            let mut files: Vec<(String, Vec<u8>)> = flat
                .into_iter()
                .map(|(n, (len, seed))| (format!("{n}.dat"), fill(len, seed)))
                .collect();
            files.extend(
                nested
                    .into_iter()
                    .map(|(n, (len, seed))| (format!("sub/{n}.idx"), fill(len, seed))),
            );
            TestTablet {
                id: 0,
                files,
                dirs: if empty_dir {
                    vec!["empty".into()]
                } else {
                    vec![]
                },
            }
        })
}

fn fill(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed as u32) as u8
        })
        .collect()
}

/// Every tablet under `out` equals its source under `src`.
fn assert_restored(tablets: &[TestTablet], out: &std::path::Path, src: &std::path::Path) {
    for t in tablets {
        let sub = t.id.to_string();
        assert_eq!(
            read_tree(&out.join(&sub)),
            read_tree(&src.join(&sub)),
            "tablet {sub}"
        );
    }
}

fn check_round_trip(tablets: Vec<TestTablet>, pack: u64, local: bool) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tablets: Vec<TestTablet> = tablets
        .into_iter()
        .enumerate()
        .map(|(i, mut t)| {
            t.id = 100 + i as u64;
            t
        })
        .collect();
    let sources = write_tree(&tmp.path().join("src"), &tablets);
    let backend: Arc<dyn Backend> = if local {
        Arc::new(LocalFs::new(tmp.path().join("repo")).expect("repo dir"))
    } else {
        Arc::new(tabletsnap_transfer::Memory::new())
    };
    let repo = Repository::create(backend, "r").expect("create");
    repo.backup("lbl", TS, &sources, b"meta", &upload_opts(pack, CHUNK))
        .expect("backup");
    let id = SnapshotId::new("lbl", TS).expect("id");
    let out = tmp.path().join("out");
    repo.download(&id, &targets(&out), &download_opts())
        .expect("download");
    assert_restored(&tablets, &out, &tmp.path().join("src"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn memory_round_trip(tablets in prop::collection::vec(tablet(), 0..5), pack in 1u64..600) {
        check_round_trip(tablets, pack, false);
    }

    #[test]
    fn local_fs_round_trip(tablets in prop::collection::vec(tablet(), 1..4), pack in 32u64..300) {
        check_round_trip(tablets, pack, true);
    }
}

#[test]
fn many_tiny_files() {
    let files = (0..3000)
        .map(|i| (format!("f{i:05}.dat"), fill(i % 5, i as u8)))
        .collect();
    let t = TestTablet {
        id: 0,
        files,
        dirs: vec![],
    };
    check_round_trip(vec![t], 1024, true);
}

/// Small files written while a background flush runs every MiB: the
/// concurrent `syncfs` rounds change nothing of what lands.
#[test]
fn small_files_survive_background_flushes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tablets: Vec<TestTablet> = (0..48)
        .map(|i| TestTablet {
            id: 100 + i,
            files: (0..40)
                .map(|f| (format!("s{f:02}.dat"), fill(8192 + f, (i + f as u64) as u8)))
                .collect(),
            dirs: vec![],
        })
        .collect();
    let sources = write_tree(&tmp.path().join("src"), &tablets);
    let repo = Repository::create(
        Arc::new(LocalFs::new(tmp.path().join("repo")).expect("repo dir")),
        "r",
    )
    .expect("create");
    repo.backup("lbl", TS, &sources, b"meta", &upload_opts(4 << 20, 1 << 20))
        .expect("backup");
    let id = SnapshotId::new("lbl", TS).expect("id");
    let out = tmp.path().join("out");
    let mut opts = download_opts();
    opts.sync = true;
    opts.flush_step = 1 << 20;
    let report = repo.download(&id, &targets(&out), &opts).expect("download");
    assert_eq!(report.files_written, 48 * 40);
    // At most one flush per step written (the helper may take several
    // steps at once, or none if the download ends first).
    assert!(report.flushes <= report.bytes_written / (1 << 20));
    assert_restored(&tablets, &out, &tmp.path().join("src"));
    // No flush step: nothing in the background.
    let mut opts = download_opts();
    opts.sync = true;
    opts.flush_step = 0;
    let out = tmp.path().join("out2");
    let report = repo.download(&id, &targets(&out), &opts).expect("download");
    assert_eq!(report.flushes, 0);
    assert_eq!(
        read_tree(&out.join("100")),
        read_tree(&tmp.path().join("src").join("100"))
    );
}
