//! The sync protocol shared by the field client and the district server (HTTP + JSON under
//! `/v1`). `docs/protocol.md` is the normative description; these are its types.
pub mod batch;
pub mod codes;

use crate::domain::Record;
pub use codes::ErrorCode;
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

pub const PATH_HEALTH: &str = "/v1/health";
pub const PATH_ENROL: &str = "/v1/enrol";
pub const PATH_BATCHES: &str = "/v1/batches";
/// `GET /v1/batches/{id}`: the journalled answer to a batch already sent (docs/protocol.md).
pub const PATH_BATCH_ANSWER_PREFIX: &str = "/v1/batches/";

/// Header naming the sending device (its key id).
pub const H_DEVICE: &str = "X-Ikd-Device";
/// Header carrying the batch id (UUIDv7) of a batch request.
pub const H_BATCH: &str = "X-Ikd-Batch";
/// Header with the base64 Ed25519 signature of SHA-256 of the body bytes as sent.
pub const H_SIGNATURE: &str = "X-Ikd-Signature";
/// Optional header of a batch request: the client's activated-list cursor (`next` of its last
/// page); the answer then carries the district's activated-list delta from there
/// ([`BatchResponse::activated`]).
pub const H_ACTIVATED_SINCE: &str = "X-Ikd-Activated-Since";

/// `GET /v1/health`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    pub ok: bool,
    pub service: String,
    pub protocol: u32,
    pub server_id: String,
    pub server_public_key: String,
    /// The district's sealing public key (X25519, hex): records' NIK, phone and e-mail are
    /// sealed to it (docs/sealing.md).
    #[serde(default)]
    pub seal_public_key: String,
    /// The office CA (PEM) when the server serves the certificate of `server tls init`; empty
    /// otherwise. The answer is signed (`X-Ikd-Signature`, since this field), so a laptop that
    /// knows the server id can trust this CA before it sends its token (client/pin.rs).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tls_ca: String,
    /// The `challenge` the client put in the query (`GET /v1/health?challenge=HEX`), echoed
    /// inside the signed answer: a fresh answer, not an old signed one replayed. Empty without.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub challenge: String,
}

/// `POST /v1/enrol` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrolRequest {
    pub token: String,
    /// Device public key, hex (64 characters).
    pub public_key: String,
    pub officer: String,
    pub team: String,
    /// Proof that the sender holds the device key: base64 Ed25519 signature, by that key, of
    /// [`enrol_proof_digest`] (the token, the server's public key and the device's). Without it
    /// anyone with a token could enrol (or re-enrol over) someone else's public key.
    #[serde(default)]
    pub proof: String,
}

impl EnrolRequest {
    /// A request signed by `device` for the server whose public key (hex) is `server_public`.
    pub fn signed(
        device: &crate::crypto::KeyPair,
        token: &str,
        server_public: &str,
        officer: &str,
        team: &str,
    ) -> EnrolRequest {
        use base64::Engine;
        let token = token.trim().to_string();
        let public_key = device.public_hex();
        let digest = enrol_proof_digest(&token, server_public, &public_key);
        EnrolRequest {
            proof: base64::engine::general_purpose::STANDARD.encode(device.sign(&digest)),
            token,
            public_key,
            officer: officer.to_string(),
            team: team.to_string(),
        }
    }
}

/// What an enrolment's proof signs: SHA-256 of a label, the token as sent, the server's public
/// key (hex, so a request made for one server does not enrol at another) and the device's.
pub fn enrol_proof_digest(token: &str, server_public: &str, device_public: &str) -> [u8; 32] {
    crate::crypto::sha256(
        format!(
            "ikd-field enrol v1\0{}\0{}\0{}",
            token.trim(),
            server_public.trim().to_ascii_lowercase(),
            device_public.trim().to_ascii_lowercase()
        )
        .as_bytes(),
    )
}

/// `POST /v1/enrol` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrolResponse {
    pub device_id: String,
    pub server_id: String,
    /// The district server's public key, hex: it signs every batch answer.
    pub server_public_key: String,
    /// Team name the token was issued for ("" if none).
    pub team: String,
    /// The district's sealing public key (X25519, hex), see [`Health::seal_public_key`].
    #[serde(default)]
    pub seal_public_key: String,
    /// True when the token was a relay token: this device (a district server forwarding to its
    /// province) may send records made by other devices.
    #[serde(default)]
    pub relay: bool,
    /// The office CA (PEM), as in [`Health::tls_ca`]: covered by the answer's signature; the
    /// laptop trusts exactly it for this server from then on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tls_ca: String,
}

