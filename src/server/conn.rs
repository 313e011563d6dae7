//! One MySQL-protocol connection: authentication against the home's users,
//! then each query handed to the statement executor on a blocking thread.
//!
//! The session moves into the blocking task and back, so a statement runs
//! without holding anything the other connections need. A client that
//! disconnects mid-statement drops only this future: the statement runs to
//! its end on its thread, and jobs belong to the cluster's job manager, so
//! nothing is cancelled and nothing waits for them here.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use opensrv_mysql::{
    AsyncMysqlShim, Column, ColumnFlags, ColumnType, ErrorKind, InitWriter, OkResponse,
    ParamParser, QueryResultWriter, StatementMetaWriter, StatusFlags,
};
use tokio::io::AsyncWrite;

use super::vars::{self, Reply};
use super::wire::{Shared, MULTI_STATEMENTS};
use crate::cluster::Cluster;
use crate::errcode::{classify, one_line, ErrorCode};
use crate::exec::{Output, Session};
use crate::sql::format::NULL;
use crate::sql::ResultSet;
use crate::users::Passwords;

/// The state of one connection.
pub struct Conn {
    cluster: Arc<Cluster>,
    shared: Arc<Shared>,
    id: u32,
    /// One salt for the whole handshake: the crate asks for it twice.
    salt: [u8; 20],
    /// The user that logged in (set by `authenticate`, which takes `&self`).
    user: Mutex<Option<String>>,
    /// `None` only while a statement runs on a blocking thread.
    session: Option<Session>,
}

impl Conn {
    /// A connection to `cluster`, number `id`.
    pub fn new(cluster: Arc<Cluster>, shared: Arc<Shared>, id: u32) -> io::Result<Conn> {
        let random = crate::users::random_bytes(20).map_err(io::Error::other)?;
        let mut salt = [0u8; 20];
        for (s, r) in salt.iter_mut().zip(random) {
            // Printable ASCII without '$' (and never NUL), as MySQL's scrambles.
            let mut c = 0x21 + r % 0x5e;
            if c == b'$' {
                c += 1;
            }
            *s = c;
        }
        Ok(Conn {
            cluster,
            shared,
            id,
            salt,
            user: Mutex::new(None),
            session: None,
        })
    }

    fn user(&self) -> String {
        self.user
            .lock()
            .map(|u| u.clone().unwrap_or_default())
            .unwrap_or_default()
    }

    /// The session, made on first use after the login.
    fn take_session(&mut self) -> Result<Session, anyhow::Error> {
        match self.session.take() {
            Some(s) => Ok(s),
            None => Session::new(Arc::clone(&self.cluster), &self.user()),
        }
    }

    /// Runs `text` (one statement or several) and returns each output, stopping at an error.
    async fn run(&mut self, text: String) -> (Vec<Output>, Option<anyhow::Error>) {
        let mut session = match self.take_session() {
            Ok(s) => s,
            Err(e) => return (Vec::new(), Some(e)),
        };
        let multi = self.shared.client_caps.load(Ordering::SeqCst) & MULTI_STATEMENTS != 0;
        let task = tokio::task::spawn_blocking(move || {
            let mut outs = Vec::new();
            let stmts = match crate::sql::parse_statements(&text) {
                Ok(s) => s,
                Err(e) => return (session, outs, Some(anyhow::Error::from(e))),
            };
            if stmts.len() > 1 && !multi {
                let e = crate::errcode::coded(
                    ErrorCode::Syntax,
                    "several statements in one query, but the client did not enable multi-statements",
                );
                return (session, outs, Some(e));
            }
            for stmt in stmts {
                match session.execute(stmt) {
                    Ok(o) => outs.push(o),
                    Err(e) => return (session, outs, Some(e)),
                }
            }
            (session, outs, None)
        });
        match task.await {
            Ok((session, outs, err)) => {
                self.session = Some(session);
                (outs, err)
            }
            Err(e) => (
                Vec::new(),
                Some(anyhow::anyhow!("the statement's thread failed: {e}")),
            ),
        }
    }
}

