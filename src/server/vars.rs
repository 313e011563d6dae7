//! What clients send on connect and between statements that is not a
//! tabletsnap statement: `SELECT @@version_comment LIMIT 1`, `SET NAMES`,
//! `SET autocommit`, `SELECT DATABASE()`, `SHOW VARIABLES LIKE ...`, ...,
//! answered as a MySQL server would, so that clients connect without warnings.

use crate::sql::ResultSet;

/// The server version in the greeting and `@@version`: StarRocks's MySQL
/// compatibility version, then ours.
pub fn version() -> String {
    format!("8.0.33-tabletsnap-{}", env!("CARGO_PKG_VERSION"))
}

/// The answer to a connection-level statement.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// A result set.
    Rows(ResultSet),
    /// OK, nothing changed.
    Ok,
    /// An unknown system variable (1193).
    UnknownVariable(String),
}

/// Session variables with fixed values.
fn variables() -> Vec<(&'static str, String)> {
    let s = |v: &str| v.to_string();
    vec![
        ("auto_increment_increment", s("1")),
        ("autocommit", s("1")),
        ("character_set_client", s("utf8mb4")),
        ("character_set_connection", s("utf8mb4")),
        ("character_set_database", s("utf8mb4")),
        ("character_set_results", s("utf8mb4")),
        ("character_set_server", s("utf8mb4")),
        ("collation_connection", s("utf8mb4_general_ci")),
        ("collation_database", s("utf8mb4_general_ci")),
        ("collation_server", s("utf8mb4_general_ci")),
        ("init_connect", s("")),
        ("interactive_timeout", s("28800")),
        ("language", s("/")),
        ("license", s("Apache-2.0")),
        ("lower_case_table_names", s("0")),
        ("max_allowed_packet", s("67108864")),
        ("net_buffer_length", s("16384")),
        ("net_write_timeout", s("60")),
        ("performance_schema", s("0")),
        ("query_cache_size", s("0")),
        ("query_cache_type", s("OFF")),
        // Empty: no unix socket to switch to (the mysql crate asks on connect).
        ("socket", s("")),
        ("sql_auto_is_null", s("0")),
        ("sql_mode", s("")),
        ("sql_select_limit", s("18446744073709551615")),
        ("system_time_zone", s("UTC")),
        ("time_zone", s("SYSTEM")),
        ("transaction_isolation", s("REPEATABLE-READ")),
        ("transaction_read_only", s("0")),
        ("tx_isolation", s("REPEATABLE-READ")),
        ("tx_read_only", s("0")),
        ("version", version()),
        (
            "version_comment",
            s("tabletsnap: StarRocks-style BACKUP and RESTORE"),
        ),
        ("wait_timeout", s("28800")),
    ]
}

