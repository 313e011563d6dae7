//! Object-store backends: the [`Backend`] trait and its implementations.

mod counting;
mod faulty;
mod local_fs;
mod memory;
pub mod s3;
mod throttled;

pub use counting::{Counting, OpCounts};
pub use faulty::{FaultConfig, Faulty};
pub use local_fs::{Durability, LocalFs};
pub use memory::Memory;
pub use s3::{S3Config, S3};
pub use throttled::Throttled;

use crate::error::{Error, Result};

/// The most keys one batch delete request takes (S3's DeleteObjects limit):
/// callers of [`Backend::delete_many`] that retry split their keys into
/// batches of this size, so one call is one request and one retry unit.
pub const DELETE_BATCH: usize = 1000;

/// The most bytes [`Backend::get_range_stream`] hands over at once by
/// default (one ranged read each): each block is still in the CPU cache
/// when the caller's crc and write read it, and the buffer stays small.
pub const STREAM_BLOCK: u64 = 8 << 20;

/// Where [`Backend::get_range_stream`] hands a range's bytes: consecutive
/// slices, in order; an error it returns ends the read.
pub type StreamSink<'a> = dyn FnMut(&[u8]) -> Result<()> + 'a;

/// A minimal object store: whole-object atomic puts, reads, ranged reads,
/// size lookups, prefix listing and deletes. No rename, as object stores have none.
///
/// Keys are relative, `/`-separated strings (see [`validate_key`]).
/// Implementations are synchronous and shared between worker threads.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Stores `data` under `key`, replacing any previous object: readers see the
    /// old object or the whole new one, never a part.
    fn put(&self, key: &str, data: &[u8]) -> Result<()>;

    /// Reads a whole object; [`Error::NotFound`] when absent.
    fn get(&self, key: &str) -> Result<Vec<u8>>;

    /// Reads `len` bytes at `offset`; a range past the end is an error
    /// ([`Error::Corrupt`]), absent objects give [`Error::NotFound`].
    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>>;

    /// Like [`Backend::get_range`], but leaves the bytes in `buf` (replacing
    /// its contents; unspecified on error), so a caller can reuse one buffer
    /// for many reads.
    ///
    /// Backends that can read in place override it: a fresh 64 MiB `Vec` per
    /// read costs a page fault per 4 KiB page and an unmap, which made
    /// downloads from [`LocalFs`] spend more time faulting than reading.
    fn get_range_into(&self, key: &str, offset: u64, len: u64, buf: &mut Vec<u8>) -> Result<()> {
        *buf = self.get_range(key, offset, len)?;
        Ok(())
    }

    /// Reads `len` bytes at `offset` of `key` and hands them to `sink` in
    /// order, as consecutive slices, with `buf` as the transfer buffer. A
    /// store that streams reads the range with one request (S3: one ranged
    /// GET, handed over as it arrives, so the caller's writes overlap the
    /// server's sending); by default it is one [`Backend::get_range_into`]
    /// per [`STREAM_BLOCK`].
    ///
    /// The bytes handed to `sink` before an error were delivered: a caller
    /// that retries asks for the rest only. An error of `sink` ends the read
    /// and is returned as it is.
    fn get_range_stream(
        &self,
        key: &str,
        offset: u64,
        len: u64,
        buf: &mut Vec<u8>,
        sink: &mut StreamSink<'_>,
    ) -> Result<()> {
        let mut done = 0;
        while done < len {
            let n = (len - done).min(STREAM_BLOCK);
            self.get_range_into(key, offset + done, n, buf)?;
            sink(buf)?;
            done += n;
        }
        Ok(())
    }

    /// How many requests this store wants in flight to be kept busy, when
    /// that is more than the cores: a remote store's requests mostly wait
    /// on the network and the server. `None` (the default) for stores the
    /// cores keep busy.
    fn requests_in_flight(&self) -> Option<usize> {
        None
    }

    /// The size of an object, or `None` when it does not exist.
    fn head(&self, key: &str) -> Result<Option<u64>>;

    /// All keys starting with `prefix` (a plain string prefix), sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// Removes an object; removing an absent object succeeds.
    fn delete(&self, key: &str) -> Result<()>;

    /// Stores `data` under `key` only if no object is there: `Ok(true)` if
    /// this call stored it, `Ok(false)` if an object already existed (left
    /// as it was). Two writers racing on one key cannot both get `true`.
    /// The commit point (a snapshot's `info`) is written this way.
    ///
    /// The default is a check then a put, atomic only against writers in
    /// this process that hold no other handle on the store; backends shared
    /// between processes override it ([`LocalFs`]: a hard link, which fails
    /// if the name exists; [`S3`]: `If-None-Match: *`).
    fn put_if_absent(&self, key: &str, data: &[u8]) -> Result<bool> {
        if self.head(key)?.is_some() {
            return Ok(false);
        }
        self.put(key, data)?;
        Ok(true)
    }

    /// Removes several objects; absent ones are fine. Stores with a batch
    /// delete ([`S3`]: DeleteObjects, [`DELETE_BATCH`] keys a request)
    /// override it. On error some of the keys may be gone and others not,
    /// and the error names a key that was not deleted; calling again with
    /// the same keys finishes the work. Callers that retry pass at most
    /// [`DELETE_BATCH`] keys, so that a retry repeats one request.
    fn delete_many(&self, keys: &[String]) -> Result<()> {
        keys.iter().try_for_each(|k| self.delete(k))
    }

    /// Makes every put that returned before this call durable.
    ///
    /// Backends whose puts are durable on return do nothing. A batched
    /// [`LocalFs`] flushes the whole filesystem once here instead of once per put.
    fn barrier(&self) -> Result<()> {
        Ok(())
    }

    /// Simulates a crash in the middle of a `put`: leaves behind whatever such a
    /// crash leaves (nothing, by default; a temp file for [`LocalFs`]). Readers
    /// must never see it as `key`. Used by [`Faulty`] for torn puts.
    fn put_torn(&self, key: &str, partial: &[u8]) -> Result<()> {
        let _ = (key, partial);
        Ok(())
    }

    /// Removes the temp objects that interrupted puts left under the
    /// directory `prefix` names (its complete `/`-separated components; empty
    /// for the whole backend) and that were last modified more than
    /// `older_than` ago, so puts still in flight keep theirs. Returns how many
    /// it removed. Backends whose puts leave nothing behind do nothing.
    /// [`LocalFs`] removes `.tstmp-*` files; [`S3`] aborts the multipart
    /// uploads a killed put left open (nothing on a server without
    /// ListMultipartUploads).
    fn sweep_stale_temp(&self, prefix: &str, older_than: std::time::Duration) -> Result<u64> {
        let _ = (prefix, older_than);
        Ok(0)
    }
}

