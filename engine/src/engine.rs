//! The engine: stores, the tablet map, tablet creation and removal.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::file;
use crate::idgen::RowsetIdAllocator;
use crate::recovery::{self, RecoveryReport};
use crate::rowset::{RowsetId, RowsetMeta};
use crate::schema::Schema;
use crate::tablet::Tablet;
use crate::tablet_meta::{TabletMeta, META_FILE_NAME};

/// Number of shard directories under `<store>/data/`.
pub const NUM_SHARDS: u64 = 100;
/// Default rows in one segment for `load`.
pub const DEFAULT_MAX_ROWS_PER_SEGMENT: usize = 1 << 20;

/// How to open an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Store root directories (one or more disks).
    pub stores: Vec<PathBuf>,
    /// How long a rowset replaced by compaction stays before GC deletes its files.
    pub stale_rowset_delay: Duration,
    /// Rows per segment file when `load` splits its input.
    pub max_rows_per_segment: usize,
    /// Rows per page inside a segment.
    pub rows_per_page: usize,
}

impl EngineOptions {
    /// Defaults for the given stores.
    pub fn new(stores: Vec<PathBuf>) -> Self {
        EngineOptions {
            stores,
            stale_rowset_delay: Duration::from_secs(1800),
            max_rows_per_segment: DEFAULT_MAX_ROWS_PER_SEGMENT,
            rows_per_page: crate::segment::DEFAULT_ROWS_PER_PAGE,
        }
    }
}

/// One store's directories.
#[derive(Debug)]
pub struct Store {
    /// The store root.
    pub root: PathBuf,
    pub(crate) tablets: AtomicUsize,
}

impl Store {
    /// `<root>/data`.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }
    /// `<root>/snapshot`, where snapshot dirs live.
    pub fn snapshot_dir(&self) -> PathBuf {
        self.root.join("snapshot")
    }
    /// `<root>/trash`, where dropped tablets wait for deletion.
    pub fn trash_dir(&self) -> PathBuf {
        self.root.join("trash")
    }
    /// The directory of a tablet on this store.
    pub fn tablet_dir(&self, tablet_id: u64, schema_hash: u32) -> PathBuf {
        self.data_dir()
            .join((tablet_id % NUM_SHARDS).to_string())
            .join(tablet_id.to_string())
            .join(schema_hash.to_string())
    }
}

/// What a new tablet is.
#[derive(Debug, Clone)]
pub struct CreateTabletRequest {
    /// Owning table.
    pub table_id: u64,
    /// Owning partition.
    pub partition_id: u64,
    /// New tablet id.
    pub tablet_id: u64,
    /// Schema hash.
    pub schema_hash: u32,
    /// Schema.
    pub schema: Schema,
}

