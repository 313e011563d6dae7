//! `HELP [topic]`: syntax, properties with defaults and limits, and an
//! example for every statement, written for this project.

use super::props::{MAX_REPLICATION_NUM, MAX_TIMEOUT_SECS, MIN_TIMEOUT_SECS};
use super::ResultSet;

/// One help topic.
struct Topic {
    name: &'static str,
    syntax: &'static str,
    notes: &'static str,
    example: &'static str,
}

const TOPICS: &[Topic] = &[
    Topic {
        name: "BACKUP",
        syntax: "BACKUP SNAPSHOT [db.]label TO repo\n  [ON (t [PARTITION (p, ...)], ...) | EXCLUDE (t, ...)]\n  [PROPERTIES (\"key\" = \"value\", ...)]\nBACKUP DATABASE db SNAPSHOT label TO repo\n  [ON (TABLE t [PARTITION (p, ...)], ... | ALL TABLES)]\n  [PROPERTIES (...)]",
        notes: "Starts a job and returns; SHOW BACKUP follows it until FINISHED or CANCELLED.\nWithout ON every table of the database is backed up; EXCLUDE leaves tables out.\nOne job runs per database at a time. Needs the ADMIN privilege.\nProperties:\n  \"type\" = \"incremental\"|\"full\"  (default incremental: files an earlier backup in the\n    repository stored are reused, unchanged tablets carried over; full uploads everything)\n  \"timeout\" = seconds  (default 86400, from {MIN} to {MAX})",
        example: "BACKUP SNAPSHOT d.nightly TO r ON (t) PROPERTIES ('timeout' = '3600');\nBACKUP DATABASE d SNAPSHOT nightly TO r ON (TABLE t PARTITION (p1));",
    },
    Topic {
        name: "RESTORE",
        syntax: "RESTORE SNAPSHOT [db.]label FROM repo\n  [DATABASE src_db [AS db]]\n  [ON ([TABLE] t [PARTITION (p, ...)] [AS t2], ...)]\n  PROPERTIES (\"backup_timestamp\" = \"...\", ...)",
        notes: "Starts a job and returns; SHOW RESTORE follows it until FINISHED or CANCELLED.\nRestores into new tables, or over existing ones of the same schema (an overwrite\nis all or nothing). Needs the ADMIN privilege.\nProperties:\n  \"backup_timestamp\" = \"...\"  (required; SHOW SNAPSHOT ON repo lists them)\n  \"replication_num\" = n  (default: the table's in the backup, 1 to {REPL})\n  \"allow_load\" = \"true\"|\"false\"  (default false: INSERT into restoring tables is refused)\n  \"catch_up\" = \"true\"|\"false\"  (default false: existing tables are overwritten; true: tables an\n    earlier backup of the same source restored get only the versions they lack)\n  \"timeout\" = seconds  (default 86400, from {MIN} to {MAX})",
        example: "RESTORE SNAPSHOT d.nightly FROM r ON (t AS t2)\n  PROPERTIES ('backup_timestamp' = '2025-01-31-02-00-00', 'replication_num' = '3');",
    },
    Topic {
        name: "CREATE REPOSITORY",
        syntax: "CREATE [READ ONLY] REPOSITORY name [WITH BROKER [broker]] ON LOCATION \"location\"\n  [PROPERTIES (...)]",
        notes: "Names a location for BACKUP and RESTORE; an existing repository of the same name\nthere (another cluster's) is shared, not overwritten: clusters share a repository\nby using the same name and location. READ ONLY refuses BACKUP and DROP SNAPSHOT on it.\nLocations: file:///abs/path, s3://bucket/prefix, mem://name.\nWITH BROKER names a driver from SHOW BROKER. Needs the ADMIN privilege.\nProperties:\n  \"retention_count\" = n  (keep the newest n backups of each label, after every backup)\n  s3: \"aws.s3.endpoint\", \"aws.s3.region\", \"aws.s3.access_key\", \"aws.s3.secret_key\",\n    \"aws.s3.enable_path_style_access\" (keys may come from AWS_ACCESS_KEY_ID and\n    AWS_SECRET_ACCESS_KEY; the secret is never shown)\n  s3 tuning: \"tabletsnap.s3.requests_in_flight\" (8; 1 to 64),\n    \"tabletsnap.s3.request_timeout_ms\" (300000; 1000 to 86400000),\n    \"tabletsnap.s3.multipart_threshold\" (64 MiB; at most 5 GiB),\n    \"tabletsnap.s3.part_size\" (16 MiB; 5 MiB to 5 GiB)\n  file, mem: a broker's \"username\" and \"password\" are ignored; other names are refused",
        example: "CREATE REPOSITORY r ON LOCATION 'file:///backups/repo';\nCREATE REPOSITORY s3r WITH BROKER ON LOCATION 's3://bucket/prefix'\n  PROPERTIES ('aws.s3.endpoint' = 'http://127.0.0.1:9000', 'aws.s3.region' = 'us-east-1');",
    },
    Topic {
        name: "DROP REPOSITORY",
        syntax: "DROP REPOSITORY name",
        notes: "Forgets the name; the data at the location is kept. Refused while a job uses it.\nNeeds the ADMIN privilege.",
        example: "DROP REPOSITORY r;",
    },
    Topic {
        name: "SHOW REPOSITORIES",
        syntax: "SHOW REPOSITORIES",
        notes: "Columns: RepoName, CreateTime, IsReadOnly, Location, Broker, ErrMsg.",
        example: "SHOW REPOSITORIES;",
    },
    Topic {
        name: "SHOW BACKUP",
        syntax: "SHOW BACKUP [FROM db]",
        notes: "The backup jobs of the database (the current one without FROM). Columns: JobId,\nSnapshotName, DbName, State, BackupObjs, CreateTime, SnapshotFinishedTime,\nUploadFinishedTime, FinishedTime, UnfinishedTasks, Progress, TaskErrMsg, Status, Timeout.\nStates: PENDING, SNAPSHOTING, UPLOAD_SNAPSHOT, UPLOADING, SAVE_META, UPLOAD_INFO,\nFINISHED, CANCELLED.",
        example: "SHOW BACKUP FROM d\\G",
    },
    Topic {
        name: "SHOW RESTORE",
        syntax: "SHOW RESTORE [FROM db]",
        notes: "The restore jobs of the database. Columns: JobId, Label, Timestamp, DbName, State,\nAllowLoad, ReplicationNum, RestoreObjs, CreateTime, MetaPreparedTime,\nSnapshotFinishedTime, DownloadFinishedTime, FinishedTime, UnfinishedTasks, Progress,\nTaskErrMsg, Status, Timeout.",
        example: "SHOW RESTORE FROM d\\G",
    },
    Topic {
        name: "SHOW SNAPSHOT",
        syntax: "SHOW SNAPSHOT ON repo [WHERE SNAPSHOT = \"label\" [AND TIMESTAMP = \"ts\"]]",
        notes: "The backups in a repository: Snapshot, Timestamp, Status. With WHERE also\nDatabase and Details (tables, partitions, versions, rows, files).",
        example: "SHOW SNAPSHOT ON r WHERE SNAPSHOT = 'nightly';",
    },
    Topic {
        name: "CANCEL BACKUP",
        syntax: "CANCEL BACKUP [FROM db]",
        notes: "Cancels the running backup of the database; its snapshots and uploaded packs\nare removed. Needs the ADMIN privilege.",
        example: "CANCEL BACKUP FROM d;",
    },
    Topic {
        name: "CANCEL RESTORE",
        syntax: "CANCEL RESTORE [FROM db]",
        notes: "Cancels the running restore of the database. Before COMMITTING nothing it\nmade stays; from COMMITTING on it only moves forward. Needs the ADMIN privilege.",
        example: "CANCEL RESTORE FROM d;",
    },
    Topic {
        name: "DROP SNAPSHOT",
        syntax: "DROP SNAPSHOT label ON repo [WHERE TIMESTAMP = \"ts\"]",
        notes: "Removes a backup (every backup of the label without WHERE): its info first, so it is\nnever listed half-deleted, then its manifest and meta. Packs go only once no\ncommitted backup references them, through a two-phase sweep. Needs the ADMIN privilege.",
        example: "DROP SNAPSHOT nightly ON r WHERE TIMESTAMP = '2025-01-31-02-00-00';",
    },
    Topic {
        name: "VERIFY SNAPSHOT",
        syntax: "VERIFY SNAPSHOT label ON repo [WHERE TIMESTAMP = \"ts\"] [PROPERTIES (\"quick\" = \"true\")]",
        notes: "Reads every piece of the backup (each of the label without WHERE) back and\nchecks every crc32 and size and that every referenced pack exists; reports per\ntablet what is damaged, restoring nothing. \"quick\" checks presence and sizes only.",
        example: "VERIFY SNAPSHOT nightly ON r\\G",
    },
    Topic {
        name: "SHOW BROKER",
        syntax: "SHOW BROKER",
        notes: "The storage drivers of this build, in StarRocks's columns: Name, Host, Port,\nAlive, LastStartTime, LastUpdateTime, ErrMsg.",
        example: "SHOW BROKER;",
    },
    Topic {
        name: "ALTER SYSTEM",
        syntax: "ALTER SYSTEM ADD BACKEND \"host:port\"\nALTER SYSTEM DROP BACKEND \"host:port\"",
        notes: "Adds a running `tabletsnap node` (started with the home's --token-file) to a home\nwhose backends are node processes, or drops one that holds no replicas.\nNeeds the ADMIN privilege.",
        example: "ALTER SYSTEM ADD BACKEND \"127.0.0.1:9050\";",
    },
    Topic {
        name: "SHOW BACKENDS",
        syntax: "SHOW BACKENDS",
        notes: "Columns: BackendId, Host, Port, Alive, LastHeartbeat, TabletNum, DataUsed, ErrMsg.\nA node process that misses 3 heartbeats is not Alive; in-process backends show\nHost in-process.",
        example: "SHOW BACKENDS;",
    },
    Topic {
        name: "CREATE USER",
        syntax: "CREATE USER 'name' [IDENTIFIED BY 'password']",
        notes: "An ordinary user: runs data statements and SHOW, not BACKUP, RESTORE, CANCEL\nor repository statements. Needs the ADMIN privilege.",
        example: "CREATE USER 'bob' IDENTIFIED BY 'a long password';",
    },
    Topic {
        name: "DROP USER",
        syntax: "DROP USER [IF EXISTS] 'name'",
        notes: "Root cannot be dropped. Needs the ADMIN privilege.",
        example: "DROP USER 'bob';",
    },
    Topic {
        name: "SET PASSWORD",
        syntax: "SET PASSWORD [FOR 'name'] = PASSWORD('password')\nSET PASSWORD [FOR 'name'] = 'password'",
        notes: "Without FOR, the current user's own password. FOR another user needs the ADMIN\nprivilege. Stored only as mysql_native_password's double SHA-1.",
        example: "SET PASSWORD FOR 'root' = PASSWORD('s3cret');",
    },
    Topic {
        name: "CREATE DATABASE",
        syntax: "CREATE DATABASE [IF NOT EXISTS] db",
        notes: "",
        example: "CREATE DATABASE d;",
    },
    Topic {
        name: "DROP DATABASE",
        syntax: "DROP DATABASE [IF EXISTS] db",
        notes: "",
        example: "DROP DATABASE d;",
    },
    Topic {
        name: "CREATE TABLE",
        syntax: "CREATE TABLE [IF NOT EXISTS] [db.]t (col TYPE [NULL|NOT NULL], ...)\n  [DUPLICATE KEY(col, ...)]\n  [PARTITION BY RANGE(col) (PARTITION p VALUES LESS THAN ('v'|MAXVALUE), ...)]\n  DISTRIBUTED BY HASH(col, ...) BUCKETS n\n  [PROPERTIES ('replication_num' = 'n')]",
        notes: "Types: BOOLEAN, INT, BIGINT, DOUBLE, DATE, DATETIME, VARCHAR(n).",
        example: "CREATE TABLE t (id BIGINT, day DATE) DUPLICATE KEY(id)\n  DISTRIBUTED BY HASH(id) BUCKETS 8;",
    },
    Topic {
        name: "DROP TABLE",
        syntax: "DROP TABLE [IF EXISTS] [db.]t",
        notes: "",
        example: "DROP TABLE t;",
    },
    Topic {
        name: "INSERT",
        syntax: "INSERT INTO [db.]t [(col, ...)] VALUES (v, ...), ...\nINSERT INTO [db.]t [PARTITION (p, ...)] GENERATE n ROWS [SEED s]",
        notes: "",
        example: "INSERT INTO t GENERATE 10000 ROWS SEED 1;",
    },
    Topic {
        name: "SELECT",
        syntax: "SELECT COUNT(*) FROM [db.]t\nSELECT * FROM [db.]t [LIMIT n]",
        notes: "",
        example: "SELECT COUNT(*) FROM t;",
    },
    Topic {
        name: "CHECKSUM TABLE",
        syntax: "CHECKSUM TABLE [db.]t [, ...]",
        notes: "A checksum over the table's rows, equal for equal contents on any cluster.",
        example: "CHECKSUM TABLE d.t;",
    },
    Topic {
        name: "USE",
        syntax: "USE db",
        notes: "",
        example: "USE d;",
    },
    Topic {
        name: "SHOW",
        syntax: "SHOW DATABASES | TABLES [FROM db] | PARTITIONS FROM t | TABLET FROM t\n  | REPOSITORIES | BACKUP | RESTORE | SNAPSHOT ON repo | BROKER | BACKENDS",
        notes: "HELP SHOW BACKUP, HELP SHOW RESTORE, ... for each.",
        example: "SHOW TABLES FROM d;",
    },
];

