//! Catch-up restore for migration: after a backup restored on cluster B,
//! RESTORE of a later backup of the same source with `"catch_up" = "true"`
//! downloads and appends only the versions B lacks, and ends checksum-equal
//! to the source; a chain that does not match is refused with the reason.

mod common;

use std::sync::atomic::Ordering;

use common::*;
use tabletsnap::exec::Session;

/// Segment files and bytes of the source's rowsets above each partition's
/// `base` version (what a catch-up from `base` must fetch), and the number of
/// tablets in partitions with such versions.
fn new_files(a: &Session, base: &[(&str, u64)]) -> (u64, u64, u64) {
    let cat = a.cluster().catalog();
    let t = cat.table("d", "t").expect("table");
    let (mut files, mut bytes, mut tablets) = (0, 0, 0);
    for (name, v) in base {
        let p = t.partition(name).expect("partition");
        if p.visible_version == *v {
            continue;
        }
        for tab in &p.tablets {
            tablets += 1;
            let be = a.cluster().local_backend(tab.replicas[0]).expect("backend");
            let m = be.engine().tablet_meta(tab.id).expect("meta");
            for rs in m.rowsets.iter().filter(|r| r.start_version > *v) {
                files += rs.segments.len() as u64;
                bytes += rs.segments.iter().map(|s| s.size).sum::<u64>();
            }
        }
    }
    (files, bytes, tablets)
}

fn versions(s: &mut Session) -> Vec<(String, u64)> {
    let cat = s.cluster().catalog();
    let t = cat.table("d", "t").expect("table");
    t.partitions
        .iter()
        .map(|p| (p.name.clone(), p.visible_version))
        .collect()
}

struct Pair {
    _tmp: tempfile::TempDir,
    a: Session,
    b: Session,
    n: u32,
}

impl Pair {
    /// A source with table d.t (3 partitions, 3 loads) and a target that
    /// restored its first backup.
    fn new() -> Pair {
        let tmp = tempfile::tempdir().expect("tempdir");
        let loc = file_location(&tmp.path().join("repo"));
        let a = source_with_repository(&tmp.path().join("a"), &loc, 3);
        let b = target_with_repository(&tmp.path().join("b"), &loc);
        let mut p = Pair {
            _tmp: tmp,
            a,
            b,
            n: 0,
        };
        let ts = p.backup();
        restore(
            &mut p.b,
            &format!(
                "RESTORE SNAPSHOT d.snap1 FROM r ON (t) PROPERTIES (\"backup_timestamp\" = \"{ts}\")"
            ),
        );
        p
    }

    /// Backs up d.t on A as `snap<n>` (labels differ, so two backups in one
    /// second do not collide); returns the timestamp.
    fn backup(&mut self) -> String {
        self.n += 1;
        let h = backup(
            &mut self.a,
            &format!("BACKUP SNAPSHOT d.snap{} TO r ON (t)", self.n),
        );
        timestamp(&h)
    }
}

fn catch_up_stmt(n: u32, ts: &str) -> String {
    format!(
            "RESTORE SNAPSHOT d.snap{n} FROM r ON (t) PROPERTIES (\"backup_timestamp\" = \"{ts}\", \"catch_up\" = \"true\")"
        )
}

