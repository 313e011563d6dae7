//! Splits statement text into tokens, each with its position.

use super::error::{ParseError, ParseErrorKind, Pos};

/// The kinds of token the statement language has.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    /// An unquoted word: a keyword or an identifier, spelled as written.
    Word(String),
    /// A `backquoted` identifier, never a keyword.
    QuotedIdent(String),
    /// A string literal in single or double quotes, escapes resolved.
    Str(String),
    /// An integer literal, possibly negative.
    Int(i64),
    /// A decimal literal (with a fraction or an exponent), possibly negative.
    Float(f64),
    /// The `NULL` keyword.
    Null,
    /// The `TRUE` or `FALSE` keyword.
    Bool(bool),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `;`
    Semicolon,
    /// `.`
    Dot,
    /// `=`
    Eq,
    /// `*`
    Star,
    /// The end of the text.
    Eof,
}

/// One token and where it is in the text.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// What the token is.
    pub kind: TokenKind,
    /// Where it starts.
    pub pos: Pos,
    /// Byte offset just past its end.
    pub end: usize,
}

/// Splits `text` into tokens, dropping whitespace and comments; the last token is [`TokenKind::Eof`].
pub fn tokenize(text: &str) -> Result<Vec<Token>, ParseError> {
    let mut lexer = Lexer {
        text,
        pos: Pos::START,
    };
    let mut tokens = Vec::new();
    loop {
        let token = lexer.next_token()?;
        let eof = token.kind == TokenKind::Eof;
        tokens.push(token);
        if eof {
            return Ok(tokens);
        }
    }
}