/// A tablet-based storage engine over one or more store directories.
#[derive(Debug)]
pub struct Engine {
    pub(crate) opts: EngineOptions,
    pub(crate) stores: Vec<Store>,
    pub(crate) tablets: RwLock<HashMap<u64, Arc<Tablet>>>,
    pub(crate) corrupt: RwLock<HashMap<u64, Error>>,
    pub(crate) ids: RowsetIdAllocator,
    /// In-place restores under way, by reservation name (`reserve.rs`).
    pub(crate) reservations: parking_lot::Mutex<crate::reserve::Reservations>,
    report: RecoveryReport,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Refuses a store whose barrier would miss some of it: `syncfs` on the
/// root covers only the root's filesystem, so its data dir and shards, its
/// snapshot dir and top dirs, and its trash must all be on that filesystem.
fn check_one_filesystem(s: &Store) -> Result<()> {
    let mut dirs = vec![
        s.data_dir(),
        s.snapshot_dir(),
        s.trash_dir(),
        s.root.join(crate::reserve::RESERVED_DIR),
    ];
    for parent in [s.data_dir(), s.snapshot_dir()] {
        for e in std::fs::read_dir(&parent).map_err(|e| Error::io(&parent, e))? {
            let p = e.map_err(|e| Error::io(&parent, e))?.path();
            if p.is_dir() {
                dirs.push(p);
            }
        }
    }
    let with_dev: Vec<(PathBuf, u64)> = dirs
        .into_iter()
        .map(|d| file::device_of(&d).map(|dev| (d, dev)))
        .collect::<Result<_>>()?;
    file::check_same_device(&s.root, file::device_of(&s.root)?, &with_dev)
}

impl Engine {
    /// Opens the engine: creates missing store dirs, refuses a store not on one
    /// filesystem, empties trash, loads every tablet in parallel, removes temp
    /// and orphan files, and reports corrupt metas.
    pub fn open(opts: EngineOptions) -> Result<Engine> {
        if opts.stores.is_empty() {
            return Err(Error::InvalidArgument(
                "an engine needs at least one store".into(),
            ));
        }
        let stores: Vec<Store> = opts
            .stores
            .iter()
            .map(|root| Store {
                root: root.clone(),
                tablets: AtomicUsize::new(0),
            })
            .collect();
        for s in &stores {
            for d in [
                s.data_dir(),
                s.snapshot_dir(),
                s.trash_dir(),
                s.root.join(crate::reserve::RESERVED_DIR),
            ] {
                file::create_dir_all_durable(&d)?;
            }
            check_one_filesystem(s)?;
        }
        let ids = RowsetIdAllocator::open(&stores[0].root)?;
        let reservations = crate::reserve::load_all(&stores)?;
        let scan = recovery::recover(&stores, &reservations)?;
        let mut tablets = HashMap::new();
        let mut corrupt = HashMap::new();
        // Tablets of one table hold one schema: share it instead of a
        // decoded copy per tablet.
        let mut schemas: Vec<Schema> = Vec::new();
        for (store, mut meta, dir) in scan.tablets {
            match schemas.iter().find(|s| **s == meta.schema) {
                Some(s) => meta.schema.share_with(s),
                None => schemas.push(meta.schema.clone()),
            }
            if tablets.contains_key(&meta.tablet_id) {
                let id = meta.tablet_id;
                corrupt.insert(
                    id,
                    Error::TabletCorrupt {
                        tablet_id: id,
                        path: dir,
                        detail: "the tablet exists on two stores".into(),
                    },
                );
                continue;
            }
            stores[store].tablets.fetch_add(1, Ordering::Relaxed);
            tablets.insert(meta.tablet_id, Arc::new(Tablet::new(meta, dir, store)));
        }
        for (id, err) in scan.corrupt {
            corrupt.insert(id, err);
        }
        Ok(Engine {
            opts,
            stores,
            tablets: RwLock::new(tablets),
            corrupt: RwLock::new(corrupt),
            ids,
            reservations: parking_lot::Mutex::new(reservations),
            report: scan.report,
        })
    }

    /// What recovery did on open.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// The options the engine was opened with.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// The stores.
    pub fn stores(&self) -> &[Store] {
        &self.stores
    }

