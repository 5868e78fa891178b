//! `POST /v1/activated`: the NIKs already activated in the district, as 3-byte hash prefixes,
//! for a warning in the field before a second activation. Only enrolled, unrevoked devices may
//! ask (the request is signed like a batch); the answer is signed by the server.
use super::Refusal;
use super::db::{Db, Error as DbError};
use super::store::Store;
use crate::crypto::{self, KeyPair};
use crate::protocol::ErrorCode;
use crate::protocol::{self, ActivatedRequest, ActivatedResponse};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// Checks the signed request and lists the prefixes after `since`.
pub fn answer(
    store: &Store,
    key: &KeyPair,
    device_id: &str,
    signature: &str,
    body: &[u8],
) -> Result<ActivatedResponse, Refusal> {
    let public = store.enrolled_key(device_id)?;
    let sig = B64.decode(signature.trim()).unwrap_or_default();
    if !crypto::verify(&public, &protocol::signed_digest(body), &sig) {
        return Err(Refusal::new(
            401,
            ErrorCode::BadSignature,
            "the signature is missing or does not match the body",
        ));
    }
    let req: ActivatedRequest = serde_json::from_slice(body).map_err(|e| {
        Refusal::new(
            400,
            ErrorCode::BadJson,
            format!("not an activated request: {e}"),
        )
    })?;
    if req.device_id != device_id {
        return Err(Refusal::new(
            400,
            ErrorCode::BatchMismatch,
            "the device id in the header differs from the body",
        ));
    }
    let mut db = store.db().map_err(Refusal::internal)?;
    page(&mut db, key, req.since, protocol::ACTIVATED_PAGE).map_err(Refusal::internal)
}

/// Live activations (accepted, not voided) after rowid `since`, in arrival order, at most
/// `limit` of them, up to the writers' horizon; also the delta a batch answer carries, read in
/// the batch's own transaction (its own activations included).
pub fn page(
    db: &mut Db<'_>,
    key: &KeyPair,
    since: i64,
    limit: usize,
) -> Result<ActivatedResponse, DbError> {
    let mut prefixes = Vec::new();
    let (mut count, mut next, mut more) = (0usize, since.max(0), false);
    // Only up to the rows every writer has finished with, so the cursor never passes a row
    // that commits later (super::db::writers).
    let upto = super::db::writers::horizon(db)?;
    db.query_each(
        "SELECT rowid, nik FROM records WHERE rowid > ?1 AND rowid <= ?3 AND kind = 'activation'
           AND state = 'accepted' AND voided_by IS NULL ORDER BY rowid LIMIT ?2",
        crate::args![since.max(0), limit as i64 + 1, upto],
        |r| {
            if count == limit {
                more = true;
                return Ok(false);
            }
            let rowid: i64 = r.get(0)?;
            let nik: String = r.get(1)?;
            prefixes.extend_from_slice(&protocol::nik_prefix(&nik));
            next = rowid;
            count += 1;
            Ok::<_, DbError>(true)
        },
    )?;
    Ok(ActivatedResponse {
        protocol: protocol::VERSION,
        server_id: key.id(),
        since,
        next,
        more,
        prefix_bytes: protocol::NIK_PREFIX_BYTES,
        count,
        prefixes: B64.encode(&prefixes),
        as_of: crate::timefmt::now_utc(),
    })
}
