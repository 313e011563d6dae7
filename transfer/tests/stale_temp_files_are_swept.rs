//! A crash between writing a put's temp file and renaming it leaves a
//! `.tstmp-*` file nothing else removes; `Repository::sweep_stale_temp`
//! removes those older than an age, and keeps younger ones (puts in flight)
//! and every object.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tabletsnap_transfer::{Backend, LocalFs, Memory, Repository, TEMP_PREFIX};

fn temp_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_name().to_string_lossy().starts_with(TEMP_PREFIX))
        .map(|e| e.path().to_path_buf())
        .collect()
}

fn age(path: &std::path::Path, by: Duration) {
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    f.set_modified(SystemTime::now() - by).expect("set mtime");
}

#[test]
fn old_temp_files_go_young_ones_and_objects_stay() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("repo");
    let fs = Arc::new(LocalFs::new(&root).expect("fs"));
    let backend: Arc<dyn Backend> = fs.clone();
    let repo = Repository::create(Arc::clone(&backend), "r").expect("create");
    let other = Repository::create(Arc::clone(&backend), "other").expect("create");
    let pack = repo.key("__ss_x/2026-01-01-00-00-00/packs/00000000.pack");
    let info = repo.key("__ss_x/2026-01-01-00-00-00/info");
    backend.put(&pack, b"pack").expect("put");
    backend.put_torn(&pack, b"crashed").expect("torn");
    backend.put_torn(&info, b"in flight").expect("torn");
    backend
        .put_torn(&other.key("__ss_y/2026-01-01-00-00-00/info"), b"other repo")
        .expect("torn");
    let temps = temp_files(&root);
    assert_eq!(temps.len(), 3);
    let crashed = temps
        .iter()
        .find(|p| p.to_string_lossy().contains("00000000.pack"))
        .expect("pack temp");
    age(crashed, Duration::from_secs(7200));
    for t in &temps {
        if t.to_string_lossy().contains("__ss_y") {
            age(t, Duration::from_secs(7200));
        }
    }

    let removed = repo
        .sweep_stale_temp(Duration::from_secs(3600))
        .expect("sweep");
    assert_eq!(removed, 1);
    let left = temp_files(&root);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!crashed.exists());
    assert!(
        left.iter().any(|p| p.to_string_lossy().contains("__ss_y")),
        "another repository's temp files are not this repository's to sweep"
    );
    assert_eq!(backend.get(&pack).expect("pack"), b"pack");
    assert_eq!(
        repo.sweep_stale_temp(Duration::from_secs(3600))
            .expect("sweep"),
        0
    );
    // With no age limit, the in-flight one goes too.
    assert_eq!(repo.sweep_stale_temp(Duration::ZERO).expect("sweep"), 1);
    assert_eq!(backend.list("").expect("list").len(), 3); // 2 repo infos + the pack
}

#[test]
fn backends_without_temp_files_sweep_nothing() {
    let backend: Arc<dyn Backend> = Arc::new(Memory::new());
    let repo = Repository::create(backend, "r").expect("create");
    assert_eq!(repo.sweep_stale_temp(Duration::ZERO).expect("sweep"), 0);
}
