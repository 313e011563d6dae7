//! The in-process backend node: an engine on its own store dirs, a worker
//! pool, and [`BackendTasks`] implemented over them. The node process
//! (`tabletsnap node`) serves the same node over RPC.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use tabletsnap_engine::{
    CreateTabletRequest, Durability, Engine, EngineOptions, InstallOutcome, Row, TabletChecksum,
    Verify,
};
use tabletsnap_snapshot::{LoadSnapshotRequest, SnapshotRequest};
use tabletsnap_transfer::{
    DownloadOptions, Manifest, SourceFile, TransferOptions, UploadOptions, UploadSource,
};

use super::{BackendTasks, RepoRef, RestoreTarget, SnapshotMade, SnapshotTarget, TaskControl};

/// What an upload of one snapshot carries, read from the snapshot's own
/// meta (the segment files it names, with their sizes and crc32s, then the
/// meta file itself). The version is checked against the snapshot made.
fn upload_source(s: &SnapshotMade) -> Result<UploadSource> {
    let meta_path = s.path.join(tabletsnap_engine::tablet_meta::META_FILE_NAME);
    let meta_bytes = std::fs::read(&meta_path)
        .with_context(|| format!("reading snapshot meta {}", meta_path.display()))?;
    let meta = tabletsnap_engine::TabletMeta::decode(&meta_path, &meta_bytes)?;
    if meta.tablet_id != s.tablet_id || meta.max_version() != s.version {
        bail!(
            "snapshot {} holds tablet {} at version {}, not tablet {} at version {}",
            s.path.display(),
            meta.tablet_id,
            meta.max_version(),
            s.tablet_id,
            s.version
        );
    }
    let mut files: Vec<SourceFile> = meta
        .rowsets
        .iter()
        .flat_map(|rs| rs.files())
        .map(|(name, seg)| SourceFile {
            name,
            size: seg.size,
            crc32: seg.crc32,
        })
        .collect();
    files.push(SourceFile {
        name: tabletsnap_engine::tablet_meta::META_FILE_NAME.to_string(),
        size: meta_bytes.len() as u64,
        crc32: crc32fast::hash(&meta_bytes),
    });
    Ok(UploadSource::new(s.tablet_id, s.path.clone(), files))
}

/// One in-process backend node.
pub struct BackendNode {
    id: u32,
    engine: Engine,
    pool: rayon::ThreadPool,
    transfer_threads: usize,
}

impl std::fmt::Debug for BackendNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendNode").field("id", &self.id).finish()
    }
}

impl BackendNode {
    /// Opens backend `id` with its stores under `dir`; sweeps expired snapshots once.
    /// `transfer_threads` bounds its packs in flight (memory ≈ threads × pack size).
    pub fn open(
        id: u32,
        dir: &Path,
        threads: usize,
        transfer_threads: usize,
    ) -> Result<Arc<BackendNode>> {
        let opts = EngineOptions::new(vec![dir.join("store0")]);
        let engine = Engine::open(opts)
            .with_context(|| format!("opening backend {id} at {}", dir.display()))?;
        tabletsnap_snapshot::sweep_expired(&engine, SystemTime::now())
            .with_context(|| format!("sweeping expired snapshots on backend {id}"))?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(move |i| format!("be{id}-worker{i}"))
            .build()
            .context("starting a backend worker pool")?;
        Ok(Arc::new(BackendNode {
            id,
            engine,
            pool,
            transfer_threads: transfer_threads.max(1),
        }))
    }

    /// The node's engine (data statements and tests use it directly).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Creates tablets (one barrier).
    pub fn create_tablets(&self, reqs: Vec<CreateTabletRequest>) -> Result<()> {
        self.pool
            .install(|| self.engine.create_tablets(reqs))
            .with_context(|| format!("creating tablets on backend {}", self.id))
    }

