//! Every backend passes the same conformance suite.

use std::time::Duration;

use tabletsnap_transfer::conformance::run_all;
use tabletsnap_transfer::{Counting, Durability, FaultConfig, Faulty, LocalFs, Memory, Throttled};

#[test]
fn local_fs_per_put() {
    let dir = tempfile::tempdir().expect("tempdir");
    run_all(&LocalFs::new(dir.path()).expect("open"));
}

#[test]
fn local_fs_batched() {
    let dir = tempfile::tempdir().expect("tempdir");
    run_all(&LocalFs::with_durability(dir.path(), Durability::Batched).expect("open"));
}

#[test]
fn memory() {
    run_all(&Memory::new());
}

#[test]
fn faulty_with_faults_off() {
    run_all(&Faulty::new(Memory::new(), FaultConfig::off(7)));
    let dir = tempfile::tempdir().expect("tempdir");
    run_all(&Faulty::new(
        LocalFs::new(dir.path()).expect("open"),
        FaultConfig::off(7),
    ));
}

#[test]
fn throttled() {
    run_all(&Throttled::new(
        Memory::new(),
        Duration::from_micros(50),
        Some(1 << 30),
    ));
}

#[test]
fn counting() {
    run_all(&Counting::new(Memory::new()));
}

#[test]
fn local_fs_torn_put_leaves_only_a_temp_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fs = LocalFs::new(dir.path()).expect("open");
    use tabletsnap_transfer::Backend;
    fs.put_torn("a/b", b"half").expect("torn");
    let names: Vec<String> = std::fs::read_dir(dir.path().join("a"))
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1);
    assert!(
        names[0].starts_with(tabletsnap_transfer::TEMP_PREFIX),
        "{names:?}"
    );
}
