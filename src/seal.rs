//! Sealing a citizen's full NIK, phone and e-mail at capture (docs/sealing.md).
//!
//! A record's identifiers are encrypted to the district server's X25519 public key as a
//! libsodium-compatible *sealed box* (RustCrypto `crypto_box`: an ephemeral X25519 key,
//! XSalsa20-Poly1305), so the laptop that sealed them cannot open them again; only the server
//! can. The district's sealing key is derived from its Ed25519 key seed
//! ([`KeyPair::derive`] with [`SEAL_KEY_LABEL`]), so the server keeps one key file.
//!
//! On the laptop, duplicate checks compare a keyed hash of the NIK (HMAC-SHA256 with a key
//! derived from the device key), never the NIK itself.
use crate::crypto::{self, KeyPair};
use crypto_box::aead::OsRng;
use crypto_box::{PublicKey, SecretKey};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Label of the district server's sealing key, derived from its Ed25519 seed.
pub const SEAL_KEY_LABEL: &str = "ikd-field seal key v1";
/// Label of a device's key for the keyed NIK hash, derived from its Ed25519 seed.
pub const NIK_TAG_LABEL: &str = "ikd-field nik tag v1";

/// What is sealed: the identifiers a lost laptop must not expose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    /// 16-digit NIK.
    pub nik: String,
    /// E.164 mobile number.
    pub phone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Seals `secrets` to `public` (an X25519 public key). Each call uses a fresh ephemeral key, so
/// sealing the same secrets twice gives different bytes.
pub fn seal(public: &[u8; 32], secrets: &Secrets) -> Vec<u8> {
    let plain = serde_json::to_vec(secrets).expect("secrets serialise");
    PublicKey::from(*public)
        .seal(&mut OsRng, &plain)
        .expect("sealing into memory cannot fail")
}

/// Seals each of `secrets` to `public`, as [`seal`] does one (a fresh ephemeral key each), on as
/// many threads as there are cores when there are many: the X25519 work of a seal is most of the
/// cost of storing a record, and a paper list typed in later is sealed at once.
pub fn seal_many(public: &[u8; 32], secrets: &[Secrets]) -> Vec<Vec<u8>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    if threads < 2 || secrets.len() < 64 {
        return secrets.iter().map(|s| seal(public, s)).collect();
    }
    let chunk = secrets.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = secrets
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || part.iter().map(|s| seal(public, s)).collect::<Vec<_>>())
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().expect("sealing does not panic"))
            .collect()
    })
}

/// A key that opens sealed boxes: the district server's, or a laptop's holding key.
pub struct OpenKey {
    secret: SecretKey,
}

impl OpenKey {
    /// The district server's sealing key, derived from its Ed25519 key.
    pub fn of_server(server: &KeyPair) -> OpenKey {
        OpenKey::from_bytes(server.derive(SEAL_KEY_LABEL))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> OpenKey {
        OpenKey {
            secret: SecretKey::from(bytes),
        }
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> std::io::Result<OpenKey> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(OpenKey::from_bytes(bytes))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    pub fn public(&self) -> [u8; 32] {
        self.secret.public_key().to_bytes()
    }

    pub fn public_hex(&self) -> String {
        hex::encode(self.public())
    }

    /// The sealed secrets, or `None` when the box was not sealed to this key, was altered, or
    /// does not hold what [`seal`] puts in one.
    pub fn open(&self, sealed: &[u8]) -> Option<Secrets> {
        let plain = self.secret.unseal(sealed).ok()?;
        serde_json::from_slice(&plain).ok()
    }
}

/// The district server's sealing public key in hex, as `/v1/health` and `/v1/enrol` give it.
pub fn server_public_hex(server: &KeyPair) -> String {
    OpenKey::of_server(server).public_hex()
}

/// Parses a sealing public key written in hex (64 characters); refuses the all-zero key.
pub fn parse_public_hex(text: &str) -> Option<[u8; 32]> {
    crypto::parse_public_hex(text).filter(|k| k.iter().any(|b| *b != 0))
}

/// The short id of a sealing public key (as for Ed25519 keys: SHA-256, first 8 bytes, hex).
pub fn key_id(public: &[u8; 32]) -> String {
    crypto::key_id(public)
}

/// A device's key for [`nik_tag`], derived from its Ed25519 key.
pub fn tag_key(device: &KeyPair) -> [u8; 32] {
    device.derive(NIK_TAG_LABEL)
}

/// The keyed hash of a NIK on a device: HMAC-SHA256 under the device's [`tag_key`]. Equal NIKs
/// give equal tags on the same device; without the device key a tag says nothing (with it, the
/// small NIK space can be searched: docs/sealing.md).
pub fn nik_tag(tag_key: &[u8; 32], nik: &str) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(tag_key).expect("HMAC takes keys of any length");
    mac.update(nik.as_bytes());
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        Secrets {
            nik: "1702064107950003".into(),
            phone: "+6281234567890".into(),
            email: Some("siti@example.org".into()),
        }
    }

