//! The `tabletsnap` command: the demo, a statement runner, and a shell.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use tabletsnap::cluster::DEFAULT_BACKENDS;

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
    /// Check a backup in a repository without restoring it: every pack
    /// present, every piece's and file's size and crc32 (like
    /// `restic check --read-data`). Exit status 2 when anything is damaged.
    Verify {
        /// A cluster home whose catalog names the repository (not while a
        /// server holds it: use --location then).
        #[arg(long)]
        home: Option<PathBuf>,
        /// The repository's location (e.g. file:///backups), instead of --home.
        #[arg(long, conflicts_with = "home")]
        location: Option<String>,
        /// Repository name.
        #[arg(long)]
        repo: String,
        /// Snapshot label.
        #[arg(long)]
        snapshot: String,
        /// One backup of the label (YYYY-MM-DD-HH-MM-SS); all when absent.
        #[arg(long)]
        timestamp: Option<String>,
        /// Check presence and sizes only; read no data.
        #[arg(long)]
        quick: bool,
        /// With an s3:// --location, a repository property as CREATE
        /// REPOSITORY takes it (repeat: aws.s3.endpoint=http://127.0.0.1:9000,
        /// aws.s3.region=us-east-1, aws.s3.enable_path_style_access=true);
        /// the keys come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
        #[arg(long = "property", value_name = "KEY=VALUE")]
        property: Vec<String>,
    },
    /// Back up a partitioned table on one cluster and restore it on another, then compare.
    Demo {
        /// Where to put the two homes and the repository (default: a temp dir, removed after).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run statements against a home, then wait for the jobs they started.
    ///
    /// Output is in the mysql client's style; a statement ending in \G
    /// prints its rows vertically. The exit status is non-zero if a statement
    /// fails or a job ends CANCELLED (the reason is printed on stderr).
    /// Ctrl-C while jobs run asks, per job, whether to cancel it or leave it
    /// running (without a terminal on stdin: leaves it); a job left running
    /// resumes when the home is next opened. A second Ctrl-C exits at once.
    Sql {
        /// The cluster home (created with 3 backends if new).
        #[arg(long)]
        home: PathBuf,
        /// User to run as.
        #[arg(long, default_value = "root")]
        user: String,
        /// The user's password (default for root: $TABLETSNAP_ROOT_PASSWORD, else empty).
        #[arg(long)]
        password: Option<String>,
        /// Tab-separated output with a header row, no progress bars.
        #[arg(long)]
        batch: bool,
        /// Backends for a new home.
        #[arg(long, default_value_t = DEFAULT_BACKENDS)]
        backends: u32,
        /// Statements, separated by `;` (or `\G` for vertical rows).
        #[arg(short = 'e', long = "execute")]
        execute: String,
        /// Return right after starting jobs instead of waiting for them. Their
        /// records are on disk: a job goes on whenever a process has the home
        /// open, and is resumed by the next process that opens it.
        #[arg(long)]
        no_wait: bool,
    },
    /// Time every phase of the many-tablet workloads next to cp/tar baselines.
    Bench {
        /// w1 (many tablets, many versions), w2 (bulk), w3 (scaling) or all;
        /// jobs: the W1 BACKUP and RESTORE jobs alone; jobs-scale: the jobs at
        /// 1k, 10k and 100k tablets; incremental: W1's incremental backup,
        /// catch-up restore and VERIFY; jobs-nodes: the W1 jobs on 3 node
        /// processes next to in-process; s3, s3-w1 or s3-w2: through an S3
        /// repository next to restic and rclone.
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
        /// Transfer worker threads of the upload and download phases
        /// (0: one per core, at least 2, as a backend uses).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Bytes of small files a download writes between two background
        /// flushes of their writeback (0: none, all at the end barrier);
        /// by default 64 MiB.
        #[arg(long)]
        flush_step: Option<u64>,
    },
    /// List every fail point (only in builds with the `failpoints` feature).
    Failpoints,
    /// Interactive shell: line editing, history, jobs in the background.
    ///
    /// The prompt shows the current database. With stdin not a terminal it
    /// reads statements from stdin (no prompt) and stops at the first error.
    /// On exit it waits for running jobs, where Ctrl-C works as in `sql`.
    Shell {
        /// The cluster home.
        #[arg(long)]
        home: PathBuf,
        /// User to run as.
        #[arg(long, default_value = "root")]
        user: String,
        /// The user's password (default for root: $TABLETSNAP_ROOT_PASSWORD, else empty).
        #[arg(long)]
        password: Option<String>,
        /// Backends for a new home.
        #[arg(long, default_value_t = DEFAULT_BACKENDS)]
        backends: u32,
    },
    /// Serve a home over the MySQL protocol (mysql -h 127.0.0.1 -P 9030 -u root).
    ///
    /// There is no TLS: it listens on 127.0.0.1 unless --bind names another
    /// address; set root's password first. A new home's root password is
    /// $TABLETSNAP_ROOT_PASSWORD, or one generated and printed once on
    /// stderr. While it runs, `sql` and `shell` on the same home send their
    /// statements to it. SIGTERM or Ctrl-C stops it; running jobs keep their
    /// state and resume at the next start.
    Serve {
        /// The cluster home (created with 3 backends if new).
        #[arg(long)]
        home: PathBuf,
        /// TCP port (0: any free port; the bound one is printed).
        #[arg(long, default_value_t = 9030)]
        port: u16,
        /// Address to listen on; anything but loopback sends statements in clear.
        #[arg(long, default_value = "127.0.0.1")]
        bind: std::net::IpAddr,
        /// Backends for a new home.
        #[arg(long, default_value_t = DEFAULT_BACKENDS)]
        backends: u32,
    },
    /// Run one backend node process serving the task interface over HTTP
    /// (loopback by default); `cluster start` runs these for a home.
    Node {
        /// The node's own dir; tasks naming paths outside it are refused.
        #[arg(long)]
        dir: PathBuf,
        /// Address to listen on (port 0: any free port, written to DIR/node.addr).
        #[arg(long, default_value = "127.0.0.1:9050")]
        listen: String,
        /// The cluster token file (a home's cluster.token).
        #[arg(long)]
        token_file: PathBuf,
        /// Backend id, for messages.
        #[arg(long, default_value_t = 0)]
        id: u32,
    },
    /// Start, stop or list a home's backend node processes.
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
}

