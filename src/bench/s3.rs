//! `tabletsnap bench --workload s3` (or `s3-w1`, `s3-w2`): W1 and W2 backup
//! and restore through an `s3://` repository on a loopback S3 server, next to
//! `restic backup` / `restic restore` and `rclone copy` against the same
//! server. Each round runs ours, restic and rclone in turn (A B C A B C);
//! the report gives medians and every round, CPU seconds (user + sys) of the
//! client and of the server, and requests per job.
//!
//! The server is the one the TABLETSNAP_S3_{ENDPOINT,ACCESS_KEY,SECRET_KEY,BUCKET}
//! variables name (`.ci/s3-server` exports them), else an s3s-fs this bench
//! starts on a free loopback port with a random key pair and a data dir
//! under the work dir, and kills by pid at the end. s3s-fs is looked up on
//! PATH, then as `${TABLETSNAP_TOOLS:-$HOME/.cache/tabletsnap-tools}/bin/s3s-fs`.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use tabletsnap_engine::workload::populate;
use tabletsnap_engine::{Engine, EngineOptions, Verify, WorkloadSpec};
use tabletsnap_transfer::backend::s3::{
    PROP_ACCESS_KEY, PROP_ENDPOINT, PROP_PATH_STYLE, PROP_REGION, PROP_SECRET_KEY,
};
use tabletsnap_transfer::backend::OpCounts;
use tabletsnap_transfer::{Backend, Counting, Repository, S3Config, SnapshotId, UploadSource, S3};

use super::measure::{
    have, median, peak_rss_mib, reset_peak_rss, settle, sync_time, trash, trim_heap,
};
use super::{phases, BenchOptions, Row};

/// The workloads `--workload` names: `s3` (W1 and W2), `s3-w1` or `s3-w2`.
pub(super) fn selected(workload: &str) -> Option<(bool, bool)> {
    match workload.to_ascii_lowercase().as_str() {
        "s3" => Some((true, true)),
        "s3-w1" => Some((true, false)),
        "s3-w2" => Some((false, true)),
        _ => None,
    }
}

const TS: &str = "2026-01-01-00-00-00";
const RESTIC_PASSWORD: &str = "tabletsnap-bench";
/// The rclone remote, configured through environment variables only.
const RCLONE_REMOTE: &str = "tsbench";

/// The S3 server the bench talks to.
struct Server {
    endpoint: String,
    access_key: String,
    secret_key: String,
    bucket: String,
    /// The s3s-fs this bench started (killed on drop); `None` for a server
    /// the environment named.
    child: Option<Child>,
    /// Its data dir.
    data: Option<PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// s3s-fs on PATH, else in the tools dir `.ci/s3-server` installs it into.
fn s3s_fs_binary() -> Option<PathBuf> {
    if have("s3s-fs") {
        return Some(PathBuf::from("s3s-fs"));
    }
    let tools = std::env::var_os("TABLETSNAP_TOOLS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/tabletsnap-tools"))
        })?;
    let bin = tools.join("bin/s3s-fs");
    bin.is_file().then_some(bin)
}

