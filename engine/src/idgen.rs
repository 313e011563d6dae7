//! Rowset id allocation: 128-bit ids, `prefix << 64 | counter`, never reused.
//! The counter's high-water mark is persisted in blocks before any id of the
//! block is handed out, so a restart skips, never repeats.

use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::file;
use crate::rowset::RowsetId;

const BLOCK: u64 = 1 << 20;
const FILE_NAME: &str = "rowset_id.hwm";

/// Allocates rowset ids for one engine.
#[derive(Debug)]
pub struct RowsetIdAllocator {
    path: PathBuf,
    prefix: u64,
    state: Mutex<(u64, u64)>,
}

impl RowsetIdAllocator {
    /// Opens (or creates) the allocator whose state lives in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(FILE_NAME);
        let (prefix, hwm) = if path.exists() {
            let buf = file::read(&path)?;
            if buf.len() != 20 || crc32fast::hash(&buf[..16]).to_le_bytes() != buf[16..20] {
                return Err(Error::corrupt(
                    &path,
                    "rowset id high-water mark is damaged",
                ));
            }
            let mut a = [0u8; 8];
            a.copy_from_slice(&buf[..8]);
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[8..16]);
            (u64::from_le_bytes(a), u64::from_le_bytes(b))
        } else {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let seed =
                nanos ^ (u64::from(std::process::id()) << 32) ^ (dir.as_os_str().len() as u64);
            let prefix = crate::hash::splitmix64(seed) | 1;
            (prefix, 0)
        };
        let alloc = RowsetIdAllocator {
            path,
            prefix,
            state: Mutex::new((hwm, hwm)),
        };
        Ok(alloc)
    }

    fn persist(&self, hwm: u64) -> Result<()> {
        let mut buf = Vec::with_capacity(20);
        buf.extend_from_slice(&self.prefix.to_le_bytes());
        buf.extend_from_slice(&hwm.to_le_bytes());
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        file::write_atomic(&self.path, &buf)
    }

    /// `n` consecutive fresh ids; returns the first. None of them is ever
    /// handed out again (the high-water mark covers them before return).
    pub fn reserve(&self, n: u64) -> Result<RowsetId> {
        let mut st = self.state.lock();
        let end = st.0.checked_add(n).ok_or_else(|| self.exhausted(st.1))?;
        if end > st.1 {
            let limit = end.checked_add(BLOCK).ok_or_else(|| self.exhausted(st.1))?;
            self.persist(limit)?;
            st.1 = limit;
        }
        let id = st.0;
        st.0 = end;
        Ok(RowsetId((u128::from(self.prefix) << 64) | u128::from(id)))
    }

    fn exhausted(&self, hwm: u64) -> Error {
        Error::corrupt(
            &self.path,
            format!("rowset id high-water mark {hwm} leaves no ids to allocate"),
        )
    }

    /// A fresh id.
    pub fn next(&self) -> Result<RowsetId> {
        let mut st = self.state.lock();
        if st.0 == st.1 {
            let limit =
                st.1.checked_add(BLOCK)
                    .ok_or_else(|| self.exhausted(st.1))?;
            self.persist(limit)?;
            st.1 = limit;
        }
        let id = st.0;
        st.0 += 1;
        Ok(RowsetId((u128::from(self.prefix) << 64) | u128::from(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exhausted_high_water_mark_is_an_error_naming_the_file() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join(FILE_NAME);
        let mut buf = Vec::new();
        buf.extend_from_slice(&7u64.to_le_bytes());
        buf.extend_from_slice(&(u64::MAX - 3).to_le_bytes());
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, &buf).map_err(|e| Error::io(&path, e))?;
        let a = RowsetIdAllocator::open(dir.path())?;
        let err = a.next().expect_err("allocated past u64::MAX");
        assert!(err.to_string().contains(FILE_NAME), "{err}");
        Ok(())
    }

    #[test]
    fn ids_are_never_reused_across_reopen() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let a = RowsetIdAllocator::open(dir.path())?;
        let first: Vec<_> = (0..5).map(|_| a.next()).collect::<Result<_>>()?;
        drop(a);
        let b = RowsetIdAllocator::open(dir.path())?;
        let second = b.next()?;
        assert!(first.iter().all(|id| *id != second));
        assert!(second > first[4]);
        Ok(())
    }

    #[test]
    fn a_reserved_range_is_never_handed_out_again() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let a = RowsetIdAllocator::open(dir.path())?;
        let before = a.next()?;
        let base = a.reserve(3 * BLOCK)?;
        let after = a.next()?;
        assert_eq!(base.0, before.0 + 1);
        assert_eq!(after.0, base.0 + u128::from(3 * BLOCK));
        drop(a);
        let b = RowsetIdAllocator::open(dir.path())?;
        assert!(b.next()?.0 > after.0);
        Ok(())
    }
}
