//! The typed syntax tree of the statement language.
//!
//! The parser checks syntax only; whether names exist, properties are known and
//! values are sensible is for the job layer (helped by [`super::props`]).

/// `PROPERTIES ("key" = "value", ...)` in the order written; keys are unique.
pub type Properties = Vec<(String, String)>;

/// A possibly database-qualified name: `t` or `d.t`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QualifiedName {
    /// The database, when written.
    pub db: Option<String>,
    /// The table (or snapshot label) name.
    pub name: String,
}

impl QualifiedName {
    /// A name without a database.
    pub fn bare(name: impl Into<String>) -> Self {
        QualifiedName {
            db: None,
            name: name.into(),
        }
    }

    /// A name qualified by `db`.
    pub fn qualified(db: impl Into<String>, name: impl Into<String>) -> Self {
        QualifiedName {
            db: Some(db.into()),
            name: name.into(),
        }
    }
}

/// A literal value in `VALUES (...)` or a partition bound.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `NULL`
    Null,
    /// `TRUE` or `FALSE`
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A decimal number.
    Float(f64),
    /// A quoted string.
    String(String),
}

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `BOOLEAN` (or `BOOL`).
    Boolean,
    /// `INT` (or `INTEGER`): 32-bit signed.
    Int,
    /// `BIGINT`: 64-bit signed.
    BigInt,
    /// `DOUBLE`
    Double,
    /// `DATE`
    Date,
    /// `DATETIME`
    DateTime,
    /// `VARCHAR(n)`: at most `n` bytes.
    Varchar(u32),
}

/// One column of `CREATE TABLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    /// Column name.
    pub name: String,
    /// Column type.
    pub ty: ColumnType,
    /// False with `NOT NULL`; true with `NULL` or nothing written.
    pub nullable: bool,
}

/// The upper bound of a range partition.
#[derive(Debug, Clone, PartialEq)]
pub enum PartitionBound {
    /// `VALUES LESS THAN ("...")`: rows below this value.
    LessThan(Literal),
    /// `VALUES LESS THAN MAXVALUE`: every remaining row.
    MaxValue,
}

/// `PARTITION p VALUES LESS THAN (...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct RangePartition {
    /// Partition name.
    pub name: String,
    /// Exclusive upper bound.
    pub bound: PartitionBound,
}

/// `PARTITION BY RANGE(col) (...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionSpec {
    /// The partition column.
    pub column: String,
    /// The partitions in the order written.
    pub partitions: Vec<RangePartition>,
}

/// `DISTRIBUTED BY HASH(cols) BUCKETS n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distribution {
    /// Hash columns, at least one.
    pub columns: Vec<String>,
    /// Buckets (tablets) per partition, at least 1.
    pub buckets: u32,
}

/// `CREATE TABLE`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateTable {
    /// `IF NOT EXISTS` was written.
    pub if_not_exists: bool,
    /// The table.
    pub name: QualifiedName,
    /// Columns in order, at least one.
    pub columns: Vec<ColumnDef>,
    /// `DUPLICATE KEY(cols)`, when written.
    pub duplicate_key: Option<Vec<String>>,
    /// `PARTITION BY RANGE`, when written; otherwise one partition named after the table.
    pub partition: Option<PartitionSpec>,
    /// `DISTRIBUTED BY HASH`.
    pub distribution: Distribution,
    /// `PROPERTIES (...)`, empty when not written.
    pub properties: Properties,
}

/// `INSERT INTO t [(cols)] VALUES (...), ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertValues {
    /// The table.
    pub table: QualifiedName,
    /// The column list, when written.
    pub columns: Option<Vec<String>>,
    /// The rows, at least one, each at least one value.
    pub rows: Vec<Vec<Literal>>,
}