fn random_hex(bytes: usize) -> Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl Server {
    fn from_env() -> Option<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Some(Self {
            endpoint: var("TABLETSNAP_S3_ENDPOINT")?,
            access_key: var("TABLETSNAP_S3_ACCESS_KEY")?,
            secret_key: var("TABLETSNAP_S3_SECRET_KEY")?,
            bucket: var("TABLETSNAP_S3_BUCKET")?,
            child: None,
            data: None,
        })
    }

    /// Starts s3s-fs on 127.0.0.1 with a fresh data dir holding one bucket.
    fn start(work: &Path, trash_dir: &Path) -> Result<Self> {
        let bin = s3s_fs_binary().ok_or_else(|| {
            anyhow!(
                "the S3 bench needs s3s-fs (on PATH or in ${{TABLETSNAP_TOOLS:-$HOME/.cache/tabletsnap-tools}}/bin): \
                 `cargo install --locked s3s-fs --version 0.14.1 --features binary --root ~/.cache/tabletsnap-tools`, \
                 or name a running server with TABLETSNAP_S3_ENDPOINT, TABLETSNAP_S3_ACCESS_KEY, \
                 TABLETSNAP_S3_SECRET_KEY and TABLETSNAP_S3_BUCKET"
            )
        })?;
        let data = work.join("s3-data");
        trash(&data, trash_dir, "s3-data")?;
        let bucket = "bench".to_string();
        std::fs::create_dir_all(data.join(&bucket))
            .with_context(|| format!("creating {}", data.display()))?;
        // A free port: the kernel picks one, then s3s-fs binds it.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        let access_key = format!("AK{}", random_hex(8)?);
        let secret_key = random_hex(20)?;
        let log_path = work.join("s3s-fs.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", &access_key, "--secret-key", &secret_key])
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut server = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            access_key,
            secret_key,
            bucket,
            child: Some(child),
            data: Some(data),
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            let exited = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                bail!(
                    "s3s-fs exited ({status}) before accepting connections: {}",
                    std::fs::read_to_string(&log_path)
                        .unwrap_or_default()
                        .trim()
                );
            }
            if Instant::now() > deadline {
                bail!("s3s-fs did not accept connections on port {port} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Our backend at `s3://bucket/prefix`.
    fn backend(&self, prefix: &str) -> Result<S3> {
        let props: Vec<(String, String)> = [
            (PROP_ENDPOINT, self.endpoint.as_str()),
            (PROP_REGION, "us-east-1"),
            (PROP_ACCESS_KEY, self.access_key.as_str()),
            (PROP_SECRET_KEY, self.secret_key.as_str()),
            (PROP_PATH_STYLE, "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let cfg = S3Config::from_properties(&format!("s3://{}/{prefix}", self.bucket), &props)?;
        Ok(S3::new(cfg)?)
    }

    /// Objects stored under `prefix` (one listing, untimed).
    fn objects(&self, prefix: &str) -> Option<u64> {
        let b = self.backend(prefix).ok()?;
        b.list("").ok().map(|v| v.len() as u64)
    }

    fn rclone_env(&self, work: &Path) -> Vec<(String, String)> {
        let r = RCLONE_REMOTE.to_ascii_uppercase();
        let mut env: Vec<(String, String)> = [
            ("TYPE", "s3"),
            ("PROVIDER", "Other"),
            ("ENDPOINT", self.endpoint.as_str()),
            ("ACCESS_KEY_ID", self.access_key.as_str()),
            ("SECRET_ACCESS_KEY", self.secret_key.as_str()),
            ("REGION", "us-east-1"),
            ("FORCE_PATH_STYLE", "true"),
        ]
        .iter()
        .map(|(k, v)| (format!("RCLONE_CONFIG_{r}_{k}"), v.to_string()))
        .collect();
        // No config file of the user's is read or written.
        env.push((
            "RCLONE_CONFIG".into(),
            work.join("rclone.conf").display().to_string(),
        ));
        env
    }

    fn restic_env(&self, prefix: &str, work: &Path) -> Vec<(String, String)> {
        vec![
            (
                "RESTIC_REPOSITORY".into(),
                format!("s3:{}/{}/{prefix}", self.endpoint, self.bucket),
            ),
            ("RESTIC_PASSWORD".into(), RESTIC_PASSWORD.into()),
            (
                "RESTIC_CACHE_DIR".into(),
                work.join("restic-cache").display().to_string(),
            ),
            ("AWS_ACCESS_KEY_ID".into(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret_key.clone()),
        ]
    }
}

/// CPU seconds (user + sys) so far: this process, its waited-for children,
/// and the server if this bench started it.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    own: f64,
    children: f64,
    server: Option<f64>,
}

/// Fields of a `/proc/PID/stat` line after the command name, from `state` on.
fn stat_fields(path: &str) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(path).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn cpu_now(server: Option<u32>) -> Cpu {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as f64 } else { 100.0 };
    // utime, stime, cutime, cstime are fields 14-17: indices 11-14 from `state`.
    let ticks = |f: &[String], a: usize, b: usize| -> f64 {
        let get = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
        (get(a) + get(b)) / hz
    };
    let me = stat_fields("/proc/self/stat").unwrap_or_default();
    Cpu {
        own: ticks(&me, 11, 12),
        children: ticks(&me, 13, 14),
        server: server
            .and_then(|pid| stat_fields(&format!("/proc/{pid}/stat")))
            .map(|f| ticks(&f, 11, 12)),
    }
}

/// One timed job.
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    client_cpu: f64,
    server_cpu: Option<f64>,
    rss: Option<f64>,
}

/// Runs `f` after a sync, timing it; `ours` says whose CPU is the client's
/// (this process, else the children it waited for).
fn measure<T>(server: &Server, ours: bool, f: impl FnOnce() -> Result<T>) -> Result<(T, Sample)> {
    settle();
    trim_heap();
    reset_peak_rss();
    let c0 = cpu_now(server.pid());
    let t = Instant::now();
    let v = f()?;
    let wall = t.elapsed();
    let c1 = cpu_now(server.pid());
    let client_cpu = if ours {
        c1.own - c0.own
    } else {
        c1.children - c0.children
    };
    let server_cpu = match (c0.server, c1.server) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    Ok((
        v,
        Sample {
            wall,
            client_cpu,
            server_cpu,
            rss: ours.then(peak_rss_mib),
        },
    ))
}

/// Runs a peer command with `env` (the secrets go there, never in argv).
fn run_peer(argv: &[String], env: &[(String, String)]) -> Result<()> {
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        // A CA bundle for TLS makes rclone's S3 client refuse a plain
        // http endpoint; the server is on loopback.
        .env_remove("AWS_CA_BUNDLE")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", argv.join(" ")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        bail!(
            "{} failed ({}): {}",
            argv.join(" "),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    Ok(())
}

fn argv(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Regular files under `dir`.
fn count_files(dir: &Path) -> u64 {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => n += 1,
                _ => {}
            }
        }
    }
    n
}

