//! The catalog is sealed with a checksum and cross-checked against the
//! tablets it names: a missing, edited or inconsistent catalog refuses to
//! open with a sentence naming the file or the table, never a panic or a
//! silently empty or wrong cluster.

mod common;

use std::path::Path;

use common::*;
use tabletsnap::cluster::Cluster;

fn catalog_path(home: &Path) -> std::path::PathBuf {
    home.join("catalog.json")
}

fn open_err(home: &Path, backends: u32) -> String {
    match Cluster::open(home, backends) {
        Ok(_) => panic!("{} opened", home.display()),
        Err(e) => format!("{e:#}"),
    }
}

/// Rewrites the catalog through `f` and seals it again as tabletsnap would,
/// so only the structural checks can catch the change.
fn reseal(home: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let text = std::fs::read(catalog_path(home)).expect("catalog");
    let mut sealed: serde_json::Value = serde_json::from_slice(&text).expect("json");
    f(&mut sealed["catalog"]);
    let canonical = serde_json::to_vec(&sealed["catalog"]).expect("encode");
    sealed["crc32"] = crc32fast::hash(&canonical).into();
    std::fs::write(
        catalog_path(home),
        serde_json::to_vec_pretty(&sealed).expect("encode"),
    )
    .expect("write");
}

fn first_table(cat: &mut serde_json::Value) -> &mut serde_json::Value {
    &mut cat["databases"]["d"]["tables"]["t"]
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
    std::fs::remove_file(catalog_path(&home)).expect("rm");
    let msg = open_err(&home, 3);
    assert_mentions(
        &msg,
        &["catalog.json", "missing", &home.display().to_string()],
    );
    assert!(
        !catalog_path(&home).exists(),
        "no empty catalog was written"
    );
}

#[test]
fn an_edited_catalog_is_caught_by_its_checksum() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("h");
    home_with_table(&home);
    let text = std::fs::read_to_string(catalog_path(&home)).expect("catalog");
    let edited = text.replacen("\"visible_version\": 4", "\"visible_version\": 3", 1);
    assert_ne!(text, edited, "the fixture has a partition at version 4");
    std::fs::write(catalog_path(&home), edited).expect("write");
    assert_mentions(
        &open_err(&home, 3),
        &["catalog.json", "changed outside tabletsnap"],
    );
}

#[test]
fn a_bucket_count_that_does_not_match_the_tablets_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("h");
    home_with_table(&home);
    reseal(&home, |c| first_table(c)["buckets"] = 3.into());
    assert_mentions(&open_err(&home, 3), &["'d.t'", "2 tablets for 3 buckets"]);
}

#[test]
fn a_catalog_ahead_of_its_tablets_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("h");
    home_with_table(&home);
    reseal(&home, |c| {
        first_table(c)["partitions"][0]["visible_version"] = 9.into();
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
