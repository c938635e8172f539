//! Per-token rate limits on writes: a token bucket for each caller ([`super::auth::Caller`]),
//! refilled at `rate` per second up to `burst`. A write over the limit is answered
//! `429 rate_limited` with `Retry-After` (whole seconds until a token is back).
//!
//! Written here rather than taken from `tower_governor`/`governor`: the key is known only after
//! the handler has authenticated the token (a database read), which a tower layer in front of
//! the handler cannot see, and the whole limiter is a map of two numbers per key.

use super::error::ApiError;
use axum::http::StatusCode;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before full (idle) ones are dropped.
const MAX_KEYS: usize = 100_000;

/// Token buckets by key.
#[derive(Debug)]
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Eq + Hash + Copy> RateLimiter<K> {
    /// `rate` requests per second per key, `burst` at once; a rate of 0 limits nothing.
    pub fn new(rate: f64, burst: f64) -> Self {
        RateLimiter {
            rate,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token of `key`'s bucket, or says how long until one is back.
    pub fn take(&self, key: K) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(&key) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(key).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

/// A write `.0` too early: `429 rate_limited` with `Retry-After`.
pub struct RateLimited(pub Duration);

impl From<RateLimited> for ApiError {
    fn from(limited: RateLimited) -> Self {
        let seconds = limited.0.as_secs_f64().ceil().max(1.0) as u64;
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many writes with this token; retry in {seconds} s"),
        )
        .with_retry_after(seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_and_refills_per_key() {
        let limiter = RateLimiter::new(10.0, 3.0);
        for _ in 0..3 {
            assert!(limiter.take(1).is_ok());
        }
        let wait = limiter.take(1).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        // Another key has its own bucket.
        assert!(limiter.take(2).is_ok());
        std::thread::sleep(Duration::from_millis(120));
        assert!(limiter.take(1).is_ok());
        // Rate 0: no limit.
        let off = RateLimiter::new(0.0, 0.0);
        assert!((0..1000).all(|_| off.take(1).is_ok()));
    }
}
