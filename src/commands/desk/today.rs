//! The day's list: today's records (local date) with a count of citizens activated that voids
//! do not inflate, and voiding a record with its reason.
use super::Desk;
use super::json::{desa_of, ok};
use super::serve::Resp;
use crate::domain::Kind;
use crate::error::AppError;
use crate::field::records::Filter;
use crate::{timefmt, tr};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Default)]
pub struct Counts {
    /// Citizens activated today (live activations).
    pub activated: usize,
    /// Activations voided today.
    pub voided: usize,
}

#[derive(Serialize)]
pub struct Row {
    seq: i64,
    time: String,
    name: String,
    nik: String,
    desa: String,
    status: String,
    voided: bool,
    /// For a void: the number of the record it cancels, and why.
    voids: Option<i64>,
    reason: Option<String>,
}

/// Today's records (local date), newest first, and the numbers of voided ones.
pub fn today_rows(d: &Desk, dd: &crate::field::datadir::DataDir) -> Result<Vec<Row>, AppError> {
    let offset = d.ctx.offset();
    let today = timefmt::today(offset);
    let all = dd.store.list(&Filter::default())?;
    let seq_of: std::collections::HashMap<&str, i64> = all
        .iter()
        .map(|s| (s.record.id.as_str(), s.record.seq))
        .collect();
    let mut rows: Vec<Row> = all
        .iter()
        .filter(|s| {
            timefmt::parse(&s.record.recorded_at).map(|t| t.to_offset(offset).date()) == Some(today)
        })
        .map(|s| Row {
            seq: s.record.seq,
            time: timefmt::local_display(&s.record.recorded_at, offset),
            name: s.record.name.clone(),
            nik: s.record.nik.clone(),
            desa: desa_of(&s.record.village)
                .map(|v| v.name)
                .unwrap_or_else(|| s.record.village.clone()),
            status: s.status.label(),
            voided: s.voided_by.is_some(),
            voids: s
                .record
                .voids
                .as_deref()
                .and_then(|id| seq_of.get(id).copied()),
            reason: (s.record.kind == Kind::Void)
                .then(|| s.record.reason.clone())
                .flatten(),
        })
        .collect();
    rows.reverse();
    Ok(rows)
}

pub fn count(rows: &[Row]) -> Counts {
    Counts {
        activated: rows
            .iter()
            .filter(|r| r.voids.is_none() && r.reason.is_none() && !r.voided)
            .count(),
        voided: rows.iter().filter(|r| r.voided).count(),
    }
}

#[derive(Serialize)]
struct Today {
    counts: Counts,
    rows: Vec<Row>,
}

pub fn today(d: &Desk) -> Result<Resp, AppError> {
    let g = d.data()?;
    let dd = g.as_ref().expect("opened");
    let rows = today_rows(d, dd)?;
    ok(&Today {
        counts: count(&rows),
        rows,
    })
}

#[derive(Deserialize)]
pub struct VoidIn {
    seq: i64,
    reason: String,
}

#[derive(Serialize)]
struct Voided {
    seq: i64,
    void_seq: i64,
    name: String,
}

pub fn void(d: &Desk, v: &VoidIn) -> Result<Resp, AppError> {
    let reason = v.reason.trim();
    if reason.is_empty() {
        return Err(AppError::invalid(tr!(
            "Pilih atau tulis alasan pembatalan.",
            "Pick or write a reason."
        )));
    }
    crate::domain::validate::label("reason", reason)
        .map_err(|p| AppError::invalid(p.message.clone()))?;
    let mut g = d.data()?;
    let dd = g.as_mut().expect("opened");
    if let Some(id) = dd.store.identity()? {
        dd.identity = id;
    }
    let target = dd.store.find(&v.seq.to_string())?;
    if target.record.kind != Kind::Activation || target.voided_by.is_some() {
        return Err(AppError::invalid(tr!(
            "Catatan #{} sudah dibatalkan atau bukan aktivasi.",
            "Record #{} is already voided or is not an activation.",
            v.seq
        )));
    }
    let void = dd.store.record_void(&target, reason, &dd.identity)?;
    ok(&Voided {
        seq: target.record.seq,
        void_seq: void.seq,
        name: target.record.name.clone(),
    })
}
