//! Bounded retries with capped, jittered exponential backoff.

use std::time::Duration;

use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// How often and how patiently to retry transient errors.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per object, the first one included (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the second attempt.
    pub base_delay: Duration,
    /// Longest backoff between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The backoff before attempt `attempt + 1` (attempt counts from 1): the capped
    /// exponential times a jitter factor in [0.5, 1), so that workers failing
    /// together do not retry in lockstep.
    pub fn delay(&self, attempt: u32, jitter_seed: u64) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(20));
        let capped = exp.min(self.max_delay);
        let jitter = 0.5 + SplitMix64::new(jitter_seed ^ u64::from(attempt)).next_f64() / 2.0;
        capped.mul_f64(jitter)
    }

    /// Runs `op` until it succeeds, fails permanently, is cancelled, or runs out
    /// of attempts. `key` names the object in the final error.
    pub fn run<T>(
        &self,
        key: &str,
        cancel: &CancelToken,
        mut op: impl FnMut() -> Result<T>,
    ) -> Result<T> {
        let seed = crc32fast::hash(key.as_bytes()) as u64;
        let mut attempt = 1;
        loop {
            cancel.check()?;
            match op() {
                Ok(v) => return Ok(v),
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) if attempt >= self.max_attempts.max(1) => {
                    return Err(Error::RetriesExhausted {
                        key: key.to_string(),
                        attempts: attempt,
                        source: Box::new(e),
                    })
                }
                Err(_) => {
                    cancel.sleep(self.delay(attempt, seed))?;
                    attempt += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient() -> Error {
        Error::Backend {
            op: "put",
            key: "k".into(),
            transient: true,
            message: "x".into(),
        }
    }

    #[test]
    fn bounded_and_permanent_fails_fast() {
        let p = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        };
        let c = CancelToken::new();
        let mut n = 0;
        let r: Result<()> = p.run("k", &c, || {
            n += 1;
            Err(transient())
        });
        assert_eq!(n, 3);
        assert!(matches!(
            r,
            Err(Error::RetriesExhausted { attempts: 3, .. })
        ));
        let mut n = 0;
        let r: Result<()> = p.run("k", &c, || {
            n += 1;
            Err(Error::NotFound { key: "k".into() })
        });
        assert_eq!(n, 1);
        assert!(r.is_err());
    }

    #[test]
    fn delay_is_capped() {
        let p = RetryPolicy::default();
        assert!(p.delay(30, 1) <= p.max_delay);
        assert!(p.delay(1, 1) < p.base_delay);
    }
}
