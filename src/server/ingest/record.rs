//! A record as ingest holds it: opened, hashed and validated off the write lock (on the opening
//! threads), with the problem that rejects it, if any.
use crate::domain::{Kind, Record, email, nik, phone, validate};
use crate::protocol::{self};

pub(super) const MAX_TEXT: usize = 100;

pub(super) const MAX_REASON: usize = 500;

/// A record as parsed and opened: typed when the whole batch parsed at once (the usual case),
/// else a JSON value, so that one malformed record is rejected alone; `Unopened` when its seal
/// does not open with this server's key (it is rejected alone too).
#[allow(clippy::large_enum_variant)] // Typed is the common case; boxing it costs an allocation.
pub(super) enum Item {
    Typed(Opened),
    Raw(serde_json::Value),
    Unopened { id: String },
}

/// A record opened, hashed and validated, off the write lock (on the opening threads).
pub(super) struct Opened {
    pub(super) record: Meta,
    /// [`protocol::content_hash`] of the record.
    pub(super) hash: String,
    /// Its fields as stored, or the first problem that rejects it.
    pub(super) clean: Result<Clean, (&'static str, String)>,
}

/// An opened [`Record`] less its village, NIK, name, phone and e-mail, which are kept only as
/// validated ([`Clean`]): what the checks, the answer and the stored row need.
pub(super) struct Meta {
    pub(super) id: String,
    pub(super) seq: i64,
    pub(super) device_id: String,
    pub(super) officer: String,
    pub(super) team: String,
    pub(super) recorded_at: String,
    pub(super) kind: Kind,
    pub(super) voids: Option<String>,
    pub(super) reason: Option<String>,
    /// The warnings as stored (JSON); `None` for none (`[]`).
    pub(super) warnings: Option<String>,
}

/// A record's capture time far from the server's clock: `clock_ahead` when it is more than a
/// day in the future (a laptop clock set ahead: the record would count on a day that has not
/// come), `clock_behind` when it is more than 90 days before arrival (a clock reset to an old
/// date, or a very late USB file). Stored among the record's warnings for the admin to see;
/// the record is kept either way.
pub(super) fn clock_flag(recorded_at: &str, now: time::OffsetDateTime) -> Option<&'static str> {
    let t = crate::timefmt::parse(recorded_at)?;
    if t > now + time::Duration::days(1) {
        Some("clock_ahead")
    } else if t < now - time::Duration::days(90) {
        Some("clock_behind")
    } else {
        None
    }
}

impl Opened {
    pub(super) fn new(record: Record, today: time::Date) -> Opened {
        let hash = protocol::content_hash(&record);
        let clean = check(&record, today);
        let mut flags = record.warnings.clone();
        flags.extend(clock_flag(&record.recorded_at, crate::timefmt::now()).map(str::to_string));
        let warnings = (!flags.is_empty())
            .then(|| serde_json::to_string(&flags).unwrap_or_else(|_| "[]".into()));
        Opened {
            hash,
            clean,
            record: Meta {
                id: record.id,
                seq: record.seq,
                device_id: record.device_id,
                officer: record.officer,
                team: record.team,
                recorded_at: record.recorded_at,
                kind: record.kind,
                voids: record.voids,
                reason: record.reason,
                warnings,
            },
        }
    }
}

/// A record's fields after validation, as stored.
pub(super) struct Clean {
    pub(super) village: String,
    pub(super) nik: String,
    pub(super) name: String,
    pub(super) phone: String,
    pub(super) email: Option<String>,
}

/// The field kit's own validation, run again: the server never trusts input. Warnings (under
/// 17, a retired region code) are kept; errors reject the record with the first problem's code.
pub(super) fn check(r: &Record, today: time::Date) -> Result<Clean, (&'static str, String)> {
    let p = |e: crate::domain::Problem| (e.code, e.message);
    if crate::timefmt::parse(&r.recorded_at).is_none() {
        return Err(("bad_time", "recorded_at is not an RFC 3339 time".into()));
    }
    if [&r.officer, &r.team]
        .iter()
        .any(|s| s.chars().count() > MAX_TEXT)
        || r.reason
            .as_deref()
            .is_some_and(|s| s.chars().count() > MAX_REASON)
        || r.warnings.len() > 20
        || r.warnings.iter().any(|w| w.len() > 64)
    {
        return Err(("field_too_long", "a field is longer than allowed".into()));
    }
    // SQLite would store a NUL character; PostgreSQL refuses it, failing the whole batch.
    if [&r.device_id, &r.officer, &r.team]
        .into_iter()
        .chain(r.reason.as_ref())
        .chain(r.voids.as_ref())
        .chain(r.warnings.iter())
        .any(|s| s.contains('\0'))
    {
        return Err(("bad_text", "a field contains a NUL character".into()));
    }
    let nik = nik::parse(&r.nik, today).map_err(p)?;
    let name = validate::name(&r.name).map_err(p)?;
    let phone = phone::normalize(&r.phone).map_err(p)?;
    let email = email::normalize(r.email.as_deref().unwrap_or("")).map_err(p)?;
    let village = validate::village(&r.village).map_err(p)?;
    match (r.kind, &r.voids) {
        (Kind::Activation, Some(_)) => {
            return Err((
                "bad_kind",
                "an activation cannot void another record".into(),
            ));
        }
        (Kind::Void, None) => {
            return Err((
                "void_target_missing",
                "a void must name the record it cancels".into(),
            ));
        }
        _ => {}
    }
    Ok(Clean {
        village,
        nik: nik.nik,
        name,
        phone,
        email,
    })
}
