//! A cluster home: a lock, the catalog, N in-process backend nodes and the
//! job manager. One process owns a home at a time.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use tabletsnap_engine::file;

use crate::backend::{BackendNode, BackendTasks};
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
fn cross_check(catalog: &Catalog, backends: &[Arc<dyn BackendTasks>]) -> Result<()> {
    let problems: Vec<String> = backends
        .par_iter()
        .flat_map_iter(|node| {
            let be = node.id();
            let mut out = Vec::new();
            let mut expect = Vec::new();
            for (dbname, db) in &catalog.databases {
                for t in db.tables.values() {
                    for p in t.partitions.iter().filter(|p| p.restoring_job.is_none()) {
                        for tab in p.tablets.iter().filter(|x| x.replicas.contains(&be)) {
                            expect.push((tab.id, dbname, &t.name, &p.name, p.visible_version));
                        }
                    }
                }
            }
            let ids: Vec<u64> = expect.iter().map(|e| e.0).collect();
            // A node that cannot answer is reported by the first task sent to it.
            let stats = node.tablet_stats(&ids, None).unwrap_or_default();
            for (stat, (id, dbname, table, partition, visible)) in stats.iter().zip(&expect) {
                // A missing or unreadable tablet is reported when read.
                let Some(stat) = stat else {
                    continue;
                };
                let have = stat.max_version;
                if have < *visible {
                    out.push(format!(
                        "table '{dbname}.{table}', partition '{partition}': the catalog says version {visible}, but tablet {id} on backend {be} holds only up to version {have}"
                    ));
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
    /// Every backend as the task interface (the in-process nodes, or RPC clients).
    tasks: std::sync::RwLock<Vec<Arc<dyn BackendTasks>>>,
    /// The node processes among them (heartbeats, SHOW BACKENDS).
    remote: std::sync::RwLock<Vec<Arc<crate::node::client::RpcBackend>>>,
    jobs: JobManager,
    store: Arc<MetaStore>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("home", &self.home).finish()
    }
}

impl Cluster {
    /// Whether `home` holds a cluster already (its metadata store, or a
    /// catalog from before the store): what "a new home" means everywhere.
    pub fn home_exists(home: &Path) -> bool {
        MetaStore::path(home).exists() || Catalog::path(home).exists()
    }

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
        let is_new = !Self::home_exists(home);
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
            // A home started with `cluster start` has as many backends as nodes.
            let backends = match crate::node::procs::load(home)? {
                Some(list) => u32::try_from(list.nodes.len()).unwrap_or(backends),
                None => backends,
            };
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
        let nodes = crate::node::procs::load(home)?;
        let remote: Vec<Arc<crate::node::client::RpcBackend>> = match &nodes {
            Some(list) => {
                let token = crate::node::read_token(&crate::node::token_path(home))?;
                list.nodes
                    .iter()
                    .map(|p| {
                        Arc::new(crate::node::client::RpcBackend::new(
                            p.id,
                            &p.addr,
                            &token,
                            crate::node::client::ClientOptions::default(),
                        ))
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        let locals = if nodes.is_some() { 0 } else { catalog.backends };
        let backends: Vec<Arc<BackendNode>> = (1..=locals)
            .into_par_iter()
            .map(|id| {
                BackendNode::open(id, &home.join(format!("be{id}")), threads, transfer_threads)
            })
            .collect::<Result<_>>()?;
        let tasks: Vec<Arc<dyn BackendTasks>> = backends
            .iter()
            .map(|b| Arc::clone(b) as Arc<dyn BackendTasks>)
            .chain(
                remote
                    .iter()
                    .map(|b| Arc::clone(b) as Arc<dyn BackendTasks>),
            )
            .collect();
        // One heartbeat first: the open-time checks skip a node that does not
        // answer now, instead of waiting out its unreachable window.
        remote.par_iter().for_each(|b| b.beat());
        let answering: Vec<Arc<dyn BackendTasks>> = tasks
            .iter()
            .filter(|t| {
                !remote
                    .iter()
                    .any(|r| r.id() == t.id() && r.health().misses > 0)
            })
            .cloned()
            .collect();
        cross_check(&catalog, &answering)?;
        let cluster = Arc::new(Cluster {
            home: home.to_path_buf(),
            _lock: lock,
            catalog: Mutex::new(catalog),
            backends,
            tasks: std::sync::RwLock::new(tasks),
            remote: std::sync::RwLock::new(remote),
            jobs: JobManager::new(Arc::clone(&store), home.join("jobs"))?,
            store,
        });
        if !cluster.remote_backends().is_empty() {
            for b in cluster.remote_backends() {
                b.set_repo_resolver(crate::node::s3_resolver(&cluster));
            }
            crate::node::heartbeat::start(&cluster);
        }
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
        let silent: Vec<u32> = self
            .remote_backends()
            .iter()
            .filter(|r| r.health().misses > 0)
            .map(|r| r.id())
            .collect();
        for node in self
            .tasks()
            .into_iter()
            .filter(|t| !silent.contains(&t.id()))
        {
            // A node that cannot answer keeps its dirs until the next open.
            let Ok(dirs) = node.snapshot_dirs() else {
                continue;
            };
            let orphans: Vec<PathBuf> = dirs
                .into_iter()
                .filter(|top| !referenced.iter().any(|p| p.starts_with(top)))
                .collect();
            if !orphans.is_empty() {
                let _ = node.release(&orphans);
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
        // A catalog write that fails (injected here by tests) changes nothing.
        crate::job::commit_point("catalog::before_save")?;
        self.store.write(Some(&cat), &copy)?;
        *cat = copy;
        drop(cat);
        crate::job::commit_point("catalog::after_save")?;
        Ok(out)
    }

    /// The in-process backend nodes (tests and inspection read their
    /// engines); jobs and statements use [`backend`](Self::backend).
    pub fn backends(&self) -> &[Arc<BackendNode>] {
        &self.backends
    }

    /// In-process backend `id`.
    pub fn local_backend(&self, id: u32) -> Result<&Arc<BackendNode>> {
        self.backends
            .iter()
            .find(|b| BackendTasks::id(b.as_ref()) == id)
            .with_context(|| format!("backend {id} is not an in-process node"))
    }

    /// The node processes (empty for an in-process cluster).
    pub fn remote_backends(&self) -> Vec<Arc<crate::node::client::RpcBackend>> {
        self.remote
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every backend as the task interface.
    pub fn tasks(&self) -> Vec<Arc<dyn BackendTasks>> {
        self.tasks.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Backends new replicas may go to: all but node processes marked dead.
    pub fn live_backend_ids(&self) -> Vec<u32> {
        let dead: Vec<u32> = self
            .remote_backends()
            .iter()
            .filter(|b| !b.health().alive)
            .map(|b| b.id())
            .collect();
        self.backend_ids()
            .into_iter()
            .filter(|id| !dead.contains(id))
            .collect()
    }

    /// Adds a node process (ALTER SYSTEM ADD BACKEND).
    pub(crate) fn attach_remote(&self, b: Arc<crate::node::client::RpcBackend>) {
        let mut tasks = self.tasks.write().unwrap_or_else(|e| e.into_inner());
        tasks.push(Arc::clone(&b) as Arc<dyn BackendTasks>);
        self.remote
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(b);
    }

    /// Forgets backend `id` (ALTER SYSTEM DROP BACKEND).
    pub(crate) fn detach(&self, id: u32) {
        self.tasks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|b| b.id() != id);
        self.remote
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|b| b.id() != id);
    }

    /// Ids of every backend.
    pub fn backend_ids(&self) -> Vec<u32> {
        self.tasks().iter().map(|b| b.id()).collect()
    }

    /// Backend `id`.
    pub fn backend(&self, id: u32) -> Result<Arc<dyn BackendTasks>> {
        self.tasks()
            .iter()
            .find(|b| b.id() == id)
            .cloned()
            .with_context(|| format!("backend {id} does not exist"))
    }

    /// The job manager.
    pub fn jobs(&self) -> &JobManager {
        &self.jobs
    }
}
