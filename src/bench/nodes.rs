//! `--workload jobs-nodes`: the W1 jobs workload (a BACKUP job, then a
//! RESTORE job into a second cluster) on 3 `tabletsnap node` processes per
//! cluster, next to the same jobs on in-process clusters in the same run.
//! Rounds alternate (in-process, nodes, in-process, nodes); each round backs
//! up into a new repository (a full backup, never an incremental one) and
//! restores into a new table. Wall seconds and CPU seconds (user + system of
//! this process and of every node process) are measured for each job.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tabletsnap_engine::WorkloadSpec;

use super::measure::{proc_cpu_s, self_cpu_s, timed, trash};
use super::phases::{jobs_shape, load_jobs_table, row};
use super::{BenchOptions, Row};
use crate::cluster::Cluster;
use crate::exec::{Output, Session};
use crate::node::procs;

/// Where the backends of a side run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    InProcess,
    Nodes,
}

impl Mode {
    fn tag(self) -> &'static str {
        match self {
            Mode::InProcess => "in-process",
            Mode::Nodes => "nodes",
        }
    }
}

/// Stops the node processes of the homes it holds when dropped, so a failed
/// bench leaves no process behind.
struct NodeHomes(Vec<PathBuf>);

impl Drop for NodeHomes {
    fn drop(&mut self) {
        for h in &self.0 {
            if let Err(e) = procs::stop(h) {
                eprintln!("stopping the nodes of {}: {e:#}", h.display());
            }
        }
    }
}

/// One timed job.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    wall: Duration,
    /// CPU seconds of this process and the side's node processes.
    cpu: f64,
    /// The node processes' share of `cpu`.
    nodes_cpu: f64,
    rss: f64,
}

/// CPU seconds used so far by (this process, the node processes `pids`).
fn cpu_now(pids: &[u32]) -> Result<(f64, f64)> {
    let mut nodes = 0.0;
    for &pid in pids {
        nodes += proc_cpu_s(pid).with_context(|| {
            format!("node process {pid} is gone (its node.log under the bench dir says why)")
        })?;
    }
    Ok((self_cpu_s(), nodes))
}

/// Runs one statement that starts a job and waits for it, timed.
fn timed_job(s: &mut Session, pids: &[u32], stmt: &str) -> Result<Sample> {
    let mut before = (0.0, 0.0);
    let (_, wall, rss) = timed(|| {
        // Read after `timed` has flushed the page cache, right before the job.
        before = cpu_now(pids)?;
        s.run_script(stmt)?;
        s.wait_for_jobs();
        Ok(())
    })?;
    let after = cpu_now(pids)?;
    let nodes_cpu = after.1 - before.1;
    Ok(Sample {
        wall,
        cpu: after.0 - before.0 + nodes_cpu,
        nodes_cpu,
        rss,
    })
}

fn checksum(s: &mut Session, table: &str) -> Result<String> {
    match s.run_script(&format!("CHECKSUM TABLE {table}"))?.pop() {
        Some(Output::Rows(rs)) => rs
            .rows
            .first()
            .and_then(|r| r.get(1))
            .cloned()
            .context("CHECKSUM TABLE returned no row"),
        other => bail!("CHECKSUM TABLE returned {other:?}"),
    }
}

/// One mode's source and target clusters.
struct Side {
    mode: Mode,
    a: Session,
    b: Session,
    /// The node processes of both clusters (none in process).
    pids: Vec<u32>,
    /// The source table's checksum, which every restored copy must have.
    checksum: String,
    /// Stops the node processes when the side is dropped (declared last:
    /// the sessions close first).
    _nodes: NodeHomes,
}

impl Side {
    fn open(mode: Mode, base: &Path, spec: &WorkloadSpec, exe: &Path) -> Result<Side> {
        let homes = [base.join("a"), base.join("b")];
        let mut nodes = NodeHomes(Vec::new());
        let mut pids = Vec::new();
        if mode == Mode::Nodes {
            for h in &homes {
                let list = procs::start(h, 3, exe)
                    .with_context(|| format!("starting 3 node processes for {}", h.display()))?;
                nodes.0.push(h.clone());
                pids.extend(list.nodes.iter().map(|p| p.pid));
            }
        }
        let mut a = Session::new(Cluster::open(&homes[0], 3)?, "root")?;
        let t = Instant::now();
        load_jobs_table(&mut a, spec)?;
        println!(
            "   {}: loaded in {:.2} s",
            mode.tag(),
            t.elapsed().as_secs_f64()
        );
        let checksum = checksum(&mut a, "t")?;
        let mut b = Session::new(Cluster::open(&homes[1], 3)?, "root")?;
        b.run_script("CREATE DATABASE d; USE d")?;
        Ok(Side {
            mode,
            a,
            b,
            pids,
            checksum,
            _nodes: nodes,
        })
    }

