//! The error a statement that does not lex or parse produces.

use std::fmt;

/// A place in the statement text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Byte offset from the start of the text.
    pub offset: usize,
    /// Line number, starting at 1.
    pub line: u32,
    /// Column in characters (not bytes), starting at 1.
    pub column: u32,
}

impl Pos {
    /// The position of the first character of a text.
    pub const START: Pos = Pos {
        offset: 0,
        line: 1,
        column: 1,
    };
}

/// What went wrong at a [`ParseError`]'s position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The text had `found` where the grammar wanted `expected`.
    #[error("expected {expected}, found {found}")]
    Unexpected {
        /// What the grammar allows here, e.g. `TO` or `table name`.
        expected: String,
        /// What the text has here, quoted as written, or `end of input`.
        found: String,
    },
    /// A string literal, backquoted identifier or comment is never closed.
    #[error("unterminated {what} (expected closing {closer})")]
    Unterminated {
        /// `string literal`, `backquoted identifier` or `comment`.
        what: &'static str,
        /// The text that would have closed it.
        closer: &'static str,
    },
    /// A number literal is malformed or does not fit its type.
    #[error("invalid number {text}: {reason}")]
    InvalidNumber {
        /// The literal as written.
        text: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// `PROPERTIES (...)` names the same key twice.
    #[error("property \"{key}\" is given twice")]
    DuplicateProperty {
        /// The repeated key.
        key: String,
    },
    /// `ON (...)` of a BACKUP or RESTORE names the same table twice.
    #[error("table `{name}` is listed twice in ON (...)")]
    DuplicateTable {
        /// The repeated table.
        name: String,
    },
}

/// A statement that does not lex or parse: where, and what was wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error at line {}, column {}: {kind}", pos.line, pos.column)]
pub struct ParseError {
    /// Where the offending token starts.
    pub pos: Pos,
    /// What was wrong there.
    pub kind: ParseErrorKind,
}

impl ParseError {
    /// An error for finding `found` (already display-formatted) where `expected` belonged.
    pub fn unexpected(pos: Pos, expected: impl Into<String>, found: impl Into<String>) -> Self {
        ParseError {
            pos,
            kind: ParseErrorKind::Unexpected {
                expected: expected.into(),
                found: found.into(),
            },
        }
    }

    /// What the grammar expected here, if this is an unexpected-token error.
    pub fn expected(&self) -> Option<&str> {
        match &self.kind {
            ParseErrorKind::Unexpected { expected, .. } => Some(expected),
            ParseErrorKind::Unterminated { closer, .. } => Some(closer),
            _ => None,
        }
    }

    /// What the text had here, if this is an unexpected-token error.
    pub fn found(&self) -> Option<&str> {
        match &self.kind {
            ParseErrorKind::Unexpected { found, .. } => Some(found),
            _ => None,
        }
    }
}

/// Formats a list of alternatives as `A, B or C`.
pub(crate) fn one_of(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}
