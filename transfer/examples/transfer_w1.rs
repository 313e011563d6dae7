//! W1/W2 benchmark: our upload and download against `cp -r` and `tar -cf`,
//! side by side in one run, alternating, never deleting an output before a
//! later timing (outputs go to a trash dir removed at the end).
//!
//! ```text
//! cargo run --release -p tabletsnap-transfer --example transfer_w1 -- [--work DIR] [--rounds N] [--tablets N] [--w2] [--only w1|w2] [--keep-trash]
//! ```
//!
//! `--only w2` runs W2 alone (no W1 tree is generated), for quick iterations.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use tabletsnap_transfer::workload::{generate_big_files, generate_tree, tablet_dir, TreeSpec};
use tabletsnap_transfer::{
    Backend, DownloadOptions, Durability, LocalFs, Repository, SnapshotId, UploadOptions,
    UploadSource,
};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    work: PathBuf,
    rounds: usize,
    tablets: u64,
    w2: bool,
    w1: bool,
    keep_trash: bool,
}

fn args() -> Res<Args> {
    let mut a = Args {
        work: PathBuf::from("target/w1bench"),
        rounds: 3,
        tablets: TreeSpec::w1().tablets,
        w2: false,
        w1: true,
        keep_trash: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--work" => a.work = it.next().ok_or("--work DIR")?.into(),
            "--rounds" => a.rounds = it.next().ok_or("--rounds N")?.parse()?,
            "--tablets" => a.tablets = it.next().ok_or("--tablets N")?.parse()?,
            "--w2" => a.w2 = true,
            "--keep-trash" => a.keep_trash = true,
            "--only" => match it.next().as_deref() {
                Some("w1") => (a.w1, a.w2) = (true, false),
                Some("w2") => (a.w1, a.w2) = (false, true),
                _ => return Err("--only w1|w2".into()),
            },
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(a)
}

fn sh(cmd: &str, args: &[&str], cwd: &Path) -> Res<()> {
    let st = Command::new(cmd).args(args).current_dir(cwd).status()?;
    if !st.success() {
        return Err(format!("{cmd} {args:?} failed: {st}").into());
    }
    Ok(())
}

fn sync() -> Res<()> {
    sh("sync", &[], Path::new("/"))
}

/// Peak resident set of this process so far (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

#[derive(Default)]
struct Times {
    ours_up: Vec<f64>,
    ours_down: Vec<f64>,
    cp: Vec<f64>,
    cp_sync: Vec<f64>,
    tar: Vec<f64>,
    tar_sync: Vec<f64>,
}

/// Times `f`, then `sync`, returning (f, f + sync) in seconds.
fn timed(f: impl FnOnce() -> Res<()>) -> Res<(f64, f64)> {
    sync()?;
    let t = Instant::now();
    f()?;
    let a = t.elapsed().as_secs_f64();
    sync()?;
    Ok((a, t.elapsed().as_secs_f64()))
}

fn run(
    name: &str,
    work: &Path,
    data_root: &Path,
    sources: &[UploadSource],
    targets: &(dyn Fn(u64) -> Option<PathBuf> + Sync),
    rounds: usize,
    trash: &Path,
) -> Res<()> {
    let files: u64 = sources.iter().map(|s| s.files.len() as u64).sum();
    let bytes: u64 = sources.iter().map(|s| s.total_bytes()).sum();
    let mut t = Times::default();
    let ts = "2026-11-26-00-00-00";
    let move_to_trash = |p: &Path, tag: &str| -> Res<()> {
        if p.exists() {
            let dest = trash.join(format!("{name}-{tag}-{}", std::process::id()));
            let dest = (0..)
                .map(|i| dest.with_extension(i.to_string()))
                .find(|d| !d.exists())
                .ok_or("no trash name")?;
            std::fs::rename(p, dest)?;
        }
        Ok(())
    };
    for r in 0..rounds {
        // A: our upload (LocalFs, batched durability: one syncfs barrier before info).
        let repo_dir = work.join(format!("{name}-repo"));
        move_to_trash(&repo_dir, "repo")?;
        let (up, _) = timed(|| {
            let backend: Arc<dyn Backend> =
                Arc::new(LocalFs::with_durability(&repo_dir, Durability::Batched)?);
            let repo = Repository::create(backend, "bench")?;
            repo.backup("w", ts, sources, b"meta", &UploadOptions::default())?;
            Ok(())
        })?;
        t.ours_up.push(up);
        // B: cp -r
        let cp_dir = work.join(format!("{name}-cp"));
        move_to_trash(&cp_dir, "cp")?;
        let (cp, cps) = timed(|| {
            sh(
                "cp",
                &[
                    "-r",
                    &data_root.to_string_lossy(),
                    &cp_dir.to_string_lossy(),
                ],
                work,
            )
        })?;
        t.cp.push(cp);
        t.cp_sync.push(cps);
        // C: tar -cf
        let tar_file = work.join(format!("{name}.tar"));
        move_to_trash(&tar_file, "tar")?;
        let parent = data_root.parent().ok_or("data root has no parent")?;
        let (tar, tars) =
            timed(|| sh("tar", &["-cf", &tar_file.to_string_lossy(), "data"], parent))?;
        t.tar.push(tar);
        t.tar_sync.push(tars);
        // D: our download (verifies every piece and file crc, one syncfs at the end).
        let out = work.join(format!("{name}-restore"));
        move_to_trash(&out, "restore")?;
        let (down, _) = timed(|| {
            let backend: Arc<dyn Backend> =
                Arc::new(LocalFs::with_durability(&repo_dir, Durability::Batched)?);
            let repo = Repository::open(backend, "bench")?;
            let id = SnapshotId::new("w", ts)?;
            let rebased = |id: u64| targets(id).map(|p| out.join(p));
            repo.download(&id, &rebased, &DownloadOptions::default())?;
            Ok(())
        })?;
        t.ours_down.push(down);
        println!(
            "{name} round {r}: ours up {up:.2}s | cp -r {cp:.2}s (+sync {cps:.2}s) | tar -cf {tar:.2}s (+sync {tars:.2}s) | ours down {down:.2}s | peak RSS {:.0} MiB",
            peak_rss_mib()
        );
    }
    let (up, down) = (median(&mut t.ours_up), median(&mut t.ours_down));
    let (cp, cps) = (median(&mut t.cp), median(&mut t.cp_sync));
    let (tar, tars) = (median(&mut t.tar), median(&mut t.tar_sync));
    let mb = bytes as f64 / 1e6;
    println!("\n== {name}: {files} files, {mb:.0} MB, medians of {rounds} rounds ==");
    let line = |what: &str, s: f64| {
        println!(
            "{what:<28} {s:>7.2} s  {:>9.0} files/s  {:>7.0} MB/s",
            files as f64 / s,
            mb / s
        )
    };
    line("ours upload (incl. syncfs)", up);
    line("ours download (incl. syncfs)", down);
    line("cp -r", cp);
    line("cp -r + sync", cps);
    line("tar -cf", tar);
    line("tar -cf + sync", tars);
    println!("ratios: upload/cp = {:.2} (vs cp+sync {:.2}), upload/tar = {:.2} (vs tar+sync {:.2}), download/cp = {:.2} (vs cp+sync {:.2})",
        up / cp, up / cps, up / tar, up / tars, down / cp, down / cps);
    println!("peak RSS of this process: {:.0} MiB\n", peak_rss_mib());
    Ok(())
}

fn main() -> Res<()> {
    let a = args()?;
    std::fs::create_dir_all(&a.work)?;
    let work = a.work.canonicalize()?;
    let trash = work.join("trash");
    std::fs::create_dir_all(&trash)?;

    if a.w1 {
        run_w1(&a, &work, &trash)?;
    }

    if a.w2 {
        let w2_root = work.join("w2-src");
        let sources = if w2_root.join("done").exists() {
            let dir = w2_root.join("data/0/20000/368169781");
            vec![UploadSource::scan(20_000, dir)?]
        } else {
            let s = generate_big_files(&w2_root, 32, 64 << 20)?;
            std::fs::write(w2_root.join("done"), b"")?;
            s
        };
        let targets = |_id: u64| Some(PathBuf::from("data/0/20000/368169781"));
        run(
            "W2",
            &work,
            &w2_root.join("data"),
            &sources,
            &targets,
            a.rounds,
            &trash,
        )?;
    }

    if !a.keep_trash {
        let t = Instant::now();
        std::fs::remove_dir_all(&trash)?;
        println!("trash removed in {:.1}s", t.elapsed().as_secs_f64());
    }
    Ok(())
}

fn run_w1(a: &Args, work: &Path, trash: &Path) -> Res<()> {
    let mut spec = TreeSpec::w1();
    spec.tablets = a.tablets;
    let w1_root = work.join(format!("w1-src-{}", spec.tablets));
    let t = Instant::now();
    let sources = if w1_root.join("done").exists() {
        // Reuse the generated tree: regenerate only the descriptions (no timing involved).
        generate_descriptions(&w1_root, &spec)?
    } else {
        let s = generate_tree(&w1_root, &spec)?;
        std::fs::write(w1_root.join("done"), b"")?;
        s
    };
    println!(
        "W1 source ready in {:.1}s: {}",
        t.elapsed().as_secs_f64(),
        w1_root.display()
    );
    let w1_root_for_targets = w1_root.clone();
    let targets = move |id: u64| {
        tablet_dir(&w1_root_for_targets, &spec, id - 10_000)
            .strip_prefix(&w1_root_for_targets)
            .ok()
            .map(Path::to_path_buf)
    };
    run(
        "W1",
        work,
        &w1_root.join("data"),
        &sources,
        &targets,
        a.rounds,
        trash,
    )?;
    Ok(())
}

/// Rebuilds the upload sources of an existing tree by reading it back.
fn generate_descriptions(root: &Path, spec: &TreeSpec) -> Res<Vec<UploadSource>> {
    let mut out = Vec::with_capacity(spec.tablets as usize);
    for i in 0..spec.tablets {
        out.push(UploadSource::scan(10_000 + i, tablet_dir(root, spec, i))?);
    }
    Ok(out)
}
