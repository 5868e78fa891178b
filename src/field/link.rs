//! Batches sized to the link. One batch is in flight at a time, so every request costs a round
//! trip on top of its bytes: time ≈ c + bytes ÷ bandwidth, where c is the fixed cost of an
//! exchange (the round trip, the server's per-batch work). The sizer measures each exchange,
//! fits that line through the last few, and sizes the next cut so that a request carries
//! [`BDP_PER_REQUEST`] times c × bandwidth (the round trip then costs about 1/17 of the
//! request), within the server's limits (from its answers), the client's own cap
//! (`sync.max_batch_size`) and [`MAX_EXCHANGE_SECS`] of link time (a very slow link keeps its
//! batches small enough to finish, and a drop mid-upload wastes at most that). It grows at most
//! [`GROWTH`] times per batch and halves after a failed attempt. Pure arithmetic: the sync run
//! (`sync_run.rs`) feeds it and cuts what it says.
use std::collections::VecDeque;

/// Bandwidth × fixed-cost products one request should carry.
pub const BDP_PER_REQUEST: f64 = 16.0;
/// Most link time one exchange is planned to take, seconds.
pub const MAX_EXCHANGE_SECS: f64 = 20.0;
/// Most a batch grows over the one before.
pub const GROWTH: usize = 4;
/// Bytes of HTTP headers an exchange adds to its bodies (request and answer), about.
pub const HEADER_BYTES: u64 = 600;
/// Exchanges the fit looks back on.
const SAMPLES: usize = 8;

/// One answered exchange: its bodies and how long it took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Records the batch carried (0 for an answer asked for by batch id).
    pub records: usize,
    /// Request body bytes (0 for an answer asked for by batch id).
    pub up: u64,
    /// Answer body bytes.
    pub down: u64,
    pub secs: f64,
}

impl Sample {
    fn bytes(&self) -> f64 {
        (self.up + self.down + HEADER_BYTES) as f64
    }
}

/// What the server said it accepts (`BatchResponse::limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub records: usize,
    pub body_bytes: u64,
    pub json_bytes: u64,
}

/// What a run learnt of the link to a server and of the server's limits, kept for the next run
/// to that server so its first batch is sized too (field database meta `sync.link`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Learnt {
    /// The server's address the run used (another route is another link).
    pub server: String,
    pub fixed_secs: f64,
    pub bytes_per_sec: f64,
    /// Wire bytes per record (both bodies and headers), gzip body and JSON bytes per record.
    pub wire_per_record: f64,
    pub body_per_record: f64,
    pub json_per_record: f64,
    pub max_batch_records: usize,
    pub max_body_bytes: u64,
    pub max_json_bytes: u64,
}

/// The fitted line: fixed cost per exchange (s) and bandwidth (bytes/s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub fixed_secs: f64,
    pub bytes_per_sec: f64,
}

#[derive(Debug, Clone)]
pub struct Sizer {
    start: usize,
    max: usize,
    fixed: bool,
    server: Option<ServerLimits>,
    samples: VecDeque<Sample>,
    /// The largest batch cut so far.
    last: usize,
    /// After failures: no batch above this until exchanges succeed again.
    ceiling: usize,
    /// JSON bytes per record in the batches cut so far (for the server's JSON limit).
    json_per_record: f64,
    /// Body bytes per record of the last batch cut.
    body_per_record: f64,
    /// What an earlier run learnt of this link, until this run has measured its own.
    prior: Option<Learnt>,
    /// Records still to cut, about (pending at the start less those cut since).
    left: Option<usize>,
}

impl Sizer {
    /// Starting at `start` records, growing up to `max` (never past `start` until a server
    /// states its limits). `fixed`: every batch is `start` (`sync --batch-size`).
    pub fn new(start: usize, max: usize, fixed: bool) -> Sizer {
        let start = start.max(1);
        let max = if fixed { start } else { max.max(start) };
        Sizer {
            start,
            max,
            fixed,
            server: None,
            samples: VecDeque::new(),
            last: 0,
            ceiling: max,
            json_per_record: 0.0,
            body_per_record: 0.0,
            prior: None,
            left: None,
        }
    }

