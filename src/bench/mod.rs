//! `tabletsnap bench`: many-tablet, many-version workloads, every phase timed
//! next to its baseline in the same run (A B A B, medians), with files/s,
//! MB/s and peak RSS, and W3 scaling curves.

mod incremental;
mod measure;
mod nodes;
mod phases;
mod s3;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use tabletsnap_engine::WorkloadSpec;

pub use measure::{peak_rss_mib, reset_peak_rss};

/// One timed row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Workload (W1, W2, W3 point).
    pub workload: String,
    /// Phase.
    pub phase: String,
    /// Our median time (s).
    pub ours_s: f64,
    /// Baseline name.
    pub baseline: String,
    /// Baseline median time (s); `None` if the machine lacks it.
    pub baseline_s: Option<f64>,
    /// ours / baseline.
    pub ratio: Option<f64>,
    /// Files in the phase.
    pub files: u64,
    /// Bytes in the phase.
    pub bytes: u64,
    /// Peak RSS during our phase (MiB).
    pub peak_rss_mib: f64,
    /// Tablets in the phase, where time per tablet is the figure to watch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tablets: Option<u64>,
    /// Time per tablet (µs), when `tablets` is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_tablet_us: Option<f64>,
    /// Our median CPU seconds (user + system, node processes included), where measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_s: Option<f64>,
    /// The baseline's median CPU seconds, where measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_cpu_s: Option<f64>,
    /// cpu_s / baseline_cpu_s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_ratio: Option<f64>,
}

impl Row {
    /// Adds the CPU seconds (medians of the rounds) of ours and the baseline.
    pub(crate) fn with_cpu(mut self, ours: &[f64], base: Option<&[f64]>) -> Row {
        self.cpu_s = median_of(ours);
        self.baseline_cpu_s = base.and_then(median_of);
        self.cpu_ratio = match (self.cpu_s, self.baseline_cpu_s) {
            (Some(o), Some(b)) => Some(o / b.max(1e-9)),
            _ => None,
        };
        self
    }
    fn files_per_s(&self) -> f64 {
        self.files as f64 / self.ours_s.max(1e-9)
    }
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.ours_s.max(1e-9)
    }
}

/// The median of `v` (the upper one of an even count), `None` when empty.
fn median_of(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied()
}

/// Every `--workload` the bench knows.
pub const WORKLOADS: &[&str] = &[
    "w1",
    "w2",
    "w3",
    "all",
    "jobs",
    "jobs-scale",
    "jobs-nodes",
    "incremental",
    "s3",
    "s3-w1",
    "s3-w2",
];

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// `w1`, `w2`, `w3`, `jobs` (the W1 jobs alone), `jobs-scale` or `all`;
    /// `s3`, `s3-w1` or `s3-w2` for the S3 bench (next to restic and rclone).
    /// `incremental`: W1's incremental backup, catch-up restore and VERIFY.
    /// `jobs-nodes`: the W1 jobs on 3 node processes next to in-process.
    pub workload: String,
    /// Scale factor on tablet counts (and W2 sizes).
    pub scale: f64,
    /// Rounds per phase (A B alternation).
    pub rounds: usize,
    /// Work dir (on the filesystem under test).
    pub dir: PathBuf,
    /// Where to write every figure as JSON.
    pub json: Option<PathBuf>,
    /// Leave the trash dir for the caller (runs back to back must not
    /// mass-delete before the next one times file creation).
    pub keep_trash: bool,
    /// Transfer worker threads of the W1, W2 and S3 upload and download
    /// phases; 0: the default (one per core, at least 2).
    pub threads: usize,
    /// The downloads' background flush step in bytes (0: none); `None`:
    /// the default.
    pub flush_step: Option<u64>,
}

impl BenchOptions {
    /// The transfer options of a timed upload or download phase.
    pub(crate) fn transfer(&self) -> tabletsnap_transfer::TransferOptions {
        let mut t = tabletsnap_transfer::TransferOptions::default();
        if self.threads > 0 {
            t.threads = self.threads;
        }
        t
    }

    /// Upload options with [`BenchOptions::transfer`].
    pub(crate) fn upload(&self) -> tabletsnap_transfer::UploadOptions {
        let mut o = tabletsnap_transfer::UploadOptions::default();
        o.transfer = self.transfer();
        o
    }

    /// Download options with [`BenchOptions::transfer`].
    pub(crate) fn download(&self) -> tabletsnap_transfer::DownloadOptions {
        let mut o = tabletsnap_transfer::DownloadOptions::default();
        o.transfer = self.transfer();
        if let Some(step) = self.flush_step {
            o.flush_step = step;
        }
        o
    }
}

