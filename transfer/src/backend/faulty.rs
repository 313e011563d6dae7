//! A fault-injecting wrapper: seeded errors, fail-after-N, latency, corruption, torn puts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::{Backend, StreamSink};
use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// What [`Faulty`] injects. Start from [`FaultConfig::off`] and set fields.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct FaultConfig {
    /// Seed of the decisions. Each operation's fate is a function of (seed,
    /// operation, key, range offset, attempt number for that operation on that
    /// key), so a seed replays exactly whatever order threads run in. Only the
    /// `fail_after_*` limits count operations globally, so they depend on order.
    pub seed: u64,
    /// Probability that a `put` fails.
    pub put_error_rate: f64,
    /// Probability that a `get` or `get_range` fails.
    pub get_error_rate: f64,
    /// Probability that a `head` fails.
    pub head_error_rate: f64,
    /// Probability that a `list` fails.
    pub list_error_rate: f64,
    /// Probability that a `delete` (or a whole `delete_many`) fails.
    pub delete_error_rate: f64,
    /// Injected random errors are permanent (not retryable) instead of transient.
    pub permanent: bool,
    /// After this many puts, every further put fails permanently (a crash stand-in).
    pub fail_after_puts: Option<u64>,
    /// After this many operations of any kind, every operation fails permanently.
    pub fail_after_ops: Option<u64>,
    /// Sleep added to every operation.
    pub latency: Duration,
    /// Probability that a successful `get`/`get_range` returns one flipped byte.
    pub corrupt_get_rate: f64,
    /// Probability that a `put` is torn: the inner backend's `put_torn` runs with
    /// half the bytes and the put reports a transient error.
    pub torn_put_rate: f64,
}

impl FaultConfig {
    /// No faults at all.
    pub fn off(seed: u64) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }

    /// Transient errors at `rate` on every operation kind.
    pub fn transient(seed: u64, rate: f64) -> Self {
        Self {
            seed,
            put_error_rate: rate,
            get_error_rate: rate,
            head_error_rate: rate,
            list_error_rate: rate,
            delete_error_rate: rate,
            ..Self::default()
        }
    }
}

/// Wraps a backend and injects the faults of a [`FaultConfig`].
#[derive(Debug)]
pub struct Faulty<B> {
    inner: B,
    config: Mutex<FaultConfig>,
    /// Attempts so far per (operation, key, offset) identity.
    attempts: Mutex<HashMap<u64, u64>>,
    ops: AtomicU64,
    puts: AtomicU64,
}

