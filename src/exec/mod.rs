//! Executes statements for a session: permission checks, name resolution,
//! and dispatch to the data and job handlers.

mod data;
mod jobs;
pub mod snapshots;
mod system;
mod users;
pub mod values;

use std::sync::Arc;

use anyhow::{bail, Result};

use crate::cluster::Cluster;
use crate::job::JobHandle;
use crate::sql::ast::{QualifiedName, Statement};
use crate::sql::ResultSet;

/// What a statement returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A result table.
    Rows(ResultSet),
    /// A status line, like `Query OK, 3 rows affected`.
    Message(String),
}

/// When this process first ran a statement: the drivers' start time in SHOW BROKER.
fn process_start_ms() -> u64 {
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *START.get_or_init(tabletsnap_engine::engine::now_ms)
}

/// A user's connection to a cluster.
pub struct Session {
    cluster: Arc<Cluster>,
    user: String,
    db: Option<String>,
    started: Vec<Arc<JobHandle>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user)
            .field("db", &self.db)
            .finish()
    }
}

impl Session {
    /// A session for `user` (who must exist).
    pub fn new(cluster: Arc<Cluster>, user: &str) -> Result<Session> {
        if !cluster.catalog().users.contains_key(user) {
            bail!("unknown user '{user}' (an admin can CREATE USER {user})");
        }
        Ok(Session {
            cluster,
            user: user.to_string(),
            db: None,
            started: Vec::new(),
        })
    }

    /// The cluster.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Jobs started by this session.
    pub fn started_jobs(&self) -> &[Arc<JobHandle>] {
        &self.started
    }

    /// The user this session runs as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The current database.
    pub fn current_db(&self) -> Option<&str> {
        self.db.as_deref()
    }

    /// Parses and runs every statement in `text`, stopping at the first error.
    pub fn run_script(&mut self, text: &str) -> Result<Vec<Output>> {
        let stmts = crate::sql::parse_statements(text)?;
        let mut out = Vec::with_capacity(stmts.len());
        for s in stmts {
            out.push(self.execute(s)?);
        }
        Ok(out)
    }

    fn require_admin(&self, what: &str) -> Result<()> {
        let admin = self
            .cluster
            .catalog()
            .users
            .get(&self.user)
            .is_some_and(|u| u.admin);
        if !admin {
            return Err(crate::errcode::coded(
                crate::errcode::ErrorCode::SpecificAccessDenied,
                format!(
                    "permission denied: {what} needs the ADMIN privilege, which user '{}' lacks",
                    self.user
                ),
            ));
        }
        Ok(())
    }

    fn db_name(&self, explicit: Option<&String>) -> Result<String> {
        match explicit.or(self.db.as_ref()) {
            Some(d) => Ok(d.clone()),
            None => bail!("no database selected: USE a database or qualify the name as db.name"),
        }
    }

    fn resolve(&self, q: &QualifiedName) -> Result<(String, String)> {
        Ok((self.db_name(q.db.as_ref())?, q.name.clone()))
    }

    /// Runs one statement.
    pub fn execute(&mut self, stmt: Statement) -> Result<Output> {
        use Statement as S;
        match stmt {
            S::CreateDatabase {
                name,
                if_not_exists,
            } => data::create_database(self, &name, if_not_exists),
            S::DropDatabase { name, if_exists } => data::drop_database(self, &name, if_exists),
            S::CreateTable(ct) => data::create_table(self, &ct),
            S::DropTable { name, if_exists } => data::drop_table(self, &name, if_exists),
            S::InsertValues(iv) => data::insert_values(self, &iv),
            S::InsertGenerate(ig) => data::insert_generate(self, &ig),
            S::SelectCount { table } => data::select_count(self, &table),
            S::SelectAll { table, limit } => data::select_all(self, &table, limit),
            S::Checksum { tables } => data::checksum(self, &tables),
            S::Use { db } => {
                self.cluster.catalog().db(&db)?;
                self.db = Some(db.clone());
                Ok(Output::Message(format!("Database changed to {db}")))
            }
            S::ShowDatabases => data::show_databases(self),
            S::ShowTables { db } => data::show_tables(self, db.as_ref()),
            S::ShowPartitions { table } => data::show_partitions(self, &table),
            S::ShowTablets { table } => data::show_tablets(self, &table),
            S::CreateUser { name, password } => {
                self.require_admin("CREATE USER")?;
                users::create_user(self, &name, password.as_deref())
            }
            S::SetPassword { user, password } => {
                let user = user.unwrap_or_else(|| self.user.clone());
                if user != self.user {
                    self.require_admin("SET PASSWORD FOR another user")?;
                }
                users::set_password(self, &user, &password)
            }
            S::DropUser { name, if_exists } => {
                self.require_admin("DROP USER")?;
                users::drop_user(self, &name, if_exists)
            }
            S::Help { topic } => Ok(Output::Rows(crate::sql::help::help(&topic))),
            S::ShowBroker => Ok(Output::Rows(crate::broker::show(process_start_ms()))),
            S::AddBackend { addr } => {
                self.require_admin("ALTER SYSTEM")?;
                system::add_backend(self, &addr)
            }
            S::DropBackend { addr } => {
                self.require_admin("ALTER SYSTEM")?;
                system::drop_backend(self, &addr)
            }
            S::ShowBackends => system::show_backends(self),
            S::CreateRepository(cr) => {
                self.require_admin("CREATE REPOSITORY")?;
                jobs::create_repository(self, &cr)
            }
            S::DropRepository { name } => {
                self.require_admin("DROP REPOSITORY")?;
                jobs::drop_repository(self, &name)
            }
            S::ShowRepositories => jobs::show_repositories(self),
            S::Backup(b) => {
                self.require_admin("BACKUP")?;
                let h = jobs::backup(self, &b)?;
                self.started.push(h);
                Ok(Output::Message("Query OK, 0 rows affected".into()))
            }
            S::Restore(r) => {
                self.require_admin("RESTORE")?;
                let h = jobs::restore(self, &r)?;
                self.started.push(h);
                Ok(Output::Message("Query OK, 0 rows affected".into()))
            }
            S::ShowBackup { db } => jobs::show_backup(self, db.as_ref()),
            S::ShowRestore { db } => jobs::show_restore(self, db.as_ref()),
            S::ShowSnapshot { repo, filter } => jobs::show_snapshot(self, &repo, filter.as_ref()),
            S::CancelBackup { db } => {
                self.require_admin("CANCEL BACKUP")?;
                jobs::cancel(self, db.as_ref(), "BACKUP")
            }
            S::CancelRestore { db } => {
                self.require_admin("CANCEL RESTORE")?;
                jobs::cancel(self, db.as_ref(), "RESTORE")
            }
            S::DropSnapshot(r) => {
                self.require_admin("DROP SNAPSHOT")?;
                snapshots::drop_snapshot(self, &r)
            }
            S::VerifySnapshot {
                snapshot,
                properties,
            } => snapshots::verify(self, &snapshot, &properties),
        }
    }

    /// Waits for every job this session started.
    pub fn wait_for_jobs(&self) {
        for h in &self.started {
            h.wait();
        }
    }
}