fn error_kind(code: ErrorCode) -> ErrorKind {
    match code {
        ErrorCode::AccessDenied => ErrorKind::ER_ACCESS_DENIED_ERROR,
        ErrorCode::SpecificAccessDenied => ErrorKind::ER_SPECIFIC_ACCESS_DENIED_ERROR,
        ErrorCode::Syntax => ErrorKind::ER_PARSE_ERROR,
        ErrorCode::BadDb => ErrorKind::ER_BAD_DB_ERROR,
        ErrorCode::NoSuchTable => ErrorKind::ER_NO_SUCH_TABLE,
        ErrorCode::DbExists => ErrorKind::ER_DB_CREATE_EXISTS,
        ErrorCode::TableExists => ErrorKind::ER_TABLE_EXISTS_ERROR,
        ErrorCode::UserOp => ErrorKind::ER_CANNOT_USER,
        ErrorCode::Unknown => ErrorKind::ER_UNKNOWN_ERROR,
    }
}

/// `Query OK, 3 rows affected` → 3.
fn affected_rows(message: &str) -> u64 {
    message
        .strip_prefix("Query OK, ")
        .and_then(|m| m.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Column types from the cells: a column whose non-NULL cells are all
/// integers is BIGINT, otherwise VARCHAR.
fn columns(rs: &ResultSet) -> Vec<Column> {
    rs.columns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut cells = rs
                .rows
                .iter()
                .filter_map(|r| r.get(i))
                .filter(|c| *c != NULL);
            let mut any = false;
            let int = cells.all(|c| {
                any = true;
                c.parse::<i64>().is_ok()
            }) && any;
            Column {
                table: String::new(),
                column: name.clone(),
                coltype: if int {
                    ColumnType::MYSQL_TYPE_LONGLONG
                } else {
                    ColumnType::MYSQL_TYPE_VAR_STRING
                },
                colflags: ColumnFlags::empty(),
            }
        })
        .collect()
}

async fn write_rows<'a, W: AsyncWrite + Send + Unpin>(
    w: QueryResultWriter<'a, W>,
    cols: &'a [Column],
    rs: &ResultSet,
    last: bool,
) -> io::Result<Option<QueryResultWriter<'a, W>>> {
    let mut rw = w.start(cols).await?;
    for row in &rs.rows {
        for i in 0..cols.len() {
            let cell = row.get(i).map(String::as_str).unwrap_or("");
            if cell == NULL {
                rw.write_col(None::<&str>)?;
            } else {
                rw.write_col(cell)?;
            }
        }
        rw.end_row().await?;
    }
    if last {
        rw.finish().await?;
        Ok(None)
    } else {
        Ok(Some(rw.finish_one().await?))
    }
}

#[async_trait]
impl<W: AsyncWrite + Send + Unpin> AsyncMysqlShim<W> for Conn {
    type Error = io::Error;

    fn version(&self) -> String {
        vars::version()
    }

    fn connect_id(&self) -> u32 {
        self.id
    }

    fn salt(&self) -> [u8; 20] {
        self.salt
    }

    async fn authenticate(
        &self,
        _auth_plugin: &str,
        username: &[u8],
        salt: &[u8],
        auth_data: &[u8],
    ) -> bool {
        let name = String::from_utf8_lossy(username).to_string();
        let known = self.cluster.catalog().users.contains_key(&name);
        let ok = known
            && Passwords::load(self.cluster.home())
                .map(|p| crate::users::check_scramble(p.native(&name), salt, auth_data))
                .unwrap_or(false);
        if ok {
            if let Ok(mut u) = self.user.lock() {
                *u = Some(name);
            }
        } else if let Ok(mut d) = self.shared.denied.lock() {
            *d = Some(format!(
                "Access denied for user '{name}' (using password: {})",
                if auth_data.is_empty() { "NO" } else { "YES" }
            ));
        }
        ok
    }