    /// Publishes exactly the given version on each listed `(tablet, version,
    /// rows)` (rows may be empty), one barrier for all. The coordinator picks
    /// the version (its visible version + 1): a tablet still holding rowsets
    /// of a load that failed elsewhere has them replaced, never read.
    pub fn load(&self, items: &[(u64, u64, Vec<Row>)]) -> Result<()> {
        self.pool
            .install(|| -> Result<()> {
                let targets: Vec<(u64, u64)> = items.iter().map(|(t, v, _)| (*t, *v)).collect();
                let batch = self.engine.begin_load_at(&targets, Durability::Barrier)?;
                use rayon::prelude::*;
                items.par_iter().try_for_each(|(t, _, rows)| {
                    let segs: Vec<&[Row]> = if rows.is_empty() {
                        Vec::new()
                    } else {
                        vec![rows.as_slice()]
                    };
                    batch.add(*t, &segs).map(|_| ())
                })?;
                batch.commit()?;
                Ok(())
            })
            .with_context(|| format!("loading on backend {}", self.id))
    }

    /// Rows of a tablet at a version.
    pub fn scan(&self, tablet: u64, version: u64) -> Result<Vec<Row>> {
        Ok(self.engine.scan(tablet, Some(version))?)
    }

    /// Checksum of a tablet at a version.
    pub fn checksum(&self, tablet: u64, version: u64) -> Result<TabletChecksum> {
        Ok(self.engine.checksum(tablet, Some(version))?)
    }

    /// Drops tablets that exist here; missing ones are fine (idempotent cleanup).
    pub fn drop_tablets(&self, ids: &[u64]) -> Result<()> {
        for id in ids {
            match self.engine.drop_tablet(*id) {
                Ok(()) | Err(tabletsnap_engine::Error::TabletNotFound(_)) => {}
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("dropping tablet {id} on backend {}", self.id))
                }
            }
        }
        Ok(())
    }

    /// Hard-link snapshots of `targets` (none: no call, no dir).
    fn snapshot_targets(
        &self,
        targets: &[&SnapshotTarget],
        timeout: Duration,
    ) -> Result<Vec<SnapshotMade>> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let reqs: Vec<SnapshotRequest> = targets
            .iter()
            .map(|t| SnapshotRequest {
                tablet_id: t.tablet_id,
                version: Some(t.version),
            })
            .collect();
        let outcomes = self
            .pool
            .install(|| tabletsnap_snapshot::make_snapshots(&self.engine, &reqs, timeout))
            .with_context(|| format!("making snapshots on backend {}", self.id))?;
        let mut made = Vec::with_capacity(outcomes.len());
        let mut first_err = None;
        for (t, o) in targets.iter().zip(outcomes) {
            match o {
                Ok(info) => {
                    let (files, bytes) = info
                        .all_files()
                        .fold((0u64, 0u64), |(n, b), f| (n + 1, b.saturating_add(f.size)));
                    let digest = crate::carry::files_digest(&info.meta.rowsets);
                    made.push(SnapshotMade {
                        tablet_id: t.tablet_id,
                        version: info.version,
                        path: info.path,
                        files,
                        bytes,
                        carried: false,
                        digest,
                    });
                }
                Err(e) if first_err.is_none() => {
                    first_err = Some(anyhow!(e).context(format!(
                        "snapshot of tablet {} at version {} on backend {}",
                        t.tablet_id, t.version, self.id
                    )))
                }
                Err(_) => {}
            }
        }
        if let Some(e) = first_err {
            // All or nothing for the task: release what was made.
            let paths: Vec<PathBuf> = made.iter().map(|m| m.path.clone()).collect();
            let _ = self.release(&paths);
            return Err(e);
        }
        Ok(made)
    }

    fn transfer_options(&self, ctl: &TaskControl) -> TransferOptions {
        let mut t = TransferOptions::default();
        t.cancel = ctl.cancel.clone();
        t.progress = ctl.progress.clone();
        t.rate_limit = ctl.rate_limit;
        t.threads = self.transfer_threads;
        t
    }
}