/// FNV-1a over `bytes`, continuing from `h`: a stable identity for an
/// operation's key that does not depend on the process or the build.
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl<B: Backend> Faulty<B> {
    /// Wraps `inner` with the given faults.
    pub fn new(inner: B, config: FaultConfig) -> Self {
        Self {
            inner,
            config: Mutex::new(config),
            attempts: Mutex::new(HashMap::new()),
            ops: AtomicU64::new(0),
            puts: AtomicU64::new(0),
        }
    }

    /// Replaces the fault configuration (e.g. turns faults off to check results).
    /// Counters for `fail_after_*` and attempt numbers restart from zero.
    pub fn set_config(&self, config: FaultConfig) {
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = config;
        self.attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.ops.store(0, Ordering::SeqCst);
        self.puts.store(0, Ordering::SeqCst);
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Decides the fate of one operation: `Err` to inject, else whether to
    /// corrupt (gets) or tear (puts), and a random word placing the corruption.
    /// `at` tells apart ranges of one object (their offset), so each range
    /// of a pack has its own fate.
    fn decide(&self, op: &'static str, key: &str, at: u64) -> Result<(bool, u64)> {
        let n = self.ops.fetch_add(1, Ordering::SeqCst);
        let cfg = self
            .config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let id = fnv1a(
            fnv1a(fnv1a(0xcbf2_9ce4_8422_2325, op.as_bytes()), key.as_bytes()),
            &at.to_le_bytes(),
        );
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
            let a = attempts.entry(id).or_insert(0);
            *a += 1;
            *a - 1
        };
        let mut rng = SplitMix64::new(
            SplitMix64::new(cfg.seed ^ id).next_u64() ^ attempt.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let latency = cfg.latency;
        let fail = |transient: bool, message: &str| Error::Backend {
            op,
            key: key.to_string(),
            transient,
            message: message.to_string(),
        };
        if cfg.fail_after_ops.is_some_and(|limit| n >= limit) {
            return Err(fail(false, "injected: operation limit reached"));
        }
        // Puts are counted when admitted, so concurrent puts cannot overshoot the limit.
        if op == "put" {
            let admitted = self.puts.fetch_add(1, Ordering::SeqCst);
            if cfg.fail_after_puts.is_some_and(|l| admitted >= l) {
                return Err(fail(false, "injected: put limit reached"));
            }
        }
        let rate = match op {
            "put" => cfg.put_error_rate,
            "get" | "get_range" => cfg.get_error_rate,
            "head" => cfg.head_error_rate,
            "list" => cfg.list_error_rate,
            _ => cfg.delete_error_rate,
        };
        if rng.chance(rate) {
            return Err(fail(!cfg.permanent, "injected error"));
        }
        let special = match op {
            "put" => rng.chance(cfg.torn_put_rate),
            "get" | "get_range" => rng.chance(cfg.corrupt_get_rate),
            _ => false,
        };
        let flip = rng.next_u64();
        if !latency.is_zero() {
            std::thread::sleep(latency);
        }
        Ok((special, flip))
    }

    fn maybe_corrupt(mut data: Vec<u8>, fate: (bool, u64)) -> Vec<u8> {
        Self::corrupt_in_place(&mut data, fate);
        data
    }

    fn corrupt_in_place(data: &mut [u8], (corrupt, flip): (bool, u64)) {
        if corrupt && !data.is_empty() {
            let at = (flip % data.len() as u64) as usize;
            data[at] ^= 0x5A;
        }
    }
}

impl<B: Backend> Backend for Faulty<B> {
    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        let (torn, _) = self.decide("put", key, 0)?;
        if torn {
            self.inner.put_torn(key, &data[..data.len() / 2])?;
            return Err(Error::Backend {
                op: "put",
                key: key.to_string(),
                transient: true,
                message: "injected: torn put".to_string(),
            });
        }
        self.inner.put(key, data)
    }

    fn get(&self, key: &str) -> Result<Vec<u8>> {
        let fate = self.decide("get", key, 0)?;
        Ok(Self::maybe_corrupt(self.inner.get(key)?, fate))
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let fate = self.decide("get_range", key, offset)?;
        Ok(Self::maybe_corrupt(
            self.inner.get_range(key, offset, len)?,
            fate,
        ))
    }

    fn get_range_into(&self, key: &str, offset: u64, len: u64, buf: &mut Vec<u8>) -> Result<()> {
        let fate = self.decide("get_range", key, offset)?;
        self.inner.get_range_into(key, offset, len, buf)?;
        Self::corrupt_in_place(buf, fate);
        Ok(())
    }

    /// An injected transient error cuts the stream after half the range
    /// (the caller must resume after what it was handed); an injected
    /// corruption flips a byte of the first slice.
    fn get_range_stream(
        &self,
        key: &str,
        offset: u64,
        len: u64,
        buf: &mut Vec<u8>,
        sink: &mut StreamSink<'_>,
    ) -> Result<()> {
        let fate = match self.decide("get_range", key, offset) {
            Ok(fate) => fate,
            Err(e) => {
                if e.is_retryable() && len > 1 {
                    self.inner
                        .get_range_stream(key, offset, len / 2, buf, sink)?;
                }
                return Err(e);
            }
        };
        let mut first = fate.0;
        self.inner
            .get_range_stream(key, offset, len, buf, &mut |slice: &[u8]| {
                if std::mem::take(&mut first) {
                    let mut copy = slice.to_vec();
                    Self::corrupt_in_place(&mut copy, fate);
                    sink(&copy)
                } else {
                    sink(slice)
                }
            })
    }

    fn requests_in_flight(&self) -> Option<usize> {
        self.inner.requests_in_flight()
    }

    fn head(&self, key: &str) -> Result<Option<u64>> {
        self.decide("head", key, 0)?;
        self.inner.head(key)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.decide("list", prefix, 0)?;
        self.inner.list(prefix)
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.decide("delete", key, 0)?;
        self.inner.delete(key)
    }

    fn delete_many(&self, keys: &[String]) -> Result<()> {
        // One fate per call: a store with a batch delete fails a request,
        // and the inner store's own batching (S3's DeleteObjects) is what
        // runs, as it would without the wrapper.
        let first = keys.first().map_or("", String::as_str);
        self.decide("delete_many", first, keys.len() as u64)?;
        self.inner.delete_many(keys)
    }

    fn put_if_absent(&self, key: &str, data: &[u8]) -> Result<bool> {
        // A torn conditional put stores nothing (the condition and the
        // write are one request), so only errors are injected.
        self.decide("put", key, 0)?;
        self.inner.put_if_absent(key, data)
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