/// Requests one of our jobs sent, from the [`Counting`] wrapper.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Requests {
    /// PUTs (a multipart put counts once).
    pub put: u64,
    /// GETs, whole and ranged.
    pub get: u64,
    /// HEADs.
    pub head: u64,
    /// ListObjectsV2 calls.
    pub list: u64,
    /// Deletes.
    pub delete: u64,
    /// Bytes put.
    pub put_bytes: u64,
}

impl From<OpCounts> for Requests {
    fn from(c: OpCounts) -> Self {
        Self {
            put: c.puts,
            get: c.gets,
            head: c.heads,
            list: c.lists,
            delete: c.deletes,
            put_bytes: c.put_bytes,
        }
    }
}

/// One tool's figures for one phase of one workload.
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    /// `W1` or `W2`.
    pub workload: String,
    /// `backup` or `restore`.
    pub phase: String,
    /// `tabletsnap`, `restic` or `rclone`.
    pub tool: String,
    /// What ran (secrets are passed in the environment, not shown).
    pub command: String,
    /// `ok`, `missing` (the tool is not installed) or `failed: ...`.
    pub status: String,
    /// Median wall time (s).
    pub median_s: Option<f64>,
    /// Every round's wall time (s).
    pub rounds_s: Vec<f64>,
    /// Files in the phase.
    pub files: u64,
    /// Bytes in the phase.
    pub bytes: u64,
    /// Throughput at the median (MB/s).
    pub mb_per_s: Option<f64>,
    /// Median CPU seconds (user + sys) of the client process.
    pub client_cpu_s: Option<f64>,
    /// Median CPU seconds (user + sys) of the server, when this bench started it.
    pub server_cpu_s: Option<f64>,
    /// Peak RSS of our phase (MiB).
    pub peak_rss_mib: Option<f64>,
    /// Requests per job (ours; the last round's).
    pub requests: Option<Requests>,
    /// Backup: packs written. Restore: contiguous piece runs fetched.
    pub packs_or_runs: Option<u64>,
    /// Objects under the job's prefix after a backup.
    pub objects: Option<u64>,
    /// Our restore: median time of the commit (load into the engine), part of `median_s`.
    pub commit_s: Option<f64>,
    /// A peer's restore: median `sync` right after it (its cost of durability;
    /// ours ends with a syncfs and includes it).
    pub sync_after_s: Option<f64>,
    /// Our median / this median.
    pub ours_over_this: Option<f64>,
}

/// A goal of issue 13 and where we stand.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    /// `W1` or `W2`.
    pub workload: String,
    /// `backup` or `restore`.
    pub phase: String,
    /// The peer compared with.
    pub peer: String,
    /// `time` (ours / peer, lower is better) or `throughput` (peer time / ours, higher is better).
    pub measure: String,
    /// The ratio, if both ran.
    pub value: Option<f64>,
    /// The target, e.g. `<= 0.2`.
    pub target: String,
    /// Whether it is met.
    pub met: Option<bool>,
}

/// Everything the S3 bench measured, as written to `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The server and whether this bench started it.
    pub server: String,
    /// Peer versions, or `missing`.
    pub peers: HashMap<String, String>,
    /// `--scale`.
    pub scale: f64,
    /// `--rounds`.
    pub rounds: usize,
    /// Per tool and phase.
    pub jobs: Vec<JobRow>,
    /// The goals.
    pub goals: Vec<Goal>,
}

/// The rounds of one tool in one phase.
#[derive(Default)]
struct Acc {
    samples: Vec<Sample>,
    extra: Vec<Duration>,
    requests: Option<Requests>,
    packs_or_runs: Option<u64>,
    objects: Option<u64>,
    failed: Option<String>,
}

