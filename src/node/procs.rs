//! `tabletsnap cluster start/stop/status`: node processes of a home, their
//! pids and addresses in `<home>/nodes.json`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The file listing a home's node processes.
pub const NODES_FILE: &str = "nodes.json";

/// One node process of a home.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeProc {
    /// Backend id.
    pub id: u32,
    /// `host:port` it listens on.
    pub addr: String,
    /// Its pid.
    pub pid: u32,
    /// Its dir.
    pub dir: PathBuf,
}

/// The node list of a home, as written.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct NodeList {
    /// Format version.
    pub version: u32,
    /// The nodes.
    pub nodes: Vec<NodeProc>,
}

/// The node list of `home`, if it runs node processes.
pub fn load(home: &Path) -> Result<Option<NodeList>> {
    let path = home.join(NODES_FILE);
    match std::fs::read(&path) {
        Ok(b) => Ok(Some(
            serde_json::from_slice(&b).with_context(|| format!("reading {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Changes the node list of `home` (a new one if it has none).
pub fn update<T>(home: &Path, f: impl FnOnce(&mut NodeList) -> Result<T>) -> Result<T> {
    let mut list = load(home)?.unwrap_or(NodeList {
        version: 1,
        nodes: Vec::new(),
    });
    let out = f(&mut list)?;
    save(home, &list)?;
    Ok(out)
}

fn save(home: &Path, list: &NodeList) -> Result<()> {
    let path = home.join(NODES_FILE);
    tabletsnap_engine::file::write_atomic(&path, &serde_json::to_vec_pretty(list)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// Whether process `pid` runs (a zombie does not).
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesized command name.
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Starts node `id` of `home` listening on `listen`, with `exe` as the
/// binary; returns its pid and bound address.
pub fn spawn_node(exe: &Path, home: &Path, id: u32, listen: &str) -> Result<NodeProc> {
    spawn_node_env(exe, home, id, listen, &[])
}

/// [`spawn_node`] with extra environment (tests arm fail points this way).
pub fn spawn_node_env(
    exe: &Path,
    home: &Path,
    id: u32,
    listen: &str,
    env: &[(&str, &str)],
) -> Result<NodeProc> {
    use std::os::unix::process::CommandExt;
    let dir = home.join(format!("node{id}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let addr_file = dir.join(super::server::ADDR_FILE);
    match std::fs::remove_file(&addr_file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", addr_file.display())),
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("node.log"))
        .with_context(|| format!("opening {}", dir.join("node.log").display()))?;
    let mut child = std::process::Command::new(exe)
        .arg("node")
        .arg("--dir")
        .arg(&dir)
        .arg("--listen")
        .arg(listen)
        .arg("--token-file")
        .arg(super::token_path(home))
        .arg("--id")
        .arg(id.to_string())
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a Ctrl-C at the starting shell leaves it running.
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {} node", exe.display()))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(a) = std::fs::read_to_string(&addr_file) {
            return Ok(NodeProc {
                id,
                addr: a.trim().to_string(),
                pid: child.id(),
                dir,
            });
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "node {id} exited at start ({status}); see {}",
                dir.join("node.log").display()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("node {id} did not start listening within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `n` node processes for `home` on free loopback ports and records them.
pub fn start(home: &Path, n: u32, exe: &Path) -> Result<NodeList> {
    let existing = load(home)?;
    if let Some(list) = &existing {
        if list.nodes.iter().any(|p| pid_alive(p.pid)) {
            return start_dead(home, list, exe);
        }
    } else if crate::meta_store::MetaStore::path(home).exists() {
        bail!(
            "home {} runs its backends in process: its tablets are in its be<N> dirs, which node processes do not serve; start node processes in a new home",
            home.display()
        );
    }
    if n == 0 || n > crate::cluster::MAX_BACKENDS {
        bail!(
            "a cluster has 1 to {} backends, not {n}",
            crate::cluster::MAX_BACKENDS
        );
    }
    tabletsnap_engine::file::create_dir_all_durable(home)
        .with_context(|| format!("creating home {}", home.display()))?;
    super::ensure_token(home)?;
    // A stopped home restarts the nodes it started, on their own dirs (new
    // ports); nodes added by address are left to whoever runs them.
    let ids: Vec<u32> = match &existing {
        Some(list) => list
            .nodes
            .iter()
            .filter(|p| !p.dir.as_os_str().is_empty())
            .map(|p| p.id)
            .collect(),
        None => (1..=n).collect(),
    };
    let mut list = existing.clone().unwrap_or(NodeList {
        version: 1,
        nodes: Vec::new(),
    });
    let mut started: Vec<u32> = Vec::new();
    for id in ids {
        match spawn_node(exe, home, id, "127.0.0.1:0") {
            Ok(p) => {
                started.push(p.pid);
                list.nodes.retain(|x| x.id != id);
                list.nodes.push(p);
            }
            Err(e) => {
                for pid in started {
                    kill(pid, true);
                }
                return Err(e);
            }
        }
    }
    list.nodes.sort_by_key(|p| p.id);
    save(home, &list)?;
    Ok(list)
}

/// While some nodes of `home` run: starts the ones it started that do not
/// (a crashed or killed node) on their recorded addresses, which the
/// coordinator knows them by.
fn start_dead(home: &Path, list: &NodeList, exe: &Path) -> Result<NodeList> {
    let dead: Vec<&NodeProc> = list
        .nodes
        .iter()
        .filter(|p| !p.dir.as_os_str().is_empty() && !pid_alive(p.pid))
        .collect();
    if dead.is_empty() {
        bail!(
            "every node of home {} runs already (`tabletsnap cluster status --home {}` lists them)",
            home.display(),
            home.display()
        );
    }
    // Each restart records its node: one that started stays recorded even
    // if the next fails.
    for p in dead {
        restart(home, p.id, exe)
            .with_context(|| format!("restarting node {} on {}", p.id, p.addr))?;
    }
    load(home)?.context("the home's node list disappeared")
}

/// Restarts node `id` of `home` on its recorded address (after a crash).
pub fn restart(home: &Path, id: u32, exe: &Path) -> Result<NodeProc> {
    restart_with_env(home, id, exe, &[])
}

/// [`restart`] with extra environment.
pub fn restart_with_env(
    home: &Path,
    id: u32,
    exe: &Path,
    env: &[(&str, &str)],
) -> Result<NodeProc> {
    let mut list = load(home)?.context("the home runs no node processes")?;
    let k = list
        .nodes
        .iter()
        .position(|p| p.id == id)
        .with_context(|| format!("the home has no node {id}"))?;
    let p = spawn_node_env(exe, home, id, &list.nodes[k].addr, env)?;
    list.nodes[k] = p.clone();
    save(home, &list)?;
    Ok(p)
}

/// Sends TERM, or KILL if `hard`, to `pid`.
pub fn kill(pid: u32, hard: bool) {
    let Ok(raw) = i32::try_from(pid) else {
        return;
    };
    let sig = if hard {
        nix::sys::signal::Signal::SIGKILL
    } else {
        nix::sys::signal::Signal::SIGTERM
    };
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), sig);
}

/// Ends the node processes of `home` by pid (TERM, then KILL after 10 s).
pub fn stop(home: &Path) -> Result<usize> {
    let Some(list) = load(home)? else {
        return Ok(0);
    };
    let live: Vec<&NodeProc> = list.nodes.iter().filter(|p| pid_alive(p.pid)).collect();
    for p in &live {
        kill(p.pid, false);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while live.iter().any(|p| pid_alive(p.pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in live.iter().filter(|p| pid_alive(p.pid)) {
        kill(p.pid, true);
    }
    Ok(live.len())
}

/// Lines for `cluster status`.
pub fn status(home: &Path) -> Result<String> {
    let Some(list) = load(home)? else {
        return Ok(format!(
            "home {} runs its backends in process\n",
            home.display()
        ));
    };
    let mut out = String::from("BackendId\tAddr\tPid\tRunning\tDir\n");
    for p in &list.nodes {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            p.id,
            p.addr,
            p.pid,
            pid_alive(p.pid),
            p.dir.display()
        ));
    }
    Ok(out)
}
