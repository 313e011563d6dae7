//! Validation of BACKUP and RESTORE `PROPERTIES`, for the job layer.
//!
//! The parser keeps properties as written; these pure helpers turn them into
//! typed settings or an error naming the offending key and value.

/// The smallest `"timeout"` a job accepts, in seconds.
pub const MIN_TIMEOUT_SECS: u64 = 10;

/// The largest `"timeout"` a job accepts, in seconds (30 days).
pub const MAX_TIMEOUT_SECS: u64 = 30 * 86_400;

/// The largest `"replication_num"` a restore accepts.
pub const MAX_REPLICATION_NUM: u16 = 16;

/// Why a job's properties are rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PropertyError {
    /// A key the statement does not know.
    #[error("unknown property \"{key}\" for {statement} (it accepts {accepted})")]
    Unknown {
        /// The key as written.
        key: String,
        /// `BACKUP` or `RESTORE`.
        statement: &'static str,
        /// The accepted keys, quoted and listed.
        accepted: String,
    },
    /// A known key with a value it does not accept.
    #[error("invalid value \"{value}\" for property \"{key}\": expected {expected}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// What the key accepts.
        expected: String,
    },
    /// A required key is absent.
    #[error("missing property \"{key}\" ({hint})")]
    Missing {
        /// The key.
        key: &'static str,
        /// Where to find a value for it.
        hint: &'static str,
    },
}

/// The kind of backup `"type"` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackupType {
    /// Every file uploaded again, sharing nothing with earlier backups.
    Full,
    /// Files an earlier committed backup in the repository stored with the
    /// same identity are not uploaded again; the manifest points at them.
    #[default]
    Incremental,
}

/// Typed `PROPERTIES` of `BACKUP SNAPSHOT`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackupProps {
    /// `"type"`; `incremental` when absent.
    pub backup_type: BackupType,
    /// `"timeout"` in seconds, at least [`MIN_TIMEOUT_SECS`]; `None` means the job layer's default.
    pub timeout_secs: Option<u64>,
}

impl BackupProps {
    /// Validates BACKUP properties: `"type"` (`full` or `incremental`) and `"timeout"`.
    pub fn from_properties(props: &[(String, String)]) -> Result<Self, PropertyError> {
        let mut out = BackupProps::default();
        for (key, value) in props {
            match key.as_str() {
                "type" => {
                    out.backup_type = match value.trim().to_ascii_lowercase().as_str() {
                        "full" => BackupType::Full,
                        "incremental" => BackupType::Incremental,
                        _ => return Err(invalid(key, value, "\"full\" or \"incremental\"")),
                    };
                }
                "timeout" => out.timeout_secs = Some(timeout(key, value)?),
                _ => return Err(unknown(key, "BACKUP", &["type", "timeout"])),
            }
        }
        Ok(out)
    }
}

/// Typed `PROPERTIES` of `RESTORE SNAPSHOT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreProps {
    /// `"backup_timestamp"`: which backup of the label to restore (required).
    pub backup_timestamp: String,
    /// `"replication_num"`, 1 to [`MAX_REPLICATION_NUM`]; `None` means the job layer's default.
    pub replication_num: Option<u16>,
    /// `"allow_load"`: whether INSERT may run into tables being restored; false when absent.
    pub allow_load: bool,
    /// `"timeout"` in seconds, at least [`MIN_TIMEOUT_SECS`]; `None` means the job layer's default.
    pub timeout_secs: Option<u64>,
    /// `"catch_up"`: append only the versions existing tables lack, refusing
    /// tables not restored from the same source at their current version.
    pub catch_up: bool,
}

impl RestoreProps {
    /// Validates RESTORE properties: `"backup_timestamp"` (required), `"replication_num"`,
    /// `"allow_load"` and `"timeout"`.
    pub fn from_properties(props: &[(String, String)]) -> Result<Self, PropertyError> {
        let mut backup_timestamp = None;
        let mut replication_num = None;
        let mut allow_load = false;
        let mut timeout_secs = None;
        let mut catch_up = false;
        for (key, value) in props {
            match key.as_str() {
                "backup_timestamp" => {
                    if value.trim().is_empty() {
                        return Err(invalid(key, value, "a backup timestamp"));
                    }
                    backup_timestamp = Some(value.clone());
                }
                "replication_num" => {
                    let n = value
                        .trim()
                        .parse::<u16>()
                        .ok()
                        .filter(|n| (1..=MAX_REPLICATION_NUM).contains(n));
                    let Some(n) = n else {
                        let expected = format!("an integer from 1 to {MAX_REPLICATION_NUM}");
                        return Err(invalid(key, value, &expected));
                    };
                    replication_num = Some(n);
                }
                "allow_load" => {
                    allow_load = match value.trim().to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(invalid(key, value, "\"true\" or \"false\"")),
                    }
                }
                "timeout" => timeout_secs = Some(timeout(key, value)?),
                "catch_up" => {
                    catch_up = match value.trim().to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(invalid(key, value, "\"true\" or \"false\"")),
                    }
                }
                _ => {
                    let accepted = [
                        "backup_timestamp",
                        "replication_num",
                        "allow_load",
                        "timeout",
                        "catch_up",
                    ];
                    return Err(unknown(key, "RESTORE", &accepted));
                }
            }
        }
        let backup_timestamp = backup_timestamp.ok_or(PropertyError::Missing {
            key: "backup_timestamp",
            hint: "SHOW SNAPSHOT ON repo WHERE SNAPSHOT = \"label\" lists the timestamps",
        })?;
        Ok(RestoreProps {
            backup_timestamp,
            replication_num,
            allow_load,
            timeout_secs,
            catch_up,
        })
    }
}

