//! W1 snapshot benchmark: populate W1 (10,000 tablets x 20 versions x 2 files)
//! into one store, then time `make_snapshots` of every tablet against
//! `cp -al` of the same tablet dirs, alternating A B A B in the same run.
//! No output is deleted before timing the next (see shared/BENCHMARKING.md):
//! each goes into a trash dir, deleted once at the end.
//!
//! `cargo run --release -p tabletsnap-snapshot --example snapshot_w1 -- [scale] [rounds] [dir]`
//! (`W1_KEEP_TRASH=1` leaves the outputs for a later run to delete.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tabletsnap_engine::workload::{populate, WorkloadSpec};
use tabletsnap_engine::{file, Engine, EngineOptions};
use tabletsnap_snapshot::{make_snapshots, SnapshotRequest};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) of this process and of its waited-for
/// children, from /proc/self/stat: shows whether a side got the cores it
/// asked for on a shared machine.
fn cpu_secs() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // After the ")": state is field 0, so utime/stime/cutime/cstime are 11..=14.
    let tick = 100.0;
    let get = |i: usize| f.get(i).copied().unwrap_or(0.0) / tick;
    (get(11) + get(12), get(13) + get(14))
}

/// Moves `path` into the trash under a unique name (a rename, not a delete).
fn to_trash(path: &Path, trash: &Path, tag: &str) -> Res<()> {
    std::fs::rename(path, trash.join(tag))?;
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let scale: f64 = args.get(1).map_or(Ok(1.0), |s| s.parse())?;
    let rounds: usize = args.get(2).map_or(Ok(3), |s| s.parse())?;
    let base_tmp;
    let base: PathBuf = match args.get(3) {
        Some(d) => PathBuf::from(d),
        None => {
            base_tmp = tempfile::tempdir_in(std::env::var("TMPDIR").unwrap_or("/tmp".into()))?;
            base_tmp.path().to_path_buf()
        }
    };
    let store = base.join("store");
    let trash = base.join("bench_trash");
    std::fs::create_dir_all(&trash)?;
    // Outputs of earlier runs in the same dir get unique trash names.
    let run = std::process::id();
    let engine = Engine::open(EngineOptions::new(vec![store.clone()]))?;
    let spec = WorkloadSpec::w1().scaled(scale);
    let t = Instant::now();
    // A dir given on the command line keeps its store between runs, so that
    // repeated measurements neither repopulate nor follow a mass delete.
    let ids = if engine.tablet_ids().len() as u64 == spec.tablets {
        engine.tablet_ids()
    } else {
        populate(&engine, &spec)?
    };
    file::syncfs(&store)?;
    let files: usize = ids
        .iter()
        .map(|id| {
            engine
                .tablet_meta(*id)
                .map(|m| m.rowsets.iter().map(|r| r.segments.len()).sum::<usize>())
        })
        .sum::<Result<usize, _>>()?;
    println!(
        "populated {} tablets, {files} segment files in {:.1} s under {}",
        ids.len(),
        t.elapsed().as_secs_f64(),
        base.display()
    );
    let reqs: Vec<SnapshotRequest> = ids.iter().copied().map(SnapshotRequest::newest).collect();
    let data = store.join("data");
    let (mut ours, mut cp, mut cp_sync) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        // A: ours, durable on return (syncfs included).
        let (c0, _) = cpu_secs();
        let t = Instant::now();
        let out = make_snapshots(&engine, &reqs, Duration::from_secs(3600))?;
        let a = t.elapsed().as_secs_f64();
        let a_cpu = cpu_secs().0 - c0;
        let mut top = None;
        for o in out {
            let info = o?;
            if top.is_none() {
                top = info
                    .path
                    .parent()
                    .and_then(|p| p.parent())
                    .map(Path::to_path_buf);
            }
        }
        to_trash(
            &top.ok_or("no snapshot made")?,
            &trash,
            &format!("ours.{run}.{r}"),
        )?;
        ours.push(a);

        // B: cp -al of the tablet dirs; the sync after it is timed apart so
        // the next round of A does not pay for B's dirty metadata.
        let dst = base.join(format!("cp.{run}.{r}"));
        let (_, k0) = cpu_secs();
        let t = Instant::now();
        let st = Command::new("cp")
            .arg("-al")
            .arg(&data)
            .arg(&dst)
            .status()?;
        let b = t.elapsed().as_secs_f64();
        let b_cpu = cpu_secs().1 - k0;
        if !st.success() {
            return Err("cp -al failed".into());
        }
        let t = Instant::now();
        file::syncfs(&base)?;
        let s = t.elapsed().as_secs_f64();
        to_trash(&dst, &trash, &format!("cp.{run}.{r}"))?;
        cp.push(b);
        cp_sync.push(b + s);
        println!(
            "round {r}: ours {a:.3} s (cpu {a_cpu:.2} s) | cp -al {b:.3} s (cpu {b_cpu:.2} s, + sync {s:.3} s)"
        );
    }
    let (mo, mc, mcs) = (median(&mut ours), median(&mut cp), median(&mut cp_sync));
    println!(
        "median: make_snapshots {mo:.3} s ({:.0} files/s, {:.0} tablets/s) | cp -al {mc:.3} s ({:.0} files/s) | cp -al + sync {mcs:.3} s",
        files as f64 / mo,
        ids.len() as f64 / mo,
        (files + ids.len()) as f64 / mc,
    );
    println!(
        "ratio ours / cp -al = {:.2}x (goal <= 0.70x); ours / (cp -al + sync) = {:.2}x; peak RSS {} MiB",
        mo / mc,
        mo / mcs,
        peak_rss_kib() / 1024
    );
    if std::env::var_os("W1_KEEP_TRASH").is_some() {
        println!("kept the trash {}", trash.display());
    } else {
        let t = Instant::now();
        file::remove_dir_all_if_exists(&trash)?;
        println!("deleted the trash in {:.1} s", t.elapsed().as_secs_f64());
    }
    Ok(())
}