impl Acc {
    fn walls(&self) -> Vec<Duration> {
        self.samples.iter().map(|s| s.wall).collect()
    }

    fn row(
        &self,
        workload: &str,
        phase: &str,
        tool: &str,
        command: String,
        available: bool,
        (files, bytes): (u64, u64),
    ) -> JobRow {
        let med = |v: Vec<f64>| -> Option<f64> {
            let mut v = v;
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied()
        };
        let walls = self.walls();
        let median_s = (!walls.is_empty()).then(|| median(&walls).as_secs_f64());
        let status = if !available {
            "missing".to_string()
        } else if let Some(e) = &self.failed {
            format!("failed: {e}")
        } else {
            "ok".to_string()
        };
        let extra = (!self.extra.is_empty()).then(|| median(&self.extra).as_secs_f64());
        JobRow {
            workload: workload.into(),
            phase: phase.into(),
            tool: tool.into(),
            command,
            status,
            median_s,
            rounds_s: walls.iter().map(Duration::as_secs_f64).collect(),
            files,
            bytes,
            mb_per_s: median_s.map(|s| bytes as f64 / 1e6 / s.max(1e-9)),
            client_cpu_s: med(self.samples.iter().map(|s| s.client_cpu).collect()),
            server_cpu_s: med(self.samples.iter().filter_map(|s| s.server_cpu).collect()),
            peak_rss_mib: self
                .samples
                .iter()
                .filter_map(|s| s.rss)
                .max_by(f64::total_cmp),
            requests: self.requests,
            packs_or_runs: self.packs_or_runs,
            objects: self.objects,
            commit_s: (tool == "tabletsnap").then_some(extra).flatten(),
            sync_after_s: (tool != "tabletsnap").then_some(extra).flatten(),
            ours_over_this: None,
        }
    }
}

/// Records a peer round's outcome: its sample, or the first failure.
fn peer_round(acc: &mut Acc, tool: &str, r: Result<Sample>) {
    match r {
        Ok(s) => acc.samples.push(s),
        Err(e) => {
            println!("   {tool} failed: {e:#}");
            acc.failed.get_or_insert_with(|| format!("{e:#}"));
        }
    }
}

struct Peers {
    restic: Option<String>,
    rclone: Option<String>,
}

fn version(cmd: &str, arg: &str) -> Option<String> {
    if !have(cmd) {
        return None;
    }
    let out = Command::new(cmd).arg(arg).output().ok()?;
    let s = String::from_utf8_lossy(&out.stdout);
    Some(s.lines().next().unwrap_or(cmd).trim().to_string())
}

