//! Opening a location or a repository never creates it: an unmounted mount
//! point must give a clear error, not a fresh empty repository. Only the
//! creating calls (`LocalFs::create`, `Repository::create`) make anything.

use std::sync::Arc;

use tabletsnap_transfer::{Backend, Durability, Error, LocalFs, Memory, Repository};

#[test]
fn opening_a_missing_root_is_an_error_and_creates_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("mnt/backups");
    for durability in [Durability::PerPut, Durability::Batched] {
        let err = LocalFs::open(&root, durability).expect_err("a missing root opened");
        assert!(
            matches!(&err, Error::LocationNotFound { path } if *path == root),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&root.display().to_string()), "{msg}");
        assert!(msg.contains("mounted"), "{msg}");
        assert!(!err.is_retryable());
    }
    assert!(!tmp.path().join("mnt").exists(), "open created a directory");
}

#[test]
fn opening_a_file_as_root_is_an_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("f");
    std::fs::write(&file, b"x").expect("write");
    assert!(LocalFs::open(&file, Durability::Batched).is_err());
}

#[test]
fn create_makes_the_root_and_open_then_serves_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("mnt/backups");
    LocalFs::create(&root, Durability::PerPut).expect("create");
    assert!(root.is_dir());
    let fs = LocalFs::open(&root, Durability::Batched).expect("open");
    fs.put("a/b", b"x").expect("put");
    assert_eq!(fs.get("a/b").expect("get"), b"x");
}

#[test]
fn opening_a_repository_never_creates_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // An empty directory, as an unmounted mount point is.
    let root = tmp.path().join("mnt");
    std::fs::create_dir(&root).expect("mkdir");
    let fs: Arc<dyn Backend> = Arc::new(LocalFs::open(&root, Durability::Batched).expect("open"));
    assert!(matches!(
        Repository::open(Arc::clone(&fs), "r"),
        Err(Error::RepositoryNotFound { .. })
    ));
    assert!(
        std::fs::read_dir(&root).expect("read_dir").next().is_none(),
        "opening a repository wrote to its location"
    );
    Repository::create(Arc::clone(&fs), "r").expect("create");
    Repository::open(fs, "r").expect("open after create");

    let mem: Arc<dyn Backend> = Arc::new(Memory::new());
    assert!(Repository::open(Arc::clone(&mem), "r").is_err());
    assert!(mem.list("").expect("list").is_empty());
}

#[test]
fn a_root_that_vanishes_is_not_recreated_by_a_put() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("mnt");
    std::fs::create_dir(&root).expect("mkdir");
    let fs = LocalFs::open(&root, Durability::Batched).expect("open");
    std::fs::remove_dir(&root).expect("rmdir"); // unmounted under us
    assert!(fs.put("a/b", b"x").is_err());
    assert!(!root.exists(), "a put recreated the root");
}
