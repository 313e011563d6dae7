//! Recursive-descent parser from tokens to [`Statement`]s.
//!
//! This file holds the entry points and the cursor helpers every statement uses;
//! the statements themselves are in `ddl.rs` (databases, tables), `dml.rs`
//! (insert, select, checksum) and `admin.rs` (show, users, repositories, jobs).

mod admin;
mod ddl;
mod dml;
mod snapshot;
mod system;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_errors;
#[cfg(test)]
mod tests_jobs;

use super::ast::{Literal, Properties, QualifiedName, Statement};
use super::error::{one_of, ParseError, ParseErrorKind};
use super::lexer::{tokenize, Token, TokenKind};

/// Words that are keywords wherever they appear, so a name spelled like one must be backquoted.
const RESERVED: &[&str] = &[
    "AND",
    "AS",
    "BY",
    "CREATE",
    "DATABASE",
    "DISTRIBUTED",
    "DROP",
    "DUPLICATE",
    "EXISTS",
    "FROM",
    "IF",
    "INSERT",
    "INTO",
    "KEY",
    "LIMIT",
    "NOT",
    "ON",
    "PARTITION",
    "PROPERTIES",
    "SELECT",
    "SHOW",
    "TABLE",
    "TO",
    "USE",
    "VALUES",
    "WHERE",
    "WITH",
];

/// Parses `;`-separated statements; empty statements are skipped.
pub fn parse_statements(text: &str) -> Result<Vec<Statement>, ParseError> {
    let mut parser = Parser::new(text)?;
    let mut statements = Vec::new();
    loop {
        while parser.eat(&TokenKind::Semicolon) {}
        if parser.peek().kind == TokenKind::Eof {
            return Ok(statements);
        }
        statements.push(parser.statement()?);
        if parser.peek().kind != TokenKind::Eof {
            parser.expect(&TokenKind::Semicolon, "\";\" or end of input")?;
        }
    }
}

/// Parses exactly one statement, with or without a trailing `;`.
pub fn parse_statement(text: &str) -> Result<Statement, ParseError> {
    let mut parser = Parser::new(text)?;
    while parser.eat(&TokenKind::Semicolon) {}
    let statement = parser.statement()?;
    while parser.eat(&TokenKind::Semicolon) {}
    if parser.peek().kind != TokenKind::Eof {
        return Err(parser.error("end of input (one statement only)"));
    }
    Ok(statement)
}

