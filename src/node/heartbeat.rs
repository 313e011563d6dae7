//! The coordinator's heartbeat thread: beats every node process each
//! [`INTERVAL`], so a node that stops answering is marked dead after
//! [`super::client::DEAD_AFTER_MISSES`] misses and alive again once it answers.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::cluster::Cluster;

/// Time between heartbeats.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// Starts the thread; it ends when the cluster is dropped.
pub fn start(cluster: &Arc<Cluster>) {
    let weak: Weak<Cluster> = Arc::downgrade(cluster);
    let spawned = std::thread::Builder::new()
        .name("heartbeat".into())
        .spawn(move || loop {
            let Some(c) = weak.upgrade() else {
                return;
            };
            let nodes = c.remote_backends();
            // Never keep the cluster (and its home lock) alive while waiting on nodes.
            drop(c);
            std::thread::scope(|s| {
                for b in &nodes {
                    s.spawn(move || b.beat());
                }
            });
            std::thread::sleep(INTERVAL);
        });
    if let Err(e) = spawned {
        eprintln!("tabletsnap: no heartbeat thread ({e}); node health is not tracked");
    }
}
