//! The province side of forwarding (docs/protocol.md "Forwarding"): a **relay** is a device
//! enrolled with a relay token (`server token --relay`), in practice a district server. A relay
//! may send records made by other devices, its district's field laptops; every other device may
//! send only its own (`device_mismatch`).
//!
//! A record keeps its original `device_id` (ids stay the idempotency key, a void still names
//! its target's device, the dashboard shows devices and teams). So that `records.device_id`
//! still refers to a row in `devices`, the first record of an unknown origin device registers
//! it with `relayed_by` = the relay and no usable key (`public_key` is `relayed:<relay>:<id>`,
//! which is not a key): the store's key look-up skips such rows, so the device can never sign a
//! request of its own here, and it cannot enrol here either (`403 device_relayed`). An origin
//! device belongs to the first relay that brought it; another relay naming it is refused as
//! `device_mismatch`.
use super::db::{self, Db};
use crate::args;

/// True when `device` was enrolled with a relay token.
pub fn is_relay(tx: &mut Db<'_>, device: &str) -> db::Result<bool> {
    Ok(tx
        .query_opt("SELECT relay FROM devices WHERE id = ?1", args![device])?
        .map(|r| r.get::<i64>(0))
        .transpose()?
        .unwrap_or(0)
        != 0)
}

/// Whether relay `relay` may send a record made by `origin`: yes when `origin` is one of the
/// relay's origin devices, or unknown here (it is then registered as one, in the caller's
/// transaction); no for an enrolled device, a relay, or another relay's origin device.
pub fn adopt(
    tx: &mut Db<'_>,
    relay: &str,
    origin: &str,
    officer: &str,
    team: &str,
    now: &str,
) -> db::Result<bool> {
    // Checked before the look-up too: an id PostgreSQL cannot take as text (a NUL character)
    // would fail the whole batch there.
    let valid_id = origin.len() == 16 && origin.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid_id {
        return Ok(false);
    }
    let known: Option<Option<String>> = tx
        .query_opt(
            "SELECT relayed_by FROM devices WHERE id = ?1",
            args![origin],
        )?
        .map(|r| r.get(0))
        .transpose()?;
    match known {
        Some(by) => Ok(by.as_deref() == Some(relay)),
        None => {
            tx.execute(
                "INSERT INTO devices (id, public_key, officer, team, enrolled_at, relayed_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                args![
                    origin,
                    format!("relayed:{relay}:{origin}"),
                    officer,
                    team,
                    now,
                    relay
                ],
            )?;
            Ok(true)
        }
    }
}
