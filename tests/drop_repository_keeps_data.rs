//! DROP REPOSITORY removes the name only: the backups stay at the location,
//! and re-creating the repository (here or in another home) lists and
//! restores them.

mod common;

use common::*;

#[test]
fn dropping_a_repository_keeps_its_backups() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = open(&tmp.path().join("home"));
    make_db_and_table(&mut s, "d", "t", 2);
    let dir = tmp.path().join("repo");
    let loc = file_location(&dir);
    sql(
        &mut s,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    let sum = checksum(&mut s, "t");
    let h = backup(&mut s, "BACKUP SNAPSHOT d.kept TO r");
    let listed = rows(&mut s, "SHOW SNAPSHOT ON r");
    let files = files_containing(&dir, "__ss_kept");
    assert!(!files.is_empty());

    sql(&mut s, "DROP REPOSITORY r");
    assert!(rows(&mut s, "SHOW REPOSITORIES").rows.is_empty());
    assert_mentions(
        &err(&mut s, "SHOW SNAPSHOT ON r"),
        &["unknown repository 'r'"],
    );
    assert_mentions(
        &err(&mut s, &restore_stmt(&h, "r", "ON (t AS x)", "")),
        &["'r'"],
    );
    assert_eq!(files_containing(&dir, "__ss_kept"), files);

    sql(
        &mut s,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\""),
    );
    assert_eq!(rows(&mut s, "SHOW SNAPSHOT ON r"), listed);
    restore(&mut s, &restore_stmt(&h, "r", "ON (t AS back)", ""));
    assert_eq!(checksum(&mut s, "back"), sum);
    // The SHOW BACKUP history survives the drop too.
    assert_eq!(only(&rows(&mut s, "SHOW BACKUP"), "State"), "FINISHED");
}