#[test]
fn catch_up_downloads_only_new_versions_and_ends_equal() {
    let mut p = Pair::new();
    let full = last_job(&p.b);
    let full_files = full.progress.files_done.load(Ordering::Relaxed);
    assert_eq!(checksum(&mut p.b, "t"), checksum(&mut p.a, "t"));
    let untouched = |s: &Session| {
        let cat = s.cluster().catalog();
        let t = cat.table("d", "t").expect("table");
        let tab = &t.partition("p3").expect("p3").tablets[0];
        let be = s.cluster().local_backend(tab.replicas[0]).expect("backend");
        be.engine().tablet_meta(tab.id).expect("meta").rowsets
    };
    for round in 0..2u64 {
        let base = versions(&mut p.b);
        let p3_before = untouched(&p.b);
        // New versions in p1 (two loads) and p2 (one); p3 unchanged.
        sql(
            &mut p.a,
            &format!("INSERT INTO t VALUES (1, {round}, 'x'), (2, 2, 'y')"),
        );
        sql(&mut p.a, "INSERT INTO t VALUES (3, 3, 'z')");
        sql(&mut p.a, "INSERT INTO t VALUES (15, 15, 'w')");
        let ts = p.backup();
        let base_ref: Vec<(&str, u64)> = base.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        let (files, bytes, tablets) = new_files(&p.a, &base_ref);
        assert_eq!(tablets, 4, "p1 and p2, 2 buckets each");
        let h = restore(&mut p.b, &catch_up_stmt(p.n, &ts));
        assert_eq!(checksum(&mut p.b, "t"), checksum(&mut p.a, "t"));
        assert_eq!(all_rows(&mut p.b, "t"), all_rows(&mut p.a, "t"));
        assert_eq!(versions(&mut p.b), versions(&mut p.a));
        // Only the new rowsets' files, plus each caught-up tablet's meta.
        let got_files = h.progress.files_done.load(Ordering::Relaxed);
        let got_bytes = h.progress.bytes_done.load(Ordering::Relaxed);
        assert_eq!(got_files, files + tablets, "round {round}");
        assert!(
            got_bytes >= bytes && got_bytes <= bytes + tablets * 16 * 1024,
            "round {round}: {got_bytes} bytes downloaded for {bytes} new"
        );
        assert!(
            got_files < full_files,
            "{got_files} files vs {full_files} in the full restore"
        );
        // The partition with nothing new was not touched at all.
        assert_eq!(untouched(&p.b), p3_before);
    }
    // Nothing new: a catch-up finishes without downloading anything.
    let ts = p.backup();
    let h = restore(&mut p.b, &catch_up_stmt(p.n, &ts));
    assert_eq!(h.progress.files_done.load(Ordering::Relaxed), 0);
    assert_eq!(checksum(&mut p.b, "t"), checksum(&mut p.a, "t"));
    // Restored tables are ordinary tables afterwards.
    sql(&mut p.b, "INSERT INTO t VALUES (4, 4, 'after')");
    assert!(snapshot_leftovers(p.b.cluster().home()).is_empty());
}

#[test]
fn a_chain_that_does_not_match_is_refused_and_changes_nothing() {
    let mut p = Pair::new();
    sql(&mut p.a, "INSERT INTO t VALUES (1, 1, 'x')");
    let ts2 = p.backup();

    // Loaded on the target since the restore.
    sql(&mut p.b, "INSERT INTO t VALUES (5, 5, 'local')");
    let before = checksum(&mut p.b, "t");
    let e = err(&mut p.b, &catch_up_stmt(2, &ts2));
    assert_mentions(&e, &["partition 'p1'", "loaded since it was restored"]);
    assert_eq!(checksum(&mut p.b, "t"), before);
    // Not fenced: loads still go in. A plain restore still overwrites.
    sql(&mut p.b, "INSERT INTO t VALUES (6, 6, 'again')");
    restore(
        &mut p.b,
        &format!(
            "RESTORE SNAPSHOT d.snap2 FROM r ON (t) PROPERTIES (\"backup_timestamp\" = \"{ts2}\")"
        ),
    );
    assert_eq!(checksum(&mut p.b, "t"), checksum(&mut p.a, "t"));

    // An older snapshot than the one restored.
    let ts1 = match p.a.started_jobs().first().map(|h| h.record()) {
        Some(tabletsnap::job::JobRecord::Backup(j)) => j.timestamp,
        other => panic!("no first backup: {other:?}"),
    };
    sql(&mut p.a, "INSERT INTO t VALUES (1, 1, 'x')");
    let e = err(&mut p.b, &catch_up_stmt(1, &ts1));
    assert_mentions(&e, &["older than the version", "restored"]);

    // A different source table restored under the same name.
    make_table(&mut p.a, "u", 1);
    sql(&mut p.a, "INSERT INTO u GENERATE 12 ROWS SEED 9");
    let h = backup(&mut p.a, "BACKUP SNAPSHOT d.other TO r ON (u)");
    let tsu = timestamp(&h);
    restore(
        &mut p.b,
        &format!(
            "RESTORE SNAPSHOT d.other FROM r ON (u AS t) PROPERTIES (\"backup_timestamp\" = \"{tsu}\")"
        ),
    );
    let ts3 = p.backup();
    let e = err(&mut p.b, &catch_up_stmt(p.n, &ts3));
    assert_mentions(&e, &["not the same source", "catch_up"]);

    // A table no restore made, and a table that does not exist.
    make_table(&mut p.b, "fresh", 1);
    let e = err(
        &mut p.b,
        &format!(
            "RESTORE SNAPSHOT d.snap{} FROM r ON (t AS fresh) PROPERTIES (\"backup_timestamp\" = \"{ts3}\", \"catch_up\" = \"true\")",
            p.n
        ),
    );
    assert_mentions(&e, &["not made by a RESTORE"]);
    let e = err(
        &mut p.b,
        &format!(
            "RESTORE SNAPSHOT d.snap{} FROM r ON (t AS nothere) PROPERTIES (\"backup_timestamp\" = \"{ts3}\", \"catch_up\" = \"true\")",
            p.n
        ),
    );
    assert_mentions(&e, &["does not exist", "catch_up"]);
}

