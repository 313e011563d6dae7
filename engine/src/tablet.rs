//! An open tablet: its directory, its meta in memory, the writer lock that
//! serializes meta changes, and pins that keep rowset files alive for readers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::rowset::{RowsetId, RowsetMeta};
use crate::tablet_meta::{TabletMeta, META_FILE_NAME};

/// Drops the spare capacity a meta's lists grew while being built: a
/// tablet's meta lives as long as the tablet, in every tablet of the node.
fn compact(meta: &mut TabletMeta) {
    meta.rowsets.shrink_to_fit();
    meta.stale_rowsets.shrink_to_fit();
}

/// An open tablet.
#[derive(Debug)]
pub struct Tablet {
    /// Tablet id.
    pub tablet_id: u64,
    /// Schema hash.
    pub schema_hash: u32,
    /// Index of the store holding it.
    pub store: usize,
    dir: PathBuf,
    /// Shared: a load's batch keeps the meta it started from without a copy.
    meta: Mutex<Arc<TabletMeta>>,
    writer: Mutex<bool>,
    writer_cv: Condvar,
    pins: Mutex<HashMap<RowsetId, usize>>,
}

impl Tablet {
    pub(crate) fn new(mut meta: TabletMeta, dir: PathBuf, store: usize) -> Tablet {
        compact(&mut meta);
        Tablet {
            tablet_id: meta.tablet_id,
            schema_hash: meta.schema_hash,
            store,
            dir,
            meta: Mutex::new(Arc::new(meta)),
            writer: Mutex::new(false),
            writer_cv: Condvar::new(),
            pins: Mutex::new(HashMap::new()),
        }
    }

    /// The tablet's directory `<store>/data/<shard>/<tablet_id>/<schema_hash>/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the meta file.
    pub fn meta_path(&self) -> PathBuf {
        self.dir.join(META_FILE_NAME)
    }

    /// A copy of the current meta.
    pub fn meta(&self) -> TabletMeta {
        TabletMeta::clone(&self.meta.lock())
    }

    /// The current meta, shared (no copy).
    pub fn meta_shared(&self) -> Arc<TabletMeta> {
        Arc::clone(&self.meta.lock())
    }

    /// Runs `f` on the meta under the tablet's lock.
    pub(crate) fn with_meta<R>(&self, f: impl FnOnce(&TabletMeta) -> R) -> R {
        f(&self.meta.lock())
    }

    /// Replaces the in-memory meta (after the new meta is durable).
    pub(crate) fn set_meta(&self, mut meta: TabletMeta) {
        compact(&mut meta);
        *self.meta.lock() = Arc::new(meta);
    }

    /// Takes the writer lock: one meta change at a time per tablet.
    pub(crate) fn lock_writer(self: &Arc<Self>) -> WriterPermit {
        let mut held = self.writer.lock();
        while *held {
            self.writer_cv.wait(&mut held);
        }
        *held = true;
        WriterPermit {
            tablet: Arc::clone(self),
        }
    }

    /// Pins `rowsets` so GC keeps their files until the pin drops.
    pub(crate) fn pin(self: &Arc<Self>, rowsets: &[RowsetMeta]) -> RowsetPin {
        let ids: Vec<RowsetId> = rowsets.iter().map(|r| r.rowset_id).collect();
        let mut pins = self.pins.lock();
        for id in &ids {
            *pins.entry(*id).or_insert(0) += 1;
        }
        RowsetPin {
            tablet: Arc::clone(self),
            ids,
        }
    }

    /// Whether a reader holds `id`.
    pub(crate) fn is_pinned(&self, id: RowsetId) -> bool {
        self.pins.lock().get(&id).is_some_and(|n| *n > 0)
    }
}

/// Exclusive right to change a tablet's meta; released on drop. `Send`, so a
/// batch can hold many across parallel phases.
#[derive(Debug)]
pub struct WriterPermit {
    tablet: Arc<Tablet>,
}

impl WriterPermit {
    /// The tablet this permit is for.
    pub fn tablet(&self) -> &Arc<Tablet> {
        &self.tablet
    }
}

impl Drop for WriterPermit {
    fn drop(&mut self) {
        *self.tablet.writer.lock() = false;
        self.tablet.writer_cv.notify_one();
    }
}

/// Keeps rowset files from being garbage-collected while held.
#[derive(Debug)]
pub struct RowsetPin {
    tablet: Arc<Tablet>,
    ids: Vec<RowsetId>,
}

impl Drop for RowsetPin {
    fn drop(&mut self) {
        let mut pins = self.tablet.pins.lock();
        for id in &self.ids {
            if let Some(n) = pins.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    pins.remove(id);
                }
            }
        }
        if pins.is_empty() {
            // An emptied map keeps its table: free it, or every tablet a
            // snapshot ever pinned holds one for life.
            *pins = HashMap::new();
        }
    }
}