    /// One round: a full BACKUP into a new repository, then a RESTORE of it
    /// into a new table of the target cluster, whose checksum is checked.
    fn round(&mut self, round: usize, repo_root: &Path) -> Result<(Sample, Sample)> {
        let tag = self.mode.tag();
        let repo = repo_root.join(format!("{tag}{round}"));
        std::fs::create_dir_all(&repo).with_context(|| format!("creating {}", repo.display()))?;
        let create = format!(
            "CREATE REPOSITORY r{round} ON LOCATION \"file://{}\"",
            repo.display()
        );
        self.a.run_script(&create)?;
        self.b.run_script(&create)?;
        let backup = timed_job(
            &mut self.a,
            &self.pids,
            &format!("BACKUP SNAPSHOT s{round} TO r{round}"),
        )?;
        let ts = match self.a.started_jobs().last().map(|h| h.record()) {
            Some(crate::job::JobRecord::Backup(j)) if j.state.name() == "FINISHED" => j.timestamp,
            other => bail!("the {tag} backup did not finish: {other:?}"),
        };
        let restore = timed_job(
            &mut self.b,
            &self.pids,
            &format!(
                "RESTORE SNAPSHOT s{round} FROM r{round} ON (t AS t{round}) \
                 PROPERTIES (\"backup_timestamp\" = \"{ts}\")"
            ),
        )?;
        match self.b.started_jobs().last().map(|h| h.record()) {
            Some(crate::job::JobRecord::Restore(j)) if j.state.name() == "FINISHED" => {}
            other => bail!("the {tag} restore did not finish: {other:?}"),
        }
        if checksum(&mut self.b, &format!("t{round}"))? != self.checksum {
            bail!("{tag} round {round}: the restored table differs from the source");
        }
        Ok((backup, restore))
    }
}

/// The jobs workload on node processes next to in-process clusters.
pub fn run(
    name: &str,
    spec: &WorkloadSpec,
    opts: &BenchOptions,
    trash_dir: &Path,
) -> Result<Vec<Row>> {
    let exe = std::env::current_exe().context("finding the tabletsnap binary for the nodes")?;
    let base = opts.dir.join(name.replace(' ', "_"));
    trash(&base, trash_dir, "old")?;
    let (parts, buckets) = jobs_shape(spec);
    println!(
        "== {name}: BACKUP and RESTORE jobs on 3 node processes and in process, \
         {parts} partitions x {buckets} buckets x {} versions",
        spec.versions
    );
    let repo_root = base.join("repo");
    let mut sides = [
        Side::open(Mode::InProcess, &base.join("in-process"), spec, &exe)?,
        Side::open(Mode::Nodes, &base.join("nodes"), spec, &exe)?,
    ];
    let rounds = opts.rounds.max(1);
    // samples[mode][job]: job 0 BACKUP, 1 RESTORE.
    let mut samples: [[Vec<Sample>; 2]; 2] = Default::default();
    for round in 0..rounds {
        for (k, side) in sides.iter_mut().enumerate() {
            let (b, r) = side.round(round, &repo_root)?;
            println!(
                "   round {round} {:<10} BACKUP {:>7.2} s wall {:>7.2} s CPU ({:.2} in nodes)   \
                 RESTORE {:>7.2} s wall {:>7.2} s CPU ({:.2} in nodes)",
                side.mode.tag(),
                b.wall.as_secs_f64(),
                b.cpu,
                b.nodes_cpu,
                r.wall.as_secs_f64(),
                r.cpu,
                r.nodes_cpu
            );
            samples[k][0].push(b);
            samples[k][1].push(r);
        }
    }
    drop(sides);
    let files = spec.tablets * spec.versions;
    let mut rows = Vec::new();
    for (j, phase) in ["BACKUP job", "RESTORE job"].into_iter().enumerate() {
        let walls = |k: usize| samples[k][j].iter().map(|s| s.wall).collect::<Vec<_>>();
        let cpu = |k: usize| median_f64(samples[k][j].iter().map(|s| s.cpu).collect());
        let rss = samples[1][j].iter().map(|s| s.rss).fold(0.0, f64::max);
        let mut r = row(
            name,
            &format!("{phase} (nodes)"),
            &walls(1),
            "in-process",
            Some(&walls(0)),
            (files, 0),
            rss,
        );
        r.tablets = Some(spec.tablets);
        r.cpu_s = Some(cpu(1));
        r.baseline_cpu_s = Some(cpu(0));
        r.cpu_ratio = Some(cpu(1) / cpu(0).max(1e-9));
        rows.push(r);
    }
    println!();
    println!(
        "{:<26} {:>10} {:>10} {:>7} {:>10} {:>10} {:>7}",
        "job", "nodes(s)", "inproc(s)", "ratio", "nodes CPU", "inproc CPU", "ratio"
    );
    for r in &rows {
        println!(
            "{:<26} {:>10.3} {:>10.3} {:>7.2} {:>10.2} {:>10.2} {:>7.2}",
            r.phase,
            r.ours_s,
            r.baseline_s.unwrap_or_default(),
            r.ratio.unwrap_or_default(),
            r.cpu_s.unwrap_or_default(),
            r.baseline_cpu_s.unwrap_or_default(),
            r.cpu_ratio.unwrap_or_default()
        );
    }
    trash(&base, trash_dir, "jobs-nodes")?;
    Ok(rows)
}

fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or_default()
}
