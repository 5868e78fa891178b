//! In-memory token buckets for `serve`: one per device (batch and activated-list requests) and
//! one per client address (enrolment, admin API). A bucket holds up to `burst` requests and
//! refills at `per_minute`; an empty bucket answers how long until the next request may come
//! (`429` with `Retry-After`). Nothing is stored: a restart starts every bucket full.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys kept at once. Past this, buckets that have refilled are dropped (they are the
/// same as a new one); if all are still draining (a flood of made-up device ids), all are.
const MAX_KEYS: usize = 10_000;
/// Longest key kept (a device id is 16 hex characters, an address at most 39).
const MAX_KEY_LEN: usize = 64;

/// The rate limits of `[server]`.
pub struct Rates {
    /// Batch and activated-list requests, by `X-Ikd-Device`.
    pub device: RateLimiter,
    /// Enrolment and admin-API requests, by client address.
    pub address: RateLimiter,
}

impl Rates {
    pub fn from_config(c: &crate::config::ServerConfig) -> Rates {
        Rates {
            device: RateLimiter::new(c.device_requests_per_minute, c.device_burst),
            address: RateLimiter::new(c.address_requests_per_minute, c.address_burst),
        }
    }
}

pub struct RateLimiter {
    /// Refill per second; 0 = no limit.
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `per_minute` = 0 turns the limit off.
    pub fn new(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            rate: f64::from(per_minute) / 60.0,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request for `key`: `Err(wait)` when its bucket is empty, `wait` being how
    /// long until it holds one again (at least a second).
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        self.take_at(key, Instant::now(), true)
    }

    /// Like [`RateLimiter::take`] but takes nothing: is there a request left for `key`? (For
    /// limits that count only failures, e.g. wrong admin tokens.)
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.take_at(key, Instant::now(), false)
    }

    fn refilled(&self, b: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        (b.tokens + elapsed * self.rate).min(self.burst)
    }

    fn take_at(&self, key: &str, now: Instant, consume: bool) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let key = match key.char_indices().nth(MAX_KEY_LEN) {
            Some((i, _)) => &key[..i],
            None => key,
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= MAX_KEYS {
            buckets.retain(|_, b| self.refilled(*b, now) < self.burst);
            if buckets.len() >= MAX_KEYS {
                buckets.clear();
            }
        }
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = self.refilled(*b, now);
        if tokens >= 1.0 {
            *b = Bucket {
                tokens: if consume { tokens - 1.0 } else { tokens },
                at: now,
            };
            return Ok(());
        }
        *b = Bucket { tokens, at: now };
        let secs = ((1.0 - tokens) / self.rate).ceil().max(1.0);
        Err(Duration::from_secs(secs as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let l = RateLimiter::new(60, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.take_at("dev", t0, true).is_ok());
        }
        assert_eq!(l.take_at("dev", t0, true), Err(Duration::from_secs(1)));
        // Another key has its own bucket.
        assert!(l.take_at("other", t0, true).is_ok());
        // One a second comes back.
        assert!(
            l.take_at("dev", t0 + Duration::from_millis(1000), true)
                .is_ok()
        );
        assert!(
            l.take_at("dev", t0 + Duration::from_millis(1100), true)
                .is_err()
        );
        // Never more than the burst, however long it waited.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(l.take_at("dev", later, true).is_ok());
        }
        assert!(l.take_at("dev", later, true).is_err());
    }

    #[test]
    fn the_wait_says_when_the_next_one_fits() {
        let l = RateLimiter::new(6, 1); // one per 10 s
        let t0 = Instant::now();
        assert!(l.take_at("a", t0, true).is_ok());
        assert_eq!(l.take_at("a", t0, true), Err(Duration::from_secs(10)));
        assert_eq!(
            l.take_at("a", t0 + Duration::from_secs(4), true),
            Err(Duration::from_secs(6))
        );
        assert!(l.take_at("a", t0 + Duration::from_secs(10), true).is_ok());
    }

    #[test]
    fn check_takes_nothing() {
        let l = RateLimiter::new(60, 1);
        let t0 = Instant::now();
        assert!(l.take_at("a", t0, false).is_ok());
        assert!(l.take_at("a", t0, false).is_ok());
        assert!(l.take_at("a", t0, true).is_ok());
        assert!(l.take_at("a", t0, false).is_err());
    }

    #[test]
    fn zero_is_no_limit_and_keys_stay_bounded() {
        let off = RateLimiter::new(0, 1);
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert!(off.take_at("x", t0, true).is_ok());
        }
        let l = RateLimiter::new(60, 1);
        for i in 0..(MAX_KEYS + 10) {
            let _ = l.take_at(&format!("made-up-{i}"), t0, true);
        }
        assert!(l.buckets.lock().unwrap().len() <= MAX_KEYS);
        let long = "x".repeat(10_000);
        assert!(l.take_at(&long, t0, true).is_ok());
        assert!(l.take_at(&long, t0, true).is_err());
    }
}
