//! The `tabletsnap` command: the demo, a statement runner, and a shell.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use tabletsnap::cluster::{Cluster, DEFAULT_BACKENDS};
use tabletsnap::exec::{Output, Session};
use tabletsnap::job::{JobHandle, JobRecord};
use tabletsnap::sql::{render_batch, render_table};

#[derive(Parser)]
#[command(
    name = "tabletsnap",
    version,
    about = "Backup and restore for a tablet-based analytical database"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Back up a partitioned table on one cluster and restore it on another, then compare.
    Demo {
        /// Where to put the two homes and the repository (default: a temp dir, removed after).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run statements against a home.
    Sql {
        /// The cluster home (created with 3 backends if new).
        #[arg(long)]
        home: PathBuf,
        /// User to run as.
        #[arg(long, default_value = "root")]
        user: String,
        /// Tab-separated output with a header row, no progress bars.
        #[arg(long)]
        batch: bool,
        /// Backends for a new home.
        #[arg(long, default_value_t = DEFAULT_BACKENDS)]
        backends: u32,
        /// Statements, separated by `;`.
        #[arg(short = 'e', long = "execute")]
        execute: String,
    },
    /// Time every phase of the many-tablet workloads next to cp/tar baselines.
    Bench {
        /// W1 (many tablets, many versions), W2 (bulk), W3 (scaling) or all.
        #[arg(long, default_value = "w1")]
        workload: String,
        /// Scale factor on tablet counts (W2: on sizes).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Rounds per phase, ours and the baseline alternating.
        #[arg(long, default_value_t = 2)]
        rounds: usize,
        /// Work dir on the filesystem under test.
        #[arg(long, default_value = "target/bench-work")]
        dir: PathBuf,
        /// Write every figure to this JSON file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Keep the trash dir of old outputs instead of deleting it at the end.
        #[arg(long)]
        keep_trash: bool,
    },
    /// List every fail point (only in builds with the `failpoints` feature).
    Failpoints,
    /// Interactive shell: line editing, history, jobs in the background.
    Shell {
        /// The cluster home.
        #[arg(long)]
        home: PathBuf,
        /// User to run as.
        #[arg(long, default_value = "root")]
        user: String,
        /// Backends for a new home.
        #[arg(long, default_value_t = DEFAULT_BACKENDS)]
        backends: u32,
    },
}

fn print_output(out: &Output, batch: bool) {
    match out {
        Output::Rows(rs) if batch => print!("{}", render_batch(rs)),
        Output::Rows(rs) => print!("{}", render_table(rs)),
        Output::Message(m) if !batch => println!("{m}"),
        Output::Message(_) => {}
    }
}

