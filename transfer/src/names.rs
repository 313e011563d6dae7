//! Validation of user-facing names: labels, timestamps, repository names, file paths.

use crate::error::{printable, Error, Result};

/// Longest accepted label or repository name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Deepest accepted relative file path: `file` or `dir/file`.
pub const MAX_PATH_DEPTH: usize = 2;

fn invalid(kind: &'static str, value: &str, reason: &'static str) -> Error {
    Error::InvalidName {
        kind,
        value: printable(value),
        reason,
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
    Ok(())
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
        ] {
            assert!(validate_timestamp(bad).is_err(), "{bad:?} accepted");
        }
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
