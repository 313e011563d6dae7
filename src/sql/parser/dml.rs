//! INSERT, SELECT and CHECKSUM TABLE.

use super::Parser;
use crate::sql::ast::{InsertGenerate, InsertValues, QualifiedName, Statement};
use crate::sql::error::ParseError;
use crate::sql::lexer::TokenKind;

impl Parser<'_> {
    /// After `INSERT`.
    pub(super) fn insert(&mut self) -> Result<Statement, ParseError> {
        self.expect_kws(&["INTO"])?;
        let table = self.qualified_name("table name")?;
        if self.peek().kind == TokenKind::LParen {
            let columns = Some(self.ident_list("column name")?);
            self.expect_kws(&["VALUES"])?;
            return self.values(table, columns);
        }
        if self.eat_opt("PARTITION") {
            let partitions = self.ident_list("partition name")?;
            self.expect_kws(&["GENERATE"])?;
            return self.generate(table, partitions);
        }
        if self.eat_opt("VALUES") {
            return self.values(table, None);
        }
        if self.eat_opt("GENERATE") {
            return self.generate(table, Vec::new());
        }
        Err(self.error("\"(\""))
    }

    /// After `VALUES`: `(v, ...), ...`.
    fn values(
        &mut self,
        table: QualifiedName,
        columns: Option<Vec<String>>,
    ) -> Result<Statement, ParseError> {
        let mut rows = Vec::new();
        loop {
            self.expect_lparen()?;
            let mut row = vec![self.literal()?];
            while self.eat(&TokenKind::Comma) {
                row.push(self.literal()?);
            }
            self.expect(&TokenKind::RParen, "\",\" or \")\"")?;
            rows.push(row);
            if !self.eat(&TokenKind::Comma) {
                break;
            }
        }
        Ok(Statement::InsertValues(InsertValues {
            table,
            columns,
            rows,
        }))
    }

    /// After `GENERATE`: `n ROWS [SEED s]`.
    fn generate(
        &mut self,
        table: QualifiedName,
        partitions: Vec<String>,
    ) -> Result<Statement, ParseError> {
        let rows = self.unsigned("row count")?;
        self.expect_kws(&["ROWS"])?;
        let seed = if self.eat_opt("SEED") {
            Some(self.unsigned("seed")?)
        } else {
            None
        };
        Ok(Statement::InsertGenerate(InsertGenerate {
            table,
            partitions,
            rows,
            seed,
        }))
    }

    /// After `SELECT`: `COUNT(*) FROM t` or `* FROM t [LIMIT n]`.
    pub(super) fn select(&mut self) -> Result<Statement, ParseError> {
        if self.eat(&TokenKind::Star) {
            self.expect_kws(&["FROM"])?;
            let table = self.qualified_name("table name")?;
            let limit = if self.eat_opt("LIMIT") {
                Some(self.unsigned("row limit")?)
            } else {
                None
            };
            return Ok(Statement::SelectAll { table, limit });
        }
        if !self.is_kw("COUNT") {
            return Err(self.error("* or COUNT(*)"));
        }
        self.advance();
        self.expect_lparen()?;
        self.expect(&TokenKind::Star, "\"*\"")?;
        self.expect_rparen()?;
        self.expect_kws(&["FROM"])?;
        let table = self.qualified_name("table name")?;
        Ok(Statement::SelectCount { table })
    }

    /// After `CHECKSUM`: `TABLE t [, t2 ...]`.
    pub(super) fn checksum(&mut self) -> Result<Statement, ParseError> {
        self.expect_kws(&["TABLE"])?;
        let mut tables = vec![self.qualified_name("table name")?];
        while self.eat(&TokenKind::Comma) {
            tables.push(self.qualified_name("table name")?);
        }
        Ok(Statement::Checksum { tables })
    }
}
