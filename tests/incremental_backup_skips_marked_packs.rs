//! An incremental backup never builds on a pack that a pending-delete marker
//! names (another cluster's GC may delete it once the marker's grace has
//! passed): with every pack of the previous backup marked, nothing is
//! carried over and nothing reused, so the new backup stands on packs of its
//! own, verifies and restores.

mod common;

use std::sync::Arc;

use common::*;
use tabletsnap_transfer::gc::{PendingDelete, PENDING_PREFIX};
use tabletsnap_transfer::{LocalFs, Repository};

#[test]
fn marked_packs_are_neither_carried_nor_reused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut a = open(&tmp.path().join("a"));
    make_db_and_table(&mut a, "d", "t", 3);
    let repo_dir = tmp.path().join("repo");
    let loc = file_location(&repo_dir);
    sql(
        &mut a,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    let h1 = backup(&mut a, "BACKUP SNAPSHOT d.n TO r");
    let d1 = data(&h1);
    assert!(d1.new_files > 0, "{d1:?}");

    // A GC pass elsewhere found the first backup's packs unreferenced
    // (say it saw the backup dropped) and marked them.
    let repo = Repository::open(
        Arc::new(LocalFs::new(&repo_dir).expect("repository dir")),
        "r",
    )
    .expect("opening the repository");
    let mut packs: Vec<String> = repo
        .referenced_packs()
        .expect("packs of the backup")
        .into_iter()
        .collect();
    packs.sort();
    assert!(!packs.is_empty());
    let marker = PendingDelete {
        created_ms: tabletsnap_engine::engine::now_ms(),
        packs,
    };
    repo.backend()
        .put(
            &repo.key(&format!("{PENDING_PREFIX}1-test")),
            &marker.encode(),
        )
        .expect("writing the marker");

    // Nothing changed on the source, yet every tablet is uploaded again.
    next_second();
    let h2 = backup(&mut a, "BACKUP SNAPSHOT d.n TO r");
    let d2 = data(&h2);
    assert_eq!((d2.reused_files, d2.reused_bytes), (0, 0), "{d2:?}");
    assert_eq!(
        (d2.new_files, d2.new_bytes),
        (d1.new_files, d1.new_bytes),
        "{d2:?}"
    );
    let v = rows(
        &mut a,
        &format!(
            "VERIFY SNAPSHOT n ON r WHERE TIMESTAMP = \"{}\"",
            timestamp(&h2)
        ),
    );
    assert_eq!(only(&v, "Status"), "OK", "{v:?}");

    // The second backup restores to the source's checksum.
    let sum = checksum(&mut a, "t");
    let mut b = target_with_repository(&tmp.path().join("b"), &loc);
    restore(&mut b, &restore_stmt(&h2, "r", "", ""));
    assert_eq!(checksum(&mut b, "t"), sum);
}