/// The JSON inside a batch body (before gzip).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchBody {
    pub protocol: u32,
    pub batch_id: String,
    pub device_id: String,
    pub created_at: String,
    pub records: Vec<WireRecord>,
}

/// A record as it travels: a [`Record`] whose NIK, phone and e-mail are sealed to the
/// district's key (`sealed`, base64 of a sealed box holding [`crate::seal::Secrets`] in the binary
/// form of [`crate::seal::Secrets::encode`])
/// instead of being written out. The server opens it back into the [`Record`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRecord {
    pub id: String,
    pub seq: i64,
    pub device_id: String,
    pub officer: String,
    pub team: String,
    pub recorded_at: String,
    pub kind: crate::domain::Kind,
    pub village: String,
    pub name: String,
    /// base64 of the sealed box.
    pub sealed: String,
    #[serde(default)]
    pub voids: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl WireRecord {
    /// Seals a plaintext record to `seal_key` (a province forward, tests, the benchmark; the
    /// field kit seals at capture and sends the stored box). Refuses a record whose NIK, phone
    /// or e-mail the sealed format cannot hold.
    pub fn seal(r: &Record, seal_key: &[u8; 32]) -> Result<WireRecord, crate::seal::Unsealable> {
        use base64::Engine;
        let secrets = crate::seal::Secrets {
            nik: r.nik.clone(),
            phone: r.phone.clone(),
            email: r.email.clone(),
        };
        let sealed = crate::seal::seal(seal_key, &secrets)?;
        Ok(WireRecord::with_sealed(
            r,
            base64::engine::general_purpose::STANDARD.encode(sealed),
        ))
    }

    /// The wire form of `r` (whose nik/phone/email are ignored) carrying `sealed` (base64).
    pub fn with_sealed(r: &Record, sealed: String) -> WireRecord {
        WireRecord {
            id: r.id.clone(),
            seq: r.seq,
            device_id: r.device_id.clone(),
            officer: r.officer.clone(),
            team: r.team.clone(),
            recorded_at: r.recorded_at.clone(),
            kind: r.kind,
            village: r.village.clone(),
            name: r.name.clone(),
            sealed,
            voids: r.voids.clone(),
            reason: r.reason.clone(),
            warnings: r.warnings.clone(),
        }
    }

    /// The plaintext record, with the secrets the server opened from `sealed`.
    /// [`WireRecord::into_record`] taking the strings out of `self` (left empty) instead of
    /// consuming it, for records opened in place in a batch's list.
    pub fn take_record(&mut self, s: crate::seal::Secrets) -> Record {
        use std::mem::take;
        Record {
            id: take(&mut self.id),
            seq: self.seq,
            device_id: take(&mut self.device_id),
            officer: take(&mut self.officer),
            team: take(&mut self.team),
            recorded_at: take(&mut self.recorded_at),
            kind: self.kind,
            village: take(&mut self.village),
            nik: s.nik,
            name: take(&mut self.name),
            phone: s.phone,
            email: s.email,
            voids: self.voids.take(),
            reason: self.reason.take(),
            warnings: take(&mut self.warnings),
        }
    }

    pub fn into_record(self, s: crate::seal::Secrets) -> Record {
        Record {
            id: self.id,
            seq: self.seq,
            device_id: self.device_id,
            officer: self.officer,
            team: self.team,
            recorded_at: self.recorded_at,
            kind: self.kind,
            village: self.village,
            nik: s.nik,
            name: self.name,
            phone: s.phone,
            email: s.email,
            voids: self.voids,
            reason: self.reason,
            warnings: self.warnings,
        }
    }
}

/// Per-record outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Stored now.
    Accepted,
    /// The server already had this record (same id, same content).
    Duplicate,
    /// This NIK was already activated by another record (stored and flagged), or the same id
    /// arrived with different content (`reason: "id_reused"`, not stored).
    Conflict,
    /// Invalid; not stored (`reason` says why).
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordResult {
    pub id: String,
    pub status: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a NIK conflict: the record that activated this NIK first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_with: Option<String>,
    /// For a NIK conflict: who activated it first, when and where, so the officer can be told
    /// in words (optional: an older server does not send it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<ConflictInfo>,
}

