//! Upload input: tablet directories with the files their metadata lists.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::names::validate_rel_path;

/// One file to back up, as the tablet metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Path relative to the tablet directory: `file` or `dir/file`.
    pub name: String,
    /// Expected size in bytes.
    pub size: u64,
    /// Expected crc32 of the whole file; upload fails if the bytes read differ.
    pub crc32: u32,
}

/// One tablet directory to back up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSource {
    /// The tablet id recorded in the manifest; the restore side maps it to a directory.
    pub tablet_id: u64,
    /// The directory holding the files (typically a snapshot directory).
    pub dir: PathBuf,
    /// The files to back up.
    pub files: Vec<SourceFile>,
    /// Subdirectories to recreate even if empty (parents of files are implied).
    pub dirs: Vec<String>,
}

impl UploadSource {
    /// A source with the given files and no extra directories.
    /// The files are put in name order (the order the upload wants, so it
    /// need not copy the lists to sort them).
    pub fn new(tablet_id: u64, dir: impl Into<PathBuf>, mut files: Vec<SourceFile>) -> Self {
        files.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Self {
            tablet_id,
            dir: dir.into(),
            files,
            dirs: Vec::new(),
        }
    }

    /// Builds a source by walking `dir` (at most one level of subdirectories) and
    /// reading every file to learn its size and crc32. For callers without a
    /// file list from tablet metadata, and for tests and benchmarks.
    pub fn scan(tablet_id: u64, dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        for entry in walkdir::WalkDir::new(&dir)
            .min_depth(1)
            .max_depth(2)
            .sort_by_file_name()
        {
            let entry = entry.map_err(|e| {
                let p = e
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| dir.clone());
                Error::io(p, e.into())
            })?;
            let rel = rel_name(&dir, entry.path())?;
            if entry.file_type().is_dir() {
                dirs.push(rel);
            } else if entry.file_type().is_file() {
                let data = std::fs::read(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
                files.push(SourceFile {
                    name: rel,
                    size: data.len() as u64,
                    crc32: crc32fast::hash(&data),
                });
            }
        }
        Ok(Self {
            tablet_id,
            dir,
            files,
            dirs,
        })
    }

    /// Total bytes of the listed files.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

fn rel_name(root: &Path, path: &Path) -> Result<String> {
    let rel = path.strip_prefix(root).map_err(|_| {
        Error::InvalidInput(format!("{} is outside {}", path.display(), root.display()))
    })?;
    let name = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    validate_rel_path(&name)?;
    Ok(name)
}

/// Checks names and uniqueness, and returns the sources in the canonical order
/// (by tablet id, files by name) that makes pack planning deterministic.
pub(crate) fn normalize(sources: &[UploadSource]) -> Result<Cow<'_, [UploadSource]>> {
    // Nodes list their snapshots in order already: borrow them then (a copy
    // of every file name of 100k tablets was tens of MiB at the peak).
    let in_order = sources.windows(2).all(|w| w[0].tablet_id < w[1].tablet_id)
        && sources.iter().all(|s| {
            s.files.windows(2).all(|w| w[0].name < w[1].name)
                && s.dirs.windows(2).all(|w| w[0] < w[1])
        });
    let out: Cow<'_, [UploadSource]> = if in_order {
        Cow::Borrowed(sources)
    } else {
        let mut v = sources.to_vec();
        v.sort_by_key(|s| s.tablet_id);
        for s in &mut v {
            s.files.sort_by(|a, b| a.name.cmp(&b.name));
            s.dirs.sort();
            s.dirs.dedup();
        }
        Cow::Owned(v)
    };
    for w in out.windows(2) {
        if w[0].tablet_id == w[1].tablet_id {
            return Err(Error::InvalidInput(format!(
                "tablet {} listed twice",
                w[0].tablet_id
            )));
        }
    }
    for s in out.iter() {
        for f in &s.files {
            validate_rel_path(&f.name)?;
        }
        if let Some(w) = s.files.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(Error::InvalidInput(format!(
                "tablet {}: file '{}' listed twice",
                s.tablet_id, w[0].name
            )));
        }
        for d in &s.dirs {
            validate_rel_path(d)?;
            if s.files
                .binary_search_by(|f| f.name.as_str().cmp(d.as_str()))
                .is_ok()
            {
                return Err(Error::InvalidInput(format!(
                    "tablet {}: '{d}' is both a file and a directory",
                    s.tablet_id
                )));
            }
        }
    }
    Ok(out)
}