/// Times one workload's backup and restore: ours, restic, rclone per round.
fn workload(
    name: &str,
    spec: &WorkloadSpec,
    opts: &BenchOptions,
    server: &Server,
    peers: &Peers,
    run_prefix: &str,
    trash_dir: &Path,
) -> Result<(Vec<JobRow>, Vec<Row>)> {
    let base = opts.dir.join(format!("S3_{name}"));
    trash(&base, trash_dir, "old")?;
    std::fs::create_dir_all(&base)?;
    println!(
        "== S3 {name}: {} tablets x {} versions x {} segments, {} rows/version",
        spec.tablets, spec.versions, spec.segments_per_version, spec.rows_per_version
    );
    let engine = Engine::open(EngineOptions::new(vec![base.join("src")]))?;
    let t = Instant::now();
    populate(&engine, spec)?;
    let snaps = phases::snapshot_all(&engine)?;
    let top = phases::snapshot_top(
        snaps
            .first()
            .ok_or_else(|| anyhow!("nothing was snapshotted"))?,
    )?;
    let srcs = phases::sources(&snaps);
    let bytes: u64 = srcs.iter().map(UploadSource::total_bytes).sum();
    let files = count_files(&top);
    println!(
        "   loaded and snapshotted in {:.2} s: {files} files, {:.1} MB",
        t.elapsed().as_secs_f64(),
        bytes as f64 / 1e6
    );
    let top_s = top.display().to_string();
    let ids: Vec<(u64, u32)> = snaps.iter().map(|s| (s.tablet_id, s.schema_hash)).collect();
    let metas: HashMap<u64, (u64, u64)> = snaps
        .iter()
        .map(|s| (s.tablet_id, (s.meta.table_id, s.meta.partition_id)))
        .collect();
    let lower = name.to_ascii_lowercase();
    let rclone_env = server.rclone_env(&opts.dir);
    let rclone_flags = ["--transfers", "8", "--checksum"];

    let (mut up_ours, mut up_restic, mut up_rclone) =
        (Acc::default(), Acc::default(), Acc::default());
    let (mut down_ours, mut down_restic, mut down_rclone) =
        (Acc::default(), Acc::default(), Acc::default());
    for r in 0..opts.rounds.max(1) {
        let ours_prefix = format!("{run_prefix}/ours-{lower}-r{r}");
        let restic_prefix = format!("{run_prefix}/restic-{lower}-r{r}");
        let rclone_prefix = format!("{run_prefix}/rclone-{lower}-r{r}");
        let restic_env = server.restic_env(&restic_prefix, &opts.dir);
        let rclone_url = format!("{RCLONE_REMOTE}:{}/{rclone_prefix}/", server.bucket);

        // Backups.
        let counting = Arc::new(Counting::new(server.backend(&ours_prefix)?));
        let backend: Arc<dyn Backend> = Arc::clone(&counting) as Arc<dyn Backend>;
        let (info, s) = measure(server, true, || {
            let repo = Repository::open_or_create(Arc::clone(&backend), "bench")?;
            Ok(repo.backup("w", TS, &srcs, b"{}", &opts.upload())?)
        })?;
        up_ours.samples.push(s);
        up_ours.requests = Some(counting.counts().into());
        up_ours.packs_or_runs = Some(info.pack_count);
        up_ours.objects = server.objects(&ours_prefix);
        let mut line = format!(
            "   backup round {r}: ours {:.2} s ({} PUTs, {} packs)",
            s.wall.as_secs_f64(),
            counting.counts().puts,
            info.pack_count
        );
        if peers.restic.is_some() {
            let res = run_peer(&argv(&["restic", "init"]), &restic_env).and_then(|()| {
                measure(server, false, || {
                    run_peer(
                        &argv(&["restic", "backup", "-q", "--host", "bench", &top_s]),
                        &restic_env,
                    )
                })
                .map(|((), s)| s)
            });
            if let Ok(s) = &res {
                line += &format!(", restic {:.2} s", s.wall.as_secs_f64());
                up_restic.objects = server.objects(&restic_prefix);
            }
            peer_round(&mut up_restic, "restic backup", res);
        }
        if peers.rclone.is_some() {
            let mut cmd = argv(&["rclone", "copy", &top_s, &rclone_url]);
            cmd.extend(argv(&rclone_flags));
            let res = measure(server, false, || run_peer(&cmd, &rclone_env)).map(|((), s)| s);
            if let Ok(s) = &res {
                line += &format!(", rclone {:.2} s", s.wall.as_secs_f64());
                // rclone stores one object per file of the tree. Not
                // listed: s3s-fs walks the whole bucket dir for each
                // ListObjectsV2 page, so listing full-size W1's 410k objects
                // (410 pages) ran for over 15 minutes.
                up_rclone.objects = Some(files);
            }
            peer_round(&mut up_rclone, "rclone copy", res);
        }
        println!("{line}");

        // Restores: ours downloads and commits into a second engine.
        let dst_store = base.join(format!("dst{r}"));
        let target = Engine::open(EngineOptions::new(vec![dst_store.clone()]))?;
        let counting = Arc::new(Counting::new(server.backend(&ours_prefix)?));
        let backend: Arc<dyn Backend> = Arc::clone(&counting) as Arc<dyn Backend>;
        let mut commit = Duration::ZERO;
        let (report, s) = measure(server, true, || {
            let repo = Repository::open(Arc::clone(&backend), "bench")?;
            let dirs = tabletsnap_snapshot::prepare_restore_dirs(&target, &ids)?;
            let map: HashMap<u64, PathBuf> = ids.iter().map(|(id, _)| *id).zip(dirs).collect();
            let manifest = repo.read_manifest(&SnapshotId::new("w", TS)?)?;
            let report = crate::in_place::download_in_place(
                &target,
                &repo,
                &manifest,
                &map,
                &HashMap::new(),
                &HashMap::new(),
                &opts.download(),
            )?;
            let loads = phases::load_requests(&ids, &map, &metas);
            let t = Instant::now();
            tabletsnap_snapshot::load_snapshots(&target, &loads, Verify::SizeOnly)?;
            commit = t.elapsed();
            Ok(report)
        })?;
        down_ours.samples.push(s);
        down_ours.extra.push(commit);
        down_ours.requests = Some(counting.counts().into());
        down_ours.packs_or_runs = Some(report.packs_fetched);
        for (id, _) in &ids {
            if target.checksum(*id, None)? != engine.checksum(*id, None)? {
                bail!("S3 {name}: restored tablet {id} differs from its source");
            }
        }
        drop(target);
        trash(&dst_store, trash_dir, "s3-dst")?;
        let mut line = format!(
            "   restore round {r}: ours {:.2} s (commit {:.2} s, {} GETs, {} runs)",
            s.wall.as_secs_f64(),
            commit.as_secs_f64(),
            counting.counts().gets,
            report.packs_fetched
        );
        let check = |out: &Path, tool: &str| -> Result<()> {
            let got = count_files(out);
            if got < files {
                bail!("{tool} restored {got} files of {files}");
            }
            Ok(())
        };
        if peers.restic.is_some() && up_restic.failed.is_none() {
            let out = base.join(format!("restic-out{r}"));
            let out_s = out.display().to_string();
            let res = measure(server, false, || {
                run_peer(
                    &argv(&["restic", "restore", "-q", "latest", "--target", &out_s]),
                    &restic_env,
                )
            })
            .and_then(|((), s)| {
                down_restic.extra.push(sync_time());
                check(&out, "restic").map(|()| s)
            });
            if let Ok(s) = &res {
                line += &format!(", restic {:.2} s", s.wall.as_secs_f64());
            }
            peer_round(&mut down_restic, "restic restore", res);
            trash(&out, trash_dir, "s3-restic-out")?;
        }
        if peers.rclone.is_some() && up_rclone.failed.is_none() {
            let out = base.join(format!("rclone-out{r}"));
            let mut cmd = argv(&["rclone", "copy", &rclone_url, &out.display().to_string()]);
            cmd.extend(argv(&rclone_flags));
            let res = measure(server, false, || run_peer(&cmd, &rclone_env)).and_then(|((), s)| {
                down_rclone.extra.push(sync_time());
                check(&out, "rclone").map(|()| s)
            });
            if let Ok(s) = &res {
                line += &format!(", rclone {:.2} s", s.wall.as_secs_f64());
            }
            peer_round(&mut down_rclone, "rclone copy", res);
            trash(&out, trash_dir, "s3-rclone-out")?;
        }
        println!("{line}");
    }
    drop(engine);
    trash(&base, trash_dir, "s3-workload")?;

    let fb = (files, bytes);
    let tree = "SNAPSHOT_DIR";
    let rc = |a: &str, b: &str| format!("rclone copy {a} {b} --transfers 8 --checksum");
    let remote = format!(
        "{RCLONE_REMOTE}:{}/{run_prefix}/rclone-{lower}-rN/",
        server.bucket
    );
    let restic_repo = format!(
        "RESTIC_REPOSITORY=s3:{}/{}/{run_prefix}/restic-{lower}-rN",
        server.endpoint, server.bucket
    );
    let ours_loc = format!("s3://{}/{run_prefix}/ours-{lower}-rN", server.bucket);
    let mut jobs = vec![
        up_ours.row(
            name,
            "backup",
            "tabletsnap",
            format!("backup to {ours_loc}"),
            true,
            fb,
        ),
        up_restic.row(
            name,
            "backup",
            "restic",
            format!("{restic_repo} restic backup -q --host bench {tree}"),
            peers.restic.is_some(),
            fb,
        ),
        up_rclone.row(
            name,
            "backup",
            "rclone",
            rc(tree, &remote),
            peers.rclone.is_some(),
            fb,
        ),
        down_ours.row(
            name,
            "restore",
            "tabletsnap",
            format!("download + commit from {ours_loc}"),
            true,
            fb,
        ),
        down_restic.row(
            name,
            "restore",
            "restic",
            format!("{restic_repo} restic restore -q latest --target DIR"),
            peers.restic.is_some(),
            fb,
        ),
        down_rclone.row(
            name,
            "restore",
            "rclone",
            rc(&remote, "DIR"),
            peers.rclone.is_some(),
            fb,
        ),
    ];
    for phase in ["backup", "restore"] {
        let ours = jobs
            .iter()
            .find(|j| j.phase == phase && j.tool == "tabletsnap")
            .and_then(|j| j.median_s);
        for j in jobs.iter_mut().filter(|j| j.phase == phase) {
            j.ours_over_this = ours.zip(j.median_s).map(|(o, b)| o / b.max(1e-9));
        }
    }
    let rss = |a: &Acc| a.samples.iter().filter_map(|s| s.rss).fold(0.0, f64::max);
    let ok = |a: &Acc| a.walls();
    let rows = vec![
        phases::row(
            &format!("S3 {name}"),
            "backup",
            &up_ours.walls(),
            "restic backup",
            Some(&ok(&up_restic)),
            fb,
            rss(&up_ours),
        ),
        phases::row(
            &format!("S3 {name}"),
            "backup",
            &up_ours.walls(),
            "rclone copy",
            Some(&ok(&up_rclone)),
            fb,
            rss(&up_ours),
        ),
        phases::row(
            &format!("S3 {name}"),
            "restore",
            &down_ours.walls(),
            "restic restore",
            Some(&ok(&down_restic)),
            fb,
            rss(&down_ours),
        ),
        phases::row(
            &format!("S3 {name}"),
            "restore",
            &down_ours.walls(),
            "rclone copy",
            Some(&ok(&down_rclone)),
            fb,
            rss(&down_ours),
        ),
    ];
    Ok((jobs, rows))
}