#[test]
fn a_source_that_merged_the_restored_version_cancels_the_catch_up() {
    let mut p = Pair::new();
    sql(&mut p.a, "INSERT INTO t VALUES (1, 1, 'x')");
    sql(&mut p.a, "INSERT INTO t VALUES (2, 2, 'y')");
    // Compaction on the source merges the restored version 4 with 5 and 6.
    {
        let cat = p.a.cluster().catalog().clone();
        let part = cat.table("d", "t").expect("t").partition("p1").cloned();
        let part = part.expect("p1");
        assert_eq!(part.visible_version, 6);
        for tab in &part.tablets {
            let be = p.a.cluster().local_backend(tab.replicas[0]).expect("be");
            be.engine().compact(tab.id, 3, 6, 6).expect("compact");
        }
    }
    let ts = p.backup();
    let before = checksum(&mut p.b, "t");
    sql(&mut p.b, &catch_up_stmt(p.n, &ts));
    let h = last_job(&p.b);
    assert_eq!(wait(&h), "CANCELLED");
    assert_mentions(&status(&h), &["cannot catch up", "version 4"]);
    assert_eq!(checksum(&mut p.b, "t"), before);
    sql(&mut p.b, "INSERT INTO t VALUES (7, 7, 'still loadable')");
    assert!(snapshot_leftovers(p.b.cluster().home()).is_empty());
}

#[test]
fn a_source_rolled_back_by_an_overwrite_restore_cannot_be_caught_up() {
    let mut p = Pair::new();
    let ts1 = match p.a.started_jobs().first().map(|h| h.record()) {
        Some(tabletsnap::job::JobRecord::Backup(j)) => j.timestamp,
        other => panic!("no first backup: {other:?}"),
    };
    // B catches up to a later version of p1.
    sql(&mut p.a, "INSERT INTO t VALUES (1, 1, 'first')");
    let ts2 = p.backup();
    restore(&mut p.b, &catch_up_stmt(p.n, &ts2));
    assert_eq!(checksum(&mut p.b, "t"), checksum(&mut p.a, "t"));
    // A rolls t back to its first backup, then loads other data: p1 is at
    // the version B holds again, but that version names other rows now.
    restore(
        &mut p.a,
        &format!(
            "RESTORE SNAPSHOT d.snap1 FROM r ON (t) PROPERTIES (\"backup_timestamp\" = \"{ts1}\")"
        ),
    );
    sql(&mut p.a, "INSERT INTO t VALUES (1, 1, 'other')");
    assert_eq!(versions(&mut p.a), versions(&mut p.b));
    let ts3 = p.backup();
    let before = checksum(&mut p.b, "t");
    assert_ne!(before, checksum(&mut p.a, "t"));
    let e = err(&mut p.b, &catch_up_stmt(p.n, &ts3));
    assert_mentions(&e, &["partition 'p1'", "replaced since", "catch_up"]);
    assert_eq!(checksum(&mut p.b, "t"), before);
    // A plain restore makes B equal to A again, and the chain goes on from it.
    restore(
        &mut p.b,
        &format!(
            "RESTORE SNAPSHOT d.snap{} FROM r ON (t) PROPERTIES (\"backup_timestamp\" = \"{ts3}\")",
            p.n
        ),
    );
    assert_eq!(checksum(&mut p.b, "t"), checksum(&mut p.a, "t"));
    sql(&mut p.a, "INSERT INTO t VALUES (2, 2, 'next')");
    let ts4 = p.backup();
    restore(&mut p.b, &catch_up_stmt(p.n, &ts4));
    assert_eq!(checksum(&mut p.b, "t"), checksum(&mut p.a, "t"));
}
