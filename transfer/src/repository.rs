//! A repository: a named area of a backend holding committed snapshots.
//!
//! Layout (keys relative to the backend root):
//!
//! ```text
//! __tabletsnap_repository_<name>/__repo_info
//! __tabletsnap_repository_<name>/__ss_<label>/<timestamp>/packs/<seq:08>.pack
//! __tabletsnap_repository_<name>/__ss_<label>/<timestamp>/manifest
//! __tabletsnap_repository_<name>/__ss_<label>/<timestamp>/meta
//! __tabletsnap_repository_<name>/__ss_<label>/<timestamp>/info   <- written last: commit point
//! ```

use std::sync::Arc;

use crate::backend::Backend;
use crate::download::{DownloadOptions, DownloadReport, TargetDirs};
use crate::error::{Error, Result};
use crate::info::{decode_repo_info, encode_repo_info, SnapshotId, SnapshotInfo};
use crate::manifest::Manifest;
use crate::upload::{BackupWriter, UploadOptions};

/// Prefix of the repository directory under the backend root.
pub const REPO_DIR_PREFIX: &str = "__tabletsnap_repository_";
/// Name of the repository info object.
pub const REPO_INFO: &str = "__repo_info";
/// Prefix of every snapshot label directory.
pub const SNAPSHOT_DIR_PREFIX: &str = "__ss_";

/// A handle on one repository of a backend; cheap to clone.
#[derive(Debug, Clone)]
pub struct Repository {
    backend: Arc<dyn Backend>,
    name: String,
    prefix: String,
}

impl Repository {
    fn handle(backend: Arc<dyn Backend>, name: &str) -> Result<Self> {
        crate::names::validate_component("repository name", name)?;
        Ok(Self {
            backend,
            name: name.to_string(),
            prefix: format!("{REPO_DIR_PREFIX}{name}/"),
        })
    }

    /// Creates a new repository; fails if one with this name exists.
    pub fn create(backend: Arc<dyn Backend>, name: &str) -> Result<Self> {
        let repo = Self::handle(backend, name)?;
        let key = repo.key(REPO_INFO);
        if repo.backend.head(&key)?.is_some() {
            return Err(Error::InvalidInput(format!(
                "repository '{name}' already exists (open it instead)"
            )));
        }
        repo.backend.put(&key, &encode_repo_info(name))?;
        repo.backend.barrier()?;
        Ok(repo)
    }

    /// Opens an existing repository, validating its info object.
    pub fn open(backend: Arc<dyn Backend>, name: &str) -> Result<Self> {
        let repo = Self::handle(backend, name)?;
        let key = repo.key(REPO_INFO);
        let data = match repo.backend.get(&key) {
            Ok(d) => d,
            Err(e) if e.is_not_found() => {
                return Err(Error::RepositoryNotFound {
                    name: name.to_string(),
                })
            }
            Err(e) => return Err(e),
        };
        let stored = decode_repo_info(&data, &key)?;
        if stored != name {
            return Err(Error::Corrupt {
                what: key,
                reason: format!("names repository '{stored}'"),
            });
        }
        Ok(repo)
    }

    /// Opens the repository, creating it first if it does not exist.
    pub fn open_or_create(backend: Arc<dyn Backend>, name: &str) -> Result<Self> {
        match Self::open(Arc::clone(&backend), name) {
            Err(Error::RepositoryNotFound { .. }) => Self::create(backend, name),
            other => other,
        }
    }