struct Lexer<'a> {
    text: &'a str,
    pos: Pos,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos.offset..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.text[self.pos.offset..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos.offset += c.len_utf8();
        if c == '\n' {
            self.pos.line += 1;
            self.pos.column = 1;
        } else {
            self.pos.column += 1;
        }
        Some(c)
    }

    fn skip_trivia(&mut self) -> Result<(), ParseError> {
        loop {
            match (self.peek(), self.peek2()) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('-'), Some('-')) => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                (Some('/'), Some('*')) => {
                    let start = self.pos;
                    self.bump();
                    self.bump();
                    loop {
                        match self.bump() {
                            Some('*') if self.peek() == Some('/') => {
                                self.bump();
                                break;
                            }
                            Some(_) => {}
                            None => return Err(unterminated(start, "comment", "*/")),
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn next_token(&mut self) -> Result<Token, ParseError> {
        self.skip_trivia()?;
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Ok(Token {
                kind: TokenKind::Eof,
                pos: start,
                end: start.offset,
            });
        };
        let kind = match c {
            '(' | ')' | ',' | ';' | '.' | '=' | '*' => {
                self.bump();
                match c {
                    '(' => TokenKind::LParen,
                    ')' => TokenKind::RParen,
                    ',' => TokenKind::Comma,
                    ';' => TokenKind::Semicolon,
                    '.' => TokenKind::Dot,
                    '=' => TokenKind::Eq,
                    _ => TokenKind::Star,
                }
            }
            '\'' | '"' => TokenKind::Str(self.quoted(c, "string literal")?),
            '`' => {
                let name = self.quoted('`', "backquoted identifier")?;
                if name.is_empty() {
                    return Err(ParseError::unexpected(start, "identifier", "``"));
                }
                TokenKind::QuotedIdent(name)
            }
            c if c.is_ascii_digit() => self.number(start)?,
            '-' if self.peek2().is_some_and(|d| d.is_ascii_digit()) => {
                self.bump();
                self.number(start)?
            }
            c if is_word_start(c) => {
                while self.peek().is_some_and(is_word_char) {
                    self.bump();
                }
                let word = &self.text[start.offset..self.pos.offset];
                if word.eq_ignore_ascii_case("NULL") {
                    TokenKind::Null
                } else if word.eq_ignore_ascii_case("TRUE") {
                    TokenKind::Bool(true)
                } else if word.eq_ignore_ascii_case("FALSE") {
                    TokenKind::Bool(false)
                } else {
                    TokenKind::Word(word.to_string())
                }
            }
            other => {
                return Err(ParseError::unexpected(
                    start,
                    "a keyword, name, literal or punctuation",
                    format!("{other:?}"),
                ))
            }
        };
        Ok(Token {
            kind,
            pos: start,
            end: self.pos.offset,
        })
    }

    /// Reads a literal closed by `quote`; a doubled quote stands for itself, and in
    /// strings a backslash escapes the next character as in MySQL.
    fn quoted(&mut self, quote: char, what: &'static str) -> Result<String, ParseError> {
        let start = self.pos;
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(unterminated(start, what, closer(quote))),
                Some(c) if c == quote => {
                    if self.peek() == Some(quote) {
                        self.bump();
                        out.push(quote);
                    } else {
                        return Ok(out);
                    }
                }
                Some('\\') if quote != '`' => match self.bump() {
                    None => return Err(unterminated(start, what, closer(quote))),
                    Some(e) => out.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        'b' => '\u{8}',
                        'Z' => '\u{1a}',
                        other => other,
                    }),
                },
                Some(c) => out.push(c),
            }
        }
    }

    /// Reads the digits of a number whose optional `-` is already consumed.
    fn number(&mut self, start: Pos) -> Result<TokenKind, ParseError> {
        let mut is_float = false;
        self.digits();
        if self.peek() == Some('.') && self.peek2().is_some_and(|d| d.is_ascii_digit()) {
            is_float = true;
            self.bump();
            self.digits();
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let rest = &self.text[self.pos.offset + 1..];
            let mut chars = rest.chars();
            let exp_ok = match chars.next() {
                Some('+' | '-') => chars.next().is_some_and(|d| d.is_ascii_digit()),
                Some(d) => d.is_ascii_digit(),
                None => false,
            };
            if exp_ok {
                is_float = true;
                self.bump();
                if matches!(self.peek(), Some('+' | '-')) {
                    self.bump();
                }
                self.digits();
            }
        }
        if self.peek().is_some_and(is_word_char) {
            while self.peek().is_some_and(is_word_char) {
                self.bump();
            }
            return Err(invalid_number(
                start,
                &self.text[start.offset..self.pos.offset],
                "a name cannot start with a digit (backquote it)",
            ));
        }
        let text = &self.text[start.offset..self.pos.offset];
        if is_float {
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(TokenKind::Float(v)),
                _ => Err(invalid_number(start, text, "out of range")),
            }
        } else {
            text.parse::<i64>()
                .map(TokenKind::Int)
                .map_err(|_| invalid_number(start, text, "out of the 64-bit integer range"))
        }
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|d| d.is_ascii_digit()) {
            self.bump();
        }
    }
}

fn is_word_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_word_char(c: char) -> bool {
    c == '_' || c == '$' || c.is_alphanumeric()
}

fn closer(quote: char) -> &'static str {
    match quote {
        '\'' => "'",
        '"' => "\"",
        _ => "`",
    }
}

fn unterminated(pos: Pos, what: &'static str, closer: &'static str) -> ParseError {
    ParseError {
        pos,
        kind: ParseErrorKind::Unterminated { what, closer },
    }
}

