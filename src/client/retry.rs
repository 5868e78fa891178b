//! Retrying an exchange: exponential backoff with full jitter, a server's `Retry-After`
//! honoured, Ctrl-C obeyed between attempts. The one loop behind `sync` and `server forward`.
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Debug, Clone)]
pub struct Retry {
    pub max_attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Retry {
    /// The wait before attempt `attempt + 1` (attempt counts from 1): exponential, capped, with
    /// full jitter in its upper half so many laptops do not retry in step.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.max);
        let half = cap / 2;
        let jitter = getrandom::u32().unwrap_or(0) as f64 / u32::MAX as f64;
        half + half.mul_f64(jitter)
    }
}

/// Sleeps `d`, waking early (false) when `stop` is set.
pub fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let until = std::time::Instant::now() + d;
    while std::time::Instant::now() < until {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep((until - std::time::Instant::now()).min(Duration::from_millis(50)));
    }
    !stop.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let r = Retry {
            max_attempts: 6,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for attempt in 1..10 {
            let d = r.delay(attempt);
            let full = Duration::from_millis(100 * (1 << (attempt - 1))).min(r.max);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
    }
}
