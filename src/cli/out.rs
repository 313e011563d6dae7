//! What `sql` and `shell` print, in the mysql client's style, written so that
//! a closed stdout (`| head`) is an error to act on, not a panic.

use std::io::{self, Write};
use std::time::Duration;

use tabletsnap::exec::Output;
use tabletsnap::sql::format::{render_box, render_vertical, rows_in_set};
use tabletsnap::sql::render_batch;

/// Writes to stdout and flushes, so a closed pipe shows up here as
/// [`io::ErrorKind::BrokenPipe`] (Rust ignores SIGPIPE, and `print!` would panic).
pub fn write_stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Whether an error means the reader of stdout went away: a normal end.
pub fn is_broken_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

/// How results print.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// `--batch`: tab-separated rows under a header, no status lines.
    pub batch: bool,
    /// A blank line after each result, as the interactive mysql client does.
    pub blank_line: bool,
}

/// Renders one statement's output: a table (or vertical rows after `\G`)
/// with `N rows in set (0.00 sec)`, or a status line.
pub fn render(out: &Output, style: Style, vertical: bool, elapsed: Duration) -> String {
    let mut text = match out {
        Output::Rows(rs) if vertical => {
            let mut s = render_vertical(rs);
            if !style.batch {
                s.push_str(&rows_in_set(rs.rows.len(), Some(elapsed)));
            }
            s
        }
        Output::Rows(rs) if style.batch => render_batch(rs),
        Output::Rows(rs) => render_box(rs) + &rows_in_set(rs.rows.len(), Some(elapsed)),
        Output::Message(_) if style.batch => String::new(),
        Output::Message(m) if m.starts_with("Database changed") => {
            // mysql says just this; the executor names the database.
            return "Database changed\n".to_string();
        }
        Output::Message(m) if m.starts_with("Query OK") => {
            format!("{m} ({:.2} sec)\n", elapsed.as_secs_f64())
        }
        Output::Message(m) => format!("{m}\n"),
    };
    if style.blank_line && !text.is_empty() {
        text.push('\n');
    }
    text
}

/// One line for stderr, as the mysql client prints server errors:
/// `ERROR 1064 (42000): ...` for syntax errors, 1045, 1227, 1049, 1146 as
/// MySQL, `ERROR 1105 (HY000): ...` (StarRocks' catch-all) for the rest
/// ([`tabletsnap::errcode`] classifies).
pub fn error_line(e: &anyhow::Error) -> String {
    tabletsnap::errcode::error_line(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tabletsnap::sql::ResultSet;

    #[test]
    fn messages_and_tables_read_like_mysql() {
        let style = Style {
            batch: false,
            blank_line: false,
        };
        let t = Duration::from_millis(10);
        let msg = |m: &str| render(&Output::Message(m.into()), style, false, t);
        assert_eq!(msg("Database changed to d"), "Database changed\n");
        assert_eq!(
            msg("Query OK, 1 row affected"),
            "Query OK, 1 row affected (0.01 sec)\n"
        );
        let empty = Output::Rows(ResultSet::new(["a"]));
        assert_eq!(render(&empty, style, false, t), "Empty set (0.01 sec)\n");
        assert_eq!(render(&empty, style, true, t), "Empty set (0.01 sec)\n");
        let batch = Style {
            batch: true,
            blank_line: false,
        };
        assert_eq!(render(&empty, batch, false, t), "a\n");
        assert_eq!(render(&Output::Message("x".into()), batch, false, t), "");
    }

    #[test]
    fn syntax_errors_have_their_own_code() {
        let parse = tabletsnap::sql::parse_statements("SELEC 1").expect_err("a syntax error");
        let e = anyhow::Error::from(parse);
        assert!(error_line(&e).starts_with("ERROR 1064 (42000): syntax error at line 1"));
        let e = anyhow::anyhow!("unknown database 'x'\nsecond line");
        assert_eq!(
            error_line(&e),
            "ERROR 1105 (HY000): unknown database 'x' second line"
        );
    }
}