#[derive(Subcommand)]
enum ClusterAction {
    /// Start N node processes on free loopback ports and register them in the home.
    Start {
        /// The cluster home.
        #[arg(long)]
        home: PathBuf,
        /// Number of node processes.
        #[arg(long, default_value_t = DEFAULT_BACKENDS)]
        backends: u32,
    },
    /// End the home's node processes by pid.
    Stop {
        /// The cluster home.
        #[arg(long)]
        home: PathBuf,
    },
    /// Show the home's node processes.
    Status {
        /// The cluster home.
        #[arg(long)]
        home: PathBuf,
    },
}

fn cluster_action(action: ClusterAction) -> Result<u8> {
    use tabletsnap::node::procs;
    let text = match action {
        ClusterAction::Start { home, backends } => {
            let exe = std::env::current_exe()?;
            let list = procs::start(&home, backends, &exe)?;
            let mut s = String::new();
            for p in &list.nodes {
                s.push_str(&format!(
                    "started node {} on {} (pid {})\n",
                    p.id, p.addr, p.pid
                ));
            }
            s
        }
        ClusterAction::Stop { home } => format!("stopped {} node(s)\n", procs::stop(&home)?),
        ClusterAction::Status { home } => procs::status(&home)?,
    };
    cli::out::write_stdout(&text)?;
    Ok(0)
}

/// The password for `user`: `--password`, else (for root) the environment's.
fn password_for(user: &str, given: Option<String>) -> tabletsnap::users::Password {
    let from_env = || {
        (user == "root")
            .then(|| std::env::var(tabletsnap::users::ROOT_PASSWORD_ENV).ok())
            .flatten()
    };
    tabletsnap::users::Password::new(given.or_else(from_env).unwrap_or_default())
}

