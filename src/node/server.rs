//! `tabletsnap node`: one backend (engine, snapshots, transfers, expiry
//! sweep and partial-download cleanup at open) serving the task interface over HTTP+JSON.
//!
//! Every request is a POST of a [`Request`] with the cluster token in
//! [`TOKEN_HEADER`]. Long calls run on their own thread: the node answers
//! `Accepted` at once and the client polls, so no request is held open for
//! a long upload. A task id is remembered with its result, so a retried
//! submit applies once.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tabletsnap_transfer::{CancelToken, Manifest, Progress, SnapshotId};

use crate::backend::{BackendNode, BackendTasks, RepoRef, TaskControl};
use crate::task::{
    from_hex, outcomes_to_wire, to_hex, Call, Output, Reply, Request, TaskError, PROTOCOL_VERSION,
    TOKEN_HEADER,
};

/// The largest request body a node reads (loads carry rows).
const MAX_BODY: u64 = 512 << 20;

/// How long a finished task's result is kept for a retried submit or poll.
const KEEP_DONE: Duration = Duration::from_secs(3600);

/// The name of the file a node writes its bound address to, in its dir.
pub const ADDR_FILE: &str = "node.addr";

/// How a node is started.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The node's own dir (its stores live under it).
    pub dir: PathBuf,
    /// Address to listen on; port 0 picks a free one.
    pub listen: String,
    /// The cluster token every request must carry.
    pub token: String,
    /// The backend id, for messages.
    pub id: u32,
}

enum Entry {
    Running {
        cancel: CancelToken,
        progress: Arc<[AtomicU64; 4]>,
    },
    Done {
        result: Result<Output, TaskError>,
        at: Instant,
    },
}

struct State {
    node: Arc<BackendNode>,
    dir: PathBuf,
    token: String,
    tasks: Mutex<HashMap<String, Entry>>,
    running: AtomicU64,
    /// The last heartbeat's tablet count and data size, until a call that
    /// changes tablets finishes (or [`HEARTBEAT_STATS_TTL`] passes): summing
    /// every tablet's meta twice a second cost a node a core-percent per
    /// thousand tablets, all through every job.
    heartbeat_stats: Mutex<Option<(Instant, crate::task::Heartbeat)>>,
}

/// How long a heartbeat's tablet count and data size are reused at most.
const HEARTBEAT_STATS_TTL: Duration = Duration::from_secs(30);

