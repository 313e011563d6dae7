//! Flipping one byte of one stored pack makes the download fail with a checksum
//! error naming tablet, file and pack, and leaves no partial file behind.

mod common;

use std::sync::Arc;

use common::*;
use tabletsnap_transfer::{Backend, Error, LocalFs, Repository, SnapshotId};

#[test]
fn flipped_byte_is_reported_and_nothing_partial_remains() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tablets = sample_tablets();
    let sources = write_tree(&tmp.path().join("src"), &tablets);
    let backend: Arc<dyn Backend> = Arc::new(LocalFs::new(tmp.path().join("repo")).expect("fs"));
    let repo = Repository::create(Arc::clone(&backend), "r").expect("create");
    // Chunk 1000 splits big.dat (5000 bytes, tablet 1) into five pieces.
    repo.backup("l", TS, &sources, b"m", &upload_opts(1500, 1000))
        .expect("backup");
    let id = SnapshotId::new("l", TS).expect("id");
    let manifest = repo.read_manifest(&id).expect("manifest");

    for target in ["00.dat", "big.dat"] {
        let t = &manifest.tablets[0];
        let f = t.files.iter().find(|f| f.path == target).expect("file");
        let piece = f.pieces.last().expect("piece");
        let key = repo.key(manifest.pack_key(piece));
        let path = tmp.path().join("repo").join(&key);
        let mut data = std::fs::read(&path).expect("read pack");
        data[(piece.offset + piece.len / 2) as usize] ^= 0x40;
        std::fs::write(&path, &data).expect("write pack");

        let out = tmp.path().join(format!("out-{target}"));
        let err = repo
            .download(&id, &targets(&out), &download_opts())
            .expect_err("corruption must be detected");
        let msg = err.to_string();
        assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err:?}");
        assert!(msg.contains(target), "names the file: {msg}");
        assert!(msg.contains("tablet 1"), "names the tablet: {msg}");
        assert!(
            msg.contains(manifest.pack_key(piece)),
            "names the pack: {msg}"
        );
        let restored = read_tree(&out.join("1"));
        assert!(!restored.contains_key(target), "no partial {target}");
        assert!(
            restored
                .keys()
                .all(|k| !k.contains(tabletsnap_transfer::TEMP_PREFIX)),
            "no temp files left: {restored:?}"
        );
        data[(piece.offset + piece.len / 2) as usize] ^= 0x40;
        std::fs::write(&path, &data).expect("restore pack");
    }
}

#[test]
fn source_file_not_matching_its_crc_fails_upload() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut sources = write_tree(&tmp.path().join("src"), &sample_tablets());
    sources[0].files[3].crc32 ^= 1;
    let name = sources[0].files[3].name.clone();
    let (_, repo) = memory_repo();
    let err = repo
        .backup("l", TS, &sources, b"m", &upload_opts(1 << 20, 1 << 20))
        .expect_err("corrupt source must fail");
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains(&name), "{err}");
    // Chunked files are checked too, before commit.
    let mut sources = write_tree(&tmp.path().join("src2"), &sample_tablets());
    let big = sources[0]
        .files
        .iter_mut()
        .find(|f| f.name == "big.dat")
        .expect("big");
    big.crc32 ^= 1;
    let err = repo
        .backup("l2", TS, &sources, b"m", &upload_opts(1500, 1000))
        .expect_err("corrupt chunked source must fail");
    assert!(err.to_string().contains("big.dat"), "{err}");
    assert!(repo.list_snapshots().expect("list").is_empty());
}

#[test]
fn source_file_with_wrong_size_fails_upload() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut sources = write_tree(&tmp.path().join("src"), &sample_tablets());
    sources[0].files[2].size += 1;
    let (_, repo) = memory_repo();
    let err = repo
        .backup("l", TS, &sources, b"m", &upload_opts(1 << 20, 1 << 20))
        .expect_err("size mismatch must fail");
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err:?}");
    assert!(
        err.to_string().contains("shorter than its metadata says"),
        "{err}"
    );
    // A file longer than its metadata says is caught in the same read.
    let mut sources = write_tree(&tmp.path().join("src2"), &sample_tablets());
    sources[0].files[2].size -= 1;
    let err = repo
        .backup("l2", TS, &sources, b"m", &upload_opts(1 << 20, 1 << 20))
        .expect_err("a longer file must fail");
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err:?}");
    assert!(
        err.to_string().contains("longer than its metadata says"),
        "{err}"
    );
    // And the last piece of a chunked file.
    let mut sources = write_tree(&tmp.path().join("src3"), &sample_tablets());
    let big = sources[0]
        .files
        .iter_mut()
        .find(|f| f.name == "big.dat")
        .expect("big");
    big.size -= 1;
    let err = repo
        .backup("l3", TS, &sources, b"m", &upload_opts(1500, 1000))
        .expect_err("a longer chunked file must fail");
    assert!(
        err.to_string().contains("longer than its metadata says"),
        "{err}"
    );
    assert!(repo.list_snapshots().expect("list").is_empty());
}