fn timeout(key: &str, value: &str) -> Result<u64, PropertyError> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|secs| (MIN_TIMEOUT_SECS..=MAX_TIMEOUT_SECS).contains(secs))
        .ok_or_else(|| {
            let expected = format!(
                "a whole number of seconds from {MIN_TIMEOUT_SECS} to {MAX_TIMEOUT_SECS} (30 days)"
            );
            invalid(key, value, &expected)
        })
}

fn invalid(key: &str, value: &str, expected: &str) -> PropertyError {
    PropertyError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

fn unknown(key: &str, statement: &'static str, accepted: &[&str]) -> PropertyError {
    let quoted: Vec<String> = accepted.iter().map(|k| format!("\"{k}\"")).collect();
    let quoted: Vec<&str> = quoted.iter().map(String::as_str).collect();
    PropertyError::Unknown {
        key: key.to_string(),
        statement,
        accepted: super::error::one_of(&quoted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn backup_err(pairs: &[(&str, &str)]) -> String {
        match BackupProps::from_properties(&props(pairs)) {
            Ok(p) => panic!("accepted {pairs:?} as {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn restore_err(pairs: &[(&str, &str)]) -> String {
        match RestoreProps::from_properties(&props(pairs)) {
            Ok(p) => panic!("accepted {pairs:?} as {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn backup_defaults_and_values() {
        assert_eq!(
            BackupProps::from_properties(&[]),
            Ok(BackupProps::default())
        );
        assert_eq!(
            BackupProps::from_properties(&props(&[("type", "FULL"), ("timeout", "3600")])),
            Ok(BackupProps {
                backup_type: BackupType::Full,
                timeout_secs: Some(3600),
            })
        );
        assert_eq!(
            BackupProps::from_properties(&props(&[("timeout", "10")])).map(|p| p.timeout_secs),
            Ok(Some(MIN_TIMEOUT_SECS))
        );
    }

    #[test]
    fn backup_errors_name_key_and_value() {
        assert_eq!(
            backup_err(&[("typ", "full")]),
            "unknown property \"typ\" for BACKUP (it accepts \"type\" or \"timeout\")"
        );
        assert_eq!(
            backup_err(&[("type", "differential")]),
            "invalid value \"differential\" for property \"type\": expected \"full\" or \"incremental\""
        );
        assert_eq!(
            BackupProps::from_properties(&props(&[("type", "Incremental")])),
            Ok(BackupProps::default())
        );
        assert_eq!(BackupProps::default().backup_type, BackupType::Incremental);
        for bad in [
            "abc",
            "9",
            "-60",
            "1.5",
            "",
            "2592001",
            "18446744073709551",
            "18446744073709551615",
            "18446744073709551616",
        ] {
            assert_eq!(
                backup_err(&[("timeout", bad)]),
                format!(
                    "invalid value \"{bad}\" for property \"timeout\": \
                     expected a whole number of seconds from 10 to 2592000 (30 days)"
                )
            );
        }
    }

    #[test]
    fn restore_defaults_and_values() {
        assert_eq!(
            RestoreProps::from_properties(&props(&[("backup_timestamp", "2024-01-02-03-04-05")])),
            Ok(RestoreProps {
                backup_timestamp: "2024-01-02-03-04-05".into(),
                replication_num: None,
                allow_load: false,
                timeout_secs: None,
                catch_up: false,
            })
        );
        assert_eq!(
            RestoreProps::from_properties(&props(&[
                ("replication_num", "3"),
                ("allow_load", "TRUE"),
                ("timeout", "600"),
                ("backup_timestamp", "ts"),
            ])),
            Ok(RestoreProps {
                backup_timestamp: "ts".into(),
                replication_num: Some(3),
                allow_load: true,
                timeout_secs: Some(600),
                catch_up: false,
            })
        );
    }

    #[test]
    fn restore_errors_name_key_and_value() {
        assert_eq!(
            restore_err(&[]),
            "missing property \"backup_timestamp\" \
             (SHOW SNAPSHOT ON repo WHERE SNAPSHOT = \"label\" lists the timestamps)"
        );
        assert_eq!(
            restore_err(&[("backup_timestamp", "ts"), ("type", "full")]),
            "unknown property \"type\" for RESTORE (it accepts \"backup_timestamp\", \
             \"replication_num\", \"allow_load\", \"timeout\" or \"catch_up\")"
        );
        for bad in ["0", "17", "x", "-1"] {
            assert_eq!(
                restore_err(&[("backup_timestamp", "ts"), ("replication_num", bad)]),
                format!(
                    "invalid value \"{bad}\" for property \"replication_num\": \
                     expected an integer from 1 to 16"
                )
            );
        }
        assert_eq!(
            restore_err(&[("backup_timestamp", "ts"), ("allow_load", "yes")]),
            "invalid value \"yes\" for property \"allow_load\": expected \"true\" or \"false\""
        );
        assert_eq!(
            restore_err(&[("backup_timestamp", "ts"), ("timeout", "5")]),
            "invalid value \"5\" for property \"timeout\": \
             expected a whole number of seconds from 10 to 2592000 (30 days)"
        );
        assert_eq!(
            restore_err(&[("backup_timestamp", " ")]),
            "invalid value \" \" for property \"backup_timestamp\": expected a backup timestamp"
        );
    }
}
