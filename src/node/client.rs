//! The coordinator's side of a node process: [`RpcBackend`] implements
//! [`BackendTasks`] by sending [`Request`]s to `tabletsnap node`.
//!
//! Every HTTP call has a timeout. Long calls are submitted, then polled
//! until done; a node that restarted meanwhile answers `Unknown` and the
//! same task id is submitted again (an upload then skips packs already
//! stored). A node that cannot be reached for `unreachable_after` fails the
//! call as retryable, naming the node; one that missed
//! [`DEAD_AFTER_MISSES`] heartbeats is dead and fails calls at once.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use tabletsnap_engine::{CreateTabletRequest, InstallOutcome, Row, TabletChecksum};
use tabletsnap_transfer::{Manifest, Progress};

use crate::backend::{
    BackendTasks, RepoRef, RestoreTarget, SnapshotMade, SnapshotTarget, TaskControl,
};
use crate::task::S3Access;
use crate::task::{
    checksum_from_wire, from_hex, outcomes_from_wire, to_hex, Call, Heartbeat, Output, Reply,
    RepoAccess, Request, TabletStat, PROTOCOL_VERSION, TOKEN_HEADER,
};

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Finds what a node needs to open an S3 repository itself: its
/// properties and secret, sent in the task (never logged).
pub type RepoResolver = Arc<dyn Fn(&RepoRef) -> Result<Option<S3Access>> + Send + Sync>;

/// Heartbeats missed in a row before a node is dead.
pub const DEAD_AFTER_MISSES: u32 = 3;

/// The largest reply read (scans carry rows).
const MAX_REPLY: u64 = 1 << 30;

/// Timeouts of a client.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// Bound on one HTTP exchange.
    pub call_timeout: Duration,
    /// Bound on connecting.
    pub connect_timeout: Duration,
    /// How long a node may stay unreachable during a call before it fails.
    pub unreachable_after: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            call_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(2),
            unreachable_after: Duration::from_secs(10),
        }
    }
}

/// What the coordinator knows of a node's health (SHOW BACKENDS).
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// Not dead.
    pub alive: bool,
    /// Heartbeats missed in a row.
    pub misses: u32,
    /// When the last heartbeat was answered (ms since the epoch).
    pub last_heartbeat_ms: Option<u64>,
    /// The last heartbeat's answer.
    pub last: Option<Heartbeat>,
    /// Why the last heartbeat failed.
    pub err: String,
}

/// A backend node process, reached over HTTP.
pub struct RpcBackend {
    id: u32,
    addr: String,
    token: String,
    agent: ureq::Agent,
    beat_agent: ureq::Agent,
    opts: ClientOptions,
    health: Mutex<Health>,
    seq: AtomicU64,
    resolver: OnceLock<RepoResolver>,
}

impl std::fmt::Debug for RpcBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcBackend")
            .field("id", &self.id)
            .field("addr", &self.addr)
            .finish()
    }
}

fn agent(timeout: Duration, connect: Duration) -> ureq::Agent {
    let cfg = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(connect))
        .timeout_global(Some(timeout))
        .build();
    ureq::Agent::new_with_config(cfg)
}

impl RpcBackend {
    /// A client of backend `id` at `addr` (`host:port`).
    pub fn new(id: u32, addr: &str, token: &str, opts: ClientOptions) -> RpcBackend {
        RpcBackend {
            id,
            addr: addr.to_string(),
            token: token.to_string(),
            agent: agent(opts.call_timeout, opts.connect_timeout),
            beat_agent: agent(opts.connect_timeout * 2, opts.connect_timeout),
            opts,
            health: Mutex::new(Health {
                alive: true,
                ..Health::default()
            }),
            seq: AtomicU64::new(0),
            resolver: OnceLock::new(),
        }
    }

    /// Sets how S3 repository settings are found (once; later calls are ignored).
    pub fn set_repo_resolver(&self, r: RepoResolver) {
        let _ = self.resolver.set(r);
    }

