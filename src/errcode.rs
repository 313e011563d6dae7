//! MySQL error codes for statement errors: one small typed classification
//! that the server, the CLI and the shell share.
//!
//! Errors that a client should tell apart carry a [`CodedError`] somewhere
//! in their anyhow chain (made with [`coded`]); a [`ParseError`] is a syntax
//! error; everything else is StarRocks's catch-all 1105.

use crate::sql::ParseError;

/// The MySQL error a statement error maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 1045 (28000): wrong user or password.
    AccessDenied,
    /// 1227 (42000): the user lacks the privilege a statement needs.
    SpecificAccessDenied,
    /// 1064 (42000): the text does not parse.
    Syntax,
    /// 1049 (42000): unknown database.
    BadDb,
    /// 1146 (42S02): unknown table.
    NoSuchTable,
    /// 1007 (HY000): CREATE DATABASE of a name that exists.
    DbExists,
    /// 1050 (42S01): CREATE TABLE of a name that exists.
    TableExists,
    /// 1396 (HY000): CREATE USER of a user that exists, DROP USER of one
    /// that does not.
    UserOp,
    /// 1105 (HY000): anything else.
    Unknown,
}

impl ErrorCode {
    /// The numeric MySQL error code.
    pub fn code(self) -> u16 {
        match self {
            ErrorCode::AccessDenied => 1045,
            ErrorCode::SpecificAccessDenied => 1227,
            ErrorCode::Syntax => 1064,
            ErrorCode::BadDb => 1049,
            ErrorCode::NoSuchTable => 1146,
            ErrorCode::DbExists => 1007,
            ErrorCode::TableExists => 1050,
            ErrorCode::UserOp => 1396,
            ErrorCode::Unknown => 1105,
        }
    }

    /// The five-character SQLSTATE.
    pub fn sqlstate(self) -> &'static str {
        match self {
            ErrorCode::AccessDenied => "28000",
            ErrorCode::SpecificAccessDenied | ErrorCode::Syntax | ErrorCode::BadDb => "42000",
            ErrorCode::NoSuchTable => "42S02",
            ErrorCode::TableExists => "42S01",
            ErrorCode::DbExists | ErrorCode::UserOp | ErrorCode::Unknown => "HY000",
        }
    }

    /// The code for a numeric MySQL code (unknown numbers are [`ErrorCode::Unknown`]).
    pub fn from_code(code: u16) -> ErrorCode {
        [
            ErrorCode::AccessDenied,
            ErrorCode::SpecificAccessDenied,
            ErrorCode::Syntax,
            ErrorCode::BadDb,
            ErrorCode::NoSuchTable,
            ErrorCode::DbExists,
            ErrorCode::TableExists,
            ErrorCode::UserOp,
        ]
        .into_iter()
        .find(|c| c.code() == code)
        .unwrap_or(ErrorCode::Unknown)
    }
}

/// An error with a MySQL code attached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CodedError {
    /// Which MySQL error this is.
    pub code: ErrorCode,
    /// What the user sees.
    pub message: String,
}

/// An anyhow error carrying `code`.
pub fn coded(code: ErrorCode, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(CodedError {
        code,
        message: message.into(),
    })
}

/// The code of `e`: the first [`CodedError`] or [`ParseError`] in its chain.
pub fn classify(e: &anyhow::Error) -> ErrorCode {
    for cause in e.chain() {
        if let Some(c) = cause.downcast_ref::<CodedError>() {
            return c.code;
        }
        if cause.downcast_ref::<ParseError>().is_some() {
            return ErrorCode::Syntax;
        }
    }
    ErrorCode::Unknown
}

/// `e` as one line: the chain joined with `: `, each cause said once (a
/// cause whose text the message before it already ends with, as when an
/// error's message embeds its source, is skipped), newlines as spaces.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out.replace('\n', " ")
}

/// The mysql client's line for an error: `ERROR 1064 (42000): ...`.
pub fn error_line(e: &anyhow::Error) -> String {
    let code = classify(e);
    format!(
        "ERROR {} ({}): {}",
        code.code(),
        code.sqlstate(),
        one_line(e)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_cause_is_said_once() {
        let io = std::io::Error::from_raw_os_error(20);
        let e = anyhow::Error::new(tabletsnap_transfer::Error::io(
            std::path::Path::new("/r/x"),
            io,
        ))
        .context("opening repository 'r'");
        let line = one_line(&e);
        assert_eq!(line.matches("Not a directory").count(), 1, "{line}");
        assert!(line.starts_with("opening repository 'r': "), "{line}");
    }

    #[test]
    fn codes_survive_context_and_parse_errors_are_syntax() {
        let e = Err::<(), _>(coded(ErrorCode::BadDb, "unknown database 'x'"))
            .context("running USE")
            .expect_err("an error");
        assert_eq!(classify(&e), ErrorCode::BadDb);
        assert_eq!(
            error_line(&e),
            "ERROR 1049 (42000): running USE: unknown database 'x'"
        );
        let p = crate::sql::parse_statements("SELEC 1").expect_err("a syntax error");
        assert_eq!(classify(&anyhow::Error::from(p)), ErrorCode::Syntax);
        assert_eq!(classify(&anyhow::anyhow!("x")), ErrorCode::Unknown);
        assert_eq!(ErrorCode::from_code(1146), ErrorCode::NoSuchTable);
        assert_eq!(ErrorCode::from_code(7), ErrorCode::Unknown);
    }
}
