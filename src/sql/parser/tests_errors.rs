//! Parser error messages (position and expectation) and a no-panic fuzz loop.

use super::tests::error;
use super::{parse_statement, parse_statements};
use crate::sql::error::{ParseErrorKind, Pos};

#[test]
fn unexpected_keyword_names_expectation_and_position() {
    assert_eq!(
        error("BACKUP SNAPSHOT s FROM repo"),
        "syntax error at line 1, column 19: expected TO, found \"FROM\""
    );
    assert_eq!(
        error("RESTORE SNAPSHOT s TO repo"),
        "syntax error at line 1, column 20: expected FROM, found \"TO\""
    );
    let e = match parse_statements("SELEKT 1") {
        Err(e) => e,
        Ok(s) => panic!("parsed {s:?}"),
    };
    assert_eq!(e.pos, Pos::START);
    assert_eq!(e.found(), Some("\"SELEKT\""));
    assert_eq!(
        e.expected(),
        Some(
            "a statement (CREATE, DROP, INSERT, SELECT, CHECKSUM, USE, SHOW, BACKUP, \
             RESTORE, CANCEL, VERIFY, ALTER, SET or HELP)"
        )
    );
}

#[test]
fn optional_clauses_are_listed_among_alternatives() {
    assert_eq!(
        error("SHOW TABLES SHOW DATABASES"),
        "syntax error at line 1, column 13: expected FROM, \";\" or end of input, found \"SHOW\""
    );
    assert_eq!(
        error("SELECT * FROM t WHERE x = 1"),
        "syntax error at line 1, column 17: expected LIMIT, \";\" or end of input, found \"WHERE\""
    );
    assert_eq!(
        error("CREATE TABLE t (a INT) BUCKETS 3"),
        "syntax error at line 1, column 24: expected DUPLICATE, PARTITION or DISTRIBUTED, \
         found \"BUCKETS\""
    );
    assert_eq!(
        error("INSERT INTO t"),
        "syntax error at line 1, column 14: expected PARTITION, VALUES, GENERATE or \"(\", \
         found end of input"
    );
    assert_eq!(
        error("BACKUP SNAPSHOT s TO r ON (t AS u)"),
        "syntax error at line 1, column 30: expected PARTITION, \",\" or \")\", found \"AS\""
    );
}

#[test]
fn end_of_input_and_names() {
    assert_eq!(
        error("CREATE TABLE"),
        "syntax error at line 1, column 13: expected IF or table name, found end of input"
    );
    assert_eq!(
        error("CREATE DATABASE from"),
        "syntax error at line 1, column 17: expected IF or database name \
         (FROM is reserved: write `from` to use it as a name), found \"from\""
    );
    assert_eq!(
        error("create"),
        "syntax error at line 1, column 7: expected DATABASE, TABLE, USER or REPOSITORY, \
         found end of input"
    );
    assert_eq!(
        error("SHOW SNAPSHOTS"),
        "syntax error at line 1, column 6: expected BACKENDS, DATABASES, TABLES, PARTITIONS, \
         TABLET, TABLETS, REPOSITORIES, BACKUP, RESTORE, SNAPSHOT or BROKER, found \"SNAPSHOTS\""
    );
}

#[test]
fn positions_span_lines_and_statements() {
    assert_eq!(
        error("SHOW TABLES;\nSHOW\n  TABLETS t"),
        "syntax error at line 3, column 11: expected FROM, found \"t\""
    );
    let e = match parse_statements("USE d;\n  SELECT 'abc") {
        Err(e) => e,
        Ok(s) => panic!("parsed {s:?}"),
    };
    assert_eq!(
        e.pos,
        Pos {
            offset: 16,
            line: 2,
            column: 10
        }
    );
    assert_eq!(
        e.to_string(),
        "syntax error at line 2, column 10: unterminated string literal (expected closing ')"
    );
}

#[test]
fn column_types() {
    assert_eq!(
        error("CREATE TABLE t (a VARCHAR, b INT) DISTRIBUTED BY HASH(b) BUCKETS 1"),
        "syntax error at line 1, column 26: expected (length) after VARCHAR, found \",\""
    );
    assert_eq!(
        error("CREATE TABLE t (a TEXT)"),
        "syntax error at line 1, column 19: expected column type (BOOLEAN, INT, BIGINT, \
         DOUBLE, DATE, DATETIME or VARCHAR(n)), found \"TEXT\""
    );
    assert_eq!(
        error("CREATE TABLE t (a VARCHAR(0))"),
        "syntax error at line 1, column 27: expected VARCHAR length (a positive integer), \
         found \"0\""
    );
    assert_eq!(
        error("CREATE TABLE t (a INT NOT) DISTRIBUTED BY HASH(a) BUCKETS 1"),
        "syntax error at line 1, column 26: expected NULL, found \")\""
    );
}

#[test]
fn numbers_out_of_range() {
    assert_eq!(
        error("CREATE TABLE t (a INT) DISTRIBUTED BY HASH(a) BUCKETS 0"),
        "syntax error at line 1, column 55: expected bucket count (a positive integer), found \"0\""
    );
    assert_eq!(
        error("CREATE TABLE t (a INT) DISTRIBUTED BY HASH(a) BUCKETS 4294967296"),
        "syntax error at line 1, column 55: expected bucket count (at most 4294967295), \
         found \"4294967296\""
    );
    assert_eq!(
        error("SELECT * FROM t LIMIT -1"),
        "syntax error at line 1, column 23: expected row limit (a non-negative integer), \
         found \"-1\""
    );
}