/// The first activation of a NIK another record conflicts with, as the officer is told of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictInfo {
    pub team: String,
    pub officer: String,
    /// RFC 3339 UTC, as recorded.
    pub recorded_at: String,
    /// 10-digit desa code.
    pub village: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub accepted: usize,
    pub duplicate: usize,
    pub conflict: usize,
    pub rejected: usize,
}

/// `POST /v1/batches` answer (200), signed by the server in `X-Ikd-Signature`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchResponse {
    pub protocol: u32,
    pub batch_id: String,
    pub server_id: String,
    pub received_at: String,
    pub results: Vec<RecordResult>,
    pub summary: Summary,
    /// The district's activated-list delta after the cursor the request named in
    /// [`H_ACTIVATED_SINCE`], as of this answer (at most [`ACTIVATED_INLINE`] prefixes; absent
    /// when not asked for, and from servers before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated: Option<ActivatedResponse>,
    /// The server's size limits for a batch, so a client may grow its batches up to them
    /// (absent from servers before it: such a client keeps its starting size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<BatchLimits>,
}

/// The size limits a server applies to `POST /v1/batches` (`[server]` in its config.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchLimits {
    pub max_batch_records: usize,
    /// The gzip body as sent.
    pub max_body_bytes: u64,
    /// The body's JSON once gunzipped.
    pub max_decompressed_bytes: u64,
}

/// Every 4xx/5xx answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

/// One batch in a `sync --to-file` file (one JSON object per line): exactly what the HTTP
/// request would have carried.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileBatch {
    pub batch_id: String,
    pub device_id: String,
    /// base64 of the signature, as in `X-Ikd-Signature`.
    pub signature: String,
    /// base64 of the gzip body, as sent over HTTP.
    pub body: String,
}

/// Bytes that are signed for a body: SHA-256 of the body bytes as sent.
pub fn signed_digest(body: &[u8]) -> [u8; 32] {
    crate::crypto::sha256(body)
}

/// Canonical hash of a record's content, to tell a resend from a reused id.
pub fn content_hash(r: &Record) -> String {
    crate::crypto::sha256_hex(&serde_json::to_vec(r).expect("record serialises"))
}

/// `POST /v1/activated`: the district's already-activated NIKs, as short hash prefixes, so the
/// field kit can warn before activating someone twice (optional for clients).
pub const PATH_ACTIVATED: &str = "/v1/activated";

/// Bytes of each NIK hash prefix in [`ActivatedResponse`]. Three bytes (1 in 16.7 million) are
/// enough to warn and too few to recover a NIK: each prefix fits some 10^5 valid NIKs.
pub const NIK_PREFIX_BYTES: usize = 3;

/// Most prefixes in one [`ActivatedResponse`]; ask again from `next` while `more` is true.
pub const ACTIVATED_PAGE: usize = 100_000;

/// Most prefixes carried in a batch answer (it is journalled with the answer); the rest comes
/// from `POST /v1/activated`.
pub const ACTIVATED_INLINE: usize = 20_000;

/// `POST /v1/activated` request: plain JSON (not gzip), signed like a batch
/// (`X-Ikd-Device`, `X-Ikd-Signature` over SHA-256 of the body bytes).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivatedRequest {
    pub protocol: u32,
    pub device_id: String,
    /// `next` of the previous answer; 0 for everything.
    pub since: i64,
    /// When the request was made (RFC 3339), so two requests never have the same bytes.
    pub at: String,
}

/// `POST /v1/activated` answer (200), signed by the server in `X-Ikd-Signature`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivatedResponse {
    pub protocol: u32,
    pub server_id: String,
    pub since: i64,
    /// Cursor for the next request.
    pub next: i64,
    /// True when there are more prefixes after `next`.
    pub more: bool,
    pub prefix_bytes: usize,
    pub count: usize,
    /// base64 of `count` prefixes of `prefix_bytes` bytes each, see [`nik_prefix`].
    pub prefixes: String,
    /// The server's time of the answer.
    pub as_of: String,
}

/// The hash prefix of a NIK as listed by `/v1/activated`.
pub fn nik_prefix(nik: &str) -> [u8; NIK_PREFIX_BYTES] {
    let h = crate::crypto::sha256(format!("ikd-field nik v1:{nik}").as_bytes());
    [h[0], h[1], h[2]]
}