/// W2: 32 tablets, one 64 MiB rowset each.
pub fn w2_spec(scale: f64) -> WorkloadSpec {
    // ~53 bytes per row in the default schema's segments: 64 MiB ≈ 1.27M rows.
    let rows = ((1_270_000.0 * scale).round() as usize).max(1000);
    WorkloadSpec {
        tablets: 32,
        versions: 1,
        rows_per_version: rows,
        segments_per_version: 1,
        first_tablet_id: 90_001,
        seed: 2,
    }
}

/// W3 points: (label, spec).
pub fn w3_points(scale: f64) -> Vec<(String, WorkloadSpec)> {
    let mk = |tablets: u64, versions: u64| WorkloadSpec {
        tablets: ((tablets as f64 * scale).round() as u64).max(10),
        versions,
        rows_per_version: 8,
        segments_per_version: 1,
        first_tablet_id: 1_000_001,
        seed: 3,
    };
    [
        (1_000, 10),
        (10_000, 10),
        (100_000, 10),
        (2_000, 10),
        (2_000, 50),
        (2_000, 200),
    ]
    .into_iter()
    .map(|(t, v)| {
        let spec = mk(t, v);
        (format!("{}t x {v}v", spec.tablets), spec)
    })
    .collect()
}

fn print_rows(rows: &[Row]) {
    println!(
        "{:<12} {:<18} {:>9} {:<22} {:>9} {:>7} {:>11} {:>9} {:>8} {:>8} {:>8} {:>7}",
        "workload",
        "phase",
        "ours(s)",
        "baseline",
        "base(s)",
        "ratio",
        "files/s",
        "MB/s",
        "RSS MiB",
        "CPU s",
        "base CPU",
        "CPU x"
    );
    let opt = |x: Option<f64>, prec: usize, none: &str| {
        x.map_or_else(|| none.to_string(), |v| format!("{v:.prec$}"))
    };
    for r in rows {
        println!(
            "{:<12} {:<18} {:>9.3} {:<22} {:>9} {:>7} {:>11.0} {:>9.1} {:>8.0} {:>8} {:>8} {:>7}",
            r.workload,
            r.phase,
            r.ours_s,
            r.baseline,
            opt(
                r.baseline_s,
                3,
                if r.baseline == "-" { "-" } else { "missing" }
            ),
            opt(r.ratio, 2, "-"),
            r.files_per_s(),
            r.mb_per_s(),
            r.peak_rss_mib,
            opt(r.cpu_s, 2, "-"),
            opt(r.baseline_cpu_s, 2, "-"),
            opt(r.cpu_ratio, 2, "-"),
        );
    }
}

