//! Backup timestamps have whole seconds: backups of one label started
//! back to back (a script running statements, as the README's examples do)
//! each get a timestamp of their own and all finish. The second of two in
//! one second used to be cancelled when it found the first committed under
//! its timestamp.

mod common;

use common::*;

#[test]
fn back_to_back_backups_of_a_label_all_finish_with_distinct_timestamps() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let loc = file_location(&tmp.path().join("repo"));
    let mut a = source_with_repository(&tmp.path().join("a"), &loc, 1);
    // A small table backs up in well under a second: of three in a row, at
    // least two start within one second.
    let mut stamps: Vec<String> = (0..3)
        .map(|_| timestamp(&backup(&mut a, "BACKUP SNAPSHOT d.nightly TO r")))
        .collect();
    stamps.sort();
    stamps.dedup();
    assert_eq!(stamps.len(), 3, "{stamps:?}");
    let listed = rows(&mut a, "SHOW SNAPSHOT ON r WHERE SNAPSHOT = \"nightly\"");
    assert_eq!(listed.rows.len(), 3, "{listed:?}");
}