    /// Releases the tree `dir` of store `store` (its snapshot or data dir):
    /// one rename into the store's trash, and the files are deleted in the
    /// background (or by the next open after a crash). Durable once the
    /// caller fsyncs `dir`'s parent and the store's trash dir. A missing
    /// `dir` is fine.
    pub fn discard_dir(&self, store: usize, dir: &Path) -> Result<()> {
        let s = self.stores.get(store).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "store {store} of {} to discard {} in",
                self.stores.len(),
                dir.display()
            ))
        })?;
        crate::discard::discard(&s.trash_dir(), dir)
    }

    /// Tablets whose meta could not be loaded, with the reason.
    pub fn corrupt_tablets(&self) -> Vec<(u64, String)> {
        let mut v: Vec<_> = self
            .corrupt
            .read()
            .iter()
            .map(|(id, e)| (*id, e.to_string()))
            .collect();
        v.sort();
        v
    }

    /// Ids of all open tablets, sorted.
    pub fn tablet_ids(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.tablets.read().keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// The open tablet `id`.
    pub fn tablet(&self, id: u64) -> Result<Arc<Tablet>> {
        if let Some(t) = self.tablets.read().get(&id) {
            return Ok(Arc::clone(t));
        }
        if let Some(Error::TabletCorrupt {
            tablet_id,
            path,
            detail,
        }) = self.corrupt.read().get(&id)
        {
            return Err(Error::TabletCorrupt {
                tablet_id: *tablet_id,
                path: path.clone(),
                detail: detail.clone(),
            });
        }
        Err(Error::TabletNotFound(id))
    }

    /// A copy of tablet `id`'s meta.
    pub fn tablet_meta(&self, id: u64) -> Result<TabletMeta> {
        Ok(self.tablet(id)?.meta())
    }

    /// Tablet `id`'s current meta, shared (no copy).
    pub fn tablet_meta_shared(&self, id: u64) -> Result<Arc<TabletMeta>> {
        Ok(self.tablet(id)?.meta_shared())
    }

    /// A fresh, never-used rowset id.
    pub fn alloc_rowset_id(&self) -> Result<RowsetId> {
        self.ids.next()
    }

    /// The store a new tablet goes to: the one holding `near` if given (so
    /// hard links from there work), else the one with the fewest tablets.
    /// Public so that the snapshot layer puts restore dirs where install will link from.
    pub fn pick_store(&self, near: Option<&Path>) -> usize {
        if let Some(p) = near {
            if let Some(i) = self.stores.iter().position(|s| p.starts_with(&s.root)) {
                return i;
            }
        }
        (0..self.stores.len())
            .min_by_key(|i| self.stores[*i].tablets.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Creates one tablet durably. Its first version is 1 (an empty rowset [0-1]).
    pub fn create_tablet(&self, req: CreateTabletRequest) -> Result<()> {
        self.create_tablets(vec![req])
    }

    /// Creates many tablets with one durability barrier for the batch.
    pub fn create_tablets(&self, reqs: Vec<CreateTabletRequest>) -> Result<()> {
        {
            let map = self.tablets.read();
            let mut seen = std::collections::HashSet::new();
            for r in &reqs {
                if map.contains_key(&r.tablet_id) || !seen.insert(r.tablet_id) {
                    return Err(Error::TabletExists(r.tablet_id));
                }
            }
        }
        let now = now_ms();
        let prepared: Vec<(usize, PathBuf, TabletMeta)> = reqs
            .into_iter()
            .map(|r| {
                let store = self.pick_store(None);
                self.stores[store].tablets.fetch_add(1, Ordering::Relaxed);
                let dir = self.stores[store].tablet_dir(r.tablet_id, r.schema_hash);
                let initial = RowsetMeta {
                    rowset_id: self.ids.next()?,
                    start_version: 0,
                    end_version: 1,
                    segments: Vec::new(),
                    num_rows: 0,
                    data_size: 0,
                    creation_time_ms: now,
                };
                let meta = TabletMeta {
                    table_id: r.table_id,
                    partition_id: r.partition_id,
                    tablet_id: r.tablet_id,
                    schema_hash: r.schema_hash,
                    schema: r.schema,
                    rowsets: vec![initial],
                    stale_rowsets: Vec::new(),
                    creation_time_ms: now,
                };
                Ok((store, dir, meta))
            })
            .collect::<Result<_>>()?;
        let single = prepared.len() == 1;
        prepared.par_iter().try_for_each(|(_, dir, meta)| {
            if single {
                file::create_dir_all_durable(dir)?;
            } else {
                file::create_dir_all(dir)?;
            }
            file::write_tmp(&dir.join(META_FILE_NAME), &meta.encode(), single)
        })?;
        let metas: Vec<(usize, PathBuf)> = prepared
            .iter()
            .map(|(s, d, _)| (*s, d.join(META_FILE_NAME)))
            .collect();
        self.commit_metas(&metas, single)?;
        let mut map = self.tablets.write();
        for (store, dir, meta) in prepared {
            map.insert(meta.tablet_id, Arc::new(Tablet::new(meta, dir, store)));
        }
        Ok(())
    }

    /// Makes already-written temp metas visible and durable. With `per_file`
    /// the temps were fsynced and each directory is fsynced after its rename;
    /// otherwise one barrier before the renames (data and temps durable) and
    /// one after (renames durable).
    pub(crate) fn commit_metas(&self, metas: &[(usize, PathBuf)], per_file: bool) -> Result<()> {
        if per_file {
            for (_, p) in metas {
                file::commit_tmp(p)?;
                file::fsync_dir(file::parent_of(p))?;
            }
            return Ok(());
        }
        let mut stores: Vec<usize> = metas.iter().map(|(s, _)| *s).collect();
        stores.sort_unstable();
        stores.dedup();
        self.barrier(&stores)?;
        fail::fail_point!("engine::before_meta_rename", |_| Err(Error::FailPoint(
            "engine::before_meta_rename".into()
        )));
        metas
            .par_iter()
            .try_for_each(|(_, p)| file::commit_tmp(p))?;
        self.barrier(&stores)?;
        // Right after the commit point: the crash harness kills the process here.
        fail::fail_point!("engine::after_meta_commit", |_| Err(Error::FailPoint(
            "engine::after_meta_commit".into()
        )));
        Ok(())
    }

    /// One `syncfs` per store in `stores`.
    pub(crate) fn barrier(&self, stores: &[usize]) -> Result<()> {
        for s in stores {
            file::syncfs(&self.stores[*s].root)?;
        }
        Ok(())
    }

    /// Drops a tablet: its directory moves to the store's trash (atomic) and is deleted.
    /// Files hard-linked elsewhere (snapshots) stay valid.
    pub fn drop_tablet(&self, id: u64) -> Result<()> {
        self.drop_tablets(&[id])
    }

    /// Drops tablets: each directory moves to its store's trash, then one
    /// barrier per store makes every move durable (one tablet: an fsync of
    /// both parent dirs instead), then the trash copies are deleted. All ids
    /// must exist (`TabletNotFound` before anything moves). If a move fails,
    /// the tablets moved before it are still dropped, and the error returned.
    pub fn drop_tablets(&self, ids: &[u64]) -> Result<()> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let tablets: Vec<Arc<Tablet>> = ids
            .iter()
            .map(|id| self.tablet(*id))
            .collect::<Result<_>>()?;
        let permits: Vec<_> = tablets.iter().map(|t| t.lock_writer()).collect();
        let single = permits.len() == 1;
        let stamp = now_ms();
        let mut moved: Vec<(&Arc<Tablet>, PathBuf)> = Vec::with_capacity(tablets.len());
        let mut failed = None;
        for t in &tablets {
            let trash = self.stores[t.store]
                .trash_dir()
                .join(format!("{}.{}.{stamp}", t.tablet_id, t.schema_hash));
            let res = if single {
                file::rename_durable(t.dir(), &trash)
            } else {
                file::rename(t.dir(), &trash)
            };
            match res {
                Ok(()) => moved.push((t, trash)),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if !single && !moved.is_empty() {
            // Source and trash parents are on the store's filesystem (checked at open).
            let mut used: Vec<usize> = moved.iter().map(|(t, _)| t.store).collect();
            used.sort_unstable();
            used.dedup();
            self.barrier(&used)?;
        }
        {
            let mut map = self.tablets.write();
            for (t, _) in &moved {
                map.remove(&t.tablet_id);
                self.stores[t.store].tablets.fetch_sub(1, Ordering::Relaxed);
            }
        }
        drop(permits);
        // The tablets are gone once the moves are durable; deleting the bytes
        // can fail harmlessly (recovery empties the trash).
        for (t, trash) in &moved {
            let _ = file::remove_dir_all_if_exists(trash);
            if let Some(tablet_id_dir) = t.dir().parent() {
                let _ = std::fs::remove_dir(tablet_id_dir);
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The path of a tablet's segment file for rowset `rs`, segment `i`.
    pub fn segment_path(&self, tablet: &Tablet, rs: &RowsetMeta, i: usize) -> PathBuf {
        tablet.dir().join(rs.segment_file_name(i))
    }
}
