//! A cluster home: a lock, the catalog, N in-process backend nodes and the
//! job manager. One process owns a home at a time.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use tabletsnap_engine::file;

use crate::backend::BackendNode;
use crate::catalog::Catalog;
use crate::job::JobManager;
use crate::meta_store::MetaStore;

/// Default number of backends in a new home.
pub const DEFAULT_BACKENDS: u32 = 3;

/// The most backends a home may have (each is a set of dirs and threads in
/// this process).
pub const MAX_BACKENDS: u32 = 64;

/// The first thing in `home` that only an existing cluster makes.
fn existing_data(home: &Path) -> Result<Option<PathBuf>> {
    for e in std::fs::read_dir(home).with_context(|| format!("listing {}", home.display()))? {
        let e = e.with_context(|| format!("listing {}", home.display()))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        let is_backend = name
            .strip_prefix("be")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if is_backend || name == "jobs" {
            return Ok(Some(e.path()));
        }
    }
    Ok(None)
}

/// Checks the catalog against the tablets it names: a replica that holds
/// fewer versions than its partition's visible version means the catalog
/// and the data are not of the same moment (an old copy of one of them).
fn cross_check(catalog: &Catalog, backends: &[Arc<BackendNode>]) -> Result<()> {
    let problems: Vec<String> = backends
        .par_iter()
        .flat_map_iter(|node| {
            let be = crate::backend::BackendTasks::id(node.as_ref());
            let mut out = Vec::new();
            for (dbname, db) in &catalog.databases {
                for t in db.tables.values() {
                    for p in t.partitions.iter().filter(|p| p.restoring_job.is_none()) {
                        for tab in p.tablets.iter().filter(|x| x.replicas.contains(&be)) {
                            // A missing or unreadable tablet is reported when read.
                            let Ok(tablet) = node.engine().tablet(tab.id) else {
                                continue;
                            };
                            let have = tablet.meta().max_version();
                            if have < p.visible_version {
                                out.push(format!(
                                    "table '{dbname}.{}', partition '{}': the catalog says version {}, but tablet {} on backend {be} holds only up to version {have}",
                                    t.name, p.name, p.visible_version, tab.id
                                ));
                            }
                        }
                    }
                }
            }
            out
        })
        .collect();
    if let Some(first) = problems.first() {
        bail!(
            "the catalog does not match the data on the backends ({} problem{}); first: {first}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// An open cluster home.
pub struct Cluster {
    home: PathBuf,
    _lock: nix::fcntl::Flock<File>,
    catalog: Mutex<Catalog>,
    backends: Vec<Arc<BackendNode>>,
    jobs: JobManager,
    store: Arc<MetaStore>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("home", &self.home).finish()
    }
}

impl Cluster {
    /// Opens `home`, creating a cluster of `backends` nodes if it is new.
    /// Unfinished jobs are resumed (or cancelled cleanly if they cannot be).
    pub fn open(home: &Path, backends: u32) -> Result<Arc<Cluster>> {
        Self::open_with(home, backends, true)
    }

    /// Opens `home` like [`open`](Self::open); with `resume_jobs` false,
    /// unfinished jobs stay where they stopped (for inspecting a home as a
    /// crash left it: a later open resumes them).
    pub fn open_with(home: &Path, backends: u32, resume_jobs: bool) -> Result<Arc<Cluster>> {
        // Before anything is created: a refused open leaves no trace.
        let is_new = !MetaStore::path(home).exists() && !Catalog::path(home).exists();
        if is_new && (backends == 0 || backends > MAX_BACKENDS) {
            bail!("a cluster has 1 to {MAX_BACKENDS} backends, not {backends}");
        }
        file::create_dir_all_durable(home)
            .with_context(|| format!("creating home {}", home.display()))?;
        let lock_path = home.join("LOCK");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        let lock = match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => bail!(
                "home {} is in use by another tabletsnap process (lock file {})",
                home.display(),
                lock_path.display()
            ),
            Err((_, e)) => {
                return Err(e).with_context(|| format!("locking {}", lock_path.display()))
            }
        };
        let (store, catalog, legacy_jobs) = if MetaStore::path(home).exists() {
            let store = MetaStore::open(home)?;
            let catalog = store.load_catalog()?;
            (store, catalog, false)
        } else if Catalog::path(home).exists() {
            // A home from before the metadata store: import it once.
            let catalog = Catalog::load_legacy_json(home)?;
            let jobs = crate::job::load_legacy_records(&home.join("jobs"))?;
            let store = MetaStore::create(home, &catalog, &jobs)?;
            (store, catalog, true)
        } else {
            if let Some(found) = existing_data(home)? {
                bail!(
                    "home {} holds cluster data ({}) but no metadata store ({}): the catalog is missing, so opening it would start an empty cluster over existing tablets; put the file back from a copy, or use a new home",
                    home.display(),
                    found.display(),
                    crate::meta_store::META_FILE
                );
            }
            let catalog = Catalog::new(backends);
            let store = MetaStore::create(home, &catalog, &[])?;
            (store, catalog, false)
        };
        catalog
            .check()
            .with_context(|| format!("the catalog of home {} is inconsistent", home.display()))?;
        crate::repo::register_catalog_repositories(home, catalog.repositories.values())?;
        if legacy_jobs {
            crate::job::retire_legacy_records(home)?;
        }
        let store = Arc::new(store);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = cores.max(2);
        // The simulated backends share one process and its cores: their
        // transfers together keep one pack in flight per core, so memory
        // stays at about cores x pack size whatever the backend count.
        let transfer_threads = (cores / catalog.backends.max(1) as usize).max(1);
        let backends: Vec<Arc<BackendNode>> = (1..=catalog.backends)
            .into_par_iter()
            .map(|id| {
                BackendNode::open(id, &home.join(format!("be{id}")), threads, transfer_threads)
            })
            .collect::<Result<_>>()?;
        cross_check(&catalog, &backends)?;
        let cluster = Arc::new(Cluster {
            home: home.to_path_buf(),
            _lock: lock,
            catalog: Mutex::new(catalog),
            backends,
            jobs: JobManager::new(Arc::clone(&store), home.join("jobs"))?,
            store,
        });
        if resume_jobs {
            cluster.sweep_orphan_snapshots();
            JobManager::resume_all(&cluster)?;
        }
        Ok(cluster)
    }

    /// Releases every snapshot or download dir that no unfinished job
    /// records: what a process killed mid-step made before it could save
    /// the paths. Runs at open, before any job resumes (the home's lock
    /// means no job of another process can be making dirs meanwhile).
    fn sweep_orphan_snapshots(&self) {
        let mut referenced: Vec<PathBuf> = Vec::new();
        for h in self.jobs.all().into_iter().filter(|h| !h.is_done()) {
            h.with_record(|r| match r {
                crate::job::JobRecord::Backup(j) => referenced.extend(
                    j.snapshots
                        .iter()
                        .flat_map(|(_, l)| l.iter().map(|s| s.path.clone())),
                ),
                crate::job::JobRecord::Restore(j) => referenced.extend(
                    j.targets
                        .iter()
                        .flat_map(|(_, l)| l.iter().filter_map(|t| t.dir.clone())),
                ),
            });
        }
        for node in &self.backends {
            for store in node.engine().stores() {
                let root = store.snapshot_dir();
                let Ok(rd) = std::fs::read_dir(&root) else {
                    continue;
                };
                let orphans: Vec<PathBuf> = rd
                    .flatten()
                    .map(|e| e.path())
                    .filter(|top| !referenced.iter().any(|p| p.starts_with(top)))
                    .collect();
                if !orphans.is_empty() {
                    let _ = crate::backend::BackendTasks::release(node.as_ref(), &orphans);
                }
            }
        }
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The catalog, locked.
    pub fn catalog(&self) -> MutexGuard<'_, Catalog> {
        self.catalog.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the catalog and saves it if `f` succeeds.
    pub fn update_catalog<T>(&self, f: impl FnOnce(&mut Catalog) -> Result<T>) -> Result<T> {
        let mut cat = self.catalog();
        // Cheap: tables and partitions are shared until `f` changes one.
        let mut copy = cat.clone();
        let out = f(&mut copy)?;
        self.store.write(Some(&cat), &copy)?;
        *cat = copy;
        drop(cat);
        crate::job::commit_point("catalog::after_save")?;
        Ok(out)
    }

    /// All backends.
    pub fn backends(&self) -> &[Arc<BackendNode>] {
        &self.backends
    }

    /// Backend `id`.
    pub fn backend(&self, id: u32) -> Result<&Arc<BackendNode>> {
        self.backends
            .iter()
            .find(|b| crate::backend::BackendTasks::id(b.as_ref()) == id)
            .with_context(|| format!("backend {id} does not exist"))
    }

    /// The job manager.
    pub fn jobs(&self) -> &JobManager {
        &self.jobs
    }
}