#[test]
fn duplicates_are_named() {
    let e = match parse_statements(
        r#"BACKUP SNAPSHOT s TO r PROPERTIES ("timeout" = "60", "timeout" = "70")"#,
    ) {
        Err(e) => e,
        Ok(s) => panic!("parsed {s:?}"),
    };
    assert_eq!(
        e.kind,
        ParseErrorKind::DuplicateProperty {
            key: "timeout".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "syntax error at line 1, column 54: property \"timeout\" is given twice"
    );
    assert_eq!(
        error("BACKUP SNAPSHOT s TO r ON (t1, t2 PARTITION (p), t1)"),
        "syntax error at line 1, column 50: table `t1` is listed twice in ON (...)"
    );
    assert_eq!(
        error("RESTORE SNAPSHOT s FROM r ON (t1 AS a, `t1` AS b)"),
        "syntax error at line 1, column 40: table `t1` is listed twice in ON (...)"
    );
}

#[test]
fn literals_where_required() {
    assert_eq!(
        error("BACKUP SNAPSHOT s TO r PROPERTIES (\"a\" = x)"),
        "syntax error at line 1, column 42: expected property value (a quoted string), found \"x\""
    );
    assert_eq!(
        error("BACKUP SNAPSHOT s TO r PROPERTIES (a = \"x\")"),
        "syntax error at line 1, column 36: expected property name (a quoted string), found \"a\""
    );
    assert_eq!(
        error("SHOW SNAPSHOT ON r WHERE SNAPSHOT = label"),
        "syntax error at line 1, column 37: expected snapshot label (a quoted string), \
         found \"label\""
    );
    assert_eq!(
        error("INSERT INTO t VALUES (1, x)"),
        "syntax error at line 1, column 26: expected a value (string, number, TRUE, FALSE \
         or NULL), found \"x\""
    );
    assert_eq!(
        error("CREATE REPOSITORY r ON LOCATION file"),
        "syntax error at line 1, column 33: expected location (a quoted string such as \
         \"file:///path\"), found \"file\""
    );
}

#[test]
fn parse_statement_wants_exactly_one() {
    match parse_statement("SHOW TABLES; SHOW DATABASES") {
        Err(e) => assert_eq!(
            e.to_string(),
            "syntax error at line 1, column 14: expected end of input (one statement only), \
             found \"SHOW\""
        ),
        Ok(s) => panic!("parsed {s:?}"),
    }
    match parse_statement(" ; ") {
        Err(e) => assert_eq!(e.pos.column, 4),
        Ok(s) => panic!("parsed {s:?}"),
    }
}

/// xorshift64*: a deterministic generator, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const VOCAB: &[&str] = &[
    "CREATE",
    "DROP",
    "TABLE",
    "DATABASE",
    "IF",
    "NOT",
    "EXISTS",
    "INSERT",
    "INTO",
    "VALUES",
    "SELECT",
    "COUNT",
    "FROM",
    "LIMIT",
    "SHOW",
    "TABLES",
    "TABLET",
    "BACKUP",
    "RESTORE",
    "SNAPSHOT",
    "TO",
    "ON",
    "PARTITION",
    "AS",
    "PROPERTIES",
    "WHERE",
    "AND",
    "TIMESTAMP",
    "REPOSITORY",
    "WITH",
    "BROKER",
    "LOCATION",
    "GENERATE",
    "ROWS",
    "SEED",
    "DISTRIBUTED",
    "BY",
    "HASH",
    "BUCKETS",
    "RANGE",
    "LESS",
    "THAN",
    "MAXVALUE",
    "VARCHAR",
    "INT",
    "NULL",
    "CANCEL",
    "USE",
    "t",
    "`x`",
    "d",
    "(",
    ")",
    ",",
    ";",
    ".",
    "=",
    "*",
    "1",
    "-2",
    "3.5",
    "'s'",
    "\"v\"",
    "--c\n",
    "/*c*/",
    "'",
    "`",
    "/*",
    "\n",
    "é",
    "\\",
    "9999999999999999999",
];

#[test]
fn random_input_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..4000 {
        let text = if i % 2 == 0 {
            let len = rng.below(64);
            let bytes: Vec<u8> = (0..len).map(|_| (rng.next() >> 56) as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            let len = rng.below(24);
            let words: Vec<&str> = (0..len).map(|_| VOCAB[rng.below(VOCAB.len())]).collect();
            words.join(if rng.below(4) == 0 { "" } else { " " })
        };
        if let Err(e) = parse_statements(&text) {
            assert!(e.pos.offset <= text.len(), "{text:?}: {e}");
            assert!(text.is_char_boundary(e.pos.offset), "{text:?}: {e}");
            assert!(e.pos.line >= 1 && e.pos.column >= 1, "{text:?}: {e}");
            assert!(e.to_string().starts_with("syntax error at line "));
        }
    }
}
