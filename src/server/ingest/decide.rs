//! The per-record decision inside the batch transaction: duplicate, id reused, invalid, NIK
//! already live (a conflict, kept and flagged), void, in the batch's own order.
use super::record::{Item, Opened};
use super::write::{Ctx, New};
use crate::domain::Kind;
use crate::protocol::{self, Outcome, RecordResult};
use crate::server::db::{self, Db};
use crate::server::known::Known;
use crate::server::store::note_reject;

pub(super) fn result(
    id: &str,
    status: Outcome,
    reason: Option<&str>,
    with: Option<String>,
) -> RecordResult {
    RecordResult {
        id: id.to_string(),
        status,
        reason: reason.map(str::to_string),
        conflict_with: with,
        conflict: None,
    }
}

/// Who activated record `id` (a NIK's first live activation), for the words of a conflict.
fn conflict_info(tx: &mut Db<'_>, id: &str) -> db::Result<Option<protocol::ConflictInfo>> {
    let Some(row) = tx.query_opt(
        "SELECT team, officer, recorded_at, village FROM records WHERE id = ?1",
        crate::args![id],
    )?
    else {
        return Ok(None);
    };
    Ok(Some(protocol::ConflictInfo {
        team: row.get(0)?,
        officer: row.get(1)?,
        recorded_at: row.get(2)?,
        village: row.get(3)?,
    }))
}

/// The ids and NIKs the batch's checks will look up: record ids, void targets, and the NIKs of
/// activations that passed validation ([`Known::load`] reads them in two statements).
pub(super) fn lookup_keys<'a>(
    items: impl Iterator<Item = &'a Item>,
) -> (Vec<&'a str>, Vec<&'a str>) {
    let mut ids = std::collections::HashSet::new();
    let mut niks = std::collections::HashSet::new();
    for item in items {
        let Item::Typed(o) = item else { continue };
        let r = &o.record;
        // Never a NUL character: PostgreSQL refuses it in a text parameter (such a record is
        // rejected before it is looked up).
        if r.id.len() == 36 && !r.id.contains('\0') {
            ids.insert(r.id.as_str());
        }
        match (r.kind, &o.clean) {
            (Kind::Void, _) => ids.extend(
                r.voids
                    .as_deref()
                    .filter(|t| t.len() <= 64 && !t.contains('\0')),
            ),
            (Kind::Activation, Ok(c)) => {
                niks.insert(c.nik.as_str());
            }
            (Kind::Activation, Err(_)) => {}
        }
    }
    (ids.into_iter().collect(), niks.into_iter().collect())
}

/// Answers one record inside the batch transaction: what it needs of the records table comes
/// from `known`, what it adds goes to `new` (written after the batch's last record) and to
/// `known`. Only database failures are errors.
pub(super) fn one_record(
    tx: &mut Db<'_>,
    ctx: &Ctx<'_>,
    known: &mut Known,
    new: &mut New,
    item: Item,
) -> db::Result<RecordResult> {
    let reject = |tx: &mut Db<'_>, id: &str, code: &str, message: String| {
        note_reject(
            tx,
            ctx.now,
            Some(ctx.device),
            Some(ctx.batch),
            Some(id).filter(|i| !i.is_empty()),
            code,
            &message,
        )?;
        Ok::<_, db::Error>(result(id, Outcome::Rejected, Some(code), None))
    };
    let Opened {
        record: r,
        hash,
        clean,
    } = match item {
        Item::Typed(o) => o,
        Item::Unopened { id } => {
            return reject(
                tx,
                &id,
                "seal_unopened",
                "the record's sealed NIK, phone and e-mail do not open with this district's key \
                 (sealed to another key, or damaged)"
                    .into(),
            );
        }
        Item::Raw(value) => {
            let id_hint: String = value
                .get("id")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .chars()
                .take(64)
                .collect();
            // Values that parse as a sealed record were opened (or found unopenable) already.
            let e = serde_json::from_value::<protocol::WireRecord>(value)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            return reject(tx, &id_hint, "bad_record", format!("not a record: {e}"));
        }
    };
    if uuid::Uuid::parse_str(&r.id).is_err() || r.id.len() != 36 {
        let id: String = r.id.chars().take(64).collect();
        return reject(tx, &id, "bad_id", "the record id is not a UUID".into());
    }
    if r.device_id != ctx.device
        && !(ctx.relay
            && crate::server::relay::adopt(
                tx,
                ctx.device,
                &r.device_id,
                &r.officer,
                &r.team,
                ctx.now,
            )?)
    {
        return reject(
            tx,
            &r.id,
            "device_mismatch",
            format!("the record names device {}, not the sender", r.device_id),
        );
    }
    let stored = known.record(tx, &r.id)?.map(|s| s.content_hash.clone());
    if let Some(h) = stored {
        return Ok(if h == hash {
            result(&r.id, Outcome::Duplicate, None, None)
        } else {
            note_reject(
                tx,
                ctx.now,
                Some(ctx.device),
                Some(ctx.batch),
                Some(&r.id),
                "id_reused",
                "the same record id arrived with different content",
            )?;
            result(&r.id, Outcome::Conflict, Some("id_reused"), None)
        });
    }
    let clean = match clean {
        Ok(c) => c,
        Err((code, message)) => return reject(tx, &r.id, code, message),
    };
    match r.kind {
        Kind::Activation => {
            let first = known.first_live(tx, &clean.nik)?;
            let answer = match &first {
                Some(f) => RecordResult {
                    conflict: conflict_info(tx, f)?,
                    ..result(
                        &r.id,
                        Outcome::Conflict,
                        Some("nik_already_activated"),
                        Some(f.clone()),
                    )
                },
                None => result(&r.id, Outcome::Accepted, None, None),
            };
            new.insert(tx, known, r, clean, hash, first)?;
            Ok(answer)
        }
        Kind::Void => {
            let Some(target) = r.voids.as_deref() else {
                return reject(
                    tx,
                    &r.id,
                    "void_target_missing",
                    "a void must name the record it cancels".into(),
                );
            };
            let t = known.record(tx, target)?.map(|s| {
                (
                    s.kind.clone(),
                    s.device_id.clone(),
                    s.nik.clone(),
                    s.voided_by.clone(),
                )
            });
            let Some((kind, device, nik, voided_by)) = t else {
                return reject(
                    tx,
                    &r.id,
                    "void_target_unknown",
                    format!("record {target} is not on the server"),
                );
            };
            if kind != "activation" {
                return reject(
                    tx,
                    &r.id,
                    "void_target_not_activation",
                    "only an activation can be voided".into(),
                );
            }
            // The record's own device (the sender, unless a relay forwards it).
            if device != r.device_id {
                return reject(
                    tx,
                    &r.id,
                    "void_other_device",
                    "a device can void only its own records".into(),
                );
            }
            if nik != clean.nik {
                return reject(
                    tx,
                    &r.id,
                    "void_mismatch",
                    "the void's NIK differs from the record it cancels".into(),
                );
            }
            if voided_by.is_some() {
                return reject(
                    tx,
                    &r.id,
                    "already_voided",
                    format!("record {target} is already voided"),
                );
            }
            let (target, id) = (target.to_string(), r.id.clone());
            new.insert(tx, known, r, clean, hash, None)?;
            known.void(tx, &target, &id)?;
            new.voided.push((target, id.clone()));
            Ok(result(&id, Outcome::Accepted, None, None))
        }
    }
}
