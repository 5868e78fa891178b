//! Is the laptop's clock believable? A record's time is the laptop's: a clock reset to 2019 (a
//! flat CMOS battery) or set years ahead puts records on the wrong days of the dashboard and
//! breaks retention. `record` refuses while the clock says a day before this build was made,
//! or a day before the last time the district server answered this laptop (the server's own
//! clock, from its signed answers); the message says how to fix it. Time ahead cannot be told
//! from here: the server flags it when the records arrive.
use super::store::Store;
use crate::error::AppError;
use crate::tr;
use time::{Date, Duration, OffsetDateTime};

/// `meta` key: the latest server time seen in a signed answer (RFC 3339).
pub const M_SERVER_TIME: &str = "sync.server_time";

/// How far behind a known-good time the clock may be before records are refused.
const SLACK: Duration = Duration::days(1);

/// The day this binary was built (build.rs).
pub fn build_date() -> Option<Date> {
    crate::timefmt::parse(&format!("{}T00:00:00Z", env!("IKD_BUILD_DATE"))).map(|t| t.date())
}

/// Refuses `now` when it is clearly behind the build date or the server's last answer.
pub fn check(store: &Store, now: OffsetDateTime) -> Result<(), AppError> {
    let server = store
        .meta(M_SERVER_TIME)?
        .and_then(|t| crate::timefmt::parse(&t));
    let behind_server = server.is_some_and(|s| now < s - SLACK);
    let behind_build = build_date().is_some_and(|b| now.date() < b - SLACK);
    if !(behind_server || behind_build) {
        return Ok(());
    }
    let shown = format!(
        "{:02}-{:02}-{:04}",
        now.day(),
        u8::from(now.month()),
        now.year()
    );
    Err(AppError::other(tr!(
        "Jam laptop salah: tanggalnya {shown}, padahal server Dinas atau program ini sudah melihat tanggal yang lebih baru. Catatan TIDAK disimpan.",
        "The laptop's clock is wrong: it says {shown}, but the district server or this program has seen a later date. The record was NOT saved."
    ))
    .hint(tr!(
        "Atur tanggal dan jam laptop (Windows: Pengaturan → Waktu & bahasa → nyalakan Atur waktu otomatis, atau atur manual), lalu ulangi.",
        "Set the laptop's date and time (Windows: Settings → Time & language → turn on Set time automatically, or set it by hand), then try again."
    )))
}

/// Remembers the server's time of a signed answer (the latest one seen).
pub fn note_server_time(tx: &rusqlite::Transaction<'_>, at: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value WHERE excluded.value > meta.value",
        [M_SERVER_TIME, at],
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_build_date_is_a_date() {
        let d = super::build_date().expect("IKD_BUILD_DATE parses");
        assert!(d.year() >= 2026, "{d}");
    }
}
