//! Two clusters share a repository and a label: each one's incremental
//! backup reuses its own earlier backup, even when the other cluster's
//! backup under the same label is newer (its tablets are not ours, so none
//! of its files could ever be reused).

mod common;

use common::*;

#[test]
fn a_newer_backup_of_another_cluster_does_not_hide_our_own() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let loc = file_location(&tmp.path().join("repo"));
    let mut a = source_with_repository(&tmp.path().join("a"), &loc, 3);
    let h1 = backup(&mut a, "BACKUP SNAPSHOT d.nightly TO r");
    let d1 = data(&h1);
    assert!(d1.new_files > 0, "{d1:?}");

    // Another cluster backs up its own table under the same label, later.
    let mut b = source_with_repository(&tmp.path().join("b"), &loc, 2);
    next_second();
    let hb = backup(&mut b, "BACKUP SNAPSHOT d.nightly TO r");
    assert!(timestamp(&hb) > timestamp(&h1));

    // A's next backup of the label reuses A's first: only the new row's
    // files are new.
    sql(&mut a, "INSERT INTO t VALUES (5, 1, 'x')");
    next_second();
    let h2 = backup(&mut a, "BACKUP SNAPSHOT d.nightly TO r");
    let d2 = data(&h2);
    assert!(d2.reused_files > 0, "nothing reused: {d2:?}");
    assert!(
        d2.new_files < d1.new_files,
        "{d2:?} against the first {d1:?}"
    );

    // And it restores to A's table.
    let sum = checksum(&mut a, "t");
    let mut c = target_with_repository(&tmp.path().join("c"), &loc);
    restore(&mut c, &restore_stmt(&h2, "r", "", ""));
    assert_eq!(checksum(&mut c, "t"), sum);
}
