//! The catalog is sealed with a checksum and cross-checked against the
//! tablets it names: a missing, edited or inconsistent catalog refuses to
//! open with a sentence naming the file or the table, never a panic or a
//! silently empty or wrong cluster.

mod common;

use std::path::Path;

use common::*;
use std::sync::Arc;

use tabletsnap::catalog::Table;
use tabletsnap::cluster::Cluster;
use tabletsnap::meta_store::MetaStore;

fn store_path(home: &Path) -> std::path::PathBuf {
    home.join("meta.redb")
}

fn open_err(home: &Path, backends: u32) -> String {
    match Cluster::open(home, backends) {
        Ok(_) => panic!("{} opened", home.display()),
        Err(e) => format!("{e:#}"),
    }
}

/// Changes the stored catalog through the store's own API (valid checksums),
/// so only the structural checks and the cross-check can catch the change.
fn rewrite(home: &Path, f: impl FnOnce(&mut Table)) {
    let store = MetaStore::open(home).expect("store");
    let old = store.load_catalog().expect("catalog");
    let mut new = old.clone();
    let t = new
        .databases
        .get_mut("d")
        .and_then(|d| d.tables.get_mut("t"))
        .expect("table d.t");
    f(Arc::make_mut(t));
    store.write(Some(&old), &new).expect("write");
}

fn home_with_table(home: &Path) {
    let mut s = open(home);
    make_db_and_table(&mut s, "d", "t", 3);
}

#[test]
fn a_home_with_data_but_no_catalog_refuses_to_open() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("h");
    home_with_table(&home);
    std::fs::remove_file(store_path(&home)).expect("rm");
    let msg = open_err(&home, 3);
    assert_mentions(&msg, &["meta.redb", "missing", &home.display().to_string()]);
    assert!(!store_path(&home).exists(), "no empty catalog was written");
}

#[test]
fn an_edited_catalog_is_caught() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("h");
    home_with_table(&home);
    let bytes = std::fs::read(store_path(&home)).expect("store");
    let (from, to) = (b"\"visible_version\":4", b"\"visible_version\":3");
    let mut edited = bytes.clone();
    let mut hits = 0;
    for i in 0..edited.len().saturating_sub(from.len()) {
        if &edited[i..i + from.len()] == from {
            edited[i..i + to.len()].copy_from_slice(to);
            hits += 1;
        }
    }
    assert!(hits > 0, "the fixture stores a partition at version 4");
    std::fs::write(store_path(&home), edited).expect("write");
    let msg = open_err(&home, 3);
    assert_mentions(&msg, &["meta.redb"]);
    assert!(
        msg.contains("changed outside tabletsnap") || msg.to_lowercase().contains("corrupt"),
        "{msg}"
    );
}

#[test]
fn a_bucket_count_that_does_not_match_the_tablets_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("h");
    home_with_table(&home);
    rewrite(&home, |t| t.buckets = 3);
    assert_mentions(&open_err(&home, 3), &["'d.t'", "2 tablets for 3 buckets"]);
}

#[test]
fn a_catalog_ahead_of_its_tablets_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("h");
    home_with_table(&home);
    rewrite(&home, |t| {
        Arc::make_mut(&mut t.partitions[0]).visible_version = 9
    });
    assert_mentions(
        &open_err(&home, 3),
        &[
            "'d.t'",
            "partition 'p1'",
            "version 9",
            "holds only up to version 4",
        ],
    );
}

#[test]
fn a_backend_count_out_of_range_creates_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("h");
    for n in [0, 65, 100_000] {
        assert_mentions(&open_err(&home, n), &["1 to 64 backends", &n.to_string()]);
        assert!(!home.exists(), "{} was created", home.display());
    }
}

#[test]
fn a_json_catalog_of_an_older_home_is_imported_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("h");
    std::fs::create_dir_all(&home).expect("home");
    let mut old = tabletsnap::catalog::Catalog::new(3);
    old.format_version = 1;
    std::fs::write(
        home.join("catalog.json"),
        serde_json::to_vec_pretty(&old).expect("json"),
    )
    .expect("write");
    let mut s = open(&home);
    sql(&mut s, "CREATE DATABASE d");
    drop(s);
    assert!(!home.join("catalog.json").exists());
    assert!(home.join("catalog.json.imported").exists());
    let mut s = open(&home);
    assert_eq!(
        column(&rows(&mut s, "SHOW DATABASES"), "Database"),
        vec!["d"]
    );
}