/// The goals: W1 backup and restore each at most 0.2x restic's time; W2 at
/// least 0.8x rclone's throughput.
fn goals(jobs: &[JobRow]) -> Vec<Goal> {
    let med = |w: &str, p: &str, t: &str| {
        jobs.iter()
            .find(|j| j.workload == w && j.phase == p && j.tool == t && j.status == "ok")
            .and_then(|j| j.median_s)
    };
    let mut out = Vec::new();
    for phase in ["backup", "restore"] {
        if jobs.iter().any(|j| j.workload == "W1") {
            let value = med("W1", phase, "tabletsnap")
                .zip(med("W1", phase, "restic"))
                .map(|(o, p)| o / p.max(1e-9));
            out.push(Goal {
                workload: "W1".into(),
                phase: phase.into(),
                peer: "restic".into(),
                measure: "time".into(),
                value,
                target: "<= 0.2".into(),
                met: value.map(|v| v <= 0.2),
            });
        }
        if jobs.iter().any(|j| j.workload == "W2") {
            let value = med("W2", phase, "tabletsnap")
                .zip(med("W2", phase, "rclone"))
                .map(|(o, p)| p / o.max(1e-9));
            out.push(Goal {
                workload: "W2".into(),
                phase: phase.into(),
                peer: "rclone".into(),
                measure: "throughput".into(),
                value,
                target: ">= 0.8".into(),
                met: value.map(|v| v >= 0.8),
            });
        }
    }
    out
}

