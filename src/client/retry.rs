//! Retrying an exchange: exponential backoff with full jitter, a server's `Retry-After`
//! honoured, Ctrl-C obeyed between attempts. The one loop behind `sync` and `server forward`.
use super::failure::Failure;
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

/// What one attempt came to.
pub enum Attempt<T> {
    Done(T),
    Failed(Failure),
    /// Give up at once without a failure of the exchange (e.g. another process took over).
    Abandon,
}

/// How a retried exchange ended.
#[derive(Debug)]
pub enum Outcome<T> {
    Answered(T),
    /// The last failure: not worth retrying, or the attempts ran out.
    GaveUp(Failure),
    /// Stopped by the stop flag (Ctrl+C) or abandoned by the attempt.
    Stopped,
}

impl Retry {
    /// Runs `attempt` (given its number, from 1) until it is done, fails for good, or runs out
    /// of attempts; between attempts waits [`Retry::delay`] or the server's `Retry-After`,
    /// whichever is longer, after telling `on_retry` (attempt, wait, failure).
    pub fn run<T>(
        &self,
        stop: &AtomicBool,
        mut attempt: impl FnMut(u32) -> Attempt<T>,
        mut on_retry: impl FnMut(u32, Duration, &Failure),
    ) -> Outcome<T> {
        let mut n = 0u32;
        loop {
            n += 1;
            match attempt(n) {
                Attempt::Done(x) => return Outcome::Answered(x),
                Attempt::Abandon => return Outcome::Stopped,
                Attempt::Failed(f) if !f.retryable() || n >= self.max_attempts.max(1) => {
                    return Outcome::GaveUp(f);
                }
                Attempt::Failed(f) => {
                    let wait = self.delay(n).max(f.retry_after().unwrap_or_default());
                    on_retry(n, wait, &f);
                    if !sleep_unless(stop, wait) {
                        return Outcome::Stopped;
                    }
                }
            }
        }
    }
}

/// A failed attempt as progress reports it (sync and forwarding alike): the next follows after
/// `wait`.
#[derive(Debug, Clone, Copy)]
pub struct Retrying<'a> {
    pub attempt: u32,
    pub max: u32,
    pub wait: Duration,
    pub why: &'a Failure,
}

impl std::fmt::Display for Retrying<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Retrying {
            attempt,
            max,
            wait,
            why,
        } = self;
        let why = why.plain();
        f.write_str(&crate::tr!(
            "percobaan {attempt}/{max} gagal ({why}); coba lagi dalam {:.1} dtk — tidak ada yang hilang",
            "attempt {attempt}/{max} failed ({why}); retrying in {:.1} s — nothing is lost",
            wait.as_secs_f64()
        ))
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
    fn retries_until_done_gives_up_on_a_refusal_and_counts_attempts() {
        let r = Retry {
            max_attempts: 4,
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        let stop = AtomicBool::new(false);
        let mut waits = Vec::new();
        let out = r.run(
            &stop,
            |n| {
                if n < 3 {
                    Attempt::Failed(Failure::Transient("down".into()))
                } else {
                    Attempt::Done(n)
                }
            },
            |n, _, _| waits.push(n),
        );
        assert!(matches!(out, Outcome::Answered(3)));
        assert_eq!(waits, vec![1, 2]);
        let refused = r.run(
            &stop,
            |_| -> Attempt<()> { Attempt::Failed(Failure::Certificate("expired".into())) },
            |_, _, _| panic!("a refusal is not retried"),
        );
        assert!(matches!(refused, Outcome::GaveUp(Failure::Certificate(_))));
        let mut tries = 0;
        let spent = r.run(
            &stop,
            |_| -> Attempt<()> {
                tries += 1;
                Attempt::Failed(Failure::Busy("503".into()))
            },
            |_, _, _| {},
        );
        assert!(matches!(spent, Outcome::GaveUp(Failure::Busy(_))));
        assert_eq!(tries, 4);
        stop.store(true, Ordering::Relaxed);
        let stopped = r.run(
            &stop,
            |_| -> Attempt<()> { Attempt::Failed(Failure::Busy("503".into())) },
            |_, _, _| {},
        );
        assert!(matches!(stopped, Outcome::Stopped));
    }

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