/// A shared backend is a backend, so wrappers can stack over an `Arc` the
/// caller keeps a handle on (e.g. to read a [`Counting`] wrapper's counts).
impl<B: Backend + ?Sized> Backend for std::sync::Arc<B> {
    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        (**self).put(key, data)
    }
    fn get(&self, key: &str) -> Result<Vec<u8>> {
        (**self).get(key)
    }
    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        (**self).get_range(key, offset, len)
    }
    fn get_range_into(&self, key: &str, offset: u64, len: u64, buf: &mut Vec<u8>) -> Result<()> {
        (**self).get_range_into(key, offset, len, buf)
    }
    fn get_range_stream(
        &self,
        key: &str,
        offset: u64,
        len: u64,
        buf: &mut Vec<u8>,
        sink: &mut StreamSink<'_>,
    ) -> Result<()> {
        (**self).get_range_stream(key, offset, len, buf, sink)
    }
    fn requests_in_flight(&self) -> Option<usize> {
        (**self).requests_in_flight()
    }
    fn head(&self, key: &str) -> Result<Option<u64>> {
        (**self).head(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        (**self).list(prefix)
    }
    fn delete(&self, key: &str) -> Result<()> {
        (**self).delete(key)
    }
    fn put_if_absent(&self, key: &str, data: &[u8]) -> Result<bool> {
        (**self).put_if_absent(key, data)
    }
    fn delete_many(&self, keys: &[String]) -> Result<()> {
        (**self).delete_many(keys)
    }
    fn barrier(&self) -> Result<()> {
        (**self).barrier()
    }
    fn put_torn(&self, key: &str, partial: &[u8]) -> Result<()> {
        (**self).put_torn(key, partial)
    }
    fn sweep_stale_temp(&self, prefix: &str, older_than: std::time::Duration) -> Result<u64> {
        (**self).sweep_stale_temp(prefix, older_than)
    }
}

