//! Names of snapshot top dirs: `[restore.]<YYYYmmddHHMMSS>.<seq>.<timeout_s>`
//! (UTC). The name alone says when the dir expires, so the sweeper needs no
//! other state, and the process-wide sequence keeps concurrent calls apart.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tabletsnap_engine::schema::{civil_from_days, days_from_civil};

use crate::error::{Error, Result};

/// Prefix of restore-side dirs (where downloads go).
pub const RESTORE_PREFIX: &str = "restore.";

/// Distinguishes within one process the dirs made in the same second.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// What a top dir under `<store>/snapshot/` is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirKind {
    /// Made by `make_snapshots` (backup side).
    Snapshot,
    /// Made by `prepare_restore_dirs` (restore side).
    Restore,
}

/// A parsed top dir name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirName {
    /// Backup or restore side.
    pub kind: DirKind,
    /// Creation time, whole seconds since the epoch (UTC).
    pub created_s: u64,
    /// Sequence number within the creating process.
    pub seq: u64,
    /// Seconds after creation when the dir may be deleted.
    pub timeout_s: u64,
}

/// Whole seconds since the epoch.
pub fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `YYYYmmddHHMMSS` in UTC.
fn format_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn parse_stamp(s: &str) -> Option<u64> {
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().ok();
    let (y, mo, d, h, mi, se) = (
        n(0..4)?,
        n(4..6)?,
        n(6..8)?,
        n(8..10)?,
        n(10..12)?,
        n(12..14)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    // Rejects 31 February and friends: the date must round-trip.
    if civil_from_days(days) != (i64::from(y), mo, d) || days < 0 {
        return None;
    }
    Some(days as u64 * 86_400 + u64::from(h) * 3600 + u64::from(mi) * 60 + u64::from(se))
}

impl DirName {
    /// The dir name.
    pub fn format(&self) -> String {
        let prefix = match self.kind {
            DirKind::Snapshot => "",
            DirKind::Restore => RESTORE_PREFIX,
        };
        format!(
            "{prefix}{}.{}.{}",
            format_stamp(self.created_s),
            self.seq,
            self.timeout_s
        )
    }

    /// Parses a top dir name; `None` for anything we did not make.
    pub fn parse(name: &str) -> Option<DirName> {
        let (kind, rest) = match name.strip_prefix(RESTORE_PREFIX) {
            Some(r) => (DirKind::Restore, r),
            None => (DirKind::Snapshot, name),
        };
        let mut parts = rest.split('.');
        let created_s = parse_stamp(parts.next()?)?;
        let num = |p: Option<&str>| -> Option<u64> {
            let p = p?;
            // Only canonical decimal, so that parse(format(x)) is a bijection.
            if p.is_empty() || (p.len() > 1 && p.starts_with('0')) {
                return None;
            }
            p.parse().ok()
        };
        let seq = num(parts.next())?;
        let timeout_s = num(parts.next())?;
        if parts.next().is_some() {
            return None;
        }
        Some(DirName {
            kind,
            created_s,
            seq,
            timeout_s,
        })
    }

    /// When the dir may be deleted, seconds since the epoch.
    pub fn expires_s(&self) -> u64 {
        self.created_s.saturating_add(self.timeout_s)
    }

    /// Whether the dir has expired at `now`. Strictly after the deadline:
    /// the stamp is truncated to the second, so equality could be early.
    pub fn expired_at(&self, now: SystemTime) -> bool {
        epoch_secs(now) > self.expires_s()
    }
}

/// Creates one fresh top dir with the same name under each of `roots` (not
/// durable: the caller's barrier covers it). A name that already exists on
/// disk, left by an earlier process, is skipped for the next sequence number.
pub(crate) fn create_top_dirs(
    roots: &[PathBuf],
    kind: DirKind,
    timeout: Duration,
) -> Result<(DirName, Vec<PathBuf>)> {
    let timeout_s = timeout.as_secs();
    if timeout_s == 0 {
        return Err(Error::InvalidArgument(
            "a snapshot timeout must be at least one second".into(),
        ));
    }
    'retry: for _ in 0..1000 {
        let name = DirName {
            kind,
            created_s: epoch_secs(SystemTime::now()),
            seq: SEQ.fetch_add(1, Ordering::Relaxed),
            timeout_s,
        };
        let mut made: Vec<PathBuf> = Vec::with_capacity(roots.len());
        for root in roots {
            let dir = root.join(name.format());
            match std::fs::create_dir(&dir) {
                Ok(()) => made.push(dir),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    remove_empty(&made);
                    continue 'retry;
                }
                Err(e) => {
                    remove_empty(&made);
                    return Err(Error::io(dir, e));
                }
            }
        }
        return Ok((name, made));
    }
    Err(Error::InvalidArgument(
        "could not find a free snapshot dir name after 1000 tries".into(),
    ))
}

fn remove_empty(dirs: &[PathBuf]) {
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}

/// The top dir name of a path inside a snapshot root: its first component.
pub(crate) fn top_component(rel: &Path) -> Option<&str> {
    rel.components().next().and_then(|c| c.as_os_str().to_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips_and_is_utc() {
        assert_eq!(format_stamp(0), "19700101000000");
        assert_eq!(format_stamp(1_700_000_000), "20231114221320");
        for s in [0u64, 951_782_400, 1_700_000_000, 4_102_444_799] {
            assert_eq!(parse_stamp(&format_stamp(s)), Some(s));
        }
        assert_eq!(parse_stamp("20230231000000"), None);
        assert_eq!(parse_stamp("2023111422132"), None);
    }

    #[test]
    fn names_round_trip_and_junk_is_refused() {
        let n = DirName {
            kind: DirKind::Restore,
            created_s: 1_700_000_000,
            seq: 42,
            timeout_s: 3600,
        };
        assert_eq!(n.format(), "restore.20231114221320.42.3600");
        assert_eq!(DirName::parse(&n.format()), Some(n));
        let s = DirName {
            kind: DirKind::Snapshot,
            ..n
        };
        assert_eq!(DirName::parse(&s.format()), Some(s));
        for junk in [
            "",
            "x",
            "20231114221320",
            "20231114221320.1",
            "20231114221320.1.2.3",
            "20231114221320.01.2",
            "20231114221320.1.-2",
            "restore.",
            "tmp.20231114221320.1.2",
        ] {
            assert_eq!(DirName::parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn expiry_is_strictly_after_the_deadline() {
        let n = DirName {
            kind: DirKind::Snapshot,
            created_s: 100,
            seq: 0,
            timeout_s: 10,
        };
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert!(!n.expired_at(at(110)));
        assert!(n.expired_at(at(111)));
    }
}
