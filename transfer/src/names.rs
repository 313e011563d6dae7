//! Validation of user-facing names: labels, timestamps, repository names, file paths.

use crate::error::{printable, Error, Result};

/// Longest accepted label or repository name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Deepest accepted relative file path: `file` or `dir/file`.
pub const MAX_PATH_DEPTH: usize = 2;

fn invalid(
    kind: &'static str,
    value: &str,
    reason: impl Into<std::borrow::Cow<'static, str>>,
) -> Error {
    Error::InvalidName {
        kind,
        value: printable(value),
        reason: reason.into(),
    }
}

/// Checks a name that becomes one key component: a snapshot label or a
/// repository name. Refuses empty names, path separators, `..`, control
/// characters, a leading `.` and names over [`MAX_NAME_LEN`] bytes.
pub fn validate_component(kind: &'static str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(invalid(kind, name, "must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(kind, name, "must be at most 128 bytes"));
    }
    if name.contains('/') || name.contains('\\') {
        return Err(invalid(kind, name, "must not contain '/' or '\\'"));
    }
    if name.contains("..") {
        return Err(invalid(kind, name, "must not contain '..'"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(kind, name, "must not contain control characters"));
    }
    if name.starts_with('.') {
        return Err(invalid(kind, name, "must not start with '.'"));
    }
    if name.trim() != name {
        return Err(invalid(kind, name, "must not start or end with whitespace"));
    }
    Ok(())
}

/// Checks a snapshot label (see [`validate_component`]).
pub fn validate_label(label: &str) -> Result<()> {
    validate_component("label", label)
}

/// Checks a snapshot timestamp: exactly `YYYY-MM-DD-HH-MM-SS`, digits and dashes,
/// so that timestamps sort in time order and cannot hold path characters.
pub fn validate_timestamp(ts: &str) -> Result<()> {
    let b = ts.as_bytes();
    let ok = b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 | 10 | 13 | 16 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !ok {
        return Err(invalid(
            "timestamp",
            ts,
            "must look like 2026-11-26-13-14-46 (YYYY-MM-DD-HH-MM-SS)",
        ));
    }
    // Two to four ASCII digits each: no overflow.
    let num = |r: std::ops::Range<usize>| {
        ts[r]
            .bytes()
            .fold(0u32, |n, c| n * 10 + u32::from(c - b'0'))
    };
    let (year, month, day) = (num(0..4), num(5..7), num(8..10));
    let (hour, minute, second) = (num(11..13), num(14..16), num(17..19));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    };
    let problem = if days == 0 {
        format!("month {month} does not exist")
    } else if day == 0 || day > days {
        format!("{year}-{month:02} has no day {day}")
    } else if hour > 23 || minute > 59 || second > 59 {
        format!("{hour:02}:{minute:02}:{second:02} is not a time of day")
    } else {
        return Ok(());
    };
    Err(invalid("timestamp", ts, problem))
}

/// Checks a file or directory path relative to a tablet directory: `/`-separated,
/// at most [`MAX_PATH_DEPTH`] components, none empty, `.`, `..` or starting with
/// `.`, no backslash, NUL or control characters, not absolute.
pub fn validate_rel_path(path: &str) -> Result<()> {
    const KIND: &str = "path";
    if path.is_empty() {
        return Err(invalid(KIND, path, "must not be empty"));
    }
    if path.starts_with('/') {
        return Err(invalid(KIND, path, "must be relative, not absolute"));
    }
    if path.contains('\\') || path.chars().any(char::is_control) {
        return Err(invalid(
            KIND,
            path,
            "must not contain '\\' or control characters",
        ));
    }
    let mut depth = 0;
    for part in path.split('/') {
        depth += 1;
        if part.is_empty() {
            return Err(invalid(KIND, path, "must not contain empty components"));
        }
        if part == ".." || part == "." {
            return Err(invalid(
                KIND,
                path,
                "must not contain '.' or '..' components",
            ));
        }
        if part.starts_with('.') {
            return Err(invalid(KIND, path, "components must not start with '.'"));
        }
    }
    if depth > MAX_PATH_DEPTH {
        return Err(invalid(
            KIND,
            path,
            "must be at most one directory deep (dir/file)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        for bad in [
            "",
            "a/b",
            "a\\b",
            "..",
            "a..b",
            ".x",
            "a\nb",
            " a",
            &"x".repeat(129),
        ] {
            assert!(validate_label(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["nightly", "db1.tbl_2", "snap-2026"] {
            assert!(validate_label(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn timestamps() {
        assert!(validate_timestamp("2026-11-26-13-14-46").is_ok());
        for bad in [
            "",
            "2026-11-26",
            "2026-11-26-13-14-4x",
            "2026/11/26-13-14-46",
            "../1-11-26-13-14-46",
            "2026-02-30-10-00-00",
            "2026-13-01-10-00-00",
            "2026-00-10-10-00-00",
            "2026-04-31-10-00-00",
            "2026-11-00-10-00-00",
            "2025-02-29-10-00-00",
            "2026-11-26-24-00-00",
            "2026-11-26-13-60-00",
            "2026-11-26-13-14-60",
        ] {
            assert!(validate_timestamp(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "2024-02-29-23-59-59",
            "2000-02-29-00-00-00",
            "2026-12-31-00-00-00",
        ] {
            assert!(validate_timestamp(good).is_ok(), "{good:?} refused");
        }
        let e = validate_timestamp("2026-02-30-10-00-00").expect_err("Feb 30");
        assert!(e.to_string().contains("no day 30"), "{e}");
        assert!(validate_timestamp("1900-02-29-00-00-00").is_err());
    }

    #[test]
    fn paths() {
        for bad in [
            "", "/etc/x", "../x", "a/../x", "a//b", "a/b/c", ".tmp", "a/.b", "a\\b", "./a",
        ] {
            assert!(validate_rel_path(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "a.dat", "d/f_1.dat"] {
            assert!(validate_rel_path(good).is_ok(), "{good:?} refused");
        }
    }
}
