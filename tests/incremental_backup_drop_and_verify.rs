//! End to end through SQL: a second backup of a table uploads only the
//! changed rowsets and restores with the same checksum; "type" = "full"
//! reuses nothing; DROP SNAPSHOT un-lists a backup while a later one that
//! points into its packs still verifies and restores; retention keeps the
//! newest N; VERIFY names the damaged tablet.

mod common;

use common::*;

/// The first pack file under `dir` whose path contains `needle`.
fn find_file(dir: &std::path::Path, needle: &str) -> Option<std::path::PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains(needle)
                && p.extension().is_some_and(|x| x == "pack")
            {
                return Some(p);
            }
        }
    }
    None
}

#[test]
fn incremental_backup_drop_retention_and_verify() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut a = open(&tmp.path().join("a"));
    make_db_and_table(&mut a, "d", "t", 3);
    let repo_dir = tmp.path().join("repo");
    let loc = file_location(&repo_dir);
    // A misspelt property is refused, not ignored.
    let e = err(
        &mut a,
        &format!("CREATE REPOSITORY r ON LOCATION \"{loc}\" PROPERTIES (\"retention\" = \"2\")"),
    );
    assert_mentions(
        &e,
        &["unknown property", "\"retention\"", "retention_count"],
    );
    sql(
        &mut a,
        &format!(
            "CREATE REPOSITORY r ON LOCATION \"{loc}\" PROPERTIES (\"retention_count\" = \"2\")"
        ),
    );
    let h1 = backup(&mut a, "BACKUP SNAPSHOT d.n TO r");
    let d1 = data(&h1);
    assert_eq!(d1.reused_files, 0, "{d1:?}");
    // One new version in one partition.
    sql(&mut a, "INSERT INTO t VALUES (5, 1, 'x')");
    let sum2 = checksum(&mut a, "t");
    next_second();
    let h2 = backup(&mut a, "BACKUP SNAPSHOT d.n TO r");
    let d2 = data(&h2);
    assert!(d2.reused_files > 0, "{d2:?}");
    assert!(d2.new_bytes < d1.new_bytes / 2, "{d1:?} vs {d2:?}");
    let show_backup = rows(&mut a, "SHOW BACKUP");
    assert!(column(&show_backup, "Data")
        .iter()
        .any(|d| d.contains(&format!("reused: {} files", d2.reused_files))));
    let details = only(
        &rows(
            &mut a,
            &format!(
                "SHOW SNAPSHOT ON r WHERE SNAPSHOT = \"n\" AND TIMESTAMP = \"{}\"",
                timestamp(&h2)
            ),
        ),
        "Details",
    );
    assert!(
        details.contains(&format!("reused: {} files", d2.reused_files)),
        "{details}"
    );

    // A full backup shares nothing.
    let hf = backup(
        &mut a,
        "BACKUP SNAPSHOT d.f TO r PROPERTIES (\"type\" = \"full\")",
    );
    assert_eq!(data(&hf).reused_files, 0);

    // Dropping the first backup leaves the second whole.
    assert_mentions(
        &err(
            &mut a,
            "DROP SNAPSHOT n ON r WHERE TIMESTAMP = \"1999-01-01-00-00-00\"",
        ),
        &["'n'", "not found", "SHOW SNAPSHOT ON r"],
    );
    // A timestamp that is not one, or an impossible date, is named as such.
    for (ts, needle) in [
        ("garbage", "must look like"),
        ("2026-02-30-10-00-00", "no day 30"),
        ("2026-13-01-10-00-00", "month 13"),
    ] {
        let e = err(
            &mut a,
            &format!("DROP SNAPSHOT n ON r WHERE TIMESTAMP = \"{ts}\""),
        );
        assert_mentions(&e, &[ts, needle]);
    }
    sql(
        &mut a,
        &format!(
            "DROP SNAPSHOT n ON r WHERE TIMESTAMP = \"{}\"",
            timestamp(&h1)
        ),
    );
    let listed = rows(&mut a, "SHOW SNAPSHOT ON r");
    assert_eq!(column(&listed, "Timestamp").len(), 2, "{listed:?}");
    let v = rows(
        &mut a,
        &format!(
            "VERIFY SNAPSHOT n ON r WHERE TIMESTAMP = \"{}\"",
            timestamp(&h2)
        ),
    );
    assert_eq!(only(&v, "Status"), "OK", "{v:?}");
    let q = rows(
        &mut a,
        "VERIFY SNAPSHOT n ON r PROPERTIES (\"quick\" = \"true\")",
    );
    assert_eq!(only(&q, "BytesRead"), "0");

    let mut b = target_with_repository(&tmp.path().join("b"), &loc);
    restore(&mut b, &restore_stmt(&h2, "r", "", ""));
    assert_eq!(checksum(&mut b, "t"), sum2);

    // Retention: a third and a fourth backup of "n" keep the newest two.
    next_second();
    let h3 = backup(&mut a, "BACKUP SNAPSHOT d.n TO r");
    next_second();
    let h4 = backup(&mut a, "BACKUP SNAPSHOT d.n TO r");
    let listed = rows(&mut a, "SHOW SNAPSHOT ON r");
    let mut ts: Vec<String> = listed
        .rows
        .iter()
        .filter(|r| r[0] == "n")
        .map(|r| r[1].clone())
        .collect();
    ts.sort();
    assert_eq!(ts, vec![timestamp(&h3), timestamp(&h4)]);
    let v = rows(&mut a, "VERIFY SNAPSHOT n ON r");
    assert_eq!(column(&v, "Status"), vec!["OK", "OK"]);

    // Damage one pack byte: VERIFY names the tablet, quick does not read it.
    let pack = find_file(&repo_dir, "__ss_f/").expect("a pack of f");
    let mut bytes = std::fs::read(&pack).expect("read");
    bytes[0] ^= 0x40;
    std::fs::write(&pack, &bytes).expect("write");
    let v = rows(
        &mut a,
        &format!(
            "VERIFY SNAPSHOT n ON r WHERE TIMESTAMP = \"{}\"",
            timestamp(&h4)
        ),
    );
    let f = rows(
        &mut a,
        &format!(
            "VERIFY SNAPSHOT f ON r WHERE TIMESTAMP = \"{}\"",
            timestamp(&hf)
        ),
    );
    assert_eq!(only(&f, "Status"), "DAMAGED", "{f:?}");
    let damage = only(&f, "Damage");
    assert!(
        damage.contains("tablet ") && damage.contains("checksum mismatch"),
        "{damage}"
    );
    let _ = v;
    let q = rows(
        &mut a,
        &format!(
            "VERIFY SNAPSHOT f ON r WHERE TIMESTAMP = \"{}\" PROPERTIES (\"quick\" = \"true\")",
            timestamp(&hf)
        ),
    );
    assert_eq!(only(&q, "Status"), "OK");

    // DROP SNAPSHOT needs ADMIN.
    sql(&mut a, "CREATE USER bob");
    let mut bob =
        tabletsnap::exec::Session::new(std::sync::Arc::clone(a.cluster()), "bob").expect("session");
    assert_mentions(
        &err(&mut bob, "DROP SNAPSHOT n ON r"),
        &["permission denied", "DROP SNAPSHOT"],
    );
}
