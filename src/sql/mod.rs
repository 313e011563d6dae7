//! Statement parsing and result formatting.
//!
//! [`parse_statements`] turns text into typed [`ast::Statement`]s (syntax only);
//! [`props`] validates job properties for the job layer; [`format`](mod@format) renders
//! result tables like the mysql client.

pub mod ast;
pub mod error;
pub mod format;
pub mod help;
pub mod lexer;
pub mod parser;
pub mod props;

pub use ast::Statement;
pub use error::{ParseError, ParseErrorKind, Pos};
pub use format::{render_batch, render_table, ResultSet};
pub use parser::{parse_statement, parse_statements};
pub use props::{BackupProps, PropertyError, RestoreProps};