    fn access(&self, repo: &RepoRef) -> Result<RepoAccess> {
        let s3 = match self.resolver.get() {
            Some(f) if crate::repo::is_s3(&repo.location) => f(repo)?,
            _ => None,
        };
        Ok(RepoAccess {
            name: repo.name.clone(),
            location: repo.location.clone(),
            s3,
        })
    }

    /// `host:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The node's health as last seen.
    pub fn health(&self) -> Health {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sends one heartbeat and records the outcome; a node that misses
    /// [`DEAD_AFTER_MISSES`] in a row is marked dead, one that answers alive.
    pub fn beat(&self) {
        let r = self.exchange(&self.beat_agent, &self.submit_req(Call::Heartbeat));
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        match r.and_then(|reply| self.output(reply, "heartbeat")) {
            Ok(Output::Heartbeat(hb)) => {
                h.alive = true;
                h.misses = 0;
                h.err.clear();
                h.last = Some(hb);
                h.last_heartbeat_ms = Some(now_ms());
            }
            Ok(_) => h.err = "a heartbeat answered with something else".into(),
            Err(e) => {
                h.misses = h.misses.saturating_add(1);
                h.err = format!("{e:#}");
                // A node never heard from is not taken for alive.
                if h.misses >= DEAD_AFTER_MISSES || h.last_heartbeat_ms.is_none() {
                    h.alive = false;
                }
            }
        }
    }

    fn new_task_id(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{}-{}-{}-{n}", std::process::id(), now_ms(), self.id)
    }

    fn submit_req(&self, call: Call) -> Request {
        Request::Submit {
            version: PROTOCOL_VERSION,
            task_id: self.new_task_id(),
            call: Box::new(call),
        }
    }

    /// One HTTP exchange.
    fn exchange(&self, agent: &ureq::Agent, req: &Request) -> Result<Reply> {
        let body = serde_json::to_vec(req)?;
        let url = format!("http://{}/task", self.addr);
        let mut resp = agent
            .post(&url)
            .header(TOKEN_HEADER, &self.token)
            .header("Content-Type", "application/json")
            .send(&body[..])
            .map_err(|e| {
                anyhow!(
                    "backend {} at {} is unreachable: {e} (is its node running? `tabletsnap cluster start` starts a home's nodes)",
                    self.id,
                    self.addr
                )
            })?;
        let status = resp.status().as_u16();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_REPLY)
            .read_to_vec()
            .map_err(|e| {
                anyhow!(
                    "reading an answer of backend {} at {}: {e}",
                    self.id,
                    self.addr
                )
            })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            anyhow!(
                "backend {} at {} answered HTTP {status} with no task reply: {e}",
                self.id,
                self.addr
            )
        })
    }

    /// An exchange retried while the node cannot be reached, up to
    /// `unreachable_after`.
    fn exchange_retrying(&self, req: &Request) -> Result<Reply> {
        let start = Instant::now();
        let mut wait = Duration::from_millis(50);
        loop {
            match self.exchange(&self.agent, req) {
                Ok(r) => return Ok(r),
                Err(e) if start.elapsed() >= self.opts.unreachable_after => return Err(e),
                Err(_) => {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_millis(500));
                }
            }
        }
    }

    fn output(&self, reply: Reply, name: &str) -> Result<Output> {
        match reply {
            Reply::Done { result, .. } => result.map_err(|e| {
                if e.permanent {
                    anyhow!(tabletsnap_transfer::Error::Corrupt {
                        what: format!("{name} on backend {} ({})", self.id, self.addr),
                        reason: e.message,
                    })
                } else {
                    anyhow!(
                        "{name} on backend {} ({}): {}",
                        self.id,
                        self.addr,
                        e.message
                    )
                }
            }),
            Reply::Refused { message, .. } => Err(anyhow!(
                "backend {} ({}) refused {name}: {message}",
                self.id,
                self.addr
            )),
            other => Err(anyhow!(
                "backend {} ({}) gave an unexpected answer to {name}: {other:?}",
                self.id,
                self.addr
            )),
        }
    }

    /// Runs a call to its end: submit, then poll a long one.
    fn call(&self, call: Call, ctl: Option<&TaskControl>) -> Result<Output> {
        let name = call.name();
        if !self.health().alive {
            bail!(
                "backend {} ({}) is dead: it missed {DEAD_AFTER_MISSES} heartbeats in a row (SHOW BACKENDS shows why)",
                self.id,
                self.addr
            );
        }
        let task_id = self.new_task_id();
        let submit = Request::Submit {
            version: PROTOCOL_VERSION,
            task_id: task_id.clone(),
            call: Box::new(call),
        };
        let poll = Request::Poll {
            version: PROTOCOL_VERSION,
            task_id: task_id.clone(),
        };
        let mut reply = self.exchange_retrying(&submit)?;
        let mut wait = Duration::from_millis(2);
        let mut cancel_sent = false;
        loop {
            match reply {
                Reply::Accepted { .. } => {}
                Reply::Running {
                    files_done,
                    files_total,
                    bytes_done,
                    bytes_total,
                    ..
                } => {
                    if let Some(p) = ctl.and_then(|c| c.progress.as_ref()) {
                        p(Progress {
                            files_done,
                            files_total,
                            bytes_done,
                            bytes_total,
                        });
                    }
                }
                // The node restarted and lost the task: the same id again.
                Reply::Unknown { .. } => {
                    reply = self.exchange_retrying(&submit)?;
                    continue;
                }
                done => return self.output(done, name),
            }
            if !cancel_sent && ctl.is_some_and(|c| c.cancel.is_cancelled()) {
                cancel_sent = true;
                let _ = self.exchange(
                    &self.agent,
                    &Request::Cancel {
                        version: PROTOCOL_VERSION,
                        task_id: task_id.clone(),
                    },
                );
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_millis(50));
            reply = self.exchange_retrying(&poll)?;
        }
    }

    fn unexpected(&self, what: &str, o: Output) -> anyhow::Error {
        anyhow!(
            "backend {} ({}) answered {what} with {o:?}",
            self.id,
            self.addr
        )
    }

    fn unit(&self, call: Call) -> Result<()> {
        let name = call.name();
        match self.call(call, None)? {
            Output::Unit => Ok(()),
            o => Err(self.unexpected(name, o)),
        }
    }
}

