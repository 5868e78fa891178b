//! `GET /v1/batches/{id}`: the journalled answer to a batch the device already sent, for a
//! client whose connection dropped after its request was complete — one cheap round trip
//! instead of the whole body again. Authenticated as the batch was: `X-Ikd-Device` and
//! `X-Ikd-Signature` carry the device id and the batch's own signature, which the server checks
//! against the body hash it journalled, so only the device that sent the batch (and signed its
//! bytes) gets the answer. The answer is the journalled one, bytes and signature as first sent.
use super::Refusal;
use super::ingest::{self, Answer};
use super::store::Store;
use crate::crypto;
use crate::protocol::{self, ErrorCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// The batch id of a `/v1/batches/{id}` path (a UUID: hex digits and dashes, 1–64 characters).
pub fn batch_id(path: &str) -> Option<&str> {
    let id = path.strip_prefix(protocol::PATH_BATCH_ANSWER_PREFIX)?;
    let ok =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    ok.then_some(id)
}

/// The journalled answer to `device`'s batch `batch`, when `signature` (base64) is the device's
/// signature of the body it answered; `404 batch_unknown` when there is none (not arrived, not
/// committed yet, or another body under that id): the client then sends the batch itself.
pub fn find(store: &Store, device: &str, batch: &str, signature: &str) -> Result<Answer, Refusal> {
    let unknown = || {
        Refusal::new(
            404,
            ErrorCode::BatchUnknown,
            "no answer is journalled for this batch; send the batch itself",
        )
    };
    let public = store.enrolled_key(device)?;
    let mut db = store.db().map_err(Refusal::internal)?;
    let Some((sha_hex, answer)) = ingest::stored(&mut db, device, batch)? else {
        return Err(unknown());
    };
    let digest: Option<[u8; 32]> = hex::decode(&sha_hex).ok().and_then(|d| d.try_into().ok());
    let sig = B64.decode(signature.trim()).unwrap_or_default();
    match digest {
        Some(digest) if crypto::verify(&public, &digest, &sig) => Ok(answer),
        _ => Err(unknown()),
    }
}

#[cfg(test)]
mod tests {
    use super::batch_id;

    #[test]
    fn only_a_uuid_like_id_is_a_batch_path() {
        let id = "0193a5b2-7c1e-7d4a-9b2f-3c4d5e6f7a8b";
        assert_eq!(batch_id(&format!("/v1/batches/{id}")), Some(id));
        for no in [
            "/v1/batches/",
            "/v1/batches/x y",
            "/v1/batches/../admin",
            "/v1/batch/1",
        ] {
            assert_eq!(batch_id(no), None, "{no}");
        }
    }
}