/// The rows StarRocks's HELP returns: `name`, `description`, `example`; for
/// an unknown topic, the list of topics. `topic` is upper-case words.
pub fn help(topic: &str) -> ResultSet {
    let topic = topic.trim().trim_end_matches(';').trim();
    let alias = match topic {
        "BACKUP SNAPSHOT" => "BACKUP",
        "RESTORE SNAPSHOT" => "RESTORE",
        "SHOW REPOSITORY" => "SHOW REPOSITORIES",
        "SHOW BROKERS" => "SHOW BROKER",
        "SHOW SNAPSHOTS" => "SHOW SNAPSHOT",
        "ALTER SYSTEM ADD BACKEND" | "ALTER SYSTEM DROP BACKEND" => "ALTER SYSTEM",
        "SHOW BACKEND" => "SHOW BACKENDS",
        "DROP SNAPSHOTS" => "DROP SNAPSHOT",
        "VERIFY" => "VERIFY SNAPSHOT",
        "CREATE READ ONLY REPOSITORY" => "CREATE REPOSITORY",
        other => other,
    };
    if let Some(t) = TOPICS.iter().find(|t| t.name == alias) {
        let mut rs = ResultSet::new(["name", "description", "example"]);
        let notes = t
            .notes
            .replace("{MIN}", &MIN_TIMEOUT_SECS.to_string())
            .replace("{MAX}", &MAX_TIMEOUT_SECS.to_string())
            .replace("{REPL}", &MAX_REPLICATION_NUM.to_string());
        let description = if notes.is_empty() {
            format!("Syntax:\n{}", t.syntax)
        } else {
            format!("Syntax:\n{}\n\n{notes}", t.syntax)
        };
        rs.push_row([t.name.to_string(), description, t.example.to_string()]);
        return rs;
    }
    let mut rs = ResultSet::new(["name", "is_it_category"]);
    for t in TOPICS {
        rs.push_row([t.name, "N"]);
    }
    rs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_topic_has_syntax_properties_and_example() {
        for name in [
            "CREATE REPOSITORY",
            "BACKUP",
            "SHOW BACKUP",
            "SHOW SNAPSHOT",
            "RESTORE",
            "CANCEL BACKUP",
            "CANCEL RESTORE",
            "DROP REPOSITORY",
            "SHOW BROKER",
            "DROP SNAPSHOT",
            "VERIFY SNAPSHOT",
        ] {
            let rs = help(name);
            assert_eq!(rs.columns, ["name", "description", "example"], "{name}");
            assert_eq!(rs.rows[0][0], name);
            assert!(rs.rows[0][1].starts_with("Syntax:\n"), "{name}");
            assert!(!rs.rows[0][2].is_empty(), "{name}");
        }
        let backup = &help("BACKUP").rows[0][1];
        assert!(
            backup.contains("default 86400, from 10 to 2592000"),
            "{backup}"
        );
        let restore = &help("RESTORE SNAPSHOT").rows[0][1];
        assert!(restore.contains("1 to 16") && restore.contains("allow_load"));
        assert!(restore.contains("catch_up"), "{restore}");
        assert!(backup.contains("default incremental"), "{backup}");
        let repo = &help("CREATE REPOSITORY").rows[0][1];
        assert!(
            repo.contains("s3://") && repo.contains("retention_count"),
            "{repo}"
        );
        assert!(help("").rows.len() >= 20);
        assert_eq!(help("NO SUCH THING").columns[0], "name");
    }
}
