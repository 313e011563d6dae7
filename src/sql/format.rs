//! Result tables as the mysql client shows them: boxed, vertical (`\G`), or
//! tab-separated (`mysql -B`).

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

/// Renders like the mysql client: `+---+` borders, numbers right-aligned and
/// everything else left-aligned, then `N rows in set`; a result without rows
/// is `Empty set`.
///
/// Widths count characters, not bytes. A cell with newlines spans several lines
/// of its row (mysql would break the box). Rows shorter than the header are
/// padded with empty cells.
pub fn render_table(result: &ResultSet) -> String {
    let mut out = render_box(result);
    out.push_str(&rows_in_set(result.rows.len(), None));
    out
}

/// The `+---+` box of [`render_table`] without the row count; empty for a
/// result without rows (mysql prints only `Empty set` then).
pub fn render_box(result: &ResultSet) -> String {
    if result.rows.is_empty() {
        return String::new();
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
    // mysql right-aligns the columns of numeric type; cells are strings here,
    // so a column is numeric when every non-NULL cell is a number.
    let right: Vec<bool> = (0..ncols)
        .map(|i| {
            let mut cells = result.rows.iter().filter_map(|r| r.get(i));
            let mut any = false;
            cells.all(|c| {
                any |= c != NULL;
                c == NULL || is_number(c)
            }) && any
        })
        .collect();
    let mut border = String::from("+");
    for width in &widths {
        border.push_str(&"-".repeat(width + 2));
        border.push('+');
    }
    border.push('\n');

    let mut out = border.clone();
    push_row(&mut out, &result.columns, &widths, &vec![false; ncols]);
    out.push_str(&border);
    for row in &result.rows {
        push_row(&mut out, row, &widths, &right);
    }
    out.push_str(&border);
    out
}

/// The line after a result: `N rows in set` or `Empty set`, with the
/// statement's time as the mysql client shows it, `(0.01 sec)`, if given.
pub fn rows_in_set(n: usize, elapsed: Option<std::time::Duration>) -> String {
    let mut out = match n {
        0 => "Empty set".to_string(),
        1 => "1 row in set".to_string(),
        n => format!("{n} rows in set"),
    };
    if let Some(e) = elapsed {
        out.push_str(&format!(" ({:.2} sec)", e.as_secs_f64()));
    }
    out.push('\n');
    out
}

/// Renders like the mysql client after `\G`: a star line per row, then one
/// `Column: value` line per field, column names right-aligned. Without rows
/// it is empty; [`rows_in_set`] says `Empty set`.
pub fn render_vertical(result: &ResultSet) -> String {
    let name_width = result
        .columns
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (n, row) in result.rows.iter().enumerate() {
        out.push_str(&format!(
            "*************************** {}. row ***************************\n",
            n + 1
        ));
        for (i, value) in row.iter().enumerate() {
            let name = result.columns.get(i).map_or("", String::as_str);
            let pad = name_width.saturating_sub(name.chars().count());
            out.push_str(&" ".repeat(pad));
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push('\n');
        }
    }
    out
}

/// Whether a cell is a plain decimal number: `-12`, `3.5`, `1e9`.
fn is_number(cell: &str) -> bool {
    let digits = cell.strip_prefix('-').unwrap_or(cell);
    let (mantissa, exponent) = match digits.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['+', '-']).unwrap_or(e))),
        None => (digits, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, "0"));
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(int) && all_digits(frac) && exponent.is_none_or(all_digits)
}

fn push_row(out: &mut String, row: &[String], widths: &[usize], right: &[bool]) {
    let lines: Vec<Vec<&str>> = widths
        .iter()
        .enumerate()
        .map(|(i, _)| row.get(i).map_or(vec![""], |v| v.split('\n').collect()))
        .collect();
    let height = lines.iter().map(Vec::len).max().unwrap_or(1);
    for line in 0..height {
        out.push('|');
        for ((cell_lines, width), right) in lines.iter().zip(widths).zip(right) {
            let text = cell_lines.get(line).copied().unwrap_or("");
            let pad = " ".repeat(width - text.chars().count());
            out.push(' ');
            if *right {
                out.push_str(&pad);
                out.push_str(text);
            } else {
                out.push_str(text);
                out.push_str(&pad);
            }
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
    fn table_is_boxed_numbers_right_aligned_and_counted() {
        assert_eq!(
            render_table(&sample()),
            "+----------+------+------+\n\
             | TabletId | Name | Size |\n\
             +----------+------+------+\n\
             |    10001 | p1   | 1024 |\n\
             |    10002 | été  | NULL |\n\
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
            "+-------+\n| Count |\n+-------+\n|    42 |\n+-------+\n1 row in set\n"
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
    fn numeric_columns_are_those_with_only_numbers() {
        let mut rs = ResultSet::new(["a", "b", "c", "d"]);
        rs.push_row(["-1.5", "1e9", "NULL", "12"]);
        rs.push_row(["10", "2E-3", "NULL", "1.2.3"]);
        assert_eq!(
            render_box(&rs),
            "+------+------+------+-------+\n\
             | a    | b    | c    | d     |\n\
             +------+------+------+-------+\n\
             | -1.5 |  1e9 | NULL | 12    |\n\
             |   10 | 2E-3 | NULL | 1.2.3 |\n\
             +------+------+------+-------+\n"
        );
        assert_eq!(render_box(&ResultSet::new(["a"])), "");
    }

    #[test]
    fn vertical_names_right_aligned_and_counted_with_time() {
        assert_eq!(
            render_vertical(&sample()),
            "*************************** 1. row ***************************\n\
             TabletId: 10001\n    Name: p1\n    Size: 1024\n\
             *************************** 2. row ***************************\n\
             TabletId: 10002\n    Name: été\n    Size: NULL\n"
        );
        let t = Some(std::time::Duration::from_millis(1234));
        assert_eq!(rows_in_set(2, t), "2 rows in set (1.23 sec)\n");
        assert_eq!(rows_in_set(1, None), "1 row in set\n");
        assert_eq!(rows_in_set(0, t), "Empty set (1.23 sec)\n");
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
