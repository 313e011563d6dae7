//! Parser tests for SHOW, users, repositories, BACKUP, RESTORE and CANCEL.

use super::tests::{names, parse, props, s};
use crate::sql::ast::*;

#[test]
fn shows() {
    assert_eq!(parse("SHOW DATABASES"), Statement::ShowDatabases);
    assert_eq!(parse("show tables"), Statement::ShowTables { db: None });
    assert_eq!(
        parse("SHOW PARTITIONS FROM d.t"),
        Statement::ShowPartitions {
            table: QualifiedName::qualified("d", "t")
        }
    );
    let tablets = Statement::ShowTablets {
        table: QualifiedName::bare("t"),
    };
    assert_eq!(parse("SHOW TABLET FROM t"), tablets);
    assert_eq!(parse("show tablets from t"), tablets);
    assert_eq!(parse("SHOW REPOSITORIES"), Statement::ShowRepositories);
    assert_eq!(parse("SHOW BACKUP"), Statement::ShowBackup { db: None });
    assert_eq!(
        parse("SHOW BACKUP FROM d"),
        Statement::ShowBackup { db: Some(s("d")) }
    );
    assert_eq!(parse("SHOW RESTORE"), Statement::ShowRestore { db: None });
    assert_eq!(
        parse("show restore from `d`"),
        Statement::ShowRestore { db: Some(s("d")) }
    );
}

