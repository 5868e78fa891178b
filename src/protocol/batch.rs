//! Cutting a batch (docs/protocol.md `POST /v1/batches`): the gzip body and the device's
//! signature over it. Shared by the field kit's outbox and a district server forwarding to its
//! province; each journals what this returns, so a resend is the same bytes.
use super::BatchBody;
use crate::crypto::KeyPair;
use crate::protocol::{self, WireRecord};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::io::Write;

/// Gzip of the batch JSON.
pub fn encode_body(body: &BatchBody) -> Vec<u8> {
    let json = serde_json::to_vec(body).expect("batch serialises");
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 4),
        flate2::Compression::default(),
    );
    gz.write_all(&json).expect("gzip into memory");
    gz.finish().expect("gzip into memory")
}

/// A batch as cut: a new id (UUIDv7), its time, the gzip body and its signature.
pub struct Signed {
    pub id: String,
    pub created_at: String,
    /// The gzip bytes that are sent and signed.
    pub body: Vec<u8>,
    /// SHA-256 of `body`.
    pub digest: [u8; 32],
    /// base64 Ed25519 signature of `digest`, as in `X-Ikd-Signature`.
    pub signature: String,
}

/// Makes a batch of `records` from `device_id` (docs/protocol.md `POST /v1/batches`), gzipped
/// and signed by `key`; the caller journals it so that a resend is the same bytes. Shared by the
/// field kit's outbox and a district server forwarding to its province.
pub fn sign_batch(key: &KeyPair, device_id: &str, records: Vec<WireRecord>) -> Signed {
    let id = uuid::Uuid::now_v7().to_string();
    let created_at = crate::timefmt::now_utc();
    let body = encode_body(&BatchBody {
        protocol: protocol::VERSION,
        batch_id: id.clone(),
        device_id: device_id.to_string(),
        created_at: created_at.clone(),
        records,
    });
    let digest = protocol::signed_digest(&body);
    let signature = B64.encode(key.sign(&digest));
    Signed {
        id,
        created_at,
        body,
        digest,
        signature,
    }
}
