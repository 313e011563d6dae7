//! Statement parsing and result formatting.

pub mod error;
pub mod lexer;

pub use error::{ParseError, ParseErrorKind, Pos};
