//! Parser tests for databases, tables and data statements, plus shared helpers.

use super::{parse_statement, parse_statements};
use crate::sql::ast::*;

/// Parses one statement or fails the test with the error.
pub(super) fn parse(text: &str) -> Statement {
    match parse_statement(text) {
        Ok(s) => s,
        Err(e) => panic!("{text:?} did not parse: {e}"),
    }
}

/// The error message for text that must not parse.
pub(super) fn error(text: &str) -> String {
    match parse_statements(text) {
        Ok(s) => panic!("{text:?} parsed: {s:?}"),
        Err(e) => e.to_string(),
    }
}

pub(super) fn s(v: &str) -> String {
    v.to_string()
}

pub(super) fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|n| n.to_string()).collect()
}

pub(super) fn props(v: &[(&str, &str)]) -> Properties {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn databases() {
    assert_eq!(
        parse("CREATE DATABASE d"),
        Statement::CreateDatabase {
            name: s("d"),
            if_not_exists: false
        }
    );
    assert_eq!(
        parse("create database if not exists `my db`;"),
        Statement::CreateDatabase {
            name: s("my db"),
            if_not_exists: true
        }
    );
    assert_eq!(
        parse("DROP DATABASE d"),
        Statement::DropDatabase {
            name: s("d"),
            if_exists: false
        }
    );
    assert_eq!(
        parse("Drop Database If Exists d"),
        Statement::DropDatabase {
            name: s("d"),
            if_exists: true
        }
    );
    assert_eq!(parse("use `sales`"), Statement::Use { db: s("sales") });
}

#[test]
fn create_table_full() {
    let text = r#"
        CREATE TABLE IF NOT EXISTS d.sales (
            dt DATE NOT NULL,
            id BIGINT,
            `key` INTEGER NULL,
            name VARCHAR(64),
            price DOUBLE,
            ok BOOL,
            flag BOOLEAN,
            at DATETIME,
            n INT
        )
        DUPLICATE KEY(dt, id)
        PARTITION BY RANGE(dt) (
            PARTITION p1 VALUES LESS THAN ("2024-01-01"),
            PARTITION p2 VALUES LESS THAN (100),
            PARTITION p3 VALUES LESS THAN (MAXVALUE),
            PARTITION pmax VALUES LESS THAN MAXVALUE
        )
        DISTRIBUTED BY HASH(id, dt) BUCKETS 8
        PROPERTIES ("replication_num" = "3", "storage_medium" = "SSD")
    "#;
    let col = |name: &str, ty, nullable| ColumnDef {
        name: s(name),
        ty,
        nullable,
    };
    let part = |name: &str, bound| RangePartition {
        name: s(name),
        bound,
    };
    assert_eq!(
        parse(text),
        Statement::CreateTable(CreateTable {
            if_not_exists: true,
            name: QualifiedName::qualified("d", "sales"),
            columns: vec![
                col("dt", ColumnType::Date, false),
                col("id", ColumnType::BigInt, true),
                col("key", ColumnType::Int, true),
                col("name", ColumnType::Varchar(64), true),
                col("price", ColumnType::Double, true),
                col("ok", ColumnType::Boolean, true),
                col("flag", ColumnType::Boolean, true),
                col("at", ColumnType::DateTime, true),
                col("n", ColumnType::Int, true),
            ],
            duplicate_key: Some(names(&["dt", "id"])),
            partition: Some(PartitionSpec {
                column: s("dt"),
                partitions: vec![
                    part(
                        "p1",
                        PartitionBound::LessThan(Literal::String(s("2024-01-01")))
                    ),
                    part("p2", PartitionBound::LessThan(Literal::Int(100))),
                    part("p3", PartitionBound::MaxValue),
                    part("pmax", PartitionBound::MaxValue),
                ],
            }),
            distribution: Distribution {
                columns: names(&["id", "dt"]),
                buckets: 8,
            },
            properties: props(&[("replication_num", "3"), ("storage_medium", "SSD")]),
        })
    );
}

#[test]
fn create_table_minimal() {
    assert_eq!(
        parse("create table t (k int, date date) distributed by hash(k) buckets 1"),
        Statement::CreateTable(CreateTable {
            if_not_exists: false,
            name: QualifiedName::bare("t"),
            columns: vec![
                ColumnDef {
                    name: s("k"),
                    ty: ColumnType::Int,
                    nullable: true
                },
                ColumnDef {
                    name: s("date"),
                    ty: ColumnType::Date,
                    nullable: true
                },
            ],
            duplicate_key: None,
            partition: None,
            distribution: Distribution {
                columns: names(&["k"]),
                buckets: 1
            },
            properties: vec![],
        })
    );
}

#[test]
fn drop_table() {
    assert_eq!(
        parse("DROP TABLE t"),
        Statement::DropTable {
            name: QualifiedName::bare("t"),
            if_exists: false
        }
    );
    assert_eq!(
        parse("drop table if exists `d`.`t`"),
        Statement::DropTable {
            name: QualifiedName::qualified("d", "t"),
            if_exists: true
        }
    );
}

#[test]
fn insert_values() {
    assert_eq!(
        parse(r#"INSERT INTO d.t (a, `b`) VALUES (1, 'x;y'), (-2.5, NULL), (true, "z")"#),
        Statement::InsertValues(InsertValues {
            table: QualifiedName::qualified("d", "t"),
            columns: Some(names(&["a", "b"])),
            rows: vec![
                vec![Literal::Int(1), Literal::String(s("x;y"))],
                vec![Literal::Float(-2.5), Literal::Null],
                vec![Literal::Bool(true), Literal::String(s("z"))],
            ],
        })
    );
    assert_eq!(
        parse("insert into t values (FALSE)"),
        Statement::InsertValues(InsertValues {
            table: QualifiedName::bare("t"),
            columns: None,
            rows: vec![vec![Literal::Bool(false)]],
        })
    );
}

#[test]
fn insert_generate() {
    assert_eq!(
        parse("INSERT INTO t GENERATE 1000 ROWS"),
        Statement::InsertGenerate(InsertGenerate {
            table: QualifiedName::bare("t"),
            partitions: vec![],
            rows: 1000,
            seed: None,
        })
    );
    assert_eq!(
        parse("insert into d.t partition (p1, p2) generate 5 rows seed 42"),
        Statement::InsertGenerate(InsertGenerate {
            table: QualifiedName::qualified("d", "t"),
            partitions: names(&["p1", "p2"]),
            rows: 5,
            seed: Some(42),
        })
    );
}

#[test]
fn selects_and_checksum() {
    assert_eq!(
        parse("SELECT COUNT(*) FROM d.t"),
        Statement::SelectCount {
            table: QualifiedName::qualified("d", "t")
        }
    );
    assert_eq!(
        parse("select count ( * ) from t"),
        Statement::SelectCount {
            table: QualifiedName::bare("t")
        }
    );
    assert_eq!(
        parse("SELECT * FROM t"),
        Statement::SelectAll {
            table: QualifiedName::bare("t"),
            limit: None
        }
    );
    assert_eq!(
        parse("SeLeCt * FrOm t LiMiT 10"),
        Statement::SelectAll {
            table: QualifiedName::bare("t"),
            limit: Some(10)
        }
    );
    assert_eq!(
        parse("CHECKSUM TABLE t"),
        Statement::Checksum {
            tables: vec![QualifiedName::bare("t")]
        }
    );
    assert_eq!(
        parse("checksum table t, d2.t2, `t 3`"),
        Statement::Checksum {
            tables: vec![
                QualifiedName::bare("t"),
                QualifiedName::qualified("d2", "t2"),
                QualifiedName::bare("t 3"),
            ]
        }
    );
}

#[test]
fn keywords_any_case_names_as_written() {
    assert_eq!(
        parse("sHoW tAbLeS fRoM MyDb"),
        Statement::ShowTables {
            db: Some(s("MyDb"))
        }
    );
    // Backquotes make a reserved word a name.
    assert_eq!(
        parse("SELECT * FROM `select`.`from`"),
        Statement::SelectAll {
            table: QualifiedName::qualified("select", "from"),
            limit: None
        }
    );
}

#[test]
fn several_statements_with_comments_and_semicolons_in_strings() {
    let text = "-- set up\n\
        CREATE DATABASE d; ;\n\
        /* a ; in a comment */ USE d;\n\
        INSERT INTO t VALUES ('a;b', \"c;d\", 'e\\';f');\n\
        SHOW TABLES -- trailing comment ;\n\
        ;;";
    let statements = match parse_statements(text) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        statements,
        vec![
            Statement::CreateDatabase {
                name: s("d"),
                if_not_exists: false
            },
            Statement::Use { db: s("d") },
            Statement::InsertValues(InsertValues {
                table: QualifiedName::bare("t"),
                columns: None,
                rows: vec![vec![
                    Literal::String(s("a;b")),
                    Literal::String(s("c;d")),
                    Literal::String(s("e';f")),
                ]],
            }),
            Statement::ShowTables { db: None },
        ]
    );
    assert_eq!(parse_statements(" ; -- nothing\n ;"), Ok(vec![]));
    assert_eq!(parse_statements(""), Ok(vec![]));
}