/// Waits for jobs, with a progress bar per job on a terminal.
fn wait_jobs(jobs: &[Arc<JobHandle>], bars: bool) {
    if jobs.is_empty() {
        return;
    }
    if !bars {
        for j in jobs {
            j.wait();
        }
        return;
    }
    let multi = indicatif::MultiProgress::new();
    let style =
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} files {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
    let shown: Vec<(Arc<JobHandle>, indicatif::ProgressBar)> = jobs
        .iter()
        .map(|j| {
            let r = j.record();
            let pb = multi.add(indicatif::ProgressBar::new(0));
            pb.set_style(style.clone());
            pb.set_prefix(format!("{} {}", r.kind(), r.label()));
            (Arc::clone(j), pb)
        })
        .collect();
    loop {
        let mut all_done = true;
        for (j, pb) in &shown {
            use std::sync::atomic::Ordering::Relaxed;
            pb.set_length(j.progress.files_total.load(Relaxed));
            pb.set_position(j.progress.files_done.load(Relaxed));
            pb.set_message(state_of(&j.record()));
            if j.is_done() {
                pb.finish();
            } else {
                all_done = false;
            }
        }
        if all_done {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn state_of(r: &JobRecord) -> String {
    match r {
        JobRecord::Backup(j) => j.state.name().to_string(),
        JobRecord::Restore(j) => j.state.name().to_string(),
    }
}

fn sql(home: &Path, user: &str, batch: bool, backends: u32, text: &str) -> Result<()> {
    let cluster = Cluster::open(home, backends)?;
    let mut session = Session::new(cluster, user)?;
    let result = (|| -> Result<()> {
        for stmt in tabletsnap::sql::parse_statements(text)? {
            let out = session.execute(stmt)?;
            print_output(&out, batch);
        }
        Ok(())
    })();
    // Jobs started here finish before the process exits, even after an error.
    wait_jobs(
        session.started_jobs(),
        !batch && std::io::stderr().is_terminal(),
    );
    result
}

fn shell(home: &Path, user: &str, backends: u32) -> Result<()> {
    let cluster = Cluster::open(home, backends)?;
    let mut session = Session::new(cluster, user)?;
    let mut rl = rustyline::DefaultEditor::new().context("starting the line editor")?;
    let history = home.join(".tabletsnap_history");
    let _ = rl.load_history(&history);
    println!(
        "tabletsnap shell on {} as {user}; end statements with ';', exit with quit or Ctrl-D",
        home.display()
    );
    let mut buf = String::new();
    loop {
        let prompt = if buf.is_empty() {
            "tabletsnap> "
        } else {
            "        -> "
        };
        let line = match rl.readline(prompt) {
            Ok(l) => l,
            Err(rustyline::error::ReadlineError::Interrupted) => {
                buf.clear();
                continue;
            }
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading a line"),
        };
        let t = line.trim();
        if buf.is_empty() && matches!(t.to_ascii_lowercase().as_str(), "quit" | "exit" | "\\q") {
            break;
        }
        buf.push_str(&line);
        buf.push('\n');
        if !t.ends_with(';') {
            continue;
        }
        let _ = rl.add_history_entry(buf.trim());
        match tabletsnap::sql::parse_statements(&buf) {
            Ok(stmts) => {
                for s in stmts {
                    let started = Instant::now();
                    match session.execute(s) {
                        Ok(out) => {
                            print_output(&out, false);
                            println!("({:.2} sec)", started.elapsed().as_secs_f64());
                        }
                        Err(e) => {
                            eprintln!("ERROR: {e:#}");
                            break;
                        }
                    }
                }
            }
            Err(e) => eprintln!("ERROR: {e}"),
        }
        buf.clear();
    }
    let _ = rl.save_history(&history);
    let running: Vec<_> = session
        .started_jobs()
        .iter()
        .filter(|j| !j.is_done())
        .cloned()
        .collect();
    if !running.is_empty() {
        println!("waiting for {} running job(s) to finish", running.len());
        wait_jobs(&running, std::io::stderr().is_terminal());
    }
    Ok(())
}

fn failpoints() -> Result<()> {
    if !cfg!(feature = "failpoints") {
        bail!(
            "this tabletsnap was built without fail points: rebuild with `--features failpoints`"
        );
    }
    for p in tabletsnap::job::all_fail_points() {
        println!("{p}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Demo { dir } => tabletsnap::demo::run(dir.as_deref()).and_then(|ok| {
            if ok {
                Ok(())
            } else {
                bail!("the restored table differs from the source")
            }
        }),
        Command::Sql {
            home,
            user,
            batch,
            backends,
            execute,
        } => sql(&home, &user, batch, backends, &execute),
        Command::Shell {
            home,
            user,
            backends,
        } => shell(&home, &user, backends),
        Command::Failpoints => failpoints(),
        Command::Bench {
            workload,
            scale,
            rounds,
            dir,
            json,
            keep_trash,
        } => {
            let opts = tabletsnap::bench::BenchOptions {
                workload,
                scale,
                rounds,
                dir,
                json,
                keep_trash,
            };
            tabletsnap::bench::run(&opts).map(|_| ())
        }
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ERROR: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
