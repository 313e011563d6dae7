//! SHOW, users, repositories, BACKUP, RESTORE and CANCEL.

use super::Parser;
use crate::sql::ast::{
    Backup, Broker, CreateRepository, Restore, SnapshotFilter, Statement, TableRef,
};
use crate::sql::error::{ParseError, ParseErrorKind};
use crate::sql::lexer::TokenKind;

const SHOW_WHAT: &[&str] = &[
    "DATABASES",
    "TABLES",
    "PARTITIONS",
    "TABLET",
    "TABLETS",
    "REPOSITORIES",
    "BACKUP",
    "RESTORE",
    "SNAPSHOT",
];

impl Parser<'_> {
    /// After `SHOW`.
    pub(super) fn show(&mut self) -> Result<Statement, ParseError> {
        let Some(what) = SHOW_WHAT.iter().copied().find(|kw| self.is_kw(kw)) else {
            return Err(self.error(crate::sql::error::one_of(SHOW_WHAT)));
        };
        self.advance();
        Ok(match what {
            "DATABASES" => Statement::ShowDatabases,
            "TABLES" => Statement::ShowTables {
                db: self.opt_from_db()?,
            },
            "PARTITIONS" => {
                self.expect_kws(&["FROM"])?;
                Statement::ShowPartitions {
                    table: self.qualified_name("table name")?,
                }
            }
            "TABLET" | "TABLETS" => {
                self.expect_kws(&["FROM"])?;
                Statement::ShowTablets {
                    table: self.qualified_name("table name")?,
                }
            }
            "REPOSITORIES" => Statement::ShowRepositories,
            "BACKUP" => Statement::ShowBackup {
                db: self.opt_from_db()?,
            },
            "RESTORE" => Statement::ShowRestore {
                db: self.opt_from_db()?,
            },
            _ => self.show_snapshot()?,
        })
    }

    /// After `SHOW SNAPSHOT`: `ON repo [WHERE SNAPSHOT = "label" [AND TIMESTAMP = "ts"]]`.
    fn show_snapshot(&mut self) -> Result<Statement, ParseError> {
        self.expect_kws(&["ON"])?;
        let repo = self.ident("repository name")?;
        let filter = if self.eat_opt("WHERE") {
            self.expect_kws(&["SNAPSHOT"])?;
            self.expect(&TokenKind::Eq, "\"=\"")?;
            let snapshot = self.string("snapshot label (a quoted string)")?;
            let timestamp = if self.eat_opt("AND") {
                self.expect_kws(&["TIMESTAMP"])?;
                self.expect(&TokenKind::Eq, "\"=\"")?;
                Some(self.string("backup timestamp (a quoted string)")?)
            } else {
                None
            };
            Some(SnapshotFilter {
                snapshot,
                timestamp,
            })
        } else {
            None
        };
        Ok(Statement::ShowSnapshot { repo, filter })
    }

    /// After `CREATE USER`: a name, bare, backquoted or quoted.
    pub(super) fn create_user(&mut self) -> Result<Statement, ParseError> {
        let name = if let TokenKind::Str(_) = self.peek().kind {
            self.string("user name")?
        } else {
            self.ident("user name")?
        };
        Ok(Statement::CreateUser { name })
    }

    /// After `CREATE REPOSITORY`.
    pub(super) fn create_repository(&mut self) -> Result<Statement, ParseError> {
        let name = self.ident("repository name")?;
        let broker = if self.eat_opt("WITH") {
            self.expect_kws(&["BROKER"])?;
            let name = if self.is_ident() {
                Some(self.ident("broker name")?)
            } else {
                None
            };
            Some(Broker { name })
        } else {
            None
        };
        if !self.is_kw("ON") {
            return Err(self.error(if broker.is_some() {
                "broker name or ON"
            } else {
                "ON"
            }));
        }
        self.expect_kws(&["ON", "LOCATION"])?;
        let location = self.string("location (a quoted string such as \"file:///path\")")?;
        let properties = self.opt_properties()?;
        Ok(Statement::CreateRepository(CreateRepository {
            name,
            broker,
            location,
            properties,
            read_only: false,
        }))
    }

    /// After `BACKUP`.
    pub(super) fn backup(&mut self) -> Result<Statement, ParseError> {
        self.expect_kws(&["SNAPSHOT"])?;
        let label = self.qualified_name("snapshot label")?;
        self.expect_kws(&["TO"])?;
        let repo = self.ident("repository name")?;
        let tables = self.opt_on_tables(false)?;
        let properties = self.opt_properties()?;
        Ok(Statement::Backup(Backup {
            label,
            repo,
            tables,
            properties,
        }))
    }

    /// After `RESTORE`.
    pub(super) fn restore(&mut self) -> Result<Statement, ParseError> {
        self.expect_kws(&["SNAPSHOT"])?;
        let label = self.qualified_name("snapshot label")?;
        self.expect_kws(&["FROM"])?;
        let repo = self.ident("repository name")?;
        let tables = self.opt_on_tables(true)?;
        let properties = self.opt_properties()?;
        Ok(Statement::Restore(Restore {
            label,
            repo,
            tables,
            properties,
        }))
    }

    /// After `CANCEL`.
    pub(super) fn cancel(&mut self) -> Result<Statement, ParseError> {
        if self.is_kw("BACKUP") {
            self.advance();
            Ok(Statement::CancelBackup {
                db: self.opt_from_db()?,
            })
        } else if self.is_kw("RESTORE") {
            self.advance();
            Ok(Statement::CancelRestore {
                db: self.opt_from_db()?,
            })
        } else {
            Err(self.error("BACKUP or RESTORE"))
        }
    }

    /// `[ON (t [PARTITION (p, ...)] [AS alias], ...)]`; aliases only when `allow_alias`.
    fn opt_on_tables(&mut self, allow_alias: bool) -> Result<Vec<TableRef>, ParseError> {
        let mut tables: Vec<TableRef> = Vec::new();
        if !self.eat_opt("ON") {
            return Ok(tables);
        }
        self.expect_lparen()?;
        loop {
            let name_token = self.peek().clone();
            let name = self.ident("table name")?;
            if tables.iter().any(|t| t.name == name) {
                return Err(Self::error_kind(
                    &name_token,
                    ParseErrorKind::DuplicateTable { name },
                ));
            }
            let partitions = if self.eat_opt("PARTITION") {
                self.ident_list("partition name")?
            } else {
                Vec::new()
            };
            let alias = if allow_alias && self.eat_opt("AS") {
                Some(self.ident("alias")?)
            } else {
                None
            };
            tables.push(TableRef {
                name,
                partitions,
                alias,
            });
            if !self.eat(&TokenKind::Comma) {
                break;
            }
        }
        self.expect(&TokenKind::RParen, "\",\" or \")\"")?;
        Ok(tables)
    }
}