    /// The repository name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The backend key of `rel`, a key relative to the repository root.
    pub fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }

    /// The snapshot directory, relative to the repository root, ending in `/`.
    pub fn snapshot_dir(id: &SnapshotId) -> String {
        format!("{SNAPSHOT_DIR_PREFIX}{}/{}/", id.label, id.timestamp)
    }

    fn object_key(&self, id: &SnapshotId, object: &str) -> String {
        self.key(&format!("{}{object}", Self::snapshot_dir(id)))
    }

    /// Committed snapshots (those with a valid `info`), sorted by label then
    /// timestamp. Uncommitted or damaged ones are left out.
    pub fn list_snapshots(&self) -> Result<Vec<SnapshotId>> {
        let prefix = self.key(SNAPSHOT_DIR_PREFIX);
        let mut ids = Vec::new();
        for key in self.backend.list(&prefix)? {
            let Some(rest) = key.strip_prefix(&prefix) else {
                continue;
            };
            let parts: Vec<&str> = rest.split('/').collect();
            let [label, ts, "info"] = parts.as_slice() else {
                continue;
            };
            let Ok(id) = SnapshotId::new(label, ts) else {
                continue;
            };
            if self.read_info(&id).is_ok() {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn snapshot_not_found(&self, id: &SnapshotId) -> Error {
        Error::SnapshotNotFound {
            repo: self.name.clone(),
            label: id.label.clone(),
            timestamp: id.timestamp.clone(),
        }
    }

    /// Reads and validates a snapshot's info; absent info means not committed.
    pub fn read_info(&self, id: &SnapshotId) -> Result<SnapshotInfo> {
        let key = self.object_key(id, "info");
        let data = self.backend.get(&key).map_err(|e| {
            if e.is_not_found() {
                self.snapshot_not_found(id)
            } else {
                e
            }
        })?;
        let info = SnapshotInfo::decode(&data, &key)?;
        if &info.id != id {
            return Err(Error::Corrupt {
                what: key,
                reason: format!("describes snapshot {}", info.id),
            });
        }
        Ok(info)
    }

    fn read_pinned(&self, id: &SnapshotId, object: &str, len: u64, crc: u32) -> Result<Vec<u8>> {
        let key = self.object_key(id, object);
        let data = self.backend.get(&key)?;
        if data.len() as u64 != len {
            return Err(Error::SizeMismatch {
                what: key,
                expected: len,
                actual: data.len() as u64,
            });
        }
        let actual = crc32fast::hash(&data);
        if actual != crc {
            return Err(Error::ChecksumMismatch {
                what: key,
                expected: crc,
                actual,
            });
        }
        Ok(data)
    }

    /// Reads the opaque job-layer meta of a committed snapshot, checked against its info.
    pub fn read_meta(&self, id: &SnapshotId) -> Result<Vec<u8>> {
        let info = self.read_info(id)?;
        self.read_pinned(id, "meta", info.meta_len, info.meta_crc)
    }

    /// Reads, checks against the info, decodes and validates a snapshot's manifest.
    pub fn read_manifest(&self, id: &SnapshotId) -> Result<Manifest> {
        let info = self.read_info(id)?;
        let data = self.read_pinned(id, "manifest", info.manifest_len, info.manifest_crc)?;
        Manifest::decode(&data)
    }

    /// Reads the manifest object of a snapshot that may not be committed
    /// (no info to check it against; its own crc still is), e.g. to tell
    /// whose it is when cleaning up.
    pub fn read_manifest_uncommitted(&self, id: &SnapshotId) -> Result<Manifest> {
        Manifest::decode(&self.backend.get(&self.object_key(id, "manifest"))?)
    }

    /// Starts a backup; fails if that label and timestamp are already committed.
    /// An uncommitted earlier attempt is resumed: its stored packs are reused.
    pub fn begin_backup(&self, label: &str, timestamp: &str) -> Result<BackupWriter> {
        let id = SnapshotId::new(label, timestamp)?;
        if self.backend.head(&self.object_key(&id, "info"))?.is_some() {
            return Err(Error::SnapshotExists {
                repo: self.name.clone(),
                label: id.label,
                timestamp: id.timestamp,
            });
        }
        Ok(BackupWriter::new(self.clone(), id, None))
    }

    /// Starts one writer's part of a backup written by several writers (one
    /// per backend): its packs go under `packs/<part>/`, its manifest comes
    /// from [`BackupWriter::into_manifest`], and the caller merges the parts
    /// ([`Manifest::merge`]) and commits them with [`Repository::commit_backup`].
    pub fn begin_backup_part(
        &self,
        label: &str,
        timestamp: &str,
        part: &str,
    ) -> Result<BackupWriter> {
        crate::names::validate_component("backup part", part)?;
        let id = SnapshotId::new(label, timestamp)?;
        if self.backend.head(&self.object_key(&id, "info"))?.is_some() {
            return Err(Error::SnapshotExists {
                repo: self.name.clone(),
                label: id.label,
                timestamp: id.timestamp,
            });
        }
        Ok(BackupWriter::new(self.clone(), id, Some(part.to_string())))
    }

    /// Commits a backup whose data was uploaded by part writers: checks the
    /// manifest, checks every pack it names is stored, then writes manifest,
    /// meta and `info` (the commit point) with barriers between.
    pub fn commit_backup(
        &self,
        id: &SnapshotId,
        manifest: &Manifest,
        meta: &[u8],
    ) -> Result<SnapshotInfo> {
        manifest.validate()?;
        if self.backend.head(&self.object_key(id, "info"))?.is_some() {
            return Err(Error::SnapshotExists {
                repo: self.name.clone(),
                label: id.label.clone(),
                timestamp: id.timestamp.clone(),
            });
        }
        let retry = crate::RetryPolicy::default();
        let cancel = crate::CancelToken::new();
        for pack in &manifest.packs {
            let key = self.key(pack);
            if retry
                .run(&key, &cancel, || self.backend.head(&key))?
                .is_none()
            {
                return Err(Error::Corrupt {
                    what: key,
                    reason: "the manifest names a pack that is not stored".into(),
                });
            }
        }
        crate::upload::commit_snapshot(self, id, manifest, meta, &retry, &cancel)
    }

    /// Uploads `sources` and commits them with `meta` in one call.
    pub fn backup(
        &self,
        label: &str,
        timestamp: &str,
        sources: &[crate::UploadSource],
        meta: &[u8],
        opts: &UploadOptions,
    ) -> Result<SnapshotInfo> {
        let mut w = self.begin_backup(label, timestamp)?;
        w.upload(sources, opts)?;
        w.commit(meta)
    }

    /// Restores a committed snapshot into the caller's tablet directories.
    pub fn download(
        &self,
        id: &SnapshotId,
        targets: &dyn TargetDirs,
        opts: &DownloadOptions,
    ) -> Result<DownloadReport> {
        crate::download::download(self, id, targets, opts)
    }

    /// Deletes a snapshot: `info` first (un-committing it, so a crash midway
    /// leaves only an invisible incomplete backup), then everything else under
    /// its directory. Also removes incomplete backups.
    pub fn delete_snapshot(&self, id: &SnapshotId) -> Result<()> {
        self.backend.delete(&self.object_key(id, "info"))?;
        self.backend.barrier()?;
        for key in self.backend.list(&self.key(&Self::snapshot_dir(id)))? {
            self.backend.delete(&key)?;
        }
        self.backend.barrier()
    }
}
