//! A wrapper counting operations, so tests can assert what a transfer did.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Backend, StreamSink};
use crate::error::Result;

/// Operation counts observed by a [`Counting`] wrapper.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Successful and failed puts.
    pub puts: u64,
    /// Gets and ranged gets.
    pub gets: u64,
    /// Heads.
    pub heads: u64,
    /// Lists.
    pub lists: u64,
    /// Deletes.
    pub deletes: u64,
    /// Bytes passed to puts.
    pub put_bytes: u64,
}

/// Forwards every call to `inner` and counts it.
#[derive(Debug, Default)]
pub struct Counting<B> {
    inner: B,
    puts: AtomicU64,
    gets: AtomicU64,
    heads: AtomicU64,
    lists: AtomicU64,
    deletes: AtomicU64,
    put_bytes: AtomicU64,
}

impl<B: Backend> Counting<B> {
    /// Wraps `inner` with zeroed counters.
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            puts: AtomicU64::new(0),
            gets: AtomicU64::new(0),
            heads: AtomicU64::new(0),
            lists: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            put_bytes: AtomicU64::new(0),
        }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// A snapshot of the counters.
    pub fn counts(&self) -> OpCounts {
        OpCounts {
            puts: self.puts.load(Ordering::SeqCst),
            gets: self.gets.load(Ordering::SeqCst),
            heads: self.heads.load(Ordering::SeqCst),
            lists: self.lists.load(Ordering::SeqCst),
            deletes: self.deletes.load(Ordering::SeqCst),
            put_bytes: self.put_bytes.load(Ordering::SeqCst),
        }
    }

    /// Sets every counter back to zero.
    pub fn reset(&self) {
        for c in [
            &self.puts,
            &self.gets,
            &self.heads,
            &self.lists,
            &self.deletes,
            &self.put_bytes,
        ] {
            c.store(0, Ordering::SeqCst);
        }
    }
}

impl<B: Backend> Backend for Counting<B> {
    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.put_bytes
            .fetch_add(data.len() as u64, Ordering::SeqCst);
        self.inner.put(key, data)
    }

    fn get(&self, key: &str) -> Result<Vec<u8>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key)
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get_range(key, offset, len)
    }

    fn get_range_into(&self, key: &str, offset: u64, len: u64, buf: &mut Vec<u8>) -> Result<()> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get_range_into(key, offset, len, buf)
    }

    /// One streamed read counts as one GET (it is one request where the
    /// store streams; a store that reads block by block is not remote).
    fn get_range_stream(
        &self,
        key: &str,
        offset: u64,
        len: u64,
        buf: &mut Vec<u8>,
        sink: &mut StreamSink<'_>,
    ) -> Result<()> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get_range_stream(key, offset, len, buf, sink)
    }

    fn requests_in_flight(&self) -> Option<usize> {
        self.inner.requests_in_flight()
    }

    fn head(&self, key: &str) -> Result<Option<u64>> {
        self.heads.fetch_add(1, Ordering::SeqCst);
        self.inner.head(key)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list(prefix)
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key)
    }

    fn put_if_absent(&self, key: &str, data: &[u8]) -> Result<bool> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.put_bytes
            .fetch_add(data.len() as u64, Ordering::SeqCst);
        self.inner.put_if_absent(key, data)
    }

    fn delete_many(&self, keys: &[String]) -> Result<()> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete_many(keys)
    }

    fn barrier(&self) -> Result<()> {
        self.inner.barrier()
    }

    fn put_torn(&self, key: &str, partial: &[u8]) -> Result<()> {
        self.inner.put_torn(key, partial)
    }

    fn sweep_stale_temp(&self, prefix: &str, older_than: std::time::Duration) -> Result<u64> {
        self.inner.sweep_stale_temp(prefix, older_than)
    }
}