    #[test]
    fn only_the_server_opens_what_was_sealed_to_it() {
        let server = KeyPair::from_seed([1; 32]);
        let public = parse_public_hex(&server_public_hex(&server)).unwrap();
        let a = seal(&public, &secrets());
        let b = seal(&public, &secrets());
        assert_ne!(a, b, "an ephemeral key per seal");
        assert_eq!(OpenKey::of_server(&server).open(&a), Some(secrets()));
        // Another server, a holding key, an altered box: nothing.
        assert_eq!(
            OpenKey::of_server(&KeyPair::from_seed([2; 32])).open(&a),
            None
        );
        assert_eq!(OpenKey::generate().unwrap().open(&a), None);
        let mut bad = a.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(OpenKey::of_server(&server).open(&bad), None);
        assert_eq!(OpenKey::of_server(&server).open(&a[..10]), None);
        // No plaintext in the box.
        let hay = String::from_utf8_lossy(&a);
        assert!(!hay.contains("1702064107950003") && !hay.contains("siti"));
    }

    #[test]
    fn many_seals_open_in_order_each_with_its_own_ephemeral_key() {
        let server = KeyPair::from_seed([3; 32]);
        let public = parse_public_hex(&server_public_hex(&server)).unwrap();
        let all: Vec<Secrets> = (0..100)
            .map(|i| Secrets {
                nik: format!("17020641079{i:05}"),
                ..secrets()
            })
            .collect();
        let boxes = seal_many(&public, &all);
        let key = OpenKey::of_server(&server);
        let opened: Vec<_> = boxes.iter().map(|b| key.open(b).unwrap()).collect();
        assert_eq!(opened, all);
        let ephemeral: std::collections::HashSet<_> =
            boxes.iter().map(|b| b[..32].to_vec()).collect();
        assert_eq!(ephemeral.len(), boxes.len(), "no ephemeral key used twice");
    }

    #[test]
    fn the_sealing_key_is_not_the_signing_key() {
        let server = KeyPair::from_seed([1; 32]);
        assert_ne!(OpenKey::of_server(&server).to_bytes(), [1; 32]);
        assert_ne!(OpenKey::of_server(&server).public(), server.public());
        assert!(parse_public_hex(&"00".repeat(32)).is_none());
    }

    #[test]
    fn nik_tags_are_per_device() {
        let a = tag_key(&KeyPair::from_seed([1; 32]));
        let b = tag_key(&KeyPair::from_seed([2; 32]));
        assert_eq!(
            nik_tag(&a, "1702064107950003"),
            nik_tag(&a, "1702064107950003")
        );
        assert_ne!(
            nik_tag(&a, "1702064107950003"),
            nik_tag(&a, "1702061708900001")
        );
        assert_ne!(
            nik_tag(&a, "1702064107950003"),
            nik_tag(&b, "1702064107950003")
        );
    }
}