/// `INSERT INTO t [PARTITION (p, ...)] GENERATE n ROWS [SEED s]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertGenerate {
    /// The table.
    pub table: QualifiedName,
    /// The partitions to fill; empty means every partition.
    pub partitions: Vec<String>,
    /// How many synthetic rows.
    pub rows: u64,
    /// The generator seed, when written.
    pub seed: Option<u64>,
}

/// `WITH BROKER [name]` of `CREATE REPOSITORY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// The broker name, when written.
    pub name: Option<String>,
}

/// `CREATE REPOSITORY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRepository {
    /// Repository name.
    pub name: String,
    /// `WITH BROKER`, when written.
    pub broker: Option<Broker>,
    /// `ON LOCATION "..."`, e.g. `file:///abs/path` or `mem://name`.
    pub location: String,
    /// `PROPERTIES (...)`, empty when not written.
    pub properties: Properties,
    /// `CREATE READ ONLY REPOSITORY`.
    pub read_only: bool,
}

/// One table in the `ON (...)` list of BACKUP or RESTORE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    /// Table name (in the snapshot's database).
    pub name: String,
    /// `PARTITION (p, ...)`; empty means every partition.
    pub partitions: Vec<String>,
    /// `AS alias`; only RESTORE accepts it.
    pub alias: Option<String>,
}

/// `BACKUP SNAPSHOT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The snapshot label, optionally qualified by its database.
    pub label: QualifiedName,
    /// Repository name.
    pub repo: String,
    /// `ON (...)`; empty means every table of the database. No table appears twice.
    pub tables: Vec<TableRef>,
    /// Doris's `EXCLUDE (t, ...)`: tables left out of an all-tables backup.
    pub exclude: Vec<String>,
    /// `PROPERTIES (...)`; see [`super::props::BackupProps`].
    pub properties: Properties,
}

/// `RESTORE SNAPSHOT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restore {
    /// The snapshot label, optionally qualified by the target database.
    pub label: QualifiedName,
    /// Repository name.
    pub repo: String,
    /// `DATABASE d` of StarRocks 3.4's form: the database the snapshot was
    /// taken from (the target is `AS d2`, kept in `label.db`).
    pub source_db: Option<String>,
    /// `ON (...)`; empty means every table of the snapshot. No table appears twice.
    pub tables: Vec<TableRef>,
    /// `PROPERTIES (...)`; see [`super::props::RestoreProps`].
    pub properties: Properties,
}

/// `label ON repo [WHERE TIMESTAMP = "ts"]` of DROP and VERIFY SNAPSHOT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRef {
    /// The snapshot label.
    pub label: String,
    /// Repository name.
    pub repo: String,
    /// The backup timestamp; `None` means every backup of the label.
    pub timestamp: Option<String>,
}