/// Opens the node and serves until the process ends.
pub fn serve(opts: NodeOptions) -> Result<()> {
    std::fs::create_dir_all(&opts.dir)
        .with_context(|| format!("creating node dir {}", opts.dir.display()))?;
    let dir = opts
        .dir
        .canonicalize()
        .with_context(|| format!("resolving node dir {}", opts.dir.display()))?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let node = BackendNode::open(opts.id, &dir, cores.max(2), cores.max(2))?;
    // Before any task can run: what a killed download left half written.
    let partial = super::recovery::remove_partial_downloads(&node)
        .with_context(|| format!("cleaning the partial downloads of node {}", opts.id))?;
    if partial > 0 {
        eprintln!(
            "tabletsnap node {}: removed {partial} partial download file(s) an earlier run left",
            opts.id
        );
    }
    let server = tiny_http::Server::http(&opts.listen)
        .map_err(|e| anyhow!("listening on {}: {e}", opts.listen))?;
    let addr = server
        .server_addr()
        .to_ip()
        .context("the node listens on a non-IP address")?;
    // Learned by `cluster start` (which asks for port 0).
    tabletsnap_engine::file::write_atomic(&dir.join(ADDR_FILE), addr.to_string().as_bytes())
        .with_context(|| format!("writing {}", dir.join(ADDR_FILE).display()))?;
    eprintln!(
        "tabletsnap node {} serving {} on {addr}",
        opts.id,
        dir.display()
    );
    let state = Arc::new(State {
        node,
        dir,
        token: opts.token,
        tasks: Mutex::new(HashMap::new()),
        running: AtomicU64::new(0),
        heartbeat_stats: Mutex::new(None),
    });
    let server = Arc::new(server);
    let workers: Vec<_> = (0..cores.clamp(4, 16))
        .map(|i| {
            let server = Arc::clone(&server);
            let state = Arc::clone(&state);
            std::thread::Builder::new()
                .name(format!("node-http{i}"))
                .spawn(move || {
                    while let Ok(req) = server.recv() {
                        handle(&state, req);
                    }
                })
                .context("starting a node worker")
        })
        .collect::<Result<_>>()?;
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

fn respond(req: tiny_http::Request, status: u16, reply: &Reply) {
    let body = serde_json::to_vec(reply).unwrap_or_default();
    let resp = tiny_http::Response::from_data(body).with_status_code(status);
    // The client may have given up; nothing to do then.
    let _ = req.respond(resp);
}

fn refused(message: String) -> Reply {
    Reply::Refused {
        version: PROTOCOL_VERSION,
        message,
    }
}

fn handle(state: &Arc<State>, mut req: tiny_http::Request) {
    let from = req
        .remote_addr()
        .map_or_else(|| "?".to_string(), |a| a.to_string());
    let token_ok = req
        .headers()
        .iter()
        .find(|h| h.field.equiv(TOKEN_HEADER))
        .is_some_and(|h| super::token_eq(h.value.as_str(), &state.token));
    if !token_ok {
        eprintln!("tabletsnap node: refused a request from {from}: missing or wrong cluster token");
        return respond(req, 401, &refused("missing or wrong cluster token".into()));
    }
    if *req.method() != tiny_http::Method::Post || req.url() != "/task" {
        return respond(req, 404, &refused("POST /task only".into()));
    }
    let mut body = Vec::new();
    if let Err(e) = req.as_reader().take(MAX_BODY + 1).read_to_end(&mut body) {
        return respond(req, 400, &refused(format!("reading the request: {e}")));
    }
    if body.len() as u64 > MAX_BODY {
        return respond(req, 413, &refused(format!("request over {MAX_BODY} bytes")));
    }
    let request: Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return respond(req, 400, &refused(format!("not a task request: {e}"))),
    };
    let reply = answer(state, request);
    respond(req, 200, &reply);
}

fn answer(state: &Arc<State>, request: Request) -> Reply {
    let v = PROTOCOL_VERSION;
    let (version, task_id) = match &request {
        Request::Submit {
            version, task_id, ..
        }
        | Request::Poll { version, task_id }
        | Request::Cancel { version, task_id } => (*version, task_id.clone()),
    };
    if version != v {
        return refused(format!("protocol version {version}; this node speaks {v}"));
    }
    let mut tasks = state.tasks.lock().unwrap_or_else(|e| e.into_inner());
    match request {
        Request::Poll { .. } => poll_reply(tasks.get(&task_id)),
        Request::Cancel { .. } => {
            if let Some(Entry::Running { cancel, .. }) = tasks.get(&task_id) {
                cancel.cancel();
            }
            poll_reply(tasks.get(&task_id))
        }
        Request::Submit { call, .. } => {
            let call = *call;
            if let Err(e) = check_paths(&state.dir, &call) {
                eprintln!(
                    "tabletsnap node: refused {} task {task_id}: {e:#}",
                    call.name()
                );
                return refused(format!("{e:#}"));
            }
            if !call.is_mutation() {
                drop(tasks);
                return done(run(state, call, &TaskControl::default()));
            }
            if let Some(e) = tasks.get(&task_id) {
                // A retried submit: the first one's answer, never a second run.
                return poll_reply(Some(e));
            }
            tasks.retain(|_, e| !matches!(e, Entry::Done { at, .. } if at.elapsed() > KEEP_DONE));
            let cancel = CancelToken::new();
            let progress: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
            let ctl = control(&call, &cancel, &progress);
            tasks.insert(
                task_id.clone(),
                Entry::Running {
                    cancel,
                    progress: Arc::clone(&progress),
                },
            );
            drop(tasks);
            if !call.is_long() {
                let result = run(state, call, &ctl);
                return finish(state, &task_id, result);
            }
            let st = Arc::clone(state);
            let id = task_id.clone();
            state.running.fetch_add(1, Ordering::Relaxed);
            let spawned = std::thread::Builder::new()
                .name(format!("task-{}", call.name()))
                .spawn(move || {
                    let result = run(&st, call, &ctl);
                    finish(&st, &id, result);
                    st.running.fetch_sub(1, Ordering::Relaxed);
                });
            match spawned {
                Ok(_) => Reply::Accepted { version: v },
                Err(e) => {
                    state.running.fetch_sub(1, Ordering::Relaxed);
                    finish(state, &task_id, Err(anyhow!("starting the task: {e}")))
                }
            }
        }
    }
}

