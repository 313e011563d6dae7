//! ALTER SYSTEM ADD/DROP BACKEND and SHOW BACKENDS: the node processes a
//! home drives, kept in `<home>/nodes.json` beside those `cluster start` runs.

use std::sync::Arc;

use anyhow::{bail, Context, Result};

use super::{Output, Session};
use crate::node::client::{ClientOptions, RpcBackend};
use crate::node::procs::{self, NodeProc};
use crate::sql::ResultSet;

pub(super) fn add_backend(s: &Session, addr: &str) -> Result<Output> {
    let c = &s.cluster;
    let home = c.home();
    if !c.backends().is_empty() {
        bail!(
            "home {} runs its backends in process; node processes are added to a home started with `tabletsnap cluster start`",
            home.display()
        );
    }
    addr.parse::<std::net::SocketAddr>()
        .with_context(|| format!("backend address '{addr}' is not host:port"))?;
    if c.remote_backends().iter().any(|b| b.addr() == addr) {
        bail!("backend {addr} is already in the cluster (SHOW BACKENDS lists them)");
    }
    let token = crate::node::ensure_token(home)?;
    let id = c.catalog().backends + 1;
    let b = Arc::new(RpcBackend::new(id, addr, &token, ClientOptions::default()));
    b.beat();
    let h = b.health();
    if h.last.is_none() {
        bail!(
            "backend {addr} does not answer a heartbeat: {} (is `tabletsnap node --token-file {}` running there?)",
            h.err,
            crate::node::token_path(home).display()
        );
    }
    procs::update(home, |list| {
        list.nodes.push(NodeProc {
            id,
            addr: addr.to_string(),
            pid: 0,
            dir: std::path::PathBuf::new(),
        });
        Ok(())
    })?;
    c.update_catalog(|cat| {
        cat.backends = id;
        Ok(())
    })?;
    b.set_repo_resolver(crate::node::s3_resolver(c));
    c.attach_remote(b);
    Ok(Output::Message(format!("backend {id} added at {addr}")))
}

pub(super) fn drop_backend(s: &Session, addr: &str) -> Result<Output> {
    let c = &s.cluster;
    let b = c
        .remote_backends()
        .into_iter()
        .find(|b| b.addr() == addr)
        .with_context(|| {
            format!("backend {addr} is not in the cluster (SHOW BACKENDS lists them)")
        })?;
    let id = crate::backend::BackendTasks::id(b.as_ref());
    let replicas = {
        let cat = c.catalog();
        cat.databases
            .values()
            .flat_map(|d| d.tables.values())
            .flat_map(|t| t.partitions.iter())
            .flat_map(|p| p.tablets.iter())
            .filter(|t| t.replicas.contains(&id))
            .count()
    };
    if replicas > 0 {
        bail!("backend {id} ({addr}) holds {replicas} tablet replicas; drop or restore their tables elsewhere first");
    }
    procs::update(c.home(), |list| {
        list.nodes.retain(|p| p.id != id);
        Ok(())
    })?;
    c.detach(id);
    Ok(Output::Message(format!("backend {id} ({addr}) dropped")))
}

pub(super) fn show_backends(s: &Session) -> Result<Output> {
    let c = &s.cluster;
    let mut rs = ResultSet::new([
        "BackendId",
        "Host",
        "Port",
        "Alive",
        "LastHeartbeat",
        "TabletNum",
        "DataUsed",
        "ErrMsg",
    ]);
    let remote = c.remote_backends();
    for id in c.backend_ids() {
        let row = match remote
            .iter()
            .find(|b| crate::backend::BackendTasks::id(b.as_ref()) == id)
        {
            Some(b) => {
                let mut h = b.health();
                if h.last_heartbeat_ms.is_none() && h.misses == 0 {
                    // Not asked yet in this process (a fresh `sql`): ask now
                    // rather than show a node nobody heard from as alive.
                    b.beat();
                    h = b.health();
                }
                let (host, port) = b.addr().rsplit_once(':').unwrap_or((b.addr(), ""));
                [
                    id.to_string(),
                    host.to_string(),
                    port.to_string(),
                    h.alive.to_string(),
                    crate::job::fmt_time(h.last_heartbeat_ms),
                    h.last.as_ref().map_or(0, |x| x.tablets).to_string(),
                    h.last.as_ref().map_or(0, |x| x.data_used).to_string(),
                    h.err,
                ]
            }
            None => {
                let hb = c.backend(id)?.heartbeat();
                [
                    id.to_string(),
                    "in-process".to_string(),
                    String::new(),
                    hb.is_ok().to_string(),
                    crate::job::fmt_time(Some(crate::job::clock::now_ms())),
                    hb.as_ref().map_or(0, |x| x.tablets).to_string(),
                    hb.as_ref().map_or(0, |x| x.data_used).to_string(),
                    hb.err().map_or(String::new(), |e| format!("{e:#}")),
                ]
            }
        };
        rs.push_row(row);
    }
    Ok(Output::Rows(rs))
}