fn variable(name: &str) -> Option<String> {
    let name = name.to_ascii_lowercase();
    let name = name
        .strip_prefix("session.")
        .or_else(|| name.strip_prefix("global."))
        .or_else(|| name.strip_prefix("local."))
        .unwrap_or(&name);
    variables()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// SQL `LIKE` with `%` and `_`, case-insensitive.
fn like(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('_', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t
                .split_first()
                .is_some_and(|(x, tr)| x.eq_ignore_ascii_case(c) && go(rest, tr)),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    for q in ['\'', '"', '`'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|x| x.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

/// The answer to `text` if it is a connection-level statement; `None`
/// hands it to the statement executor.
pub fn answer(text: &str, db: Option<&str>, user: &str, conn_id: u32) -> Option<Reply> {
    let t = text.trim().trim_end_matches(';').trim();
    let lower = t.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    match words.as_slice() {
        ["set", "password", ..] => None,
        ["set", ..] => Some(Reply::Ok),
        ["start", "transaction", ..] | ["begin"] | ["commit"] | ["rollback"] => Some(Reply::Ok),
        ["show", "warnings", ..] | ["show", "errors", ..] => {
            Some(Reply::Rows(ResultSet::new(["Level", "Code", "Message"])))
        }
        ["show", "variables", ..] | ["show", "session" | "global" | "local", "variables", ..] => {
            let pattern = lower
                .find(" like ")
                .map(|i| unquote(&t[i + " like ".len()..]).to_string());
            let mut rs = ResultSet::new(["Variable_name", "Value"]);
            for (name, value) in variables() {
                if pattern.as_deref().is_none_or(|p| like(p, name)) {
                    rs.push_row([name.to_string(), value]);
                }
            }
            Some(Reply::Rows(rs))
        }
        ["select", ..] => select(t, db, user, conn_id),
        _ => None,
    }
}

/// `SELECT @@a, @@b [LIMIT 1]`, `SELECT DATABASE()`, `SELECT 1`, ...
fn select(t: &str, db: Option<&str>, user: &str, conn_id: u32) -> Option<Reply> {
    let body = t.get("select".len()..)?.trim();
    let lower = body.to_ascii_lowercase();
    let body = match lower.rfind(" limit ") {
        Some(i) => &body[..i],
        None => body,
    };
    let mut rs = ResultSet::new(Vec::<String>::new());
    let mut row = Vec::new();
    for item in body.split(',') {
        let item = item.trim();
        let li = item.to_ascii_lowercase();
        let (expr, alias) = match li.find(" as ") {
            Some(i) => (item[..i].trim(), Some(unquote(&item[i + 4..]).to_string())),
            None => (item, None),
        };
        let le = expr.to_ascii_lowercase().replace(' ', "");
        let value = if let Some(var) = le.strip_prefix("@@") {
            match variable(var) {
                Some(v) => Some(v),
                None => return Some(Reply::UnknownVariable(var.to_string())),
            }
        } else {
            match le.as_str() {
                "database()" | "schema()" => db.map(str::to_string),
                "user()" | "current_user()" | "session_user()" | "system_user()" => {
                    Some(format!("{user}@%"))
                }
                "version()" => Some(version()),
                "connection_id()" => Some(conn_id.to_string()),
                n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Some(n.to_string()),
                _ => return None,
            }
        };
        rs.columns.push(alias.unwrap_or_else(|| expr.to_string()));
        row.push(value.unwrap_or_else(|| crate::sql::format::NULL.to_string()));
    }
    rs.rows.push(row);
    Some(Reply::Rows(rs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> ResultSet {
        match answer(text, Some("d"), "root", 7) {
            Some(Reply::Rows(rs)) => rs,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn connect_statements_are_answered() {
        let rs = rows("select @@version_comment limit 1");
        assert_eq!(rs.columns, ["@@version_comment"]);
        assert!(rs.rows[0][0].starts_with("tabletsnap"));
        assert_eq!(rows("SELECT DATABASE()").rows, [["d"]]);
        let rs = rows("SELECT @@session.auto_increment_increment AS auto_increment_increment, @@max_allowed_packet");
        assert_eq!(
            rs.columns,
            ["auto_increment_increment", "@@max_allowed_packet"]
        );
        assert_eq!(rs.rows, [["1", "67108864"]]);
        assert_eq!(rows("SHOW VARIABLES LIKE 'lower_case_%'").rows.len(), 1);
        assert_eq!(rows("SELECT 1").rows, [["1"]]);
        assert_eq!(answer("SET NAMES utf8mb4", None, "u", 1), Some(Reply::Ok));
        assert_eq!(answer("set autocommit=1", None, "u", 1), Some(Reply::Ok));
        assert_eq!(answer("SET PASSWORD = 'x'", None, "u", 1), None);
        assert_eq!(answer("SELECT COUNT(*) FROM t", None, "u", 1), None);
        assert_eq!(answer("SELECT * FROM t", None, "u", 1), None);
        assert!(matches!(
            answer("SELECT @@nope", None, "u", 1),
            Some(Reply::UnknownVariable(_))
        ));
    }
}
