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
use crate::manifest::{Borrowed, Manifest, ManifestSummary, StoredManifest};
use crate::upload::{BackupWriter, UploadOptions};

/// Prefix of the repository directory under the backend root.
pub const REPO_DIR_PREFIX: &str = "__tabletsnap_repository_";
/// Name of the repository info object.
pub const REPO_INFO: &str = "__repo_info";

/// Reads of a small object (repository info, snapshot info, manifest, meta)
/// before its failing check counts as damage rather than a bad read.
pub const VERIFIED_READS: u32 = 3;
/// Prefix of every snapshot label directory.
pub const SNAPSHOT_DIR_PREFIX: &str = "__ss_";

/// What a snapshot's `info` object (the commit point) says, as read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitState {
    /// There is no `info` object: the snapshot is not committed (an
    /// interrupted attempt may have left packs, a manifest or a meta).
    Absent,
    /// A valid `info` object commits the snapshot; it pins the manifest by
    /// size and crc32.
    Committed(SnapshotInfo),
    /// An `info` object exists (or may: the read failed) but could not be
    /// read or decoded. Anything destructive must treat the snapshot as
    /// committed.
    Unreadable(String),
}

/// A snapshot found by [`Repository::list_snapshots_with_status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotStatus {
    /// Its `info` object is valid.
    Committed(SnapshotInfo),
    /// Its `info` object is there but damaged or unreadable; one sentence
    /// saying how, e.g. `info object is damaged: checksum mismatch in ...`.
    Damaged(String),
}

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
        let stored = match repo.get_verified(&key, |data| decode_repo_info(&data, &key)) {
            Ok(s) => s,
            Err(e) if e.is_not_found() => {
                return Err(Error::RepositoryNotFound {
                    name: name.to_string(),
                })
            }
            Err(e) => return Err(e),
        };
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

    /// The key of a snapshot's manifest object, relative to the repository
    /// root: how borrowing manifests and GC markers name it.
    pub fn manifest_key(id: &SnapshotId) -> String {
        format!("{}manifest", Self::snapshot_dir(id))
    }

    pub(crate) fn object_key(&self, id: &SnapshotId, object: &str) -> String {
        self.key(&format!("{}{object}", Self::snapshot_dir(id)))
    }

    /// Committed snapshots (those with a valid `info`), sorted by label then
    /// timestamp. Uncommitted or damaged ones are left out; see
    /// [`Repository::list_snapshots_with_status`] for the damaged ones.
    pub fn list_snapshots(&self) -> Result<Vec<SnapshotId>> {
        let mut ids = self.info_ids()?;
        ids.retain(|id| self.read_info(id).is_ok());
        Ok(ids)
    }

    /// Every snapshot with an `info` object, sorted by label then timestamp,
    /// each with its info or a sentence describing the damage. Transient read
    /// errors are retried first; one that persists is reported as damage.
    /// Snapshots without an `info` (never committed) are not listed.
    pub fn list_snapshots_with_status(&self) -> Result<Vec<(SnapshotId, SnapshotStatus)>> {
        let retry = crate::RetryPolicy::default();
        let cancel = crate::CancelToken::new();
        let mut out = Vec::new();
        for id in self.info_ids()? {
            let key = self.object_key(&id, "info");
            let state = retry
                .run(&key, &cancel, || self.try_commit_state(&id))
                .unwrap_or_else(|e| CommitState::Unreadable(unreadable(&e)));
            match state {
                // Deleted since the listing.
                CommitState::Absent => {}
                CommitState::Committed(info) => out.push((id, SnapshotStatus::Committed(info))),
                CommitState::Unreadable(why) => out.push((id, SnapshotStatus::Damaged(why))),
            }
        }
        Ok(out)
    }

    /// The ids of every `info` object under the repository, sorted. Keys that
    /// do not form a valid id cannot be named by a user and are left out.
    pub(crate) fn info_ids(&self) -> Result<Vec<SnapshotId>> {
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
            if let Ok(id) = SnapshotId::new(label, ts) {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Whether snapshot `id` is committed, from one read of its `info`. Only
    /// a definite "no such object" is [`CommitState::Absent`]; an info that
    /// exists but is damaged, and any failed read (transient ones included),
    /// is [`CommitState::Unreadable`]. Cleanup must delete only on `Absent`.
    pub fn commit_state(&self, id: &SnapshotId) -> CommitState {
        self.try_commit_state(id)
            .unwrap_or_else(|e| CommitState::Unreadable(unreadable(&e)))
    }

    /// Like [`Repository::commit_state`], but a retryable read error is
    /// returned as such, so a caller can retry it.
    pub(crate) fn try_commit_state(&self, id: &SnapshotId) -> Result<CommitState> {
        let key = self.object_key(id, "info");
        let data = match self.backend.get(&key) {
            Ok(d) => d,
            Err(e) if e.is_not_found() => return Ok(CommitState::Absent),
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => return Ok(CommitState::Unreadable(unreadable(&e))),
        };
        Ok(match self.decode_info(id, key, &data) {
            Ok(info) => CommitState::Committed(info),
            Err(e) => CommitState::Unreadable(format!("info object is damaged: {e}")),
        })
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
        self.get_verified(&key, |data| self.decode_info(id, key.clone(), &data))
            .map_err(|e| {
                if e.is_not_found() {
                    self.snapshot_not_found(id)
                } else {
                    e
                }
            })
    }

    /// Reads `key` and checks it with `check`, reading again (up to
    /// [`VERIFIED_READS`] times in all) when the bytes fail their check: a
    /// read damaged in transit is not a damaged object. A format version
    /// newer than this build's is read again too: the header is checked
    /// before the crc (a newer format may end otherwise), so a byte flipped
    /// in transit in the version field looks like one. An object that fails
    /// every read is reported with the last check's error.
    fn get_verified<T>(&self, key: &str, check: impl Fn(Vec<u8>) -> Result<T>) -> Result<T> {
        let mut attempt = 1;
        loop {
            match check(self.backend.get(key)?) {
                Err(e)
                    if (e.is_damage() || matches!(e, Error::UnsupportedVersion { .. }))
                        && attempt < VERIFIED_READS =>
                {
                    attempt += 1
                }
                result => return result,
            }
        }
    }

    fn decode_info(&self, id: &SnapshotId, key: String, data: &[u8]) -> Result<SnapshotInfo> {
        let info = SnapshotInfo::decode(data, &key)?;
        if &info.id != id {
            return Err(Error::Corrupt {
                what: key,
                reason: format!("describes snapshot {}", info.id),
            });
        }
        Ok(info)
    }

    fn read_pinned(&self, id: &SnapshotId, object: &str, len: u64, crc: u32) -> Result<Vec<u8>> {
        self.read_checked(&self.object_key(id, object), len, crc, crc32fast::hash)
    }

    /// Reads `key` and checks its length and `crc_of` its bytes against
    /// what the reader pinned (re-read on a mismatch, as damage in transit).
    fn read_checked(
        &self,
        key: &str,
        len: u64,
        crc: u32,
        crc_of: fn(&[u8]) -> u32,
    ) -> Result<Vec<u8>> {
        let key = key.to_string();
        self.get_verified(&key, |data| {
            if data.len() as u64 != len {
                return Err(Error::SizeMismatch {
                    what: key.clone(),
                    expected: len,
                    actual: data.len() as u64,
                });
            }
            let actual = crc_of(&data);
            if actual != crc {
                return Err(Error::ChecksumMismatch {
                    what: key.clone(),
                    expected: crc,
                    actual,
                });
            }
            Ok(data)
        })
    }

    /// Reads the opaque job-layer meta of a committed snapshot, checked against its info.
    pub fn read_meta(&self, id: &SnapshotId) -> Result<Vec<u8>> {
        let info = self.read_info(id)?;
        self.read_pinned(id, "meta", info.meta_len, info.meta_crc)
    }

    /// Reads, checks against the info, decodes and validates a snapshot's
    /// manifest, with the entries it borrows resolved from their manifests.
    pub fn read_manifest(&self, id: &SnapshotId) -> Result<Manifest> {
        self.read_manifest_subset(id, None)
    }

    /// Like [`Repository::read_manifest`], keeping only the entries of
    /// `tablets` (when given): the object is read and checked whole, the
    /// other tablets' entries are skipped without being built, and only the
    /// kept tablets' borrowed entries are fetched.
    pub fn read_manifest_subset(
        &self,
        id: &SnapshotId,
        tablets: Option<&std::collections::HashSet<u64>>,
    ) -> Result<Manifest> {
        let stored = self.read_stored_manifest(id, tablets)?;
        self.resolve_manifest(stored, &format!("manifest of {id}"))
    }

    /// A committed snapshot's manifest as stored (borrowed entries not
    /// resolved), checked against its info; filtered like
    /// [`Repository::read_manifest_subset`].
    pub fn read_stored_manifest(
        &self,
        id: &SnapshotId,
        tablets: Option<&std::collections::HashSet<u64>>,
    ) -> Result<StoredManifest> {
        let info = self.read_info(id)?;
        let data = self.read_pinned(id, "manifest", info.manifest_len, info.manifest_crc)?;
        StoredManifest::decode_filtered(&data, &format!("manifest of {id}"), tablets)
    }

    /// What a backup borrowing from a committed snapshot's manifest needs
    /// (see [`StoredManifest::summary`]), checked against its info.
    pub fn read_manifest_summary(&self, id: &SnapshotId) -> Result<ManifestSummary> {
        let info = self.read_info(id)?;
        let data = self.read_pinned(id, "manifest", info.manifest_len, info.manifest_crc)?;
        StoredManifest::summary(&data, &format!("manifest of {id}"))
    }

    /// The manifest with its borrowed entries fetched from the manifests
    /// that hold them (each pinned by length and crc32) and merged in.
    pub fn resolve_manifest(&self, stored: StoredManifest, what: &str) -> Result<Manifest> {
        let StoredManifest { entries, borrowed } = stored;
        if borrowed.is_empty() {
            return Ok(entries);
        }
        let mut parts = Vec::with_capacity(1 + borrowed.len());
        parts.push(entries);
        for b in borrowed {
            let ids: std::collections::HashSet<u64> =
                b.tablets.iter().map(|t| t.tablet_id).collect();
            let corrupt = |reason: String| Error::Corrupt {
                what: what.to_string(),
                reason,
            };
            let data = match self.read_borrowed_source(&b) {
                Ok(d) => d,
                Err(e) if e.is_not_found() => {
                    return Err(corrupt(format!(
                        "the manifest it borrows {} tablets' entries from, {}, is missing",
                        ids.len(),
                        b.manifest
                    )))
                }
                Err(e) => return Err(e),
            };
            let name = format!("manifest {} (lending entries to the {what})", b.manifest);
            let source = StoredManifest::decode_filtered(&data, &name, Some(&ids))?;
            if let Some(t) = source.borrowed.first().and_then(|s| s.tablets.first()) {
                return Err(corrupt(format!(
                    "it borrows tablet {} from {}, which borrows it in turn",
                    t.tablet_id, b.manifest
                )));
            }
            let m = source.entries.into_subset_compact(&ids);
            if m.tablets.len() != ids.len() {
                let held: std::collections::HashSet<u64> =
                    m.tablets.iter().map(|t| t.tablet_id).collect();
                let missing = b
                    .tablets
                    .iter()
                    .find(|t| !held.contains(&t.tablet_id))
                    .map_or(0, |t| t.tablet_id);
                return Err(corrupt(format!(
                    "it borrows tablet {missing} from {}, which does not hold it",
                    b.manifest
                )));
            }
            parts.push(m);
        }
        Manifest::merge(parts).map_err(|e| Error::Corrupt {
            what: what.to_string(),
            reason: e.to_string(),
        })
    }

    /// A borrowed-from manifest's bytes, checked against the length and
    /// trailing crc32 the borrowing manifest pinned.
    fn read_borrowed_source(&self, b: &Borrowed) -> Result<Vec<u8>> {
        let key = self.key(&b.manifest);
        crate::RetryPolicy::default().run(&key, &crate::CancelToken::new(), || {
            self.read_checked(&key, b.len, b.crc32, crate::manifest::trailing_crc)
        })
    }

    /// The raw bytes of a snapshot's manifest object, retried.
    fn read_manifest_bytes(&self, id: &SnapshotId) -> Result<Vec<u8>> {
        let key = self.object_key(id, "manifest");
        crate::RetryPolicy::default()
            .run(&key, &crate::CancelToken::new(), || self.backend.get(&key))
    }

    /// Reads the manifest object of a snapshot that may not be committed
    /// (no info to check it against; its own crc still is), as stored, e.g.
    /// to tell whose it is when cleaning up.
    pub fn read_manifest_uncommitted(&self, id: &SnapshotId) -> Result<StoredManifest> {
        StoredManifest::decode_filtered(
            &self.backend.get(&self.object_key(id, "manifest"))?,
            &format!("manifest of {id} (uncommitted)"),
            None,
        )
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
    ///
    /// Idempotent, so a job may rerun it after a crash or a lost reply: an
    /// `info` already recording this manifest (same size and crc32) means an
    /// earlier attempt committed it, and its info is returned. One recording
    /// another manifest is [`Error::SnapshotExists`]; one that cannot be read
    /// is [`Error::CommitStateUnknown`]. Manifest and meta objects an earlier
    /// attempt stored with the same bytes are kept, not put again.
    pub fn commit_backup(
        &self,
        id: &SnapshotId,
        manifest: &Manifest,
        meta: &[u8],
    ) -> Result<SnapshotInfo> {
        self.commit_backup_borrowing(id, manifest, &[], meta)
    }

    /// [`Repository::commit_backup`] of a manifest that also borrows
    /// entries: every borrowed-from manifest must be stored with the pinned
    /// length, and every pack it names too, before `info` is written.
    pub fn commit_backup_borrowing(
        &self,
        id: &SnapshotId,
        manifest: &Manifest,
        borrowed: &[Borrowed],
        meta: &[u8],
    ) -> Result<SnapshotInfo> {
        crate::manifest::validate_parts(manifest, borrowed, &format!("manifest of {id}"))?;
        let retry = crate::RetryPolicy::default();
        let cancel = crate::CancelToken::new();
        let info_key = self.object_key(id, "info");
        match retry.run(&info_key, &cancel, || self.try_commit_state(id))? {
            CommitState::Absent => {}
            CommitState::Committed(info) => {
                let mbytes = manifest.encode_borrowing(borrowed);
                // The manifest ends in its own crc32, so the crc32 of the
                // whole object is the same constant for every manifest:
                // compare the stored bytes, not the pinned crc.
                if info.manifest_len == mbytes.len() as u64
                    && info.manifest_crc == crc32fast::hash(&mbytes)
                    && self.read_manifest_bytes(id).is_ok_and(|m| m == mbytes)
                {
                    return Ok(info);
                }
                return Err(Error::SnapshotExists {
                    repo: self.name.clone(),
                    label: id.label.clone(),
                    timestamp: id.timestamp.clone(),
                });
            }
            CommitState::Unreadable(reason) => {
                return Err(Error::CommitStateUnknown {
                    repo: self.name.clone(),
                    label: id.label.clone(),
                    timestamp: id.timestamp.clone(),
                    reason,
                })
            }
        }
        for b in borrowed {
            let key = self.key(&b.manifest);
            match retry.run(&key, &cancel, || self.backend.head(&key))? {
                Some(len) if len == b.len => {}
                _ => {
                    return Err(Error::Corrupt {
                        what: key,
                        reason: format!(
                            "the manifest borrows {} tablets' entries from it, and it is not stored as pinned (DROP SNAPSHOT of the backup it belongs to may have run meanwhile: run the backup again)",
                            b.tablets.len()
                        ),
                    })
                }
            }
        }
        for pack in crate::manifest::packs_with_borrowed(&manifest.packs, borrowed) {
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
        crate::upload::commit_snapshot(self, id, manifest, borrowed, meta, &retry, &cancel)
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

    /// Removes temp objects (`.tstmp-*` files of [`crate::LocalFs`], open
    /// multipart uploads of [`crate::S3`]) that interrupted puts left
    /// anywhere under this repository and that are older than `older_than`;
    /// returns how many. A crash between writing a temp file and renaming
    /// it, or inside a multipart put, leaves one behind, and nothing else
    /// ever removes it (an open upload is billed until aborted). Call it when starting a backup, with an age well above the
    /// longest put (e.g. an hour), so puts of a concurrent writer survive.
    pub fn sweep_stale_temp(&self, older_than: std::time::Duration) -> Result<u64> {
        self.backend.sweep_stale_temp(&self.prefix, older_than)
    }

    /// Deletes a snapshot at once: `info` first (un-committing it, so a crash
    /// midway leaves only an invisible incomplete backup), then everything
    /// else under its directory except packs another committed manifest
    /// references and its manifest if another borrows from it (all stay if
    /// that cannot be told). Also removes
    /// incomplete backups. Not safe against a backup of another cluster
    /// committing concurrently: `DROP SNAPSHOT` uses
    /// [`Repository::drop_snapshot`] and [`Repository::gc`] instead.
    pub fn delete_snapshot(&self, id: &SnapshotId) -> Result<()> {
        self.backend.delete(&self.object_key(id, "info"))?;
        self.backend.barrier()?;
        let referenced = self.referenced_objects().ok();
        let root = self.key("");
        for key in self.backend.list(&self.key(&Self::snapshot_dir(id)))? {
            let rel = key.strip_prefix(&root).unwrap_or(&key);
            let shared = rel.contains("/packs/") || rel.ends_with("/manifest");
            if shared && referenced.as_ref().is_none_or(|r| r.contains(rel)) {
                continue;
            }
            self.backend.delete(&key)?;
        }
        self.backend.barrier()
    }
}

/// One sentence for an info object whose read failed.
fn unreadable(e: &Error) -> String {
    format!("info object could not be read: {e}")
}
