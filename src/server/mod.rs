//! `tabletsnap serve`: the MySQL wire protocol (opensrv-mysql) on a small
//! tokio runtime of its own, and a local socket for `sql` and `shell`.
//!
//! Statements run on tokio's blocking threads against the one open
//! [`Cluster`]; jobs belong to its job manager, so a closed connection never
//! cancels or waits for them. SIGTERM and SIGINT stop accepting and end the
//! process; running jobs keep their persisted state and resume when the home
//! is next opened. There is no TLS: the default address is loopback.

pub mod conn;
pub mod local;
pub mod vars;
pub mod wire;

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use tabletsnap_engine::file;

use crate::cluster::Cluster;
use crate::users::{Password, Passwords, ROOT_PASSWORD_ENV};

/// File name of `<home>/serve.addr`: the address and pid of the server holding the home.
pub const ADDR_FILE: &str = "serve.addr";

/// What `serve` was asked for.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The cluster home.
    pub home: PathBuf,
    /// Address to listen on (loopback unless asked otherwise).
    pub bind: IpAddr,
    /// Port (0: any free one; the bound port is printed).
    pub port: u16,
    /// Backends for a new home.
    pub backends: u32,
}

/// Sets root's password of a home being created: from
/// `TABLETSNAP_ROOT_PASSWORD`, else generated and printed once on stderr.
pub fn init_root_password(home: &Path) -> Result<()> {
    let mut p = Passwords::load(home)?;
    match std::env::var(ROOT_PASSWORD_ENV) {
        Ok(pw) if !pw.is_empty() => p.set("root", &Password::new(pw)),
        _ => {
            let pw = crate::users::generate_password()?;
            p.set("root", &pw)?;
            eprintln!(
                "new home {}: root's password is {} (shown once; SET PASSWORD changes it)",
                home.display(),
                pw.expose()
            );
            Ok(())
        }
    }
}

/// Runs the server until SIGTERM or SIGINT.
pub fn serve(opts: &ServeOptions) -> Result<()> {
    // Blocked before any thread starts, so every thread inherits the mask
    // and only the waiting thread below sees these signals.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)
        .context("blocking SIGTERM and SIGINT")?;
    let new_home = !Cluster::home_exists(&opts.home);
    let cluster = Cluster::open(&opts.home, opts.backends)?;
    if new_home {
        init_root_password(&opts.home)?;
    } else if Passwords::load(&opts.home)?.native("root").is_empty() {
        eprintln!(
            "warning: root has no password; set one first: SET PASSWORD FOR root = PASSWORD('...')"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(256)
        .build()
        .context("starting the server's runtime")?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.wait().is_ok() {
                let _ = stop_tx.send(true);
            }
        })
        .context("starting the signal thread")?;
    let result = runtime.block_on(accept_loop(Arc::clone(&cluster), opts, stop_rx));
    for f in [ADDR_FILE, local::SOCKET_FILE] {
        let _ = std::fs::remove_file(opts.home.join(f));
    }
    // Statements still running finish or are cut off by the exit; jobs are
    // persisted and resume at the next open.
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

async fn accept_loop(
    cluster: Arc<Cluster>,
    opts: &ServeOptions,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    let addr = SocketAddr::new(opts.bind, opts.port);
    let tcp = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let bound = tcp.local_addr().context("reading the bound address")?;
    let sock = local::socket_path(&opts.home);
    // We hold the home's lock, so a socket file left there is a dead server's.
    let _ = std::fs::remove_file(&sock);
    let unix = tokio::net::UnixListener::bind(&sock)
        .with_context(|| format!("listening on {}", sock.display()))?;
    file::write_atomic(
        &opts.home.join(ADDR_FILE),
        format!("{bound} {}\n", std::process::id()).as_bytes(),
    )?;
    if !bound.ip().is_loopback() {
        eprintln!(
            "warning: listening on {bound} without TLS: passwords are challenge-response, but statements and results cross the network in clear"
        );
    }
    println!(
        "listening on {bound} (MySQL protocol, no TLS) and {}",
        sock.display()
    );
    let _ = std::io::stdout().flush();
    let ids = AtomicU32::new(1);
    loop {
        tokio::select! {
            _ = stop.changed() => {
                eprintln!("stopping: jobs keep their state and resume at the next start");
                return Ok(());
            }
            accepted = tcp.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let id = ids.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(mysql_connection(Arc::clone(&cluster), stream, id));
            }
            accepted = unix.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                tokio::spawn(local::serve_connection(Arc::clone(&cluster), stream));
            }
        }
    }
}

async fn mysql_connection(cluster: Arc<Cluster>, stream: tokio::net::TcpStream, id: u32) {
    let shared = Arc::new(wire::Shared::default());
    let Ok(shim) = conn::Conn::new(cluster, Arc::clone(&shared), id) else {
        return;
    };
    let (read, write) = stream.into_split();
    let read = wire::Sniff::new(read, Arc::clone(&shared));
    let write = wire::Patch::new(write, shared);
    // Errors here are the client's (gone, bad packet, wrong password): the
    // connection ends and nothing else is affected.
    let _ = opensrv_mysql::AsyncMysqlIntermediary::run_on(shim, read, write).await;
}
