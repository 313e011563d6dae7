//! Pieces larger than the download's streaming block and write size are
//! written block by block and still land bit-exact; a byte flipped deep inside
//! one (past its first block) fails the download naming the file, and leaves
//! neither the file nor a temp file behind.

mod common;

use std::sync::Arc;

use common::*;
use tabletsnap_transfer::{Backend, Error, LocalFs, Repository, SnapshotId, TEMP_PREFIX};

#[test]
fn large_chunks_round_trip_and_corruption_is_caught() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // 20 MiB + 3 bytes in chunks of 9 MiB: pieces span several 8 MiB blocks and
    // end off any block or write boundary.
    let len = (20 << 20) + 3;
    let big: Vec<u8> = (0..len as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let tablets = vec![TestTablet {
        id: 7,
        files: vec![
            ("big.dat".into(), big.clone()),
            ("small".into(), b"s".to_vec()),
        ],
        dirs: vec![],
    }];
    let sources = write_tree(&tmp.path().join("src"), &tablets);
    let backend: Arc<dyn Backend> = Arc::new(LocalFs::new(tmp.path().join("repo")).expect("fs"));
    let repo = Repository::create(Arc::clone(&backend), "r").expect("create");
    repo.backup("l", TS, &sources, b"m", &upload_opts(64 << 20, 9 << 20))
        .expect("backup");
    let id = SnapshotId::new("l", TS).expect("id");

    let out = tmp.path().join("out");
    repo.download(&id, &targets(&out), &download_opts())
        .expect("download");
    let restored = read_tree(&out.join("7"));
    assert!(restored["big.dat"] == big, "big.dat restored bit-exact");
    assert_eq!(restored["small"], b"s");

    let manifest = repo.read_manifest(&id).expect("manifest");
    let f = manifest.tablets[0]
        .files
        .iter()
        .find(|f| f.path == "big.dat")
        .expect("file");
    assert_eq!(f.pieces.len(), 3);
    let piece = &f.pieces[1];
    let path = tmp
        .path()
        .join("repo")
        .join(repo.key(manifest.pack_key(piece)));
    let mut data = std::fs::read(&path).expect("read pack");
    data[(piece.offset + piece.len - 5) as usize] ^= 0x01;
    std::fs::write(&path, &data).expect("write pack");

    let out = tmp.path().join("out-corrupt");
    let err = repo
        .download(&id, &targets(&out), &download_opts())
        .expect_err("corruption must be detected");
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("big.dat"), "names the file: {err}");
    let restored = read_tree(&out.join("7"));
    assert!(!restored.contains_key("big.dat"), "no partial big.dat");
    assert!(
        restored.keys().all(|k| !k.contains(TEMP_PREFIX)),
        "no temp files left: {:?}",
        restored.keys().collect::<Vec<_>>()
    );
}
