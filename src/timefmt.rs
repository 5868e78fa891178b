//! Time stamps: stored as RFC 3339 UTC with milliseconds; shown in the configured local offset
//! (WIB, +07:00, by default; WITA +08:00, WIT +09:00).
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// The variable that sets the clock of a debug build (tests of a wrong laptop clock): an
/// RFC 3339 time. Release builds read the system clock only.
pub const FAKE_NOW_ENV: &str = "IKD_FIELD_FAKE_NOW";

/// Now: the system clock (in debug builds, `IKD_FIELD_FAKE_NOW` when set).
pub fn now() -> OffsetDateTime {
    #[cfg(debug_assertions)]
    if let Some(t) = std::env::var(FAKE_NOW_ENV).ok().and_then(|v| parse(&v)) {
        return t;
    }
    OffsetDateTime::now_utc()
}

/// Now, as stored: `2026-11-23T05:12:09.123Z`.
pub fn now_utc() -> String {
    stamp(now())
}

pub fn stamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

pub fn parse(stamp: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(stamp, &Rfc3339).ok()
}

/// Parses `+07:00` / `+7` / `WIB` / `WITA` / `WIT`.
pub fn parse_offset(text: &str) -> Option<UtcOffset> {
    let t = text.trim().to_ascii_uppercase();
    let hours = match t.as_str() {
        "WIB" => return UtcOffset::from_hms(7, 0, 0).ok(),
        "WITA" => return UtcOffset::from_hms(8, 0, 0).ok(),
        "WIT" => return UtcOffset::from_hms(9, 0, 0).ok(),
        _ => t.as_str(),
    };
    let (sign, rest) = match hours.as_bytes().first()? {
        b'+' => (1, &hours[1..]),
        b'-' => (-1, &hours[1..]),
        _ => (1, hours),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

/// Zone name for the common Indonesian offsets.
pub fn zone_name(offset: UtcOffset) -> String {
    match offset.whole_hours() {
        7 => "WIB".into(),
        8 => "WITA".into(),
        9 => "WIT".into(),
        _ => format!("UTC{offset}"),
    }
}

/// `23-11-2026 12:12 WIB`, for people.
pub fn local_display(stamp: &str, offset: UtcOffset) -> String {
    match parse(stamp) {
        Some(t) => {
            let l = t.to_offset(offset);
            format!(
                "{:02}-{:02}-{:04} {:02}:{:02} {}",
                l.day(),
                u8::from(l.month()),
                l.year(),
                l.hour(),
                l.minute(),
                zone_name(offset)
            )
        }
        None => stamp.to_string(),
    }
}

/// Local calendar date (`YYYY-MM-DD`) of a stored stamp.
pub fn local_date(stamp: &str, offset: UtcOffset) -> Option<String> {
    parse(stamp).map(|t| iso_date(t.to_offset(offset).date()))
}

/// `2026-11-23`.
pub fn iso_date(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// `23-11-2026`, as dates are written in Indonesia (and on a KTP).
pub fn id_date(d: time::Date) -> String {
    format!("{:02}-{:02}-{:04}", d.day(), u8::from(d.month()), d.year())
}

pub fn today(offset: UtcOffset) -> time::Date {
    now().to_offset(offset).date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_offsets() {
        let s = now_utc();
        assert!(s.ends_with('Z') && s.len() == 24);
        assert!(parse(&s).is_some());
        let wib = parse_offset("WIB").unwrap();
        assert_eq!(parse_offset("+07:00"), Some(wib));
        assert_eq!(parse_offset("8").unwrap().whole_hours(), 8);
        assert_eq!(
            local_display("2026-11-23T17:30:00.000Z", wib),
            "24-11-2026 00:30 WIB"
        );
        assert_eq!(
            local_date("2026-11-23T17:30:00.000Z", wib).unwrap(),
            "2026-11-24"
        );
        assert!(parse_offset("x").is_none());
    }
}
