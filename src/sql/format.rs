//! Result tables as the mysql client shows them: boxed, or tab-separated (`mysql -B`).

use std::fmt::Display;

/// How a SQL NULL appears in a cell.
pub const NULL: &str = "NULL";

/// The result of a statement: named columns and rows of display strings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResultSet {
    /// Column headers.
    pub columns: Vec<String>,
    /// Rows; each cell is already formatted, NULL as [`NULL`].
    pub rows: Vec<Vec<String>>,
}

impl ResultSet {
    /// An empty result with these column headers.
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> Self {
        ResultSet {
            columns: columns.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn push_row<S: Into<String>>(&mut self, row: impl IntoIterator<Item = S>) {
        self.rows.push(row.into_iter().map(Into::into).collect());
    }
}

/// Formats an optional value as a cell: `None` becomes [`NULL`].
pub fn cell<T: Display>(value: Option<T>) -> String {
    value.map_or_else(|| NULL.to_string(), |v| v.to_string())
}

/// Renders like the mysql client: `+---+` borders, left-aligned cells, then
/// `N rows in set`; a result without rows is `Empty set`.
///
/// Widths count characters, not bytes. A cell with newlines spans several lines
/// of its row (mysql would break the box). Rows shorter than the header are
/// padded with empty cells.
pub fn render_table(result: &ResultSet) -> String {
    if result.rows.is_empty() {
        return "Empty set\n".to_string();
    }
    let ncols = result
        .rows
        .iter()
        .map(Vec::len)
        .chain([result.columns.len()])
        .max()
        .unwrap_or(0);
    let mut widths = vec![0usize; ncols];
    for row in std::iter::once(&result.columns).chain(&result.rows) {
        for (width, value) in widths.iter_mut().zip(row) {
            let widest = value.split('\n').map(|l| l.chars().count()).max();
            *width = (*width).max(widest.unwrap_or(0));
        }
    }
    let mut border = String::from("+");
    for width in &widths {
        border.push_str(&"-".repeat(width + 2));
        border.push('+');
    }
    border.push('\n');

    let mut out = border.clone();
    push_row(&mut out, &result.columns, &widths);
    out.push_str(&border);
    for row in &result.rows {
        push_row(&mut out, row, &widths);
    }
    out.push_str(&border);
    let n = result.rows.len();
    out.push_str(&format!(
        "{n} {} in set\n",
        if n == 1 { "row" } else { "rows" }
    ));
    out
}

fn push_row(out: &mut String, row: &[String], widths: &[usize]) {
    let lines: Vec<Vec<&str>> = widths
        .iter()
        .enumerate()
        .map(|(i, _)| row.get(i).map_or(vec![""], |v| v.split('\n').collect()))
        .collect();
    let height = lines.iter().map(Vec::len).max().unwrap_or(1);
    for line in 0..height {
        out.push('|');
        for (cell_lines, width) in lines.iter().zip(widths) {
            let text = cell_lines.get(line).copied().unwrap_or("");
            out.push(' ');
            out.push_str(text);
            out.push_str(&" ".repeat(width - text.chars().count()));
            out.push_str(" |");
        }
        out.push('\n');
    }
}

/// Renders like `mysql -B`: a header line, then one line per row, fields
/// separated by tabs, with tab, newline, NUL and backslash escaped as `\t`,
/// `\n`, `\0` and `\\`.
pub fn render_batch(result: &ResultSet) -> String {
    let mut out = String::new();
    for row in std::iter::once(&result.columns).chain(&result.rows) {
        let fields: Vec<String> = row.iter().map(|v| escape_batch(v)).collect();
        out.push_str(&fields.join("\t"));
        out.push('\n');
    }
    out
}

fn escape_batch(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ResultSet {
        let mut rs = ResultSet::new(["TabletId", "Name", "Size"]);
        rs.push_row(["10001", "p1", "1024"]);
        rs.push_row(["10002".to_string(), "été".to_string(), cell(None::<u64>)]);
        rs
    }

    #[test]
    fn table_is_boxed_left_aligned_and_counted() {
        assert_eq!(
            render_table(&sample()),
            "+----------+------+------+\n\
             | TabletId | Name | Size |\n\
             +----------+------+------+\n\
             | 10001    | p1   | 1024 |\n\
             | 10002    | été  | NULL |\n\
             +----------+------+------+\n\
             2 rows in set\n"
        );
    }

    #[test]
    fn table_singular_empty_and_ragged() {
        let mut one = ResultSet::new(["Count"]);
        one.push_row([cell(Some(42))]);
        assert_eq!(
            render_table(&one),
            "+-------+\n| Count |\n+-------+\n| 42    |\n+-------+\n1 row in set\n"
        );
        assert_eq!(render_table(&ResultSet::new(["a"])), "Empty set\n");
        let mut ragged = ResultSet::new(["a"]);
        ragged.push_row(["x", "yy"]);
        ragged.push_row(Vec::<String>::new());
        assert_eq!(
            render_table(&ragged),
            "+---+----+\n| a |    |\n+---+----+\n| x | yy |\n|   |    |\n+---+----+\n\
             2 rows in set\n"
        );
    }

    #[test]
    fn table_multiline_cell_spans_lines() {
        let mut rs = ResultSet::new(["Snapshot", "Details"]);
        rs.push_row(["s1", "db/\n  t1/"]);
        assert_eq!(
            render_table(&rs),
            "+----------+---------+\n\
             | Snapshot | Details |\n\
             +----------+---------+\n\
             | s1       | db/     |\n\
             |          |   t1/   |\n\
             +----------+---------+\n\
             1 row in set\n"
        );
    }

    #[test]
    fn batch_is_tab_separated_with_escapes() {
        assert_eq!(
            render_batch(&sample()),
            "TabletId\tName\tSize\n10001\tp1\t1024\n10002\tété\tNULL\n"
        );
        let mut rs = ResultSet::new(["v"]);
        rs.push_row(["a\tb\nc\\d\0e"]);
        assert_eq!(render_batch(&rs), "v\na\\tb\\nc\\\\d\\0e\n");
        assert_eq!(render_batch(&ResultSet::new(["a", "b"])), "a\tb\n");
    }
}
