//! The one check of a slip's `IKD1:` text against trusted device keys, behind both
//! `ikd-field verify` (commands/verify.rs) and the district dashboard's `/cek-slip`
//! (server/slipcheck.rs): decode, find the signing device's key, verify the signature.
use super::keys::KeyRing;
use super::payload::{DecodeError, Signed, VerifyError};
use serde::Serialize;

/// What a slip says of itself (trusted only once its signature is [`Verdict::Genuine`]).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Facts {
    pub record_id: String,
    pub device_id: String,
    pub recorded_at: String,
    pub village: String,
    pub nik_masked: String,
    pub name: String,
    pub name_truncated: bool,
}

/// The verdict on one slip text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by the device it names, whose key is in the ring.
    Genuine(Facts),
    /// The text is not a slip, or is damaged (why, in a word for the log).
    Damaged(String),
    /// The device it names is not in the ring: authenticity cannot be told.
    UnknownDevice(Facts),
    /// The ring holds another device's key under the slip's device id (a mislabelled key).
    WrongKey { facts: Facts, key_device: String },
    /// The signature does not match: altered or forged.
    Forged(Facts),
}

/// Checks one `IKD1:` text against `ring`.
pub fn check(ring: &KeyRing, text: &str) -> Verdict {
    let signed = match Signed::decode(text) {
        Ok(s) => s,
        Err(e) => {
            return Verdict::Damaged(match e {
                DecodeError::NotIkd => "prefix".to_string(),
                DecodeError::Base45 => "base45".to_string(),
                DecodeError::Malformed(what) => what.to_string(),
            });
        }
    };
    let p = &signed.payload;
    let facts = Facts {
        record_id: p.record_uuid(),
        device_id: p.device_hex(),
        recorded_at: p.time_utc(),
        village: p.village.clone(),
        nik_masked: p.masked_nik(),
        name: p.display_name(),
        name_truncated: p.truncated,
    };
    let Some(public) = ring.get(&facts.device_id) else {
        return Verdict::UnknownDevice(facts);
    };
    match signed.verify(public) {
        Ok(()) => Verdict::Genuine(facts),
        Err(VerifyError::WrongKey { key_device }) => Verdict::WrongKey { facts, key_device },
        Err(VerifyError::BadSignature) => Verdict::Forged(facts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyPair;

    #[test]
    fn genuine_forged_unknown_damaged() {
        let key = KeyPair::from_seed([7; 32]);
        let p = crate::slip::payload::Payload::new(
            "01936f5e-7a2b-7c3d-8e4f-123456789abc",
            &key.id(),
            "2026-11-23T05:12:09.123Z",
            "1702011001",
            "1702064107950003",
            "BUDI SANTOSO",
        )
        .unwrap();
        let text = p.sign(&key);
        let ring = KeyRing::single(key.public());
        let Verdict::Genuine(f) = check(&ring, &text) else {
            panic!("not genuine")
        };
        assert_eq!(
            (f.device_id.as_str(), f.name.as_str()),
            (key.id().as_str(), "BUDI SANTOSO")
        );
        let other = KeyPair::from_seed([8; 32]);
        assert!(matches!(
            check(&KeyRing::single(other.public()), &text),
            Verdict::UnknownDevice(_)
        ));
        // Signed by another key under this device's id: forged.
        let forged = p.sign(&other);
        assert!(matches!(check(&ring, &forged), Verdict::Forged(_)));
        assert!(matches!(check(&ring, "IKD1:???"), Verdict::Damaged(_)));
        assert!(matches!(check(&ring, "hello"), Verdict::Damaged(_)));
    }
}