#[test]
fn show_snapshot() {
    assert_eq!(
        parse("SHOW SNAPSHOT ON repo"),
        Statement::ShowSnapshot {
            repo: s("repo"),
            filter: None
        }
    );
    assert_eq!(
        parse(r#"SHOW SNAPSHOT ON repo WHERE SNAPSHOT = "nightly""#),
        Statement::ShowSnapshot {
            repo: s("repo"),
            filter: Some(SnapshotFilter {
                snapshot: s("nightly"),
                timestamp: None
            })
        }
    );
    assert_eq!(
        parse("show snapshot on repo where snapshot = 'n' and timestamp = '2024-01-02-03-04-05'"),
        Statement::ShowSnapshot {
            repo: s("repo"),
            filter: Some(SnapshotFilter {
                snapshot: s("n"),
                timestamp: Some(s("2024-01-02-03-04-05"))
            })
        }
    );
}

#[test]
fn users() {
    assert_eq!(
        parse("CREATE USER alice"),
        Statement::CreateUser {
            name: s("alice"),
            password: None
        }
    );
    assert_eq!(
        parse("create user 'bob smith'"),
        Statement::CreateUser {
            name: s("bob smith"),
            password: None
        }
    );
    assert_eq!(
        parse("create user `carol`"),
        Statement::CreateUser {
            name: s("carol"),
            password: None
        }
    );
}

#[test]
fn repositories() {
    let repo = |broker, properties| {
        Statement::CreateRepository(CreateRepository {
            name: s("oss"),
            broker,
            location: s("file:///data/repo"),
            properties,
            read_only: false,
        })
    };
    assert_eq!(
        parse(r#"CREATE REPOSITORY oss ON LOCATION "file:///data/repo""#),
        repo(None, vec![])
    );
    match parse(r#"CREATE READ ONLY REPOSITORY oss ON LOCATION "file:///data/repo""#) {
        Statement::CreateRepository(cr) => assert!(cr.read_only),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parse(r#"CREATE REPOSITORY oss WITH BROKER ON LOCATION 'file:///data/repo'"#),
        repo(Some(Broker { name: None }), vec![])
    );
    assert_eq!(
        parse(
            r#"create repository `oss` with broker hdfs_broker on location "file:///data/repo"
               properties ("username" = "u", "password" = "")"#
        ),
        repo(
            Some(Broker {
                name: Some(s("hdfs_broker"))
            }),
            props(&[("username", "u"), ("password", "")])
        )
    );
    assert_eq!(
        parse("DROP REPOSITORY oss"),
        Statement::DropRepository { name: s("oss") }
    );
}

#[test]
fn backup() {
    assert_eq!(
        parse("BACKUP SNAPSHOT snap1 TO repo"),
        Statement::Backup(Backup {
            label: QualifiedName::bare("snap1"),
            repo: s("repo"),
            tables: vec![],
            exclude: vec![],
            properties: vec![],
        })
    );
    assert_eq!(
        parse(
            r#"backup snapshot d.snap1 to repo
               on (t1 partition (p1, p2), `t2`)
               properties ("type" = "full", "timeout" = 3600)"#
        ),
        Statement::Backup(Backup {
            label: QualifiedName::qualified("d", "snap1"),
            repo: s("repo"),
            tables: vec![
                TableRef {
                    name: s("t1"),
                    partitions: names(&["p1", "p2"]),
                    alias: None
                },
                TableRef {
                    name: s("t2"),
                    partitions: vec![],
                    alias: None
                },
            ],
            exclude: vec![],
            properties: props(&[("type", "full"), ("timeout", "3600")]),
        })
    );
}

#[test]
fn restore() {
    assert_eq!(
        parse(
            r#"RESTORE SNAPSHOT d.snap1 FROM repo
               ON (t1 PARTITION (p1) AS t1_copy, t2 AS t2b, t3)
               PROPERTIES ("backup_timestamp" = "2024-01-02-03-04-05", "replication_num" = "3",
                           "allow_load" = "false", "timeout" = "600")"#
        ),
        Statement::Restore(Restore {
            label: QualifiedName::qualified("d", "snap1"),
            repo: s("repo"),
            source_db: None,
            tables: vec![
                TableRef {
                    name: s("t1"),
                    partitions: names(&["p1"]),
                    alias: Some(s("t1_copy"))
                },
                TableRef {
                    name: s("t2"),
                    partitions: vec![],
                    alias: Some(s("t2b"))
                },
                TableRef {
                    name: s("t3"),
                    partitions: vec![],
                    alias: None
                },
            ],
            properties: props(&[
                ("backup_timestamp", "2024-01-02-03-04-05"),
                ("replication_num", "3"),
                ("allow_load", "false"),
                ("timeout", "600"),
            ]),
        })
    );
    assert_eq!(
        parse("restore snapshot snap1 from repo"),
        Statement::Restore(Restore {
            label: QualifiedName::bare("snap1"),
            repo: s("repo"),
            source_db: None,
            tables: vec![],
            properties: vec![],
        })
    );
}

#[test]
fn cancel() {
    assert_eq!(parse("CANCEL BACKUP"), Statement::CancelBackup { db: None });
    assert_eq!(
        parse("cancel backup from d"),
        Statement::CancelBackup { db: Some(s("d")) }
    );
    assert_eq!(
        parse("CANCEL RESTORE"),
        Statement::CancelRestore { db: None }
    );
    assert_eq!(
        parse("Cancel Restore From d"),
        Statement::CancelRestore { db: Some(s("d")) }
    );
}

#[test]
fn starrocks_3_4_forms_mean_the_seed_forms() {
    let seed =
        parse("BACKUP SNAPSHOT d.s TO r ON (t PARTITION (p1), u) PROPERTIES ('timeout' = '60')");
    let new = parse(
        "BACKUP DATABASE d SNAPSHOT s TO r ON (TABLE t PARTITION (p1), TABLE u) \
         PROPERTIES ('timeout' = '60')",
    );
    assert_eq!(seed, new);
    assert_eq!(
        parse("BACKUP DATABASE d SNAPSHOT s TO r ON (ALL TABLES)"),
        parse("BACKUP SNAPSHOT d.s TO r")
    );
    let Statement::Backup(b) = parse("BACKUP SNAPSHOT d.s TO r EXCLUDE (t1, `t2`)") else {
        panic!("not a backup")
    };
    assert_eq!(b.exclude, names(&["t1", "t2"]));
    assert!(b.tables.is_empty());

    let Statement::Restore(r) = parse(
        "RESTORE SNAPSHOT s FROM r DATABASE d AS d2 ON (TABLE t PARTITION (p) AS t2) \
         PROPERTIES ('backup_timestamp' = 'x')",
    ) else {
        panic!("not a restore")
    };
    assert_eq!(r.label, QualifiedName::qualified("d2", "s"));
    assert_eq!(r.source_db, Some(s("d")));
    assert_eq!(r.tables[0].alias, Some(s("t2")));
    let Statement::Restore(r) = parse("RESTORE SNAPSHOT s FROM r DATABASE d") else {
        panic!("not a restore")
    };
    assert_eq!(r.label, QualifiedName::qualified("d", "s"));
    // A table named `all` is still a table.
    let Statement::Backup(b) = parse("BACKUP SNAPSHOT d.s TO r ON (all)") else {
        panic!("not a backup")
    };
    assert_eq!(b.tables[0].name, "all");
}

#[test]
fn passwords_help_and_brokers() {
    assert_eq!(
        parse("CREATE USER 'bob' IDENTIFIED BY 'pw'"),
        Statement::CreateUser {
            name: s("bob"),
            password: Some(s("pw"))
        }
    );
    assert_eq!(
        parse("SET PASSWORD FOR 'bob' = PASSWORD('x')"),
        Statement::SetPassword {
            user: Some(s("bob")),
            password: s("x")
        }
    );
    assert_eq!(
        parse("set password = 'y'"),
        Statement::SetPassword {
            user: None,
            password: s("y")
        }
    );
    assert_eq!(
        parse("DROP USER IF EXISTS bob"),
        Statement::DropUser {
            name: s("bob"),
            if_exists: true
        }
    );
    assert_eq!(parse("HELP"), Statement::Help { topic: s("") });
    assert_eq!(
        parse("help show   snapshot"),
        Statement::Help {
            topic: s("SHOW SNAPSHOT")
        }
    );
    assert_eq!(parse("SHOW BROKER"), Statement::ShowBroker);
}