    /// True until the first exchange is measured: the second batch is then cut after the
    /// first answer (later cuts overlap the exchange before them).
    pub fn learning(&self) -> bool {
        !self.fixed && self.samples.is_empty() && self.prior.is_none()
    }

    /// Starts from what an earlier run learnt of the same link: its first batch is sized by it.
    pub fn recall(&mut self, l: Learnt) {
        self.server = Some(ServerLimits {
            records: l.max_batch_records,
            body_bytes: l.max_body_bytes,
            json_bytes: l.max_json_bytes,
        });
        self.body_per_record = l.body_per_record;
        self.json_per_record = l.json_per_record;
        self.prior = Some(l);
    }

    /// What this run learnt, for the next run to `server`: once the exchanges told the round
    /// trip and the bandwidth apart and the server stated its limits (else what it recalled).
    pub fn learnt(&self, server: &str) -> Option<Learnt> {
        let (Some(f), Some(per), Some(l)) = (self.fit(), self.bytes_per_record(), self.server)
        else {
            return self.prior.clone();
        };
        Some(Learnt {
            server: server.to_string(),
            fixed_secs: f.fixed_secs,
            bytes_per_sec: f.bytes_per_sec,
            wire_per_record: per,
            body_per_record: self.body_per_record,
            json_per_record: self.json_per_record,
            max_batch_records: l.records,
            max_body_bytes: l.body_bytes,
            max_json_bytes: l.json_bytes,
        })
    }

    pub fn server_limits(&mut self, l: ServerLimits) {
        self.server = Some(l);
    }

    /// About `records` records wait to be cut (the run's pending count at its start).
    pub fn pending(&mut self, records: usize) {
        self.left = Some(records);
    }

    /// A batch of `records` records cut: `body` bytes of gzip, `json` bytes of JSON.
    pub fn cut(&mut self, records: usize, body: u64, json: u64) {
        self.left = self.left.map(|l| l.saturating_sub(records));
        if records > 0 {
            self.body_per_record = body as f64 / records as f64;
            // The largest so far (a short last batch is the backlog's end, not a choice).
            self.last = self.last.max(records);
            let per = json as f64 / records as f64;
            self.json_per_record = self.json_per_record.max(per);
        }
    }

    /// An answered exchange.
    pub fn answered(&mut self, s: Sample) {
        if self.samples.len() == SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(s);
        self.ceiling = (self.ceiling.saturating_mul(2)).min(self.max);
    }

    /// A failed attempt of a batch of `records` records: the next cuts stay at half of it
    /// until exchanges succeed again.
    pub fn failed(&mut self, records: usize) {
        if !self.fixed {
            self.ceiling = (records / 2).max(1).min(self.ceiling);
        }
    }

