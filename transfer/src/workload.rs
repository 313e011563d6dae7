//! Workload generators shared by the benchmark, the example and tests.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::rng::SplitMix64;
use crate::source::{SourceFile, UploadSource};

/// Shape of a tablet tree like a BE data dir:
/// `<root>/data/<shard>/<tablet_id>/<schema_hash>/<version>_<n>.dat`.
#[derive(Debug, Clone, Copy)]
pub struct TreeSpec {
    /// Number of tablet directories.
    pub tablets: u64,
    /// Versions (rowsets) per tablet.
    pub versions: u64,
    /// Files per version.
    pub files_per_version: u64,
    /// Bytes per file.
    pub file_size: usize,
    /// Shard directories the tablets are spread over.
    pub shards: u64,
}

impl TreeSpec {
    /// W1: 10,000 tablets x 20 versions x 2 files of 4 KiB = 400k files.
    pub fn w1() -> Self {
        Self {
            tablets: 10_000,
            versions: 20,
            files_per_version: 2,
            file_size: 4096,
            shards: 100,
        }
    }
}

/// The directory of tablet `i` of a tree under `root`.
pub fn tablet_dir(root: &Path, spec: &TreeSpec, i: u64) -> PathBuf {
    let tablet_id = 10_000 + i;
    root.join("data")
        .join((i % spec.shards.max(1)).to_string())
        .join(tablet_id.to_string())
        .join("368169781")
}

/// Fills `buf` with bytes determined by `seed`.
pub fn fill(buf: &mut [u8], seed: u64) {
    let mut rng = SplitMix64::new(seed);
    for chunk in buf.chunks_mut(8) {
        let w = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&w[..chunk.len()]);
    }
}

/// Writes a tree of `spec` under `root` and returns it as upload sources.
pub fn generate_tree(root: &Path, spec: &TreeSpec) -> Result<Vec<UploadSource>> {
    let mut buf = vec![0u8; spec.file_size];
    let mut sources = Vec::with_capacity(spec.tablets as usize);
    for i in 0..spec.tablets {
        let dir = tablet_dir(root, spec, i);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut files = Vec::new();
        for v in 0..spec.versions {
            for n in 0..spec.files_per_version {
                let name = format!("0200000000000{v:03}_{n}.dat");
                fill(&mut buf, i << 20 | v << 8 | n);
                let path = dir.join(&name);
                fs::write(&path, &buf).map_err(|e| Error::io(&path, e))?;
                files.push(SourceFile {
                    name,
                    size: buf.len() as u64,
                    crc32: crc32fast::hash(&buf),
                });
            }
        }
        sources.push(UploadSource::new(10_000 + i, dir, files));
    }
    Ok(sources)
}

/// Writes `count` files of `size` bytes into one tablet dir under `root`
/// (W2: 32 x 64 MiB) and returns them as one upload source.
pub fn generate_big_files(root: &Path, count: u64, size: usize) -> Result<Vec<UploadSource>> {
    let dir = root.join("data").join("0").join("20000").join("368169781");
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut block = vec![0u8; 1 << 20];
    let mut files = Vec::new();
    for i in 0..count {
        let name = format!("big_{i:03}.dat");
        let path = dir.join(&name);
        let mut f = fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        let mut crc = crc32fast::Hasher::new();
        let mut left = size;
        let mut j = 0;
        while left > 0 {
            let n = left.min(block.len());
            fill(&mut block[..n], i << 32 | j);
            f.write_all(&block[..n]).map_err(|e| Error::io(&path, e))?;
            crc.update(&block[..n]);
            left -= n;
            j += 1;
        }
        files.push(SourceFile {
            name,
            size: size as u64,
            crc32: crc.finalize(),
        });
    }
    Ok(vec![UploadSource::new(20_000, dir, files)])
}