fn print_report(rep: &Report) {
    let f = |x: Option<f64>, p: usize| x.map_or_else(|| "-".into(), |v| format!("{v:.p$}"));
    let u = |x: Option<u64>| x.map_or_else(|| "-".into(), |v| v.to_string());
    println!();
    println!(
        "{:<4} {:<8} {:<11} {:>9} {:>8} {:>9} {:>8} {:>8} {:>7} {:>7} {:>5} {:>5} {:>10} {:>8} {:>9}  rounds(s) / status",
        "wl", "phase", "tool", "median(s)", "MB/s", "files/s", "cpu(s)", "srv cpu", "PUT", "GET", "HEAD", "LIST", "packs/runs", "objects", "ours/this"
    );
    for j in &rep.jobs {
        let req = j.requests.unwrap_or_default();
        let r = |v: u64| j.requests.map_or_else(|| "-".into(), |_| v.to_string());
        let rounds: Vec<String> = j.rounds_s.iter().map(|s| format!("{s:.2}")).collect();
        let mut tail = if j.status == "ok" {
            rounds.join(" ")
        } else {
            j.status.clone()
        };
        if let Some(c) = j.commit_s {
            tail += &format!(" (commit {c:.2})");
        }
        if let Some(s) = j.sync_after_s {
            tail += &format!(" (+sync {s:.2})");
        }
        println!(
            "{:<4} {:<8} {:<11} {:>9} {:>8} {:>9} {:>8} {:>8} {:>7} {:>7} {:>5} {:>5} {:>10} {:>8} {:>9}  {tail}",
            j.workload,
            j.phase,
            j.tool,
            f(j.median_s, 3),
            f(j.mb_per_s, 1),
            f(j.median_s.map(|s| j.files as f64 / s.max(1e-9)), 0),
            f(j.client_cpu_s, 2),
            f(j.server_cpu_s, 2),
            r(req.put),
            r(req.get),
            r(req.head),
            r(req.list),
            u(j.packs_or_runs),
            u(j.objects),
            f(j.ours_over_this, 2),
        );
    }
    println!();
    for g in &rep.goals {
        let what = if g.measure == "time" {
            format!("ours / {} time", g.peer)
        } else {
            format!("ours / {} throughput", g.peer)
        };
        println!(
            "goal {} {:<7} {what:<26} {:>6} (goal {}): {}",
            g.workload,
            g.phase,
            f(g.value, 2),
            g.target,
            match g.met {
                Some(true) => "met",
                Some(false) => "NOT met",
                None => "not measured (peer missing or failed)",
            }
        );
    }
}

