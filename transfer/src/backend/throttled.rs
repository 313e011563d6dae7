//! A wrapper adding per-operation latency and a bandwidth cap, like a remote store.

use std::time::Duration;

use super::{Backend, StreamSink};
use crate::error::Result;

/// Sleeps `latency` per operation plus `bytes / bandwidth` per transferred payload.
#[derive(Debug)]
pub struct Throttled<B> {
    inner: B,
    latency: Duration,
    bytes_per_sec: Option<u64>,
}

impl<B: Backend> Throttled<B> {
    /// Wraps `inner`; `bytes_per_sec = None` means no bandwidth cap.
    pub fn new(inner: B, latency: Duration, bytes_per_sec: Option<u64>) -> Self {
        Self {
            inner,
            latency,
            bytes_per_sec,
        }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    fn wait(&self, bytes: u64) {
        let mut d = self.latency;
        if let Some(bw) = self.bytes_per_sec.filter(|b| *b > 0) {
            d += Duration::from_secs_f64(bytes as f64 / bw as f64);
        }
        if !d.is_zero() {
            std::thread::sleep(d);
        }
    }
}

impl<B: Backend> Backend for Throttled<B> {
    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        self.wait(data.len() as u64);
        self.inner.put(key, data)
    }

    fn get(&self, key: &str) -> Result<Vec<u8>> {
        let data = self.inner.get(key)?;
        self.wait(data.len() as u64);
        Ok(data)
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let data = self.inner.get_range(key, offset, len)?;
        self.wait(data.len() as u64);
        Ok(data)
    }

    fn get_range_into(&self, key: &str, offset: u64, len: u64, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.get_range_into(key, offset, len, buf)?;
        self.wait(buf.len() as u64);
        Ok(())
    }

    fn get_range_stream(
        &self,
        key: &str,
        offset: u64,
        len: u64,
        buf: &mut Vec<u8>,
        sink: &mut StreamSink<'_>,
    ) -> Result<()> {
        self.inner
            .get_range_stream(key, offset, len, buf, &mut |slice: &[u8]| {
                self.wait(slice.len() as u64);
                sink(slice)
            })
    }

    fn requests_in_flight(&self) -> Option<usize> {
        self.inner.requests_in_flight()
    }

    fn head(&self, key: &str) -> Result<Option<u64>> {
        self.wait(0);
        self.inner.head(key)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.wait(0);
        self.inner.list(prefix)
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.wait(0);
        self.inner.delete(key)
    }

    fn put_if_absent(&self, key: &str, data: &[u8]) -> Result<bool> {
        self.wait(data.len() as u64);
        self.inner.put_if_absent(key, data)
    }

    fn delete_many(&self, keys: &[String]) -> Result<()> {
        self.wait(0);
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