fn finish(state: &State, task_id: &str, result: Result<Output>) -> Reply {
    let result = to_wire(result);
    state
        .tasks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            task_id.to_string(),
            Entry::Done {
                result: result.clone(),
                at: Instant::now(),
            },
        );
    Reply::Done {
        version: PROTOCOL_VERSION,
        result,
    }
}

fn to_wire(result: Result<Output>) -> Result<Output, TaskError> {
    result.map_err(|e| TaskError {
        message: format!("{e:#}"),
        permanent: crate::job::is_permanent(&e),
    })
}

fn done(result: Result<Output>) -> Reply {
    Reply::Done {
        version: PROTOCOL_VERSION,
        result: to_wire(result),
    }
}

fn poll_reply(e: Option<&Entry>) -> Reply {
    let version = PROTOCOL_VERSION;
    match e {
        None => Reply::Unknown { version },
        Some(Entry::Running { progress, .. }) => Reply::Running {
            version,
            files_done: progress[0].load(Ordering::Relaxed),
            files_total: progress[1].load(Ordering::Relaxed),
            bytes_done: progress[2].load(Ordering::Relaxed),
            bytes_total: progress[3].load(Ordering::Relaxed),
        },
        Some(Entry::Done { result, .. }) => Reply::Done {
            version,
            result: result.clone(),
        },
    }
}

fn control(call: &Call, cancel: &CancelToken, progress: &Arc<[AtomicU64; 4]>) -> TaskControl {
    let mut ctl = TaskControl {
        cancel: cancel.clone(),
        ..TaskControl::default()
    };
    if let Call::Upload { rate_limit, .. } | Call::Download { rate_limit, .. } = call {
        ctl.rate_limit = *rate_limit;
        let p = Arc::clone(progress);
        ctl.progress = Some(Arc::new(move |x: Progress| {
            p[0].store(x.files_done, Ordering::Relaxed);
            p[1].store(x.files_total, Ordering::Relaxed);
            p[2].store(x.bytes_done, Ordering::Relaxed);
            p[3].store(x.bytes_total, Ordering::Relaxed);
        }));
    }
    ctl
}

