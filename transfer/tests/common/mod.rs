//! Helpers shared by the scenario tests.
#![allow(dead_code)]

pub mod s3;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tabletsnap_transfer::{
    Backend, DownloadOptions, Repository, RetryPolicy, SourceFile, TransferOptions, UploadOptions,
    UploadSource,
};

/// One tablet of a test tree: id, files (relative name, bytes), extra empty dirs.
#[derive(Debug, Clone)]
pub struct TestTablet {
    pub id: u64,
    pub files: Vec<(String, Vec<u8>)>,
    pub dirs: Vec<String>,
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 8,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
    }
}

pub fn transfer_opts() -> TransferOptions {
    let mut t = TransferOptions::default();
    t.threads = 2;
    t.retry = fast_retry();
    t
}

pub fn upload_opts(pack_size: u64, chunk_size: u64) -> UploadOptions {
    let mut o = UploadOptions::default();
    o.pack_size = pack_size;
    o.chunk_size = chunk_size;
    o.transfer = transfer_opts();
    o
}

pub fn download_opts() -> DownloadOptions {
    let mut o = DownloadOptions::default();
    o.transfer = transfer_opts();
    o.sync = false;
    o
}

/// Writes the tablets under `root/<id>/` and describes them as upload sources.
pub fn write_tree(root: &Path, tablets: &[TestTablet]) -> Vec<UploadSource> {
    tablets
        .iter()
        .map(|t| {
            let dir = root.join(t.id.to_string());
            std::fs::create_dir_all(&dir).expect("mkdir");
            for d in &t.dirs {
                std::fs::create_dir_all(dir.join(d)).expect("mkdir");
            }
            let files = t
                .files
                .iter()
                .map(|(name, data)| {
                    let p = dir.join(name);
                    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
                    std::fs::write(&p, data).expect("write");
                    SourceFile {
                        name: name.clone(),
                        size: data.len() as u64,
                        crc32: crc32fast::hash(data),
                    }
                })
                .collect();
            let mut s = UploadSource::new(t.id, dir, files);
            s.dirs = t.dirs.clone();
            s
        })
        .collect()
}

/// Every file (relative path -> bytes) and directory ("dir/" keys, empty) under `dir`.
pub fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let e = e.expect("walk");
        let rel = e
            .path()
            .strip_prefix(dir)
            .expect("prefix")
            .to_string_lossy()
            .into_owned();
        if e.file_type().is_dir() {
            out.insert(format!("{rel}/"), Vec::new());
        } else {
            out.insert(rel, std::fs::read(e.path()).expect("read"));
        }
    }
    out
}

/// Target dirs `root/<tablet id>`.
pub fn targets(root: &Path) -> impl Fn(u64) -> Option<PathBuf> + Sync + '_ {
    move |id| Some(root.join(id.to_string()))
}

/// A small tree: several tablets, a chunked file, an empty file, an empty dir.
pub fn sample_tablets() -> Vec<TestTablet> {
    let mut tablets = Vec::new();
    for id in 1..=5u64 {
        let mut files = Vec::new();
        for n in 0..20u64 {
            let len = ((id * 31 + n * 17) % 300) as usize;
            let data: Vec<u8> = (0..len).map(|i| (i as u64 * 7 + id + n) as u8).collect();
            files.push((format!("{n:02}.dat"), data));
        }
        tablets.push(TestTablet {
            id,
            files,
            dirs: vec![],
        });
    }
    tablets[0].files.push((
        "big.dat".into(),
        (0..5000u32).map(|i| (i % 253) as u8).collect(),
    ));
    tablets[0].files.push(("empty.dat".into(), Vec::new()));
    tablets[1]
        .files
        .push(("sub/nested.dat".into(), b"nested".to_vec()));
    tablets[1].dirs.push("emptydir".into());
    tablets.push(TestTablet {
        id: 99,
        files: vec![],
        dirs: vec![],
    });
    tablets
}

pub fn memory_repo() -> (Arc<dyn Backend>, Repository) {
    let b: Arc<dyn Backend> = Arc::new(tabletsnap_transfer::Memory::new());
    let r = Repository::create(Arc::clone(&b), "test").expect("create repo");
    (b, r)
}

pub const TS: &str = "2026-11-26-13-14-46";
