//! Splits statement text at its terminators as the mysql client does: `;`
//! (or `\g`) ends a statement, `\G` ends one whose rows print vertically.
//! Terminators inside quotes and comments do not count.

/// How a statement ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminator {
    /// `;` or `\g`: rows print as a table.
    Semicolon,
    /// `\G`: rows print one field a line.
    Vertical,
}

/// One statement's text, without its terminator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece<'a> {
    /// The text before the terminator.
    pub text: &'a str,
    /// `None` for text after the last terminator.
    pub terminator: Option<Terminator>,
    /// Whether the text has anything but whitespace and comments.
    pub has_content: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    Quote(char),
    LineComment,
    BlockComment,
}

/// Splits `text` into pieces; the last has no terminator (possibly empty).
pub fn split(text: &str) -> Vec<Piece<'_>> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let mut state = State::Normal;
    let mut start = 0;
    let mut has_content = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        match state {
            State::Normal => match (c, next) {
                (b'\'' | b'"' | b'`', _) => {
                    state = State::Quote(c as char);
                    has_content = true;
                }
                (b'-', Some(b'-')) => state = State::LineComment,
                (b'/', Some(b'*')) => {
                    state = State::BlockComment;
                    i += 1;
                }
                (b';', _) | (b'\\', Some(b'g' | b'G')) => {
                    let terminator = if next == Some(b'G') {
                        Terminator::Vertical
                    } else {
                        Terminator::Semicolon
                    };
                    pieces.push(Piece {
                        text: &text[start..i],
                        terminator: Some(terminator),
                        has_content,
                    });
                    if c == b'\\' {
                        i += 1;
                    }
                    start = i + 1;
                    has_content = false;
                }
                (c, _) if c.is_ascii_whitespace() => {}
                _ => has_content = true,
            },
            State::Quote(q) => {
                if c == b'\\' && q != '`' {
                    i += 1;
                } else if c == q as u8 {
                    if next == Some(c) {
                        i += 1;
                    } else {
                        state = State::Normal;
                    }
                }
            }
            State::LineComment => {
                if c == b'\n' {
                    state = State::Normal;
                }
            }
            State::BlockComment => {
                if c == b'*' && next == Some(b'/') {
                    state = State::Normal;
                    i += 1;
                }
            }
        }
        i += 1;
    }
    pieces.push(Piece {
        text: &text[start.min(text.len())..],
        terminator: None,
        has_content,
    });
    pieces
}

/// `text` with every `\G` and `\g` terminator turned into `;` (and a space,
/// so positions in error messages stay right), and for each statement in
/// order whether it prints vertically.
pub fn normalize(text: &str) -> (String, Vec<bool>) {
    let mut out = String::with_capacity(text.len());
    let mut vertical = Vec::new();
    for piece in split(text) {
        out.push_str(piece.text);
        // Where the terminator starts: the piece's offset in `text` plus its length.
        let end = piece.text.as_ptr() as usize - text.as_ptr() as usize + piece.text.len();
        match piece.terminator {
            Some(_) if text.as_bytes()[end] == b';' => out.push(';'),
            Some(_) => out.push_str("; "),
            None => {}
        }
        if piece.has_content {
            vertical.push(piece.terminator == Some(Terminator::Vertical));
        }
    }
    (out, vertical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_terminators_outside_quotes_and_comments() {
        let p = split("SELECT ';' FROM t; /* ; */ SHOW x\\G -- ;\n  USE \"a\\\"; b\"");
        let texts: Vec<_> = p.iter().map(|p| (p.text, p.terminator)).collect();
        assert_eq!(
            texts,
            vec![
                ("SELECT ';' FROM t", Some(Terminator::Semicolon)),
                (" /* ; */ SHOW x", Some(Terminator::Vertical)),
                (" -- ;\n  USE \"a\\\"; b\"", None),
            ]
        );
        assert!(p.iter().all(|p| p.has_content));
        let p = split("a;; -- c\n");
        assert_eq!(
            p.iter().map(|p| p.has_content).collect::<Vec<_>>(),
            [true, false, false]
        );
    }

    #[test]
    fn normalize_keeps_positions_and_marks_vertical() {
        let (text, vertical) = normalize("SHOW A\\G\nSHOW B;;SHOW C\\g SHOW D");
        assert_eq!(text, "SHOW A; \nSHOW B;;SHOW C;  SHOW D");
        assert_eq!(vertical, [true, false, false, false]);
    }
}
