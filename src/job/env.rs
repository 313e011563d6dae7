//! What a job may touch, and nothing more: catalog transactions, backend
//! lookup and the job store; its time comes from the injectable job clock
//! ([`super::clock`]: deadlines, watchdogs and state times all read it,
//! and tests move it instead of sleeping). The cluster implements it; a job
//! never sees the cluster's home, its in-process nodes or its statements,
//! so a test can drive a job against any environment that answers these.

use std::sync::{Arc, MutexGuard};

use anyhow::Result;

use super::JobManager;
use crate::backend::BackendTasks;
use crate::catalog::Catalog;

/// A job's environment.
pub trait JobEnv: Send + Sync {
    /// The catalog as it is now; hold the guard only to read.
    fn catalog(&self) -> MutexGuard<'_, Catalog>;
    /// One catalog transaction: `f` runs on a copy, which is saved durably
    /// and then becomes the catalog; if `f` or the save fails, nothing changes.
    fn catalog_tx(&self, f: &mut dyn FnMut(&mut Catalog) -> Result<()>) -> Result<()>;
    /// Backend `id` through the task interface.
    fn backend(&self, id: u32) -> Result<Arc<dyn BackendTasks>>;
    /// Backends new replicas may go to.
    fn live_backend_ids(&self) -> Vec<u32>;
    /// The job store.
    fn jobs(&self) -> &JobManager;
}

impl dyn JobEnv + '_ {
    /// A catalog transaction returning what `f` returns (see [`JobEnv::catalog_tx`]).
    pub fn update_catalog<T>(&self, f: impl FnOnce(&mut Catalog) -> Result<T>) -> Result<T> {
        let mut f = Some(f);
        let mut out = None;
        self.catalog_tx(&mut |cat| {
            let f = f
                .take()
                .ok_or_else(|| anyhow::anyhow!("a catalog transaction ran its update twice"))?;
            out = Some(f(cat)?);
            Ok(())
        })?;
        out.ok_or_else(|| anyhow::anyhow!("a catalog transaction did not run its update"))
    }
}

impl JobEnv for crate::cluster::Cluster {
    fn catalog(&self) -> MutexGuard<'_, Catalog> {
        crate::cluster::Cluster::catalog(self)
    }
    fn catalog_tx(&self, f: &mut dyn FnMut(&mut Catalog) -> Result<()>) -> Result<()> {
        self.update_catalog(f)
    }
    fn backend(&self, id: u32) -> Result<Arc<dyn BackendTasks>> {
        crate::cluster::Cluster::backend(self, id)
    }
    fn live_backend_ids(&self) -> Vec<u32> {
        crate::cluster::Cluster::live_backend_ids(self)
    }
    fn jobs(&self) -> &JobManager {
        crate::cluster::Cluster::jobs(self)
    }
}
