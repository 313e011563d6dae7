//! A byte-rate token bucket shared by all worker threads of a transfer.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cancel::CancelToken;
use crate::error::Result;

/// Limits throughput to `bytes_per_sec`, allowing bursts of one tenth of a second.
#[derive(Debug)]
pub struct RateLimiter {
    bytes_per_sec: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// A limiter admitting `bytes_per_sec` on average.
    pub fn new(bytes_per_sec: u64) -> Self {
        let rate = bytes_per_sec.max(1) as f64;
        let burst = rate / 10.0;
        Self {
            bytes_per_sec: rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes `n` bytes' worth of tokens, sleeping while the bucket is in debt.
    /// Large requests go into debt at once so they are never starved.
    pub fn acquire(&self, n: u64, cancel: &CancelToken) -> Result<()> {
        let wait = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let refill = now.duration_since(st.1).as_secs_f64() * self.bytes_per_sec;
            st.0 = (st.0 + refill).min(self.burst) - n as f64;
            st.1 = now;
            if st.0 < 0.0 {
                Duration::from_secs_f64(-st.0 / self.bytes_per_sec)
            } else {
                Duration::ZERO
            }
        };
        cancel.sleep(wait)
    }
}