impl BackendNode {
    /// What this node holds of tablet `id`, rows and bytes at `version`
    /// (else at its max); read from the shared meta, not a copy.
    fn tablet_stat(&self, id: u64, version: Option<u64>) -> Option<crate::task::TabletStat> {
        let m = self.engine.tablet_meta_shared(id).ok()?;
        let at = version.unwrap_or_else(|| m.max_version());
        let (rows_at, size_at) = m.rowsets_for(at).map_or((0, 0), |r| {
            (
                r.iter().map(|x| x.num_rows).sum::<u64>(),
                r.iter().map(|x| x.data_size).sum::<u64>(),
            )
        });
        Some(crate::task::TabletStat {
            tablet_id: id,
            max_version: m.max_version(),
            rowsets: m.rowsets.len() as u64,
            data_size: m.data_size(),
            rows_at,
            size_at,
        })
    }
}

impl BackendTasks for BackendNode {
    fn id(&self) -> u32 {
        self.id
    }

    fn shares_memory(&self) -> bool {
        true
    }

    fn make_snapshots(
        &self,
        targets: &[SnapshotTarget],
        timeout: Duration,
    ) -> Result<Vec<SnapshotMade>> {
        let mut carried = if targets.iter().any(|t| t.carry_digest.is_some()) {
            self.pool
                .install(|| crate::carry::unchanged_tablets(&self.engine, targets))
        } else {
            std::collections::HashMap::new()
        };
        let rest: Vec<&SnapshotTarget> = targets
            .iter()
            .filter(|t| !carried.contains_key(&t.tablet_id))
            .collect();
        let made = self.snapshot_targets(&rest, timeout)?;
        let mut made = made.into_iter();
        // One result per target, in the targets' order.
        Ok(targets
            .iter()
            .filter_map(|t| carried.remove(&t.tablet_id).or_else(|| made.next()))
            .collect())
    }

    fn upload(
        &self,
        repo: &RepoRef,
        label: &str,
        timestamp: &str,
        part: &str,
        snaps: &[SnapshotMade],
        ctl: &TaskControl,
    ) -> Result<Manifest> {
        let repository = crate::repo::open_repository(&repo.name, &repo.location)?;
        let mut sources: Vec<UploadSource> = self.pool.install(|| {
            use rayon::prelude::*;
            snaps
                .par_iter()
                .map(|s| upload_source(s).with_context(|| format!("on backend {}", self.id)))
                .collect::<Result<_>>()
        })?;
        // In the upload's order, so it borrows the lists instead of copying.
        sources.sort_unstable_by_key(|s| s.tablet_id);
        let mut opts = UploadOptions::default();
        opts.transfer = self.transfer_options(ctl);
        if let Some(index) = &ctl.reuse_index {
            opts.reuse = Some(Arc::clone(index));
        } else if !ctl.reuse_from.is_empty() {
            // This node's share of the index: only its own tablets' files,
            // each from the base holding its newest version when told.
            let tablets: std::collections::HashSet<u64> =
                snaps.iter().map(|s| s.tablet_id).collect();
            let per_base = ctl.reuse_newest.as_ref().map(|newest| {
                super::messages::reuse_per_base(ctl, newest, tablets.iter().copied())
            });
            let index = crate::repo::with_retries(|| match &per_base {
                Some(per_base) => {
                    tabletsnap_transfer::ReuseIndex::load_per_base(&repository, per_base)
                }
                None => tabletsnap_transfer::ReuseIndex::load(
                    &repository,
                    &ctl.reuse_from,
                    Some(&tablets),
                ),
            })
            .with_context(|| format!("reading earlier backups of repository '{}'", repo.name))?;
            opts.reuse = Some(Arc::new(index));
        }
        self.pool
            .install(|| -> Result<Manifest> {
                let mut writer = repository.begin_backup_part(label, timestamp, part)?;
                writer.upload(&sources, &opts)?;
                Ok(writer.into_manifest()?)
            })
            .with_context(|| {
                format!(
                    "uploading {} snapshots from backend {} to repository '{}'",
                    snaps.len(),
                    self.id,
                    repo.name
                )
            })
    }

