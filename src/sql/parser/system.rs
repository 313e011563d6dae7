//! `ALTER SYSTEM ADD|DROP BACKEND "host:port"`.

use super::Parser;
use crate::sql::ast::Statement;
use crate::sql::error::ParseError;

impl Parser<'_> {
    /// After `ALTER`.
    pub(super) fn alter_system(&mut self) -> Result<Statement, ParseError> {
        self.expect_kws(&["SYSTEM"])?;
        let add = if self.eat_opt("ADD") {
            true
        } else {
            self.expect_kws(&["DROP"])?;
            false
        };
        self.expect_kws(&["BACKEND"])?;
        let addr = self.string("backend address \"host:port\" (a quoted string)")?;
        Ok(if add {
            Statement::AddBackend { addr }
        } else {
            Statement::DropBackend { addr }
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::ast::Statement;

    #[test]
    fn alter_system_and_show_backends_parse() {
        let p = |s: &str| super::super::parse_statements(s).expect("parses");
        assert!(matches!(
            &p("ALTER SYSTEM ADD BACKEND \"127.0.0.1:9050\"")[..],
            [Statement::AddBackend { addr }] if addr == "127.0.0.1:9050"
        ));
        assert!(matches!(
            &p("alter system drop backend '127.0.0.1:9050'")[..],
            [Statement::DropBackend { .. }]
        ));
        assert!(matches!(&p("SHOW BACKENDS")[..], [Statement::ShowBackends]));
        assert!(super::super::parse_statements("ALTER SYSTEM ADD BACKEND 9050").is_err());
    }
}