fn failpoints() -> Result<u8> {
    if !cfg!(feature = "failpoints") {
        bail!(
            "this tabletsnap was built without fail points: rebuild with `--features failpoints`"
        );
    }
    let mut list = String::new();
    for p in tabletsnap::job::all_fail_points() {
        list.push_str(p);
        list.push('\n');
    }
    match cli::out::write_stdout(&list) {
        Err(e) if !cli::out::is_broken_pipe(&e) => Err(e.into()),
        _ => Ok(0),
    }
}

/// How an error ends the process: mysql-style for the statement commands.
fn finish(res: Result<u8>, mysql_style: bool) -> ExitCode {
    match res {
        Ok(status) => ExitCode::from(status),
        Err(e) if mysql_style => {
            eprintln!("{}", cli::out::error_line(&e));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("ERROR: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// glibc's malloc arenas this process may use (unless `MALLOC_ARENA_MAX` says
/// otherwise). Its default, 8 per core, lets every rayon and transfer thread
/// keep its own arena of freed per-tablet lists: at 20,000 tablets a RESTORE
/// peaked at 275 MiB with the default and 190 MiB with 2.
const MALLOC_ARENAS: i32 = 2;

fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called first thing in main, before any thread starts;
        // mallopt only changes glibc's allocator tuning.
        unsafe {
            nix::libc::mallopt(nix::libc::M_ARENA_MAX, MALLOC_ARENAS);
        }
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    // Tests pause or fail jobs of a child process through FAILPOINTS=point=action;...
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    tabletsnap::job::crash::arm_abort_from_env();
    match cli.command {
        Command::Demo { dir } => {
            cli::interrupt::default_sigpipe();
            finish(
                tabletsnap::demo::run(dir.as_deref()).and_then(|ok| {
                    if ok {
                        Ok(0)
                    } else {
                        bail!("the restored table differs from the source")
                    }
                }),
                false,
            )
        }
        Command::Sql {
            home,
            user,
            password,
            batch,
            backends,
            execute,
            no_wait,
        } => finish(
            cli::sql(&cli::SqlArgs {
                home: &home,
                user: &user,
                password: &password_for(&user, password),
                batch,
                backends,
                text: &execute,
                no_wait,
            }),
            true,
        ),
        Command::Shell {
            home,
            user,
            password,
            backends,
        } => finish(
            cli::shell::shell(&home, &user, &password_for(&user, password), backends),
            true,
        ),
        Command::Serve {
            home,
            port,
            bind,
            backends,
        } => finish(
            tabletsnap::server::serve(&tabletsnap::server::ServeOptions {
                home,
                bind,
                port,
                backends,
            })
            .map(|()| 0),
            false,
        ),
        Command::Failpoints => finish(failpoints(), false),
        Command::Node {
            dir,
            listen,
            token_file,
            id,
        } => finish(
            tabletsnap::node::read_token(&token_file).and_then(|token| {
                tabletsnap::node::server::serve(tabletsnap::node::server::NodeOptions {
                    dir,
                    listen,
                    token,
                    id,
                })
                .map(|()| 0)
            }),
            false,
        ),
        Command::Cluster { action } => finish(cluster_action(action), false),
        Command::Verify {
            home,
            location,
            repo,
            snapshot,
            timestamp,
            quick,
            property,
        } => {
            cli::interrupt::default_sigpipe();
            finish(
                cli::verify::run(&cli::verify::VerifyArgs {
                    home: home.as_deref(),
                    location: location.as_deref(),
                    repo: &repo,
                    snapshot: &snapshot,
                    timestamp: timestamp.as_deref(),
                    quick,
                    properties: &property,
                }),
                false,
            )
        }
        Command::Bench {
            workload,
            scale,
            rounds,
            dir,
            json,
            keep_trash,
            threads,
            flush_step,
        } => {
            cli::interrupt::default_sigpipe();
            let opts = tabletsnap::bench::BenchOptions {
                workload,
                scale,
                rounds,
                dir,
                json,
                keep_trash,
                threads,
                flush_step,
            };
            finish(tabletsnap::bench::run(&opts).map(|_| 0), false)
        }
    }
}
