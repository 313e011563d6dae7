//! A committed snapshot whose manifest names `../x` or `/etc/x` is refused on
//! read and nothing is written outside the target directory.

mod common;

use common::*;
use tabletsnap_transfer::{
    Error, FileEntry, Manifest, Piece, SnapshotId, SnapshotInfo, TabletEntry,
};

fn commit_manifest(
    repo: &tabletsnap_transfer::Repository,
    label: &str,
    m: &Manifest,
) -> SnapshotId {
    let id = SnapshotId::new(label, TS).expect("id");
    let bytes = m.encode();
    let dir = format!("__ss_{label}/{TS}/");
    let b = repo.backend();
    b.put(&repo.key(&format!("{dir}packs/p")), b"evil")
        .expect("pack");
    b.put(&repo.key(&format!("{dir}manifest")), &bytes)
        .expect("manifest");
    b.put(&repo.key(&format!("{dir}meta")), b"").expect("meta");
    let info = SnapshotInfo {
        id: id.clone(),
        manifest_len: bytes.len() as u64,
        manifest_crc: crc32fast::hash(&bytes),
        meta_len: 0,
        meta_crc: 0,
        file_count: 1,
        total_bytes: 4,
        pack_count: 1,
    };
    b.put(&repo.key(&format!("{dir}info")), &info.encode())
        .expect("info");
    id
}

fn evil(path: &str, pack_key: String) -> Manifest {
    Manifest {
        packs: vec![pack_key],
        tablets: vec![TabletEntry {
            tablet_id: 1,
            dirs: vec![],
            files: vec![FileEntry {
                path: path.to_string(),
                size: 4,
                crc32: crc32fast::hash(b"evil"),
                pieces: vec![Piece {
                    pack: 0,
                    offset: 0,
                    len: 4,
                    crc32: crc32fast::hash(b"evil"),
                }],
            }],
        }],
    }
}

#[test]
fn dotdot_and_absolute_paths_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_, repo) = memory_repo();
    for (i, path) in ["../x", "/etc/x", "a/../../x", "sub/../../../x"]
        .iter()
        .enumerate()
    {
        let label = format!("evil{i}");
        let id = commit_manifest(
            &repo,
            &label,
            &evil(path, format!("__ss_{label}/{TS}/packs/p")),
        );
        let err = repo.read_manifest(&id).expect_err("refused");
        assert!(matches!(err, Error::InvalidName { .. }), "{path}: {err:?}");
        assert!(err.to_string().contains(path), "{err}");
        let out = tmp.path().join("t").join("out");
        assert!(repo
            .download(&id, &targets(&out), &download_opts())
            .is_err());
        assert!(!tmp.path().join("t").join("x").exists());
        assert!(!tmp.path().join("x").exists());
    }
}

#[test]
fn pack_keys_that_escape_are_refused() {
    let (_, repo) = memory_repo();
    let id = commit_manifest(&repo, "evilkey", &evil("x", "../../etc/passwd".into()));
    let err = repo.read_manifest(&id).expect_err("refused");
    assert!(matches!(err, Error::InvalidKey { .. }), "{err:?}");
}