/// `WHERE SNAPSHOT = "label" [AND TIMESTAMP = "ts"]` of `SHOW SNAPSHOT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFilter {
    /// The snapshot label.
    pub snapshot: String,
    /// The backup timestamp, when written.
    pub timestamp: Option<String>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `CREATE DATABASE [IF NOT EXISTS] d`
    CreateDatabase {
        /// Database name.
        name: String,
        /// `IF NOT EXISTS` was written.
        if_not_exists: bool,
    },
    /// `DROP DATABASE [IF EXISTS] d`
    DropDatabase {
        /// Database name.
        name: String,
        /// `IF EXISTS` was written.
        if_exists: bool,
    },
    /// `CREATE TABLE ...`
    CreateTable(CreateTable),
    /// `DROP TABLE [IF EXISTS] [d.]t`
    DropTable {
        /// The table.
        name: QualifiedName,
        /// `IF EXISTS` was written.
        if_exists: bool,
    },
    /// `INSERT INTO ... VALUES ...`
    InsertValues(InsertValues),
    /// `INSERT INTO ... GENERATE n ROWS ...`
    InsertGenerate(InsertGenerate),
    /// `SELECT COUNT(*) FROM [d.]t`
    SelectCount {
        /// The table.
        table: QualifiedName,
    },
    /// `SELECT * FROM [d.]t [LIMIT n]`
    SelectAll {
        /// The table.
        table: QualifiedName,
        /// `LIMIT n`, when written.
        limit: Option<u64>,
    },
    /// `CHECKSUM TABLE t [, t2 ...]`
    Checksum {
        /// The tables, at least one.
        tables: Vec<QualifiedName>,
    },
    /// `USE d`
    Use {
        /// Database name.
        db: String,
    },
    /// `SHOW DATABASES`
    ShowDatabases,
    /// `SHOW TABLES [FROM d]`
    ShowTables {
        /// `FROM d`, when written.
        db: Option<String>,
    },
    /// `SHOW PARTITIONS FROM [d.]t`
    ShowPartitions {
        /// The table.
        table: QualifiedName,
    },
    /// `SHOW TABLET FROM [d.]t` (or `SHOW TABLETS`)
    ShowTablets {
        /// The table.
        table: QualifiedName,
    },
    /// `CREATE USER name [IDENTIFIED BY 'pw']`
    CreateUser {
        /// User name.
        name: String,
        /// `IDENTIFIED BY 'pw'`, when written.
        password: Option<String>,
    },
    /// `SET PASSWORD [FOR user] = PASSWORD('pw')` (or `= 'pw'`)
    SetPassword {
        /// `FOR user`; the session's own user when absent.
        user: Option<String>,
        /// The new password (empty: none).
        password: String,
    },
    /// `DROP USER [IF EXISTS] name`
    DropUser {
        /// User name.
        name: String,
        /// `IF EXISTS` was written.
        if_exists: bool,
    },
    /// `HELP [topic]`
    Help {
        /// The topic's words, upper-cased and joined by one space; empty for the list.
        topic: String,
    },
    /// `SHOW BROKER`: the storage drivers this build has.
    ShowBroker,
    /// `ALTER SYSTEM ADD BACKEND "host:port"`
    AddBackend {
        /// `host:port` of a running `tabletsnap node`.
        addr: String,
    },
    /// `ALTER SYSTEM DROP BACKEND "host:port"`
    DropBackend {
        /// `host:port` as added.
        addr: String,
    },
    /// `SHOW BACKENDS`
    ShowBackends,
    /// `CREATE REPOSITORY ...`
    CreateRepository(CreateRepository),
    /// `DROP REPOSITORY name`
    DropRepository {
        /// Repository name.
        name: String,
    },
    /// `SHOW REPOSITORIES`
    ShowRepositories,
    /// `BACKUP SNAPSHOT ...`
    Backup(Backup),
    /// `SHOW BACKUP [FROM d]`
    ShowBackup {
        /// `FROM d`, when written.
        db: Option<String>,
    },
    /// `SHOW SNAPSHOT ON repo [WHERE ...]`
    ShowSnapshot {
        /// Repository name.
        repo: String,
        /// The `WHERE` clause, when written.
        filter: Option<SnapshotFilter>,
    },
    /// `RESTORE SNAPSHOT ...`
    Restore(Restore),
    /// `SHOW RESTORE [FROM d]`
    ShowRestore {
        /// `FROM d`, when written.
        db: Option<String>,
    },
    /// `CANCEL BACKUP [FROM d]`
    CancelBackup {
        /// `FROM d`, when written.
        db: Option<String>,
    },
    /// `CANCEL RESTORE [FROM d]`
    CancelRestore {
        /// `FROM d`, when written.
        db: Option<String>,
    },
    /// `DROP SNAPSHOT label ON repo [WHERE TIMESTAMP = "ts"]`
    DropSnapshot(SnapshotRef),
    /// `VERIFY SNAPSHOT label ON repo [WHERE TIMESTAMP = "ts"] [PROPERTIES (...)]`
    VerifySnapshot {
        /// Which snapshot(s).
        snapshot: SnapshotRef,
        /// `PROPERTIES (...)`: `"quick" = "true"` checks presence and sizes only.
        properties: Properties,
    },
}