/// Runs the benchmark and prints the report.
pub fn run(opts: &BenchOptions) -> Result<Vec<Row>> {
    // Before anything is created: an unknown workload leaves no trace.
    if !WORKLOADS
        .iter()
        .any(|w| opts.workload.eq_ignore_ascii_case(w))
    {
        anyhow::bail!(
            "unknown workload '{}': one of {}",
            opts.workload,
            WORKLOADS.join(", ")
        );
    }
    std::fs::create_dir_all(&opts.dir)
        .with_context(|| format!("creating {}", opts.dir.display()))?;
    let dir = std::fs::canonicalize(&opts.dir)
        .with_context(|| format!("resolving {}", opts.dir.display()))?;
    let opts = &BenchOptions {
        dir,
        ..opts.clone()
    };
    let trash = opts.dir.join("trash");
    if let Some((w1, w2)) = s3::selected(&opts.workload) {
        return s3::run(w1, w2, opts, &trash);
    }
    let mut rows = Vec::new();
    let want = |w: &str| {
        opts.workload.eq_ignore_ascii_case("all") || opts.workload.eq_ignore_ascii_case(w)
    };
    if want("w1") {
        let spec = WorkloadSpec::w1().scaled(opts.scale);
        check_space(&opts.dir, spec.tablets * spec.versions * 8200, opts.rounds)?;
        rows.extend(phases::workload("W1", &spec, opts, &trash, true)?);
    }
    if want("w1") || opts.workload.eq_ignore_ascii_case("jobs") {
        let spec = WorkloadSpec::w1().scaled(opts.scale);
        rows.extend(phases::jobs("W1 jobs", &spec, opts, &trash)?);
    }
    if opts.workload.eq_ignore_ascii_case("jobs-nodes") {
        let spec = WorkloadSpec::w1().scaled(opts.scale);
        // Source and restored copies per mode and round, the repositories.
        check_space(&opts.dir, spec.tablets * spec.versions * 8200, opts.rounds)?;
        rows.extend(nodes::run("W1 jobs-nodes", &spec, opts, &trash)?);
    }
    if opts.workload.eq_ignore_ascii_case("jobs-scale") {
        rows.extend(jobs_scale(opts, &trash)?);
    }
    if opts.workload.eq_ignore_ascii_case("incremental") {
        let spec = WorkloadSpec::w1().scaled(opts.scale);
        check_space(&opts.dir, spec.tablets * spec.versions * 8200, 1)?;
        rows.extend(incremental::run(opts, &trash)?);
    }
    if want("w2") {
        check_space(&opts.dir, 32 * (64 << 20), opts.rounds)?;
        rows.extend(phases::workload(
            "W2",
            &w2_spec(opts.scale),
            opts,
            &trash,
            false,
        )?);
    }
    if want("w3") {
        for (label, spec) in w3_points(opts.scale) {
            let r = phases::workload(&format!("W3 {label}"), &spec, opts, &trash, false)?;
            for x in &r {
                let per_tablet_us = x.ours_s * 1e6 / spec.tablets as f64;
                let per_file_us = x.ours_s * 1e6 / (x.files.max(1)) as f64;
                println!(
                    "W3 {label:<11} {:<18} {per_tablet_us:>9.1} us/tablet {per_file_us:>8.2} us/file",
                    x.phase
                );
            }
            rows.extend(r);
        }
    }
    println!();
    print_rows(&rows);
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_vec_pretty(&rows)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("figures written to {}", path.display());
    }
    if opts.keep_trash {
        println!(
            "outputs left in {} (delete it when no benchmark is running)",
            trash.display()
        );
    } else {
        cleanup(&trash);
    }
    Ok(rows)
}

/// The control plane's scaling: whole BACKUP and RESTORE jobs at 1,000,
/// 10,000 and 100,000 tablets (times `--scale`), 4 versions each, 3
/// backends; time per tablet and peak RSS per point.
fn jobs_scale(opts: &BenchOptions, trash: &Path) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut per_tablet: Vec<(u64, f64, f64)> = Vec::new();
    for tablets in [1_000u64, 10_000, 100_000] {
        let tablets = ((tablets as f64 * opts.scale).round() as u64).max(10);
        let spec = WorkloadSpec {
            tablets,
            versions: 4,
            rows_per_version: 4,
            segments_per_version: 1,
            first_tablet_id: 1,
            seed: 5,
        };
        // 4 one-block segment files per tablet, a few copies (source, restore, repository).
        check_space(&opts.dir, tablets * 4 * 4096, 1)?;
        let r = phases::jobs(&format!("jobs {tablets}t"), &spec, opts, trash)?;
        let us = |phase: &str| {
            r.iter()
                .find(|x| x.phase == phase)
                .map_or(0.0, |x| x.ours_s * 1e6 / tablets as f64)
        };
        per_tablet.push((tablets, us("BACKUP job"), us("RESTORE job")));
        rows.extend(r.into_iter().map(|mut x| {
            x.tablets = Some(tablets);
            x.per_tablet_us = Some(x.ours_s * 1e6 / tablets as f64);
            x
        }));
    }
    println!();
    println!(
        "{:>9} {:>16} {:>17}",
        "tablets", "BACKUP us/tablet", "RESTORE us/tablet"
    );
    for (t, b, r) in &per_tablet {
        println!("{t:>9} {b:>16.1} {r:>17.1}");
    }
    Ok(rows)
}

/// Refuses to start a workload the filesystem has no room for: every round
/// keeps its copies (ours and the baselines') until the end.
fn check_space(dir: &Path, bytes: u64, rounds: usize) -> Result<()> {
    let need = bytes.saturating_mul(3 + 5 * rounds as u64) / 10 * 11;
    let st =
        nix::sys::statvfs::statvfs(dir).with_context(|| format!("statfs {}", dir.display()))?;
    let free = st.blocks_available() as u64 * st.fragment_size() as u64;
    if free < need {
        anyhow::bail!(
            "the bench needs about {} GiB free under {} for this workload and {rounds} rounds, only {} GiB are: use fewer --rounds, a smaller --scale, or delete its trash dir",
            need >> 30,
            dir.display(),
            free >> 30
        );
    }
    Ok(())
}

fn cleanup(trash: &Path) {
    let _ = std::fs::remove_dir_all(trash);
}
