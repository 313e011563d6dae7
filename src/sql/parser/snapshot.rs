//! DROP SNAPSHOT and VERIFY SNAPSHOT.

use super::Parser;
use crate::sql::ast::{SnapshotRef, Statement};
use crate::sql::error::ParseError;
use crate::sql::lexer::TokenKind;

impl Parser<'_> {
    /// `label ON repo [WHERE TIMESTAMP = "ts"]`; the label bare, backquoted or quoted.
    fn snapshot_ref(&mut self) -> Result<SnapshotRef, ParseError> {
        let label = if let TokenKind::Str(_) = self.peek().kind {
            self.string("snapshot label")?
        } else {
            self.ident("snapshot label")?
        };
        self.expect_kws(&["ON"])?;
        let repo = self.ident("repository name")?;
        let timestamp = if self.eat_opt("WHERE") {
            self.expect_kws(&["TIMESTAMP"])?;
            self.expect(&TokenKind::Eq, "\"=\"")?;
            Some(self.string("backup timestamp (a quoted string)")?)
        } else {
            None
        };
        Ok(SnapshotRef {
            label,
            repo,
            timestamp,
        })
    }

    /// After `DROP SNAPSHOT`.
    pub(super) fn drop_snapshot(&mut self) -> Result<Statement, ParseError> {
        Ok(Statement::DropSnapshot(self.snapshot_ref()?))
    }

    /// After `VERIFY`.
    pub(super) fn verify_snapshot(&mut self) -> Result<Statement, ParseError> {
        self.expect_kws(&["SNAPSHOT"])?;
        let snapshot = self.snapshot_ref()?;
        let properties = self.opt_properties()?;
        Ok(Statement::VerifySnapshot {
            snapshot,
            properties,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::ast::{SnapshotRef, Statement};
    use crate::sql::parse_statement;

    #[test]
    fn drop_and_verify_snapshot() {
        let want = SnapshotRef {
            label: "nightly".into(),
            repo: "oss".into(),
            timestamp: Some("2026-01-02-03-04-05".into()),
        };
        assert_eq!(
            parse_statement(
                "DROP SNAPSHOT nightly ON oss WHERE TIMESTAMP = \"2026-01-02-03-04-05\";"
            )
            .ok(),
            Some(Statement::DropSnapshot(want.clone()))
        );
        assert_eq!(
            parse_statement("drop snapshot \"nightly\" on oss").ok(),
            Some(Statement::DropSnapshot(SnapshotRef {
                timestamp: None,
                ..want.clone()
            }))
        );
        assert_eq!(
            parse_statement(
                "VERIFY SNAPSHOT nightly ON oss WHERE TIMESTAMP = \"2026-01-02-03-04-05\" PROPERTIES (\"quick\" = \"true\")"
            )
            .ok(),
            Some(Statement::VerifySnapshot {
                snapshot: want,
                properties: vec![("quick".into(), "true".into())],
            })
        );
        assert!(parse_statement("DROP SNAPSHOT nightly").is_err());
        assert!(parse_statement("VERIFY nightly ON oss").is_err());
    }
}