fn invalid_number(pos: Pos, text: &str, reason: &'static str) -> ParseError {
    ParseError {
        pos,
        kind: ParseErrorKind::InvalidNumber {
            text: text.to_string(),
            reason,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        match tokenize(text) {
            Ok(tokens) => tokens.into_iter().map(|t| t.kind).collect(),
            Err(e) => panic!("{text:?} did not lex: {e}"),
        }
    }

    fn lex_err(text: &str) -> String {
        match tokenize(text) {
            Ok(tokens) => panic!("{text:?} lexed: {tokens:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn word(w: &str) -> TokenKind {
        TokenKind::Word(w.to_string())
    }

    #[test]
    fn punctuation_words_and_literals() {
        use TokenKind::*;
        assert_eq!(
            kinds("select(*),d.t=;"),
            vec![
                word("select"),
                LParen,
                Star,
                RParen,
                Comma,
                word("d"),
                Dot,
                word("t"),
                Eq,
                Semicolon,
                Eof
            ]
        );
        assert_eq!(
            kinds("null NULL True false x_1$ é"),
            vec![
                Null,
                Null,
                Bool(true),
                Bool(false),
                word("x_1$"),
                word("é"),
                Eof
            ]
        );
    }

    #[test]
    fn numbers() {
        use TokenKind::*;
        assert_eq!(
            kinds("0 42 -7 3.25 -0.5 1e3 2E-2 -9223372036854775808"),
            vec![
                Int(0),
                Int(42),
                Int(-7),
                Float(3.25),
                Float(-0.5),
                Float(1000.0),
                Float(0.02),
                Int(i64::MIN),
                Eof
            ]
        );
        // `1.` is a number then a dot: a fraction needs digits.
        assert_eq!(kinds("1."), vec![Int(1), Dot, Eof]);
        assert_eq!(
            lex_err("x 9223372036854775808"),
            "syntax error at line 1, column 3: invalid number 9223372036854775808: \
             out of the 64-bit integer range"
        );
        assert_eq!(
            lex_err("12ab"),
            "syntax error at line 1, column 1: invalid number 12ab: \
             a name cannot start with a digit (backquote it)"
        );
    }

    #[test]
    fn strings_and_escapes() {
        use TokenKind::*;
        assert_eq!(
            kinds(r#"'a;b' "c\"d" 'e''f' "x\ty\nz\\w\q""#),
            vec![
                Str("a;b".into()),
                Str("c\"d".into()),
                Str("e'f".into()),
                Str("x\ty\nz\\wq".into()),
                Eof
            ]
        );
        assert_eq!(
            lex_err("SELECT 'abc"),
            "syntax error at line 1, column 8: unterminated string literal (expected closing ')"
        );
        assert_eq!(
            lex_err("\"abc\\"),
            "syntax error at line 1, column 1: unterminated string literal (expected closing \")"
        );
    }

    #[test]
    fn backquoted_identifiers() {
        use TokenKind::*;
        assert_eq!(
            kinds("`select` `a``b` `x y`"),
            vec![
                QuotedIdent("select".into()),
                QuotedIdent("a`b".into()),
                QuotedIdent("x y".into()),
                Eof
            ]
        );
        assert_eq!(
            lex_err("  ``"),
            "syntax error at line 1, column 3: expected identifier, found ``"
        );
        assert_eq!(
            lex_err("`abc"),
            "syntax error at line 1, column 1: unterminated backquoted identifier (expected closing `)"
        );
    }

    #[test]
    fn comments_are_skipped() {
        use TokenKind::*;
        assert_eq!(
            kinds("a -- c ; d\n/* x; \n y */ b --"),
            vec![word("a"), word("b"), Eof]
        );
        assert_eq!(
            lex_err("a\n  /* open"),
            "syntax error at line 2, column 3: unterminated comment (expected closing */)"
        );
    }

    #[test]
    fn positions_count_lines_columns_and_bytes() {
        let tokens = match tokenize("é x\n  `y`\r\n\t'z'") {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        let pos: Vec<(usize, u32, u32)> = tokens
            .iter()
            .map(|t| (t.pos.offset, t.pos.line, t.pos.column))
            .collect();
        assert_eq!(
            pos,
            vec![(0, 1, 1), (3, 1, 3), (7, 2, 3), (13, 3, 2), (16, 3, 5)]
        );
        assert_eq!(tokens[2].end, 10);
    }

    #[test]
    fn stray_characters_are_errors() {
        assert_eq!(
            lex_err("SHOW TABLES @"),
            "syntax error at line 1, column 13: expected a keyword, name, literal or punctuation, \
             found '@'"
        );
        assert_eq!(
            lex_err("a - b"),
            "syntax error at line 1, column 3: expected a keyword, name, literal or punctuation, \
             found '-'"
        );
    }
}
