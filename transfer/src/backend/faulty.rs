//! A fault-injecting wrapper: seeded errors, fail-after-N, latency, corruption, torn puts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::Backend;
use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// What [`Faulty`] injects. Start from [`FaultConfig::off`] and set fields.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct FaultConfig {
    /// Seed of the decision RNG: the same seed and operation order give the same faults.
    pub seed: u64,
    /// Probability that a `put` fails.
    pub put_error_rate: f64,
    /// Probability that a `get` or `get_range` fails.
    pub get_error_rate: f64,
    /// Probability that a `head` fails.
    pub head_error_rate: f64,
    /// Probability that a `list` fails.
    pub list_error_rate: f64,
    /// Probability that a `delete` fails.
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
    state: Mutex<(FaultConfig, SplitMix64)>,
    ops: AtomicU64,
    puts: AtomicU64,
}

impl<B: Backend> Faulty<B> {
    /// Wraps `inner` with the given faults.
    pub fn new(inner: B, config: FaultConfig) -> Self {
        let rng = SplitMix64::new(config.seed);
        Self {
            inner,
            state: Mutex::new((config, rng)),
            ops: AtomicU64::new(0),
            puts: AtomicU64::new(0),
        }
    }

    /// Replaces the fault configuration (e.g. turns faults off to check results).
    /// Counters for `fail_after_*` restart from zero.
    pub fn set_config(&self, config: FaultConfig) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.1 = SplitMix64::new(config.seed);
        st.0 = config;
        self.ops.store(0, Ordering::SeqCst);
        self.puts.store(0, Ordering::SeqCst);
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Decides the fate of one operation: `Err` to inject, else whether to
    /// corrupt (gets) or tear (puts), and a random word placing the corruption.
    fn decide(&self, op: &'static str, key: &str) -> Result<(bool, u64)> {
        let n = self.ops.fetch_add(1, Ordering::SeqCst);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (cfg, rng) = &mut *st;
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
        drop(st);
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
        let (torn, _) = self.decide("put", key)?;
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
        let fate = self.decide("get", key)?;
        Ok(Self::maybe_corrupt(self.inner.get(key)?, fate))
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let fate = self.decide("get_range", key)?;
        Ok(Self::maybe_corrupt(
            self.inner.get_range(key, offset, len)?,
            fate,
        ))
    }

    fn get_range_into(&self, key: &str, offset: u64, len: u64, buf: &mut Vec<u8>) -> Result<()> {
        let fate = self.decide("get_range", key)?;
        self.inner.get_range_into(key, offset, len, buf)?;
        Self::corrupt_in_place(buf, fate);
        Ok(())
    }

    fn head(&self, key: &str) -> Result<Option<u64>> {
        self.decide("head", key)?;
        self.inner.head(key)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.decide("list", prefix)?;
        self.inner.list(prefix)
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.decide("delete", key)?;
        self.inner.delete(key)
    }

    fn put_if_absent(&self, key: &str, data: &[u8]) -> Result<bool> {
        // A torn conditional put stores nothing (the condition and the
        // write are one request), so only errors are injected.
        self.decide("put", key)?;
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
