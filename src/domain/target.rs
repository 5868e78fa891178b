//! Targets: a share of wajib KTP or a count, in integers (basis points; ceil for the count; half
//! up to hundredths of a percent for what is shown). Used by config checks, the targets import
//! and the coverage figures alike.
use serde::Serialize;

/// A target as given: a share of wajib KTP in basis points (30 % = 3000), or a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Percent(u32),
    Count(u64),
}

impl Target {
    /// The number of activations this target asks for out of `wajib_ktp`.
    pub fn count(self, wajib_ktp: u64) -> u64 {
        match self {
            // ceil(w × bp / 10000), exact in integers.
            Target::Percent(bp) => ((wajib_ktp as u128 * bp as u128).div_ceil(10_000)) as u64,
            Target::Count(c) => c,
        }
    }
}

/// Basis points from a percentage such as 30.0 or 25.5 (config's `default_target_percent`).
pub fn percent_to_bp(percent: f64) -> Option<u32> {
    if !percent.is_finite() || percent <= 0.0 || percent > 100.0 {
        return None;
    }
    let bp = (percent * 100.0).round();
    (bp >= 1.0).then_some(bp as u32)
}

/// `part` as a percentage of `whole`, in hundredths of a percent, rounded half up; `None` when
/// `whole` is 0.
pub fn percent_hundredths(part: u64, whole: u64) -> Option<u64> {
    if whole == 0 {
        return None;
    }
    let (p, w) = (part as u128, whole as u128);
    Some(((p * 20_000 + w) / (2 * w)) as u64)
}

/// Hundredths of a percent as a number for JSON: 1713 → 17.13.
pub fn hundredths_to_f64(h: u64) -> f64 {
    h as f64 / 100.0
}