    fn prepare_restore(&self, targets: &mut [RestoreTarget]) -> Result<()> {
        let pairs: Vec<(u64, u32)> = targets
            .iter()
            .map(|t| (t.tablet_id, t.schema_hash))
            .collect();
        let dirs = tabletsnap_snapshot::prepare_restore_dirs(&self.engine, &pairs)
            .with_context(|| format!("preparing restore dirs on backend {}", self.id))?;
        for (t, d) in targets.iter_mut().zip(dirs) {
            t.dir = Some(d);
        }
        Ok(())
    }

    fn download(
        &self,
        repo: &RepoRef,
        manifest: &Manifest,
        targets: &[RestoreTarget],
        ctl: &TaskControl,
    ) -> Result<u64> {
        let repository = crate::repo::open_repository(&repo.name, &repo.location)?;
        let map: std::collections::HashMap<u64, PathBuf> = targets
            .iter()
            .map(|t| {
                t.dir
                    .clone()
                    .map(|d| (t.source_tablet_id, d))
                    .ok_or_else(|| {
                        anyhow!(
                            "tablet {} has no restore dir on backend {}",
                            t.tablet_id,
                            self.id
                        )
                    })
            })
            .collect::<Result<_>>()?;
        let entries: std::collections::HashSet<u64> =
            manifest.tablets.iter().map(|e| e.tablet_id).collect();
        for t in targets {
            if !entries.contains(&t.source_tablet_id) {
                bail!(
                    "tablet {} is missing from the backup manifest",
                    t.source_tablet_id
                );
            }
        }
        let mut opts = DownloadOptions::default();
        // This node holds some of the snapshot's tablets, not all of them.
        opts.only_targeted = true;
        opts.transfer = self.transfer_options(ctl);
        let bases: std::collections::HashMap<u64, u64> = targets
            .iter()
            .filter_map(|t| t.catch_up_from.map(|b| (t.source_tablet_id, b)))
            .collect();
        let versions: std::collections::HashMap<u64, u64> = targets
            .iter()
            .filter_map(|t| t.version.map(|v| (t.source_tablet_id, v)))
            .collect();
        // Each segment file is written once, in place in its tablet's dir,
        // and checked against the downloaded tablet meta (see `in_place`).
        let report = self
            .pool
            .install(|| -> Result<_> {
                let manifest = crate::catch_up::narrow_to_new_versions(
                    &repository,
                    manifest,
                    &bases,
                    &map,
                    &mut opts,
                )?;
                crate::in_place::download_in_place(
                    &self.engine,
                    &repository,
                    &manifest,
                    &map,
                    &bases,
                    &versions,
                    &opts,
                )
            })
            .with_context(|| {
                format!(
                    "downloading {} tablets to backend {}",
                    targets.len(),
                    self.id
                )
            })?;
        Ok(report.files_written + report.files_skipped)
    }

