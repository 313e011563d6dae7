//! The local socket `<home>/serve.sock`: how `tabletsnap sql` and `shell`
//! reach a home that `serve` holds. One JSON request a line (statement text,
//! and user and password on the first), one JSON response a line (outputs,
//! or an error with its MySQL code; the jobs the text started). Users and
//! passwords are checked as over the MySQL protocol.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::cluster::Cluster;
use crate::errcode::{classify, coded, one_line, ErrorCode};
use crate::exec::{Output, Session};
use crate::sql::ResultSet;
use crate::users::{Password, Passwords};

/// File name of the socket inside a home.
pub const SOCKET_FILE: &str = "serve.sock";

/// The socket of `home`.
pub fn socket_path(home: &Path) -> PathBuf {
    home.join(SOCKET_FILE)
}

/// One request: statements, and on the first request who runs them.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// User (first request only).
    pub user: Option<String>,
    /// Password (first request only).
    pub password: Option<String>,
    /// Statements, `;`-separated.
    pub text: String,
}

/// One output, as the executor returned it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WireOutput {
    /// A result table.
    Rows {
        /// Column names.
        columns: Vec<String>,
        /// Cells, NULL as `NULL`.
        rows: Vec<Vec<String>>,
    },
    /// A status line.
    Message(String),
}

impl WireOutput {
    /// Back to the executor's type.
    pub fn into_output(self) -> Output {
        match self {
            WireOutput::Rows { columns, rows } => Output::Rows(ResultSet { columns, rows }),
            WireOutput::Message(m) => Output::Message(m),
        }
    }
}

/// A job a request started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartedJob {
    /// Job id (`JobId` in SHOW BACKUP/RESTORE).
    pub id: u64,
    /// `BACKUP` or `RESTORE`.
    pub kind: String,
    /// Its database.
    pub db: String,
    /// Its label.
    pub label: String,
}

/// The answer to one request.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Response {
    /// One per statement that ran.
    pub outputs: Vec<WireOutput>,
    /// The error that stopped the text: MySQL code and message.
    pub error: Option<(u16, String)>,
    /// The session's database after the text.
    pub db: Option<String>,
    /// Jobs the text started.
    pub started: Vec<StartedJob>,
}

/// The error of a response as an anyhow error carrying its code.
pub fn response_error(code: u16, message: &str) -> anyhow::Error {
    coded(ErrorCode::from_code(code), message)
}

fn run(cluster: &Arc<Cluster>, session: &mut Option<Session>, req: Request) -> Response {
    let mut resp = Response::default();
    if session.is_none() {
        let user = req.user.unwrap_or_else(|| "root".into());
        let password = Password::new(req.password.unwrap_or_default());
        let ok = cluster.catalog().users.contains_key(&user)
            && Passwords::load(cluster.home())
                .map(|p| p.verify(&user, &password))
                .unwrap_or(false);
        if !ok {
            let e = crate::users::access_denied(&user, !password.expose().is_empty());
            resp.error = Some((classify(&e).code(), one_line(&e)));
            return resp;
        }
        match Session::new(Arc::clone(cluster), &user) {
            Ok(s) => *session = Some(s),
            Err(e) => {
                resp.error = Some((classify(&e).code(), one_line(&e)));
                return resp;
            }
        }
    }
    let Some(s) = session.as_mut() else {
        return resp;
    };
    let before = s.started_jobs().len();
    let result = crate::sql::parse_statements(&req.text)
        .map_err(anyhow::Error::from)
        .and_then(|stmts| {
            for stmt in stmts {
                let out = s.execute(stmt)?;
                resp.outputs.push(match out {
                    Output::Rows(rs) => WireOutput::Rows {
                        columns: rs.columns,
                        rows: rs.rows,
                    },
                    Output::Message(m) => WireOutput::Message(m),
                });
            }
            Ok(())
        });
    if let Err(e) = result {
        resp.error = Some((classify(&e).code(), one_line(&e)));
    }
    for h in &s.started_jobs()[before..] {
        let (kind, db, label) = h.with_record(|r| {
            (
                r.kind().to_string(),
                r.db().to_string(),
                r.label().to_string(),
            )
        });
        resp.started.push(StartedJob {
            id: h.id,
            kind,
            db,
            label,
        });
    }
    resp.db = s.current_db().map(str::to_string);
    resp
}

/// Serves one socket connection until it closes.
pub async fn serve_connection(cluster: Arc<Cluster>, stream: tokio::net::UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut lines = tokio::io::BufReader::new(read).lines();
    let mut session: Option<Session> = None;
    while let Ok(Some(line)) = lines.next_line().await {
        let resp = match serde_json::from_str::<Request>(&line) {
            Err(e) => Response {
                error: Some((1105, format!("bad request on {SOCKET_FILE}: {e}"))),
                ..Default::default()
            },
            Ok(req) => {
                let c = Arc::clone(&cluster);
                let mut s = session.take();
                match tokio::task::spawn_blocking(move || {
                    let r = run(&c, &mut s, req);
                    (s, r)
                })
                .await
                {
                    Ok((s, r)) => {
                        session = s;
                        r
                    }
                    Err(_) => return,
                }
            }
        };
        let Ok(mut bytes) = serde_json::to_vec(&resp) else {
            return;
        };
        bytes.push(b'\n');
        if write.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

/// A command-line client of a serving home.
#[derive(Debug)]
pub struct LocalClient {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    login: Option<(String, Password)>,
}

impl LocalClient {
    /// Connects to the server holding `home`, if one does.
    pub fn connect(home: &Path, user: &str, password: &Password) -> Option<LocalClient> {
        let stream = UnixStream::connect(socket_path(home)).ok()?;
        let writer = stream.try_clone().ok()?;
        Some(LocalClient {
            reader: BufReader::new(stream),
            writer,
            login: Some((user.to_string(), password.clone())),
        })
    }

    /// Sends `text` and reads the answer.
    pub fn run(&mut self, text: &str) -> Result<Response> {
        let (user, password) = match self.login.take() {
            Some((u, p)) => (Some(u), Some(p.expose().to_string())),
            None => (None, None),
        };
        let mut bytes = serde_json::to_vec(&Request {
            user,
            password,
            text: text.to_string(),
        })
        .context("encoding a request")?;
        bytes.push(b'\n');
        self.writer
            .write_all(&bytes)
            .context("sending statements to the server")?;
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .context("reading the server's answer")?;
        if line.is_empty() {
            anyhow::bail!("the server holding the home closed the connection");
        }
        serde_json::from_str(&line).context("decoding the server's answer")
    }
}