/// A cursor over the tokens of one text.
pub(super) struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    at: usize,
    /// Optional keywords tried and not found at token `at`, so that an error
    /// there can list them among the alternatives.
    tried: Vec<&'static str>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Result<Self, ParseError> {
        Ok(Parser {
            text,
            tokens: tokenize(text)?,
            at: 0,
            tried: Vec::new(),
        })
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        // Every statement's first word: what is tried, and the hint.
        const STARTS: &[&str] = &[
            "CREATE", "DROP", "INSERT", "SELECT", "CHECKSUM", "USE", "SHOW", "BACKUP", "RESTORE",
            "CANCEL", "VERIFY", "ALTER", "SET", "HELP",
        ];
        let Some(first) = STARTS.iter().copied().find(|kw| self.is_kw(kw)) else {
            return Err(self.error(format!("a statement ({})", one_of(STARTS))));
        };
        self.advance();
        match first {
            "CREATE" => self.create(),
            "DROP" => self.drop_statement(),
            "INSERT" => self.insert(),
            "SELECT" => self.select(),
            "CHECKSUM" => self.checksum(),
            "USE" => Ok(Statement::Use {
                db: self.ident("database name")?,
            }),
            "SHOW" => self.show(),
            "BACKUP" => self.backup(),
            "RESTORE" => self.restore(),
            "VERIFY" => self.verify_snapshot(),
            "ALTER" => self.alter_system(),
            "SET" => self.set_password(),
            "HELP" => self.help(),
            _ => self.cancel(),
        }
    }

    pub(super) fn peek(&self) -> &Token {
        // `tokenize` always ends with Eof and `advance` never moves past it.
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    pub(super) fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != TokenKind::Eof {
            self.at += 1;
            self.tried.clear();
        }
        token
    }

    /// Consumes the next token if it is `kind`.
    pub(super) fn eat(&mut self, kind: &TokenKind) -> bool {
        if &self.peek().kind == kind {
            self.advance();
            true
        } else {
            false
        }
    }

    /// Consumes the next token, which must be `kind`.
    pub(super) fn expect(&mut self, kind: &TokenKind, expected: &str) -> Result<(), ParseError> {
        if self.eat(kind) {
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    pub(super) fn expect_lparen(&mut self) -> Result<(), ParseError> {
        self.expect(&TokenKind::LParen, "\"(\"")
    }

    pub(super) fn expect_rparen(&mut self) -> Result<(), ParseError> {
        self.expect(&TokenKind::RParen, "\")\"")
    }

    /// Whether the next token is the keyword `kw` (any case, not backquoted).
    pub(super) fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.peek().kind, TokenKind::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    /// Consumes the keyword `kw` if it is next, else remembers it as an alternative.
    pub(super) fn eat_opt(&mut self, kw: &'static str) -> bool {
        if self.is_kw(kw) {
            self.advance();
            true
        } else {
            if !self.tried.contains(&kw) {
                self.tried.push(kw);
            }
            false
        }
    }

    /// Consumes the keywords `kws` in order.
    pub(super) fn expect_kws(&mut self, kws: &[&str]) -> Result<(), ParseError> {
        for kw in kws {
            if !self.is_kw(kw) {
                return Err(self.error(*kw));
            }
            self.advance();
        }
        Ok(())
    }

    /// An error at the next token saying `expected` (plus any optional keywords tried there).
    pub(super) fn error(&self, expected: impl Into<String>) -> ParseError {
        let mut expected = expected.into();
        if !self.tried.is_empty() {
            let tried = self.tried.join(", ");
            // `expected` may itself be a list ending in "or ...".
            let sep = if expected.contains(" or ") {
                ", "
            } else {
                " or "
            };
            expected = format!("{tried}{sep}{expected}");
        }
        let token = self.peek();
        ParseError::unexpected(token.pos, expected, self.describe(token))
    }

    /// An error at `token` of the given kind.
    pub(super) fn error_kind(token: &Token, kind: ParseErrorKind) -> ParseError {
        ParseError {
            pos: token.pos,
            kind,
        }
    }

    /// How an error message shows `token`: as written, quoted and shortened.
    fn describe(&self, token: &Token) -> String {
        if token.kind == TokenKind::Eof {
            return "end of input".to_string();
        }
        let written = self.text.get(token.pos.offset..token.end).unwrap_or("");
        let short: String = written.chars().take(40).collect();
        let ellipsis = if short.len() < written.len() {
            "..."
        } else {
            ""
        };
        match token.kind {
            TokenKind::Str(_) => format!("{short}{ellipsis}"),
            _ => format!("\"{short}{ellipsis}\""),
        }
    }

    /// Whether the next token can be a name.
    pub(super) fn is_ident(&self) -> bool {
        match &self.peek().kind {
            TokenKind::QuotedIdent(_) => true,
            TokenKind::Word(w) => !is_reserved(w),
            _ => false,
        }
    }

    /// A name: an unreserved word or a backquoted identifier. `what` names it in errors.
    pub(super) fn ident(&mut self, what: &str) -> Result<String, ParseError> {
        if !self.is_ident() {
            if let TokenKind::Word(w) = &self.peek().kind {
                let upper = w.to_ascii_uppercase();
                return Err(self.error(format!(
                    "{what} ({upper} is reserved: write `{w}` to use it as a name)"
                )));
            }
            return Err(self.error(what));
        }
        match self.advance().kind {
            TokenKind::Word(w) | TokenKind::QuotedIdent(w) => Ok(w),
            _ => Err(self.error(what)),
        }
    }

    /// `name` or `db.name`.
    pub(super) fn qualified_name(&mut self, what: &str) -> Result<QualifiedName, ParseError> {
        let first = self.ident(what)?;
        if self.eat(&TokenKind::Dot) {
            let name = self.ident(what)?;
            Ok(QualifiedName::qualified(first, name))
        } else {
            Ok(QualifiedName::bare(first))
        }
    }

    /// `(name, ...)`, at least one name.
    pub(super) fn ident_list(&mut self, what: &str) -> Result<Vec<String>, ParseError> {
        self.expect_lparen()?;
        let mut names = vec![self.ident(what)?];
        while self.eat(&TokenKind::Comma) {
            names.push(self.ident(what)?);
        }
        self.expect(&TokenKind::RParen, "\",\" or \")\"")?;
        Ok(names)
    }

    /// A quoted string literal.
    pub(super) fn string(&mut self, what: &str) -> Result<String, ParseError> {
        match &self.peek().kind {
            TokenKind::Str(s) => {
                let s = s.clone();
                self.advance();
                Ok(s)
            }
            _ => Err(self.error(what)),
        }
    }

    /// A literal value.
    pub(super) fn literal(&mut self) -> Result<Literal, ParseError> {
        let literal = match &self.peek().kind {
            TokenKind::Null => Literal::Null,
            TokenKind::Bool(b) => Literal::Bool(*b),
            TokenKind::Int(i) => Literal::Int(*i),
            TokenKind::Float(f) => Literal::Float(*f),
            TokenKind::Str(s) => Literal::String(s.clone()),
            _ => return Err(self.error("a value (string, number, TRUE, FALSE or NULL)")),
        };
        self.advance();
        Ok(literal)
    }

    /// A non-negative integer; `what` names it in errors.
    pub(super) fn unsigned(&mut self, what: &str) -> Result<u64, ParseError> {
        match self.peek().kind {
            TokenKind::Int(i) if i >= 0 => {
                self.advance();
                Ok(i.unsigned_abs())
            }
            _ => Err(self.error(format!("{what} (a non-negative integer)"))),
        }
    }

    /// An integer from 1 to `u32::MAX`; `what` names it in errors.
    pub(super) fn positive_u32(&mut self, what: &str) -> Result<u32, ParseError> {
        match self.peek().kind {
            TokenKind::Int(i) if i >= 1 => match u32::try_from(i) {
                Ok(v) => {
                    self.advance();
                    Ok(v)
                }
                Err(_) => Err(self.error(format!("{what} (at most {})", u32::MAX))),
            },
            _ => Err(self.error(format!("{what} (a positive integer)"))),
        }
    }

    /// `[FROM db]`.
    pub(super) fn opt_from_db(&mut self) -> Result<Option<String>, ParseError> {
        if self.eat_opt("FROM") {
            Ok(Some(self.ident("database name")?))
        } else {
            Ok(None)
        }
    }

    /// `[PROPERTIES ("k" = "v", ...)]`; empty when absent, a key given twice is an error.
    pub(super) fn opt_properties(&mut self) -> Result<Properties, ParseError> {
        let mut props: Properties = Vec::new();
        if !self.eat_opt("PROPERTIES") {
            return Ok(props);
        }
        self.expect_lparen()?;
        loop {
            let key_token = self.peek().clone();
            let key = self.string("property name (a quoted string)")?;
            if props.iter().any(|(k, _)| *k == key) {
                return Err(Self::error_kind(
                    &key_token,
                    ParseErrorKind::DuplicateProperty { key },
                ));
            }
            self.expect(&TokenKind::Eq, "\"=\"")?;
            let value = match &self.peek().kind {
                TokenKind::Str(s) => s.clone(),
                TokenKind::Int(i) => i.to_string(),
                TokenKind::Float(f) => f.to_string(),
                TokenKind::Bool(b) => b.to_string(),
                _ => return Err(self.error("property value (a quoted string)")),
            };
            self.advance();
            props.push((key, value));
            if !self.eat(&TokenKind::Comma) {
                break;
            }
        }
        self.expect(&TokenKind::RParen, "\",\" or \")\"")?;
        Ok(props)
    }
}

fn is_reserved(word: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}