    fn commit(&self, targets: &[RestoreTarget]) -> Result<Vec<InstallOutcome>> {
        let (catch_up, full): (Vec<&RestoreTarget>, Vec<&RestoreTarget>) =
            targets.iter().partition(|t| t.catch_up_from.is_some());
        let appends: Vec<(PathBuf, tabletsnap_snapshot::CatchUpRequest)> = catch_up
            .iter()
            .filter_map(|t| {
                let req = tabletsnap_snapshot::CatchUpRequest {
                    tablet_id: t.tablet_id,
                    base_version: t.catch_up_from?,
                    in_place: true,
                };
                Some(t.dir.clone().map(|d| (d, req)))
            })
            .collect::<Option<_>>()
            .ok_or_else(|| anyhow!("a tablet to catch up was never downloaded"))?;
        let loads: Vec<(PathBuf, LoadSnapshotRequest)> = full
            .iter()
            .map(|t| {
                let dir = t
                    .dir
                    .clone()
                    .ok_or_else(|| anyhow!("tablet {} was never downloaded", t.tablet_id))?;
                Ok((
                    dir,
                    LoadSnapshotRequest {
                        tablet_id: t.tablet_id,
                        schema_hash: t.schema_hash,
                        table_id: t.table_id,
                        partition_id: t.partition_id,
                        overwrite: t.overwrite,
                        in_place: true,
                    },
                ))
            })
            .collect::<Result<_>>()?;
        // The download verified every byte against the manifest's crc32s and
        // checked those equal the tablet metas': sizes suffice here (a second
        // read of every file would double the restore's file cost). The
        // files are in the tablet dirs already: the install swaps metas.
        self.pool
            .install(|| -> Result<Vec<InstallOutcome>> {
                let mut full =
                    tabletsnap_snapshot::load_snapshots(&self.engine, &loads, Verify::SizeOnly)?
                        .into_iter();
                let mut appended = if appends.is_empty() {
                    Vec::new()
                } else {
                    tabletsnap_snapshot::catch_up_snapshots(
                        &self.engine,
                        &appends,
                        Verify::SizeOnly,
                    )?
                }
                .into_iter();
                // One outcome per target, in the targets' order.
                Ok(targets
                    .iter()
                    .filter_map(|t| match t.catch_up_from {
                        Some(_) => appended.next(),
                        None => full.next(),
                    })
                    .collect())
            })
            .with_context(|| {
                format!(
                    "committing {} restored tablets on backend {}",
                    targets.len(),
                    self.id
                )
            })
    }

    fn create_tablets(&self, reqs: Vec<CreateTabletRequest>) -> Result<()> {
        BackendNode::create_tablets(self, reqs)
    }

    fn drop_tablets(&self, ids: &[u64]) -> Result<()> {
        BackendNode::drop_tablets(self, ids)
    }

    fn load(&self, items: &[(u64, u64, Vec<Row>)]) -> Result<()> {
        BackendNode::load(self, items)
    }

    fn scan(&self, tablet: u64, version: u64) -> Result<Vec<Row>> {
        BackendNode::scan(self, tablet, version)
    }

    fn checksum(&self, tablet: u64, version: u64) -> Result<TabletChecksum> {
        BackendNode::checksum(self, tablet, version)
    }

    fn tablet_stats(
        &self,
        ids: &[u64],
        version: Option<u64>,
    ) -> Result<Vec<Option<crate::task::TabletStat>>> {
        Ok(ids
            .iter()
            .map(|id| self.tablet_stat(*id, version))
            .collect())
    }

    fn tablet_stats_at(
        &self,
        ids: &[u64],
        at: &[u64],
    ) -> Result<Vec<Option<crate::task::TabletStat>>> {
        if ids.len() != at.len() {
            anyhow::bail!(
                "tablet stats asked for {} tablets with {} versions",
                ids.len(),
                at.len()
            );
        }
        Ok(ids
            .iter()
            .zip(at)
            .map(|(id, v)| self.tablet_stat(*id, Some(*v)))
            .collect())
    }

    fn heartbeat(&self) -> Result<crate::task::Heartbeat> {
        let ids = self.engine.tablet_ids();
        let data_used = ids
            .iter()
            .filter_map(|id| self.engine.tablet_meta(*id).ok())
            .map(|m| m.data_size())
            .fold(0u64, u64::saturating_add);
        Ok(crate::task::Heartbeat {
            version: crate::task::PROTOCOL_VERSION,
            tablets: ids.len() as u64,
            data_used,
            running_tasks: 0,
        })
    }

    fn snapshot_dirs(&self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for store in self.engine.stores() {
            let root = store.snapshot_dir();
            let Ok(rd) = std::fs::read_dir(&root) else {
                continue;
            };
            out.extend(rd.flatten().map(|e| e.path()));
        }
        Ok(out)
    }

    fn release(&self, paths: &[PathBuf]) -> Result<()> {
        // One removal per top dir a batch made, one fsync per store.
        tabletsnap_snapshot::release_snapshots(&self.engine, paths)
            .with_context(|| format!("releasing {} dirs on backend {}", paths.len(), self.id))
    }
}
