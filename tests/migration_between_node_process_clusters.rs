//! Migration between two clusters of real node processes: cluster A (3
//! `tabletsnap node` processes) backs up into a repository, cluster B (3
//! other processes, its own home) restores it from the same location with
//! 3 replicas; the checksums are equal and every node of B holds the data
//! it read from the repository itself. Once with a local repository and
//! once with the CI S3 server.

mod common;

use std::path::Path;

use common::nodes::{s3_settings, start_nodes};
use common::*;
use tabletsnap::backend::BackendTasks;
use tabletsnap::node::procs;

/// Backs up `d.t` from A to the repository at `location` (created with
/// `props`) and restores it into B; asserts equal checksums and that B's
/// three nodes each hold a replica of every tablet.
fn migrate(tmp: &Path, location: &str, props: &str) {
    let (home_a, home_b) = (tmp.join("a"), tmp.join("b"));
    let _nodes_a = start_nodes(&home_a, 3);
    let _nodes_b = start_nodes(&home_b, 3);
    let pids = |h: &Path| -> Vec<u32> {
        procs::load(h)
            .expect("nodes file")
            .expect("node home")
            .nodes
            .iter()
            .map(|p| p.pid)
            .collect()
    };
    let (pids_a, pids_b) = (pids(&home_a), pids(&home_b));
    assert!(
        pids_a.iter().all(|p| !pids_b.contains(p)),
        "two clusters of distinct processes"
    );

    let mut a = open(&home_a);
    assert!(
        a.cluster().backends().is_empty(),
        "A runs no in-process node"
    );
    make_db_and_table(&mut a, "d", "t", 3);
    let sum = checksum(&mut a, "t");
    let tablets_a = rows(&mut a, "SHOW TABLET FROM t").rows.len();
    sql(
        &mut a,
        &format!("CREATE REPOSITORY r WITH BROKER ON LOCATION \"{location}\" {props}"),
    );
    let h = backup(&mut a, "BACKUP SNAPSHOT d.migrate TO r ON (t)");

    let mut b = open(&home_b);
    assert!(
        b.cluster().backends().is_empty(),
        "B runs no in-process node"
    );
    sql(
        &mut b,
        &format!(
            "CREATE DATABASE d; USE d; \
             CREATE READ ONLY REPOSITORY r WITH BROKER ON LOCATION \"{location}\" {props}"
        ),
    );
    let listed = column(&rows(&mut b, "SHOW SNAPSHOT ON r"), "Snapshot");
    assert!(listed.contains(&"migrate".to_string()), "{listed:?}");
    restore(
        &mut b,
        &restore_stmt(&h, "r", "ON (t)", "\"replication_num\" = \"3\""),
    );
    assert_eq!(checksum(&mut b, "t"), sum);
    assert_eq!(
        rows(&mut b, "SHOW TABLET FROM t").rows.len(),
        3 * tablets_a,
        "3 replicas of every tablet"
    );
    // Each of B's nodes downloaded its replicas itself.
    let remote = b.cluster().remote_backends();
    assert_eq!(remote.len(), 3);
    for be in remote {
        let hb = be.heartbeat().expect("heartbeat");
        assert_eq!(hb.tablets as usize, tablets_a, "node {be:?}");
    }
}

#[test]
fn a_second_cluster_of_node_processes_restores_a_local_repository() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let loc = file_location(&tmp.path().join("shared-repo"));
    migrate(tmp.path(), &loc, "");
}

#[test]
fn a_second_cluster_of_node_processes_restores_an_s3_repository() {
    let Some([endpoint, access, secret, bucket]) = s3_settings() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let loc = format!("s3://{bucket}/migrate-{}-{nanos}", std::process::id());
    let props = format!(
        "PROPERTIES (\"aws.s3.endpoint\" = \"{endpoint}\", \"aws.s3.region\" = \"us-east-1\", \
         \"aws.s3.access_key\" = \"{access}\", \"aws.s3.secret_key\" = \"{secret}\", \
         \"aws.s3.enable_path_style_access\" = \"true\")"
    );
    migrate(tmp.path(), &loc, &props);
}