/// Checks that `key` is a relative `/`-separated key that cannot escape a root:
/// no empty, `.` or `..` components, no leading `/`, no backslash or NUL, no
/// component starting with `.` (reserved for backends' temp files).
pub fn validate_key(key: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidKey {
            key: crate::error::printable(key),
            reason,
        })
    };
    if key.is_empty() {
        return bad("empty key");
    }
    if key.starts_with('/') {
        return bad("absolute keys are not allowed");
    }
    if key.contains('\\') || key.contains('\0') {
        return bad("backslash and NUL are not allowed");
    }
    for part in key.split('/') {
        if part.is_empty() {
            return bad("empty path component");
        }
        if part == "." || part == ".." {
            return bad("'.' and '..' components are not allowed");
        }
        if part.starts_with('.') {
            return bad("components starting with '.' are reserved");
        }
    }
    Ok(())
}

/// Validates a list prefix: like a key, but it may be empty or end with `/`.
pub(crate) fn validate_prefix(prefix: &str) -> Result<()> {
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if trimmed.is_empty() {
        if prefix.is_empty() {
            return Ok(());
        }
        return Err(Error::InvalidKey {
            key: prefix.to_string(),
            reason: "absolute prefixes are not allowed",
        });
    }
    // A partial last component such as "__ss_" is fine: validate the parts as keys.
    validate_key(trimmed)
}

/// Cuts `len` bytes at `offset` out of `data`, or reports the range as invalid.
pub(crate) fn slice_range(key: &str, data: &[u8], offset: u64, len: u64) -> Result<Vec<u8>> {
    Ok(data[checked_range(key, data, offset, len)?].to_vec())
}

/// The index range of `len` bytes at `offset` in `data`, or an error if it is past the end.
pub(crate) fn checked_range(
    key: &str,
    data: &[u8],
    offset: u64,
    len: u64,
) -> Result<std::ops::Range<usize>> {
    let end = offset.checked_add(len);
    match end {
        Some(end) if end <= data.len() as u64 => Ok(offset as usize..end as usize),
        _ => Err(Error::Corrupt {
            what: format!("object '{key}'"),
            reason: format!(
                "range {offset}+{len} is past the end of the {}-byte object",
                data.len()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_escape_are_refused() {
        for k in [
            "", "/etc/x", "a//b", "../x", "a/../b", "a/./b", ".hidden", "a\\b", "a/",
        ] {
            assert!(validate_key(k).is_err(), "{k:?} accepted");
        }
        for k in ["a", "a/b", "__ss_x/2026-01-01-00-00-00/packs/p1"] {
            assert!(validate_key(k).is_ok(), "{k:?} refused");
        }
    }

    #[test]
    fn prefixes() {
        assert!(validate_prefix("").is_ok());
        assert!(validate_prefix("a/").is_ok());
        assert!(validate_prefix("a/__ss_").is_ok());
        assert!(validate_prefix("/").is_err());
        assert!(validate_prefix("../").is_err());
    }
}
