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
    "BROKER",
];

impl Parser<'_> {
    /// After `SHOW`.
    pub(super) fn show(&mut self) -> Result<Statement, ParseError> {
        if self.eat_opt("BACKENDS") {
            return Ok(Statement::ShowBackends);
        }
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
            "BROKER" => Statement::ShowBroker,
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

    /// A user name, bare, backquoted or quoted.
    pub(super) fn user_name(&mut self) -> Result<String, ParseError> {
        if let TokenKind::Str(_) = self.peek().kind {
            self.string("user name")
        } else {
            self.ident("user name")
        }
    }

    /// After `CREATE USER`: a name, then `IDENTIFIED BY 'pw'` when written.
    pub(super) fn create_user(&mut self) -> Result<Statement, ParseError> {
        let name = self.user_name()?;
        let password = if self.eat_opt("IDENTIFIED") {
            self.expect_kws(&["BY"])?;
            Some(self.string("password (a quoted string)")?)
        } else {
            None
        };
        Ok(Statement::CreateUser { name, password })
    }

    /// After `SET`: `PASSWORD [FOR user] = PASSWORD('pw')` or `= 'pw'`.
    pub(super) fn set_password(&mut self) -> Result<Statement, ParseError> {
        self.expect_kws(&["PASSWORD"])?;
        let user = if self.eat_opt("FOR") {
            Some(self.user_name()?)
        } else {
            None
        };
        self.expect(&TokenKind::Eq, "\"=\"")?;
        let password = if self.is_kw("PASSWORD") {
            self.advance();
            self.expect_lparen()?;
            let p = self.string("password (a quoted string)")?;
            self.expect_rparen()?;
            p
        } else {
            self.string("PASSWORD('...') or a quoted password")?
        };
        Ok(Statement::SetPassword { user, password })
    }

    /// After `HELP`: the topic's words (or quoted text) up to the end of the statement.
    pub(super) fn help(&mut self) -> Result<Statement, ParseError> {
        let mut words: Vec<String> = Vec::new();
        loop {
            match &self.peek().kind {
                TokenKind::Word(w) => words.push(w.to_ascii_uppercase()),
                TokenKind::Str(s) => {
                    words.extend(s.split_whitespace().map(str::to_ascii_uppercase))
                }
                TokenKind::Semicolon | TokenKind::Eof => break,
                _ => return Err(self.error("a help topic such as BACKUP or SHOW SNAPSHOT")),
            }
            self.advance();
        }
        Ok(Statement::Help {
            topic: words.join(" "),
        })
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

    /// After `BACKUP`: `SNAPSHOT [d.]s TO r ...` (the seed's form) or
    /// `DATABASE d SNAPSHOT s TO r ...` (StarRocks 3.4's), then
    /// `[ON (...) | ON (ALL TABLES) | EXCLUDE (t, ...)] [PROPERTIES (...)]`.
    pub(super) fn backup(&mut self) -> Result<Statement, ParseError> {
        let label = if self.eat_opt("DATABASE") {
            let db = self.ident("database name")?;
            self.expect_kws(&["SNAPSHOT"])?;
            crate::sql::ast::QualifiedName::qualified(db, self.ident("snapshot label")?)
        } else {
            self.expect_kws(&["SNAPSHOT"])?;
            self.qualified_name("snapshot label")?
        };
        self.expect_kws(&["TO"])?;
        let repo = self.ident("repository name")?;
        let tables = self.opt_on_tables(false)?;
        let exclude = if tables.is_empty() && self.eat_opt("EXCLUDE") {
            self.ident_list("table name")?
        } else {
            Vec::new()
        };
        let properties = self.opt_properties()?;
        Ok(Statement::Backup(Backup {
            label,
            repo,
            tables,
            exclude,
            properties,
        }))
    }

    /// After `RESTORE`: `SNAPSHOT [d.]s FROM r`, then StarRocks 3.4's
    /// `[DATABASE d [AS d2]]`, then `[ON (...)] [PROPERTIES (...)]`.
    pub(super) fn restore(&mut self) -> Result<Statement, ParseError> {
        self.expect_kws(&["SNAPSHOT"])?;
        let mut label = self.qualified_name("snapshot label")?;
        self.expect_kws(&["FROM"])?;
        let repo = self.ident("repository name")?;
        let mut source_db = None;
        if self.eat_opt("DATABASE") {
            let db_token = self.peek().clone();
            let db = self.ident("database name")?;
            let target = if self.eat_opt("AS") {
                self.ident("database name")?
            } else {
                db.clone()
            };
            if label.db.as_ref().is_some_and(|d| *d != target) {
                return Err(Self::error_kind(
                    &db_token,
                    ParseErrorKind::Unexpected {
                        expected: format!(
                            "the database of the label ({})",
                            label.db.clone().unwrap_or_default()
                        ),
                        found: format!("\"{target}\""),
                    },
                ));
            }
            label.db = Some(target);
            source_db = Some(db);
        }
        let tables = self.opt_on_tables(true)?;
        let properties = self.opt_properties()?;
        Ok(Statement::Restore(Restore {
            label,
            repo,
            source_db,
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

    /// `[ON ([TABLE] t [PARTITION (p, ...)] [AS alias], ... | ALL TABLES)]`;
    /// aliases only when `allow_alias`; `ALL TABLES` is the empty list.
    fn opt_on_tables(&mut self, allow_alias: bool) -> Result<Vec<TableRef>, ParseError> {
        let mut tables: Vec<TableRef> = Vec::new();
        if !self.eat_opt("ON") {
            return Ok(tables);
        }
        self.expect_lparen()?;
        let all_tables = self.is_kw("ALL")
            && matches!(&self.tokens.get(self.at + 1).map(|t| &t.kind),
                Some(TokenKind::Word(w)) if w.eq_ignore_ascii_case("TABLES"));
        if all_tables {
            self.expect_kws(&["ALL", "TABLES"])?;
            self.expect_rparen()?;
            return Ok(tables);
        }
        loop {
            // StarRocks 3.4 writes `TABLE t`; a table named `table` must be backquoted anyway.
            self.eat_opt("TABLE");
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