/// Refuses a task naming a path outside the node's own dir.
fn check_paths(dir: &Path, call: &Call) -> Result<()> {
    let paths: Vec<&Path> = match call {
        Call::Release(p) => p.iter().map(PathBuf::as_path).collect(),
        Call::Upload { snaps, .. } => snaps.iter().map(|s| s.path.as_path()).collect(),
        Call::PrepareRestore(t) | Call::Commit(t) | Call::Download { targets: t, .. } => {
            t.iter().filter_map(|t| t.dir.as_deref()).collect()
        }
        _ => Vec::new(),
    };
    for p in paths {
        if !super::is_inside(dir, p) {
            bail!(
                "path {} is outside this node's dir {}",
                p.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

fn open_repo(r: &crate::task::RepoAccess) -> Result<RepoRef> {
    if let Some(s3) = &r.s3 {
        let secret = s3.secret.as_ref().map(tabletsnap_transfer::Secret::new);
        crate::repo::register_s3(&r.name, &r.location, &s3.properties, secret.as_ref())?;
    }
    Ok(RepoRef {
        name: r.name.clone(),
        location: r.location.clone(),
    })
}

/// The heartbeat, its tablet count and data size reused while no call
/// that changes tablets has finished since they were read.
fn heartbeat(state: &State) -> Result<crate::task::Heartbeat> {
    let mut cached = state
        .heartbeat_stats
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let mut hb = match cached.as_ref() {
        Some((at, hb)) if at.elapsed() < HEARTBEAT_STATS_TTL => hb.clone(),
        _ => {
            let hb = state.node.heartbeat()?;
            *cached = Some((Instant::now(), hb.clone()));
            hb
        }
    };
    hb.running_tasks = state.running.load(Ordering::Relaxed);
    Ok(hb)
}

fn run(state: &State, call: Call, ctl: &TaskControl) -> Result<Output> {
    let changes_tablets = matches!(
        call,
        Call::CreateTablets(_) | Call::DropTablets(_) | Call::Load(_) | Call::Commit(_)
    );
    let out = run_call(state, call, ctl);
    if changes_tablets {
        // Whether it failed or not: it may have changed some tablets.
        *state
            .heartbeat_stats
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }
    out
}

fn run_call(state: &State, call: Call, ctl: &TaskControl) -> Result<Output> {
    let node = state.node.as_ref();
    Ok(match call {
        Call::Heartbeat => Output::Heartbeat(heartbeat(state)?),
        Call::CreateTablets(reqs) => {
            BackendTasks::create_tablets(node, reqs.into_iter().map(Into::into).collect())?;
            Output::Unit
        }
        Call::DropTablets(ids) => {
            BackendTasks::drop_tablets(node, &ids)?;
            Output::Unit
        }
        Call::Load(items) => {
            BackendTasks::load(node, &items)?;
            Output::Unit
        }
        Call::Scan { tablet, version } => Output::Rows(BackendTasks::scan(node, tablet, version)?),
        Call::Checksum { tablet, version } => {
            let c = BackendTasks::checksum(node, tablet, version)?;
            Output::Checksum(c.checksum, c.rows)
        }
        Call::TabletStats { ids, version, at } if at.is_empty() => {
            Output::Stats(node.tablet_stats(&ids, version)?)
        }
        Call::TabletStats { ids, at, .. } => Output::Stats(node.tablet_stats_at(&ids, &at)?),
        Call::SnapshotDirs => Output::Paths(node.snapshot_dirs()?),
        Call::MakeSnapshots {
            targets,
            timeout_ms,
        } => {
            let timeout = Duration::from_millis(timeout_ms);
            Output::Snapshots(node.make_snapshots(&targets, timeout)?)
        }
        Call::Upload {
            repo,
            label,
            timestamp,
            part,
            snaps,
            reuse_from,
            reuse_newest,
            ..
        } => {
            let repo = open_repo(&repo)?;
            let mut ctl = ctl.clone();
            ctl.reuse_from = reuse_from
                .iter()
                .map(|(l, t)| SnapshotId::new(l, t))
                .collect::<tabletsnap_transfer::Result<_>>()?;
            if !reuse_newest.is_empty() {
                ctl.reuse_newest = Some(std::sync::Arc::new(
                    reuse_newest
                        .iter()
                        .map(|(t, i)| (*t, *i as usize))
                        .collect(),
                ));
            }
            let m = node.upload(&repo, &label, &timestamp, &part, &snaps, &ctl)?;
            Output::Manifest(to_hex(&m.encode()))
        }
        Call::PrepareRestore(mut targets) => {
            node.prepare_restore(&mut targets)?;
            Output::Targets(targets)
        }
        Call::Download {
            repo,
            manifest_hex,
            targets,
            ..
        } => {
            let repo = open_repo(&repo)?;
            let bytes = from_hex(&manifest_hex).context("the manifest is not hex")?;
            let manifest = Manifest::decode(&bytes)?;
            Output::Bytes(node.download(&repo, &manifest, &targets, ctl)?)
        }
        Call::Commit(targets) => Output::Installed(outcomes_to_wire(&node.commit(&targets)?)),
        Call::Release(paths) => {
            node.release(&paths)?;
            Output::Unit
        }
    })
}