    /// The fixed cost and bandwidth of the link, when the last exchanges differ enough in size
    /// to tell them apart (least squares of time on bytes).
    pub fn fit(&self) -> Option<Fit> {
        let n = self.samples.len() as f64;
        if n < 2.0 {
            return None;
        }
        let xs = self.samples.iter().map(Sample::bytes);
        let (lo, hi) = xs.fold((f64::MAX, 0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
        if hi < lo * 1.3 {
            return None;
        }
        let mx = self.samples.iter().map(Sample::bytes).sum::<f64>() / n;
        let my = self.samples.iter().map(|s| s.secs).sum::<f64>() / n;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for s in &self.samples {
            let dx = s.bytes() - mx;
            sxy += dx * (s.secs - my);
            sxx += dx * dx;
        }
        let slope = sxy / sxx;
        if !slope.is_finite() || slope <= 0.0 {
            return None;
        }
        Some(Fit {
            fixed_secs: (my - slope * mx).max(0.0),
            bytes_per_sec: 1.0 / slope,
        })
    }

    /// Seconds `bytes` take on the link, as measured so far (0 before any measurement): the
    /// fitted bandwidth, else the last exchange's bytes per second (round trip included, so
    /// never less than the link's own time).
    pub fn upload_secs(&self, bytes: u64) -> f64 {
        let per_sec = match (self.fit(), self.samples.back(), &self.prior) {
            (Some(f), _, _) => f.bytes_per_sec,
            (None, Some(s), _) => s.bytes() / s.secs.max(1e-3),
            (None, None, Some(p)) => p.bytes_per_sec,
            (None, None, None) => return 0.0,
        };
        bytes as f64 / per_sec
    }

    /// Wire bytes per record (both bodies and headers) of the last batch sent; before one was
    /// answered (its answer asked for by id), the last cut's body bytes.
    fn bytes_per_record(&self) -> Option<f64> {
        self.samples.back()?;
        let sent = self.samples.iter().rev().find(|s| s.records > 0);
        let per = sent.map_or(self.body_per_record, |s| s.bytes() / s.records as f64);
        (per > 0.0).then_some(per)
    }

    /// Records for the next batch to cut.
    pub fn next(&self) -> usize {
        if self.fixed {
            return self.start;
        }
        let (fit, per, last) = match (self.bytes_per_record(), &self.prior) {
            (Some(per), _) => (self.fit(), per, self.last.max(self.start)),
            // Nothing measured yet in this run: an earlier run's line, with no growth bound.
            (None, Some(p)) => {
                let f = Fit {
                    fixed_secs: p.fixed_secs,
                    bytes_per_sec: p.bytes_per_sec,
                };
                (Some(f), p.wire_per_record, self.max)
            }
            (None, None) => return self.start.min(self.ceiling),
        };
        let mut hi = self.max.min(self.ceiling).min(last.saturating_mul(GROWTH));
        // The server's limits, with a margin for the bodies' spread; none stated: the start.
        hi = hi.min(match self.server {
            Some(l) => {
                let body = self.body_per_record.max(1.0);
                let json = self.json_per_record.max(1.0);
                let by_body = (l.body_bytes as f64 * 0.75 / body) as usize;
                let by_json = (l.json_bytes as f64 * 0.75 / json) as usize;
                l.records.min(by_body).min(by_json)
            }
            None => self.start,
        });
        let want = match fit {
            Some(f) => {
                // Link time: at most MAX_EXCHANGE_SECS for the whole exchange.
                let room = (MAX_EXCHANGE_SECS - f.fixed_secs).max(0.0) * f.bytes_per_sec / per;
                hi = hi.min(room as usize);
                (BDP_PER_REQUEST * f.fixed_secs * f.bytes_per_sec / per) as usize
            }
            None => {
                // Not known apart yet: the last exchange's time, scaled with its size, is an
                // upper bound of the next one's.
                let s = self.samples.back().expect("a sample");
                let per_sec = s.bytes() / s.secs.max(1e-3);
                hi = hi.min((MAX_EXCHANGE_SECS * per_sec / per) as usize);
                hi
            }
        };
        let lo = self.start.min(self.ceiling);
        let n = want.max(lo).min(hi).max(1);
        // A tail of at most half a batch goes with it (within the bounds): it would cost a
        // round trip of its own.
        match self.left {
            Some(left) if left > n && (left - n) * 2 <= n && left <= hi => left,
            _ => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ServerLimits = ServerLimits {
        records: 5000,
        body_bytes: 8 << 20,
        json_bytes: 64 << 20,
    };

    /// An exchange of `records` over a link of `rtt` seconds and `bw` bytes/s, 100 B up and 10 B
    /// down per record.
    fn over(records: usize, rtt: f64, bw: f64) -> Sample {
        let (up, down) = (records as u64 * 100, records as u64 * 10);
        let secs = rtt + (up + down + HEADER_BYTES) as f64 / bw;
        Sample {
            records,
            up,
            down,
            secs,
        }
    }

    /// Cuts and answers batches over the link until `total` records are sent; the sizes.
    fn run(s: &mut Sizer, total: usize, rtt: f64, bw: f64) -> Vec<usize> {
        let mut left = total;
        let mut sizes = Vec::new();
        while left > 0 {
            let n = s.next().min(left);
            s.cut(n, n as u64 * 100, n as u64 * 400);
            s.answered(over(n, rtt, bw));
            s.server_limits(LIMITS);
            sizes.push(n);
            left -= n;
        }
        sizes
    }

    #[test]
    fn a_slow_link_grows_the_batches_to_the_cap() {
        let mut s = Sizer::new(500, 2000, false);
        let sizes = run(&mut s, 10_000, 0.4, 32.0 * 1024.0);
        assert_eq!(sizes[..2], [500, 2000], "{sizes:?}");
        // Then 16 × 0.4 s × 32 KB/s ÷ 110 B a record: about 1,900.
        let steady = &sizes[2..sizes.len() - 1];
        assert!(
            steady.iter().all(|&n| (1850..=1950).contains(&n)),
            "{sizes:?}"
        );
        let f = s.fit().unwrap();
        assert!((f.fixed_secs - 0.4).abs() < 0.01, "{f:?}");
        assert!((f.bytes_per_sec - 32768.0).abs() < 100.0, "{f:?}");
    }

    #[test]
    fn a_fast_short_link_stays_near_the_start() {
        let mut s = Sizer::new(500, 5000, false);
        // 1 ms round trip, 10 MB/s: c × bandwidth is 10 KB, 16 of them about 1,450 records.
        let sizes = run(&mut s, 30_000, 0.001, 10e6);
        let last = *sizes.last().unwrap();
        assert!((1200..=1600).contains(&sizes[sizes.len() - 2]), "{sizes:?}");
        assert!(last <= 1600, "{sizes:?}");
        // A link with no round-trip cost at all keeps the starting size.
        let mut s = Sizer::new(500, 5000, false);
        let sizes = run(&mut s, 5_000, 0.0, 10e6);
        assert!(sizes[2..].iter().all(|&n| n == 500), "{sizes:?}");
    }

    #[test]
    fn a_very_slow_link_keeps_batches_that_finish() {
        // 2 KB/s: 20 s of link time is about 370 records of 110 B.
        let mut s = Sizer::new(500, 5000, false);
        let sizes = run(&mut s, 5_000, 0.4, 2048.0);
        assert!(sizes[1..].iter().all(|&n| n <= 500), "{sizes:?}");
        let steady = &sizes[2..sizes.len() - 1];
        assert!(
            steady.iter().all(|&n| (300..=380).contains(&n)),
            "{sizes:?}"
        );
    }

    #[test]
    fn never_past_the_servers_limits_nor_past_the_start_without_them() {
        let mut s = Sizer::new(500, 5000, false);
        s.cut(500, 50_000, 200_000);
        s.answered(over(500, 0.4, 32768.0));
        assert_eq!(s.next(), 500, "no limits stated: stays at the start");
        s.server_limits(ServerLimits {
            records: 800,
            ..LIMITS
        });
        assert_eq!(s.next(), 800);
        // A body limit of 100 KB at 100 B a record: 75 % of it.
        s.server_limits(ServerLimits {
            body_bytes: 100_000,
            ..LIMITS
        });
        assert_eq!(s.next(), 750);
        s.server_limits(ServerLimits {
            json_bytes: 200_000,
            ..LIMITS
        });
        assert_eq!(s.next(), 375);
    }

    #[test]
    fn a_failure_halves_and_success_grows_back() {
        let mut s = Sizer::new(500, 2000, false);
        assert_eq!(run(&mut s, 2_500, 0.4, 32768.0), [500, 2000]);
        assert!((1850..=1950).contains(&s.next()));
        s.failed(2000);
        assert_eq!(s.next(), 1000);
        s.failed(1000);
        assert_eq!(s.next(), 500);
        s.cut(500, 50_000, 200_000);
        s.answered(over(500, 0.4, 32768.0));
        assert_eq!(s.next(), 1000);
        // Below the start too, when the start itself fails.
        s.failed(500);
        s.failed(250);
        assert_eq!(s.next(), 125);
    }

    #[test]
    fn fixed_is_fixed_and_the_first_cut_waits_for_a_measurement() {
        let mut s = Sizer::new(500, 5000, true);
        assert!(!s.learning());
        let sizes = run(&mut s, 3_000, 0.4, 32768.0);
        assert!(sizes.iter().all(|&n| n == 500));
        s.failed(500);
        assert_eq!(s.next(), 500);
        let s = Sizer::new(500, 5000, false);
        assert!(s.learning());
        assert_eq!(s.next(), 500);
    }

    #[test]
    fn an_answer_fetched_by_id_still_lets_the_next_batch_grow() {
        let mut s = Sizer::new(40, 2000, false);
        s.cut(40, 4000, 16000);
        s.answered(Sample {
            records: 0,
            up: 0,
            down: 500,
            secs: 0.01,
        });
        s.server_limits(LIMITS);
        assert_eq!(s.next(), 160);
    }

    #[test]
    fn the_upload_time_follows_the_measurements() {
        let mut s = Sizer::new(500, 2000, false);
        assert_eq!(s.upload_secs(100_000), 0.0);
        let first = over(500, 0.4, 32768.0);
        s.answered(first);
        // One exchange: its rate with the round trip in it, slower than the link.
        let t = s.upload_secs(327_680);
        assert!(t > 10.0 && (t - 327_680.0 * first.secs / first.bytes()).abs() < 1e-9);
        s.answered(over(2000, 0.4, 32768.0));
        assert!((s.upload_secs(327_680) - 10.0).abs() < 0.01);
    }

    #[test]
    fn the_next_run_starts_from_what_this_one_learnt() {
        let mut s = Sizer::new(500, 2000, false);
        assert_eq!(s.learnt("http://a"), None);
        run(&mut s, 2_500, 0.4, 32768.0);
        let l = s.learnt("http://a").unwrap();
        assert!(
            (l.fixed_secs - 0.4).abs() < 0.01 && l.max_batch_records == 5000,
            "{l:?}"
        );
        let mut next = Sizer::new(500, 2000, false);
        next.recall(l.clone());
        assert!(!next.learning());
        assert!((1850..=1950).contains(&next.next()), "{}", next.next());
        assert!((next.upload_secs(32768) - 1.0).abs() < 0.01);
        // Nothing measured in that run: it passes on what it recalled.
        assert_eq!(next.learnt("http://a"), Some(l.clone()));
        // Fixed sizes stay fixed.
        let mut fixed = Sizer::new(500, 500, true);
        fixed.recall(l);
        assert_eq!(fixed.next(), 500);
    }

    #[test]
    fn a_short_tail_goes_with_the_batch_before_it() {
        let mut s = Sizer::new(500, 2000, false);
        run(&mut s, 2_500, 0.4, 32768.0);
        let n = s.next();
        assert!((1850..=1950).contains(&n), "{n}");
        s.pending(1_990);
        assert_eq!(s.next(), 1_990, "a tail of about 90 goes with it");
        s.pending(2_500);
        assert_eq!(s.next(), n, "past the bounds it does not");
        s.pending(900);
        assert_eq!(s.next(), n, "all of it fits anyway");
        s.cut(900, 90_000, 360_000);
        let mut s = Sizer::new(500, 2000, false);
        s.pending(700);
        assert_eq!(
            s.next(),
            500,
            "before any measurement: the start, whatever is left"
        );
    }

    #[test]
    fn same_sized_exchanges_do_not_make_a_fit() {
        let mut s = Sizer::new(500, 5000, false);
        for _ in 0..3 {
            s.answered(over(500, 0.4, 32768.0));
        }
        assert_eq!(s.fit(), None);
        // An answer asked for by id (small) next to them tells the round trip apart.
        s.answered(Sample {
            records: 0,
            up: 0,
            down: 5000,
            secs: 0.4 + (5000 + HEADER_BYTES) as f64 / 32768.0,
        });
        assert!((s.fit().unwrap().fixed_secs - 0.4).abs() < 0.01);
    }
}