    async fn on_prepare<'a>(
        &'a mut self,
        _query: &'a str,
        info: StatementMetaWriter<'a, W>,
    ) -> io::Result<()> {
        info.error(
            ErrorKind::ER_UNSUPPORTED_PS,
            b"prepared statements are not supported: send the statement as text".as_ref(),
        )
        .await
    }

    async fn on_execute<'a>(
        &'a mut self,
        _id: u32,
        _params: ParamParser<'a>,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        results
            .error(
                ErrorKind::ER_UNSUPPORTED_PS,
                b"prepared statements are not supported".as_ref(),
            )
            .await
    }

    async fn on_close<'a>(&'a mut self, _stmt: u32)
    where
        W: 'async_trait,
    {
    }

    async fn on_init<'a>(&'a mut self, db: &'a str, w: InitWriter<'a, W>) -> io::Result<()> {
        let text = format!("USE `{}`", db.replace('`', "``"));
        match self.run(text).await {
            (_, None) => w.ok().await,
            (_, Some(e)) => {
                w.error(error_kind(classify(&e)), one_line(&e).as_bytes())
                    .await
            }
        }
    }

    async fn on_query<'a>(
        &'a mut self,
        query: &'a str,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        let db = self
            .session
            .as_ref()
            .and_then(|s| s.current_db().map(str::to_string));
        match vars::answer(query, db.as_deref(), &self.user(), self.id) {
            Some(Reply::Ok) => return results.completed(OkResponse::default()).await,
            Some(Reply::UnknownVariable(v)) => {
                let msg = format!("Unknown system variable '{v}'");
                return results
                    .error(ErrorKind::ER_UNKNOWN_SYSTEM_VARIABLE, msg.as_bytes())
                    .await;
            }
            Some(Reply::Rows(rs)) => {
                let cols = columns(&rs);
                write_rows(results, &cols, &rs, true).await?;
                return Ok(());
            }
            None => {}
        }
        let (outs, err) = self.run(query.to_string()).await;
        let all_cols: Vec<Vec<Column>> = outs
            .iter()
            .map(|o| match o {
                Output::Rows(rs) => columns(rs),
                Output::Message(_) => Vec::new(),
            })
            .collect();
        let mut w = results;
        let n = outs.len();
        for (i, (out, cols)) in outs.iter().zip(&all_cols).enumerate() {
            let last = i + 1 == n && err.is_none();
            match out {
                Output::Rows(rs) => match write_rows(w, cols, rs, last).await? {
                    Some(next) => w = next,
                    None => return Ok(()),
                },
                Output::Message(m) => {
                    // No info text: clients disagree on its encoding without
                    // CLIENT_SESSION_TRACK (raw for MySQL's docs, lenenc for
                    // mysql_common), and they print their own "Query OK".
                    let mut ok = OkResponse {
                        affected_rows: affected_rows(m),
                        ..Default::default()
                    };
                    if !last {
                        ok.status_flags = StatusFlags::SERVER_MORE_RESULTS_EXISTS;
                    }
                    if last {
                        return w.completed(ok).await;
                    }
                    w = w.complete_one(ok).await?;
                }
            }
        }
        match err {
            Some(e) => {
                w.error(error_kind(classify(&e)), one_line(&e).as_bytes())
                    .await
            }
            // No statement at all (only `;` or comments).
            None => w.completed(OkResponse::default()).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affected_rows_and_types_come_from_the_output() {
        assert_eq!(affected_rows("Query OK, 3 rows affected"), 3);
        assert_eq!(affected_rows("Database changed to d"), 0);
        let mut rs = ResultSet::new(["JobId", "State"]);
        rs.push_row(["10", "FINISHED"]);
        let cols = columns(&rs);
        assert_eq!(cols[0].coltype, ColumnType::MYSQL_TYPE_LONGLONG);
        assert_eq!(cols[1].coltype, ColumnType::MYSQL_TYPE_VAR_STRING);
    }
}