/// Refuses to start when the filesystem under `dir` cannot hold what the
/// run keeps until its end (nothing is deleted before timing): per round
/// and workload of `bytes`, three backups on the server (ours, restic's,
/// rclone's) and three restores, besides the source: about
/// `bytes x (2 + 6 x rounds)`, plus a tenth.
fn check_space(dir: &Path, bytes: u64, rounds: usize) -> Result<()> {
    let need = bytes.saturating_mul(2 + 6 * rounds as u64) / 10 * 11;
    let st =
        nix::sys::statvfs::statvfs(dir).with_context(|| format!("statfs {}", dir.display()))?;
    let free = st.blocks_available() as u64 * st.fragment_size() as u64;
    if free < need {
        bail!(
            "the S3 bench keeps about {:.1} GiB under {} for this run ({rounds} rounds: three \
             backups on the server and three restores per round, deleted only at the end), \
             only {:.1} GiB are free: use fewer --rounds, s3-w1 and s3-w2 in separate runs, \
             or a smaller --scale",
            need as f64 / f64::from(1 << 30),
            dir.display(),
            free as f64 / f64::from(1 << 30)
        );
    }
    Ok(())
}

/// Runs the S3 bench; prints its table and goals and writes `--json`.
pub(super) fn run(w1: bool, w2: bool, opts: &BenchOptions, trash_dir: &Path) -> Result<Vec<Row>> {
    let w1_spec = WorkloadSpec::w1().scaled(opts.scale);
    // About 4.3 KB per W1 segment file, 64 MiB per W2 tablet at scale 1.
    let w1_bytes = w1_spec.tablets * w1_spec.versions * 2 * 4300;
    let w2_bytes = (32.0 * f64::from(64 << 20) * opts.scale) as u64;
    check_space(
        &opts.dir,
        u64::from(w1) * w1_bytes + u64::from(w2) * w2_bytes,
        opts.rounds,
    )?;
    let server = match Server::from_env() {
        Some(s) => s,
        None => Server::start(&opts.dir, trash_dir)?,
    };
    let server_desc = if server.child.is_some() {
        format!("s3s-fs started by the bench at {}", server.endpoint)
    } else {
        format!("{} from TABLETSNAP_S3_ENDPOINT", server.endpoint)
    };
    server
        .backend("")
        .and_then(|b| Ok(b.check_bucket()?))
        .with_context(|| format!("the S3 server {}", server.endpoint))?;
    let peers = Peers {
        restic: version("restic", "version"),
        rclone: version("rclone", "version"),
    };
    println!("S3 server: {server_desc}, bucket {}", server.bucket);
    for (tool, v) in [("restic", &peers.restic), ("rclone", &peers.rclone)] {
        println!(
            "{tool}: {}",
            v.as_deref()
                .unwrap_or("missing (apt-get install restic rclone); its rows say missing")
        );
    }
    let run_prefix = format!(
        "tsbench-{}-{}",
        std::process::id(),
        tabletsnap_engine::engine::now_ms()
    );
    let (mut jobs, mut rows) = (Vec::new(), Vec::new());
    if w1 {
        let spec = w1_spec;
        let (j, r) = workload("W1", &spec, opts, &server, &peers, &run_prefix, trash_dir)?;
        jobs.extend(j);
        rows.extend(r);
    }
    if w2 {
        let spec = super::w2_spec(opts.scale);
        let (j, r) = workload("W2", &spec, opts, &server, &peers, &run_prefix, trash_dir)?;
        jobs.extend(j);
        rows.extend(r);
    }
    let report = Report {
        server: server_desc,
        peers: [("restic", &peers.restic), ("rclone", &peers.rclone)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.clone().unwrap_or_else(|| "missing".into())))
            .collect(),
        scale: opts.scale,
        rounds: opts.rounds,
        goals: goals(&jobs),
        jobs,
    };
    print_report(&report);
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("figures written to {}", path.display());
    }
    if server.child.is_none() && !opts.keep_trash {
        // A server we did not start keeps nothing of ours.
        if let Ok(b) = server.backend(&run_prefix) {
            if let Ok(keys) = b.list("") {
                let _ = b.delete_many(&keys);
            }
        }
    }
    let data = server.data.clone();
    drop(server);
    trash(&opts.dir.join("restic-cache"), trash_dir, "restic-cache")?;
    if let Some(d) = data {
        trash(&d, trash_dir, "s3-data")?;
    }
    if opts.keep_trash {
        println!(
            "outputs left in {} (delete it when no benchmark is running)",
            trash_dir.display()
        );
    } else {
        super::cleanup(trash_dir);
    }
    Ok(rows)
}
