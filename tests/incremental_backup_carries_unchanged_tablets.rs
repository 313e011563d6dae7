//! An incremental backup carries the tablets that did not change since the
//! previous backup over from its manifest: no snapshot, no upload, not even
//! of their tablet metas. Tablets whose version moved (even with no new
//! file: an empty rowset) are snapshotted and uploaded. The backup restores,
//! in full and as a catch-up, to the source's checksum.

mod common;

use std::sync::Arc;

use common::*;
use tabletsnap_transfer::{LocalFs, Repository, SnapshotId};

#[test]
fn unchanged_tablets_are_carried_and_restore_exactly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut a = open(&tmp.path().join("a"));
    // 3 partitions x 2 buckets: 6 tablets, 3 versions of rows each.
    make_db_and_table(&mut a, "d", "t", 3);
    let loc = file_location(&tmp.path().join("repo"));
    sql(
        &mut a,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    let h1 = backup(&mut a, "BACKUP SNAPSHOT d.n TO r");
    let d1 = data(&h1);

    let mut b = target_with_repository(&tmp.path().join("b"), &loc);
    restore(&mut b, &restore_stmt(&h1, "r", "", ""));

    // Nothing changed: every tablet is carried, nothing at all is uploaded.
    next_second();
    let h2 = backup(&mut a, "BACKUP SNAPSHOT d.n TO r");
    let d2 = data(&h2);
    assert_eq!((d2.new_files, d2.new_bytes), (0, 0), "{d2:?}");
    assert_eq!(
        (d2.reused_files, d2.reused_bytes),
        (d1.new_files, d1.new_bytes),
        "{d2:?}"
    );
    assert!(snapshot_leftovers(&tmp.path().join("a")).is_empty());

    // One row into p1: both of p1's tablets get a version (one of them an
    // empty rowset, no file); p2 and p3 stay as they were.
    sql(&mut a, "INSERT INTO t VALUES (5, 1, 'x')");
    let sum3 = checksum(&mut a, "t");
    next_second();
    let h3 = backup(&mut a, "BACKUP SNAPSHOT d.n TO r");
    let d3 = data(&h3);
    // Uploaded: p1's two tablet metas and the one new segment file. The old
    // path re-uploaded all 6 tablet metas (a meta's crc never identifies it).
    assert_eq!(d3.new_files, 3, "{d3:?}");
    assert_eq!(d3.new_files + d3.reused_files, d1.new_files + 1, "{d3:?}");

    // The manifests as stored: h2 holds no entry and borrows all 6 from h1's
    // manifest; h3 holds p1's two entries and borrows the other 4 straight
    // from h1's manifest (one level, never through h2's).
    let repo = Repository::open(
        Arc::new(LocalFs::new(tmp.path().join("repo")).expect("repository dir")),
        "r",
    )
    .expect("repository");
    let id = |h| SnapshotId::new("n", &timestamp(h)).expect("id");
    let m1_key = Repository::manifest_key(&id(&h1));
    let s2 = repo
        .read_stored_manifest(&id(&h2), None)
        .expect("h2's manifest");
    assert!(s2.entries.tablets.is_empty(), "{s2:?}");
    let sources: Vec<(&str, usize)> = s2
        .borrowed
        .iter()
        .map(|b| (b.manifest.as_str(), b.tablets.len()))
        .collect();
    assert_eq!(sources, vec![(m1_key.as_str(), 6)]);
    let s3 = repo
        .read_stored_manifest(&id(&h3), None)
        .expect("h3's manifest");
    assert_eq!(s3.entries.tablets.len(), 2, "{s3:?}");
    let sources: Vec<(&str, usize)> = s3
        .borrowed
        .iter()
        .map(|b| (b.manifest.as_str(), b.tablets.len()))
        .collect();
    assert_eq!(sources, vec![(m1_key.as_str(), 4)]);
    // Resolved, h3's manifest is whole: 6 tablets.
    assert_eq!(
        repo.read_manifest(&id(&h3))
            .expect("resolved")
            .tablets
            .len(),
        6
    );
    let v = rows(
        &mut a,
        &format!(
            "VERIFY SNAPSHOT n ON r WHERE TIMESTAMP = \"{}\"",
            timestamp(&h3)
        ),
    );
    assert_eq!(only(&v, "Status"), "OK", "{v:?}");

    // A catch-up of the change onto cluster b, and a full restore into c.
    restore(
        &mut b,
        &restore_stmt(&h3, "r", "", "\"catch_up\" = \"true\""),
    );
    assert_eq!(checksum(&mut b, "t"), sum3);
    let mut c = target_with_repository(&tmp.path().join("c"), &loc);
    restore(&mut c, &restore_stmt(&h3, "r", "", ""));
    assert_eq!(checksum(&mut c, "t"), sum3);

    // Dropping the backups the entries were carried from leaves the last
    // one whole: its manifest references their packs, so GC keeps them.
    for h in [&h1, &h2] {
        sql(
            &mut a,
            &format!(
                "DROP SNAPSHOT n ON r WHERE TIMESTAMP = \"{}\"",
                timestamp(h)
            ),
        );
    }
    // A sweep past the grace deletes h2's manifest (nothing borrows from it)
    // and keeps h1's, which h3 borrows from.
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
        + 2 * tabletsnap_transfer::DEFAULT_GC_GRACE_MS;
    let r = repo
        .gc(later, tabletsnap_transfer::DEFAULT_GC_GRACE_MS)
        .expect("gc");
    assert_eq!((r.manifests_deleted, r.packs_deleted), (1, 0), "{r:?}");
    let exists = |h| {
        let key = repo.key(&Repository::manifest_key(&id(h)));
        repo.backend().head(&key).expect("head").is_some()
    };
    assert!(exists(&h1) && !exists(&h2));
    let v = rows(
        &mut a,
        &format!(
            "VERIFY SNAPSHOT n ON r WHERE TIMESTAMP = \"{}\"",
            timestamp(&h3)
        ),
    );
    assert_eq!(only(&v, "Status"), "OK", "{v:?}");
    let mut e = target_with_repository(&tmp.path().join("e"), &loc);
    restore(&mut e, &restore_stmt(&h3, "r", "", ""));
    assert_eq!(checksum(&mut e, "t"), sum3);
}