impl RpcBackend {
    /// One `TabletStats` round trip (`at` empty: every tablet at `version`).
    fn stats_call(
        &self,
        ids: &[u64],
        version: Option<u64>,
        at: &[u64],
    ) -> Result<Vec<Option<TabletStat>>> {
        let call = Call::TabletStats {
            ids: ids.to_vec(),
            version,
            at: at.to_vec(),
        };
        match self.call(call, None)? {
            Output::Stats(s) => Ok(s),
            o => Err(self.unexpected("tablet_stats", o)),
        }
    }
}

impl BackendTasks for RpcBackend {
    fn id(&self) -> u32 {
        self.id
    }

    fn make_snapshots(
        &self,
        targets: &[SnapshotTarget],
        timeout: Duration,
    ) -> Result<Vec<SnapshotMade>> {
        let call = Call::MakeSnapshots {
            targets: targets.to_vec(),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        match self.call(call, None)? {
            Output::Snapshots(s) => Ok(s),
            o => Err(self.unexpected("make_snapshots", o)),
        }
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
        let call = Call::Upload {
            repo: self.access(repo)?,
            label: label.to_string(),
            timestamp: timestamp.to_string(),
            part: part.to_string(),
            snaps: snaps.to_vec(),
            rate_limit: ctl.rate_limit,
            reuse_from: ctl
                .reuse_from
                .iter()
                .map(|s| (s.label.clone(), s.timestamp.clone()))
                .collect(),
            // Only this node's tablets.
            reuse_newest: ctl.reuse_newest.as_ref().map_or_else(Vec::new, |n| {
                snaps
                    .iter()
                    .filter_map(|s| {
                        let i = u32::try_from(*n.get(&s.tablet_id)?).ok()?;
                        Some((s.tablet_id, i))
                    })
                    .collect()
            }),
        };
        match self.call(call, Some(ctl))? {
            Output::Manifest(hex) => {
                let bytes = from_hex(&hex).ok_or_else(|| {
                    anyhow!("backend {} sent a manifest that is not hex", self.id)
                })?;
                Ok(Manifest::decode(&bytes)?)
            }
            o => Err(self.unexpected("upload", o)),
        }
    }

    fn prepare_restore(&self, targets: &mut [RestoreTarget]) -> Result<()> {
        match self.call(Call::PrepareRestore(targets.to_vec()), None)? {
            Output::Targets(t) if t.len() == targets.len() => {
                for (a, b) in targets.iter_mut().zip(t) {
                    a.dir = b.dir;
                }
                Ok(())
            }
            o => Err(self.unexpected("prepare_restore", o)),
        }
    }

    fn download(
        &self,
        repo: &RepoRef,
        manifest: &Manifest,
        targets: &[RestoreTarget],
        ctl: &TaskControl,
    ) -> Result<u64> {
        let call = Call::Download {
            repo: self.access(repo)?,
            manifest_hex: to_hex(&manifest.encode()),
            targets: targets.to_vec(),
            rate_limit: ctl.rate_limit,
        };
        match self.call(call, Some(ctl))? {
            Output::Bytes(n) => Ok(n),
            o => Err(self.unexpected("download", o)),
        }
    }

    fn commit(&self, targets: &[RestoreTarget]) -> Result<Vec<InstallOutcome>> {
        match self.call(Call::Commit(targets.to_vec()), None)? {
            Output::Installed(o) => Ok(outcomes_from_wire(&o)),
            o => Err(self.unexpected("commit", o)),
        }
    }

    fn release(&self, paths: &[PathBuf]) -> Result<()> {
        self.unit(Call::Release(paths.to_vec()))
    }

    fn create_tablets(&self, reqs: Vec<CreateTabletRequest>) -> Result<()> {
        self.unit(Call::CreateTablets(
            reqs.into_iter().map(Into::into).collect(),
        ))
    }

    fn drop_tablets(&self, ids: &[u64]) -> Result<()> {
        self.unit(Call::DropTablets(ids.to_vec()))
    }

    fn load(&self, items: &[(u64, u64, Vec<Row>)]) -> Result<()> {
        self.unit(Call::Load(items.to_vec()))
    }

    fn scan(&self, tablet: u64, version: u64) -> Result<Vec<Row>> {
        match self.call(Call::Scan { tablet, version }, None)? {
            Output::Rows(r) => Ok(r),
            o => Err(self.unexpected("scan", o)),
        }
    }

    fn checksum(&self, tablet: u64, version: u64) -> Result<TabletChecksum> {
        match self.call(Call::Checksum { tablet, version }, None)? {
            Output::Checksum(c, r) => Ok(checksum_from_wire(c, r)),
            o => Err(self.unexpected("checksum", o)),
        }
    }

    fn tablet_stats(&self, ids: &[u64], version: Option<u64>) -> Result<Vec<Option<TabletStat>>> {
        self.stats_call(ids, version, &[])
    }

    fn tablet_stats_at(&self, ids: &[u64], at: &[u64]) -> Result<Vec<Option<TabletStat>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.stats_call(ids, None, at)
    }

    fn heartbeat(&self) -> Result<Heartbeat> {
        match self.call(Call::Heartbeat, None)? {
            Output::Heartbeat(h) => Ok(h),
            o => Err(self.unexpected("heartbeat", o)),
        }
    }

    fn snapshot_dirs(&self) -> Result<Vec<PathBuf>> {
        match self.call(Call::SnapshotDirs, None)? {
            Output::Paths(p) => Ok(p),
            o => Err(self.unexpected("snapshot_dirs", o)),
        }
    }
}
