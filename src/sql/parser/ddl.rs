//! CREATE and DROP of databases and tables (and the CREATE/DROP dispatch).

use super::Parser;
use crate::sql::ast::{
    ColumnDef, ColumnType, CreateTable, Distribution, PartitionBound, PartitionSpec,
    RangePartition, Statement,
};
use crate::sql::error::ParseError;
use crate::sql::lexer::TokenKind;

const COLUMN_TYPES: &str =
    "column type (BOOLEAN, INT, BIGINT, DOUBLE, DATE, DATETIME or VARCHAR(n))";

impl Parser<'_> {
    /// After `CREATE`.
    pub(super) fn create(&mut self) -> Result<Statement, ParseError> {
        if self.is_kw("DATABASE") {
            self.advance();
            let if_not_exists = self.if_not_exists()?;
            let name = self.ident("database name")?;
            Ok(Statement::CreateDatabase {
                name,
                if_not_exists,
            })
        } else if self.is_kw("TABLE") {
            self.advance();
            self.create_table()
        } else if self.is_kw("USER") {
            self.advance();
            self.create_user()
        } else if self.is_kw("REPOSITORY") {
            self.advance();
            self.create_repository()
        } else if self.is_kw("READ") {
            self.advance();
            self.expect_kws(&["ONLY", "REPOSITORY"])?;
            match self.create_repository()? {
                Statement::CreateRepository(mut cr) => {
                    cr.read_only = true;
                    Ok(Statement::CreateRepository(cr))
                }
                other => Ok(other),
            }
        } else {
            Err(self.error("DATABASE, TABLE, USER or REPOSITORY"))
        }
    }

    /// After `DROP`.
    pub(super) fn drop_statement(&mut self) -> Result<Statement, ParseError> {
        if self.is_kw("DATABASE") {
            self.advance();
            let if_exists = self.if_exists()?;
            let name = self.ident("database name")?;
            Ok(Statement::DropDatabase { name, if_exists })
        } else if self.is_kw("TABLE") {
            self.advance();
            let if_exists = self.if_exists()?;
            let name = self.qualified_name("table name")?;
            Ok(Statement::DropTable { name, if_exists })
        } else if self.is_kw("SNAPSHOT") {
            self.advance();
            self.drop_snapshot()
        } else if self.is_kw("REPOSITORY") {
            self.advance();
            let name = self.ident("repository name")?;
            Ok(Statement::DropRepository { name })
        } else if self.is_kw("USER") {
            self.advance();
            let if_exists = self.if_exists()?;
            let name = self.user_name()?;
            Ok(Statement::DropUser { name, if_exists })
        } else {
            Err(self.error("DATABASE, TABLE, USER or REPOSITORY"))
        }
    }

    fn if_not_exists(&mut self) -> Result<bool, ParseError> {
        if self.eat_opt("IF") {
            self.expect_kws(&["NOT", "EXISTS"])?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn if_exists(&mut self) -> Result<bool, ParseError> {
        if self.eat_opt("IF") {
            self.expect_kws(&["EXISTS"])?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// After `CREATE TABLE`.
    fn create_table(&mut self) -> Result<Statement, ParseError> {
        let if_not_exists = self.if_not_exists()?;
        let name = self.qualified_name("table name")?;
        self.expect_lparen()?;
        let mut columns = vec![self.column_def()?];
        while self.eat(&TokenKind::Comma) {
            columns.push(self.column_def()?);
        }
        self.expect(&TokenKind::RParen, "\",\" or \")\"")?;
        let duplicate_key = if self.eat_opt("DUPLICATE") {
            self.expect_kws(&["KEY"])?;
            Some(self.ident_list("column name")?)
        } else {
            None
        };
        let partition = if self.eat_opt("PARTITION") {
            Some(self.partition_spec()?)
        } else {
            None
        };
        if !self.is_kw("DISTRIBUTED") {
            return Err(self.error("DISTRIBUTED"));
        }
        self.expect_kws(&["DISTRIBUTED", "BY", "HASH"])?;
        let columns_hashed = self.ident_list("column name")?;
        self.expect_kws(&["BUCKETS"])?;
        let buckets = self.positive_u32("bucket count")?;
        let properties = self.opt_properties()?;
        Ok(Statement::CreateTable(CreateTable {
            if_not_exists,
            name,
            columns,
            duplicate_key,
            partition,
            distribution: Distribution {
                columns: columns_hashed,
                buckets,
            },
            properties,
        }))
    }

    /// `name type [NOT NULL | NULL]`.
    fn column_def(&mut self) -> Result<ColumnDef, ParseError> {
        let name = self.ident("column name")?;
        let ty = self.column_type()?;
        let nullable = if self.is_kw("NOT") {
            self.advance();
            self.expect(&TokenKind::Null, "NULL")?;
            false
        } else {
            self.eat(&TokenKind::Null);
            true
        };
        Ok(ColumnDef { name, ty, nullable })
    }

    fn column_type(&mut self) -> Result<ColumnType, ParseError> {
        let TokenKind::Word(word) = &self.peek().kind else {
            return Err(self.error(COLUMN_TYPES));
        };
        let ty = match word.to_ascii_uppercase().as_str() {
            "BOOLEAN" | "BOOL" => ColumnType::Boolean,
            "INT" | "INTEGER" => ColumnType::Int,
            "BIGINT" => ColumnType::BigInt,
            "DOUBLE" => ColumnType::Double,
            "DATE" => ColumnType::Date,
            "DATETIME" => ColumnType::DateTime,
            "VARCHAR" => {
                self.advance();
                if self.peek().kind != TokenKind::LParen {
                    return Err(self.error("(length) after VARCHAR"));
                }
                self.advance();
                let len = self.positive_u32("VARCHAR length")?;
                self.expect_rparen()?;
                return Ok(ColumnType::Varchar(len));
            }
            _ => return Err(self.error(COLUMN_TYPES)),
        };
        self.advance();
        Ok(ty)
    }

    /// After `PARTITION`: `BY RANGE(col) (PARTITION p VALUES LESS THAN (...), ...)`.
    fn partition_spec(&mut self) -> Result<PartitionSpec, ParseError> {
        self.expect_kws(&["BY", "RANGE"])?;
        self.expect_lparen()?;
        let column = self.ident("column name")?;
        self.expect_rparen()?;
        self.expect_lparen()?;
        let mut partitions = vec![self.range_partition()?];
        while self.eat(&TokenKind::Comma) {
            partitions.push(self.range_partition()?);
        }
        self.expect(&TokenKind::RParen, "\",\" or \")\"")?;
        Ok(PartitionSpec { column, partitions })
    }

    fn range_partition(&mut self) -> Result<RangePartition, ParseError> {
        self.expect_kws(&["PARTITION"])?;
        let name = self.ident("partition name")?;
        self.expect_kws(&["VALUES", "LESS", "THAN"])?;
        let bound = if self.is_kw("MAXVALUE") {
            self.advance();
            PartitionBound::MaxValue
        } else if self.eat(&TokenKind::LParen) {
            let bound = if self.is_kw("MAXVALUE") {
                self.advance();
                PartitionBound::MaxValue
            } else {
                match self.peek().kind {
                    TokenKind::Str(_) | TokenKind::Int(_) | TokenKind::Float(_) => {
                        PartitionBound::LessThan(self.literal()?)
                    }
                    _ => return Err(self.error("bound value (a quoted string) or MAXVALUE")),
                }
            };
            self.expect_rparen()?;
            bound
        } else {
            return Err(self.error("\"(\" or MAXVALUE"));
        };
        Ok(RangePartition { name, bound })
    }
}
