//! The signed QR payload, format 1: a fixed 40-byte header, the name, and an Ed25519 signature,
//! in Base45 behind the prefix `IKD1:` (docs/slip-format.md has it byte by byte).
//!
//! ```text
//! 0      version = 1
//! 1      flags: bit 0 = name packed in base 40, bit 1 = name truncated; other bits 0
//! 2..18  record id (the UUID's 16 bytes)
//! 18..26 device id (8 bytes: first 8 bytes of SHA-256 of the device's public key)
//! 26..30 recorded at, unix seconds, u32 big-endian
//! 30..35 village code, 10 decimal digits as a u40 big-endian
//! 35..40 masked NIK: its first 6 and last 4 digits as one 10-digit number, u40 big-endian
//! 40..n  name (packed or UTF-8), at most 40 bytes
//! n..+64 Ed25519 signature over "IKD-SLIP-1" ‖ bytes 0..n
//! ```
//! At most 144 bytes, so at most 221 QR alphanumeric characters with the prefix: QR version 8-M.
use crate::crypto::{self, KeyPair, PUBLIC_KEY_LEN, SIGNATURE_LEN};

pub const PREFIX: &str = "IKD1:";
pub const VERSION: u8 = 1;
/// Signed ahead of the payload bytes so a slip signature can never pass for another signature
/// made with the same device key (e.g. a sync batch).
pub const CONTEXT: &[u8] = b"IKD-SLIP-1";
pub const HEADER_LEN: usize = 40;
/// Largest name field in bytes: keeps the whole payload at 144 bytes (QR 8-M holds 221 chars).
pub const MAX_NAME_BYTES: usize = 40;
pub const MAX_LEN: usize = HEADER_LEN + MAX_NAME_BYTES + SIGNATURE_LEN;
/// Shown after a name that was cut to fit.
pub const TRUNCATION_MARK: char = '…';

const FLAG_PACKED: u8 = 1;
const FLAG_TRUNCATED: u8 = 2;

/// Name alphabet of the packed form: index 0 is padding, then space, A–Z and `' . , -`.
const ALPHABET: &[u8; 31] = b" ABCDEFGHIJKLMNOPQRSTUVWXYZ'.,-";

/// What a slip's QR says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Payload {
    /// UUID, 16 bytes.
    pub record_id: [u8; 16],
    /// First 8 bytes of SHA-256(device public key).
    pub device_id: [u8; 8],
    /// Unix seconds.
    pub time: u32,
    /// 10-digit village code.
    pub village: String,
    /// First 6 and last 4 NIK digits (10 digits).
    pub nik10: String,
    /// The name as carried (possibly cut to fit; see `truncated`).
    pub name: String,
    pub truncated: bool,
}

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Text does not start with `IKD1:`.
    NotIkd,
    /// Not valid Base45.
    Base45,
    /// Wrong length, version or field value.
    Malformed(&'static str),
}

/// Why a well-formed payload did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The key is not the slip's device's key (its id differs from the device id in the slip).
    WrongKey { key_device: String },
    /// The signature does not match: the payload was changed or forged.
    BadSignature,
}

/// A decoded payload with the bytes its signature covers.
#[derive(Debug, Clone)]
pub struct Signed {
    pub payload: Payload,
    body: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
}

impl Payload {
    /// Builds the payload of a record; the name is cut (and flagged) if it does not fit.
    pub fn new(
        record_id: &str,
        device_id: &str,
        recorded_at: &str,
        village: &str,
        nik: &str,
        name: &str,
    ) -> Result<Payload, &'static str> {
        let record_id = *uuid::Uuid::parse_str(record_id)
            .map_err(|_| "record id is not a UUID")?
            .as_bytes();
        let device_id: [u8; 8] = hex::decode(device_id)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("device id is not 16 hex digits")?;
        let time = crate::timefmt::parse(recorded_at)
            .map(|t| t.unix_timestamp())
            .and_then(|t| u32::try_from(t).ok())
            .ok_or("bad record time")?;
        if !is_digits(village, 10) {
            return Err("village code is not 10 digits");
        }
        // The full NIK, or the masked one the field kit keeps (`170206******0003`): the slip
        // carries only the first 6 and last 4 digits either way.
        if nik.len() != 16
            || !nik.is_ascii()
            || !is_digits(&nik[..6], 6)
            || !is_digits(&nik[12..], 4)
        {
            return Err("NIK is not 16 digits");
        }
        let nik10 = format!("{}{}", &nik[..6], &nik[12..]);
        let (name, truncated) = fit_name(name);
        Ok(Payload {
            record_id,
            device_id,
            time,
            village: village.to_string(),
            nik10,
            name,
            truncated,
        })
    }

    /// The bytes the signature covers (header and name).
    pub fn body(&self) -> Vec<u8> {
        let (name_bytes, packed) = match pack(&self.name) {
            Some(p) => (p, true),
            None => (self.name.as_bytes().to_vec(), false),
        };
        let mut b = Vec::with_capacity(MAX_LEN);
        b.push(VERSION);
        b.push(u8::from(packed) * FLAG_PACKED + u8::from(self.truncated) * FLAG_TRUNCATED);
        b.extend_from_slice(&self.record_id);
        b.extend_from_slice(&self.device_id);
        b.extend_from_slice(&self.time.to_be_bytes());
        b.extend_from_slice(&u40(&self.village));
        b.extend_from_slice(&u40(&self.nik10));
        b.extend_from_slice(&name_bytes);
        b
    }

    /// Signs and encodes: `IKD1:` followed by Base45.
    pub fn sign(&self, key: &KeyPair) -> String {
        let mut bytes = self.body();
        let sig = key.sign(&signed_message(&bytes));
        bytes.extend_from_slice(&sig);
        let mut s = String::with_capacity(PREFIX.len() + bytes.len() * 3 / 2 + 2);
        s.push_str(PREFIX);
        s.push_str(&base45::encode(&bytes));
        s
    }

    pub fn record_uuid(&self) -> String {
        uuid::Uuid::from_bytes(self.record_id).to_string()
    }

    pub fn device_hex(&self) -> String {
        hex::encode(self.device_id)
    }

    /// `170206******0003`.
    pub fn masked_nik(&self) -> String {
        format!("{}******{}", &self.nik10[..6], &self.nik10[6..])
    }

    /// The name as shown, with the truncation mark when it was cut.
    pub fn display_name(&self) -> String {
        if self.truncated {
            format!("{}{TRUNCATION_MARK}", self.name)
        } else {
            self.name.clone()
        }
    }

    /// Recorded time as RFC 3339 UTC.
    pub fn time_utc(&self) -> String {
        time::OffsetDateTime::from_unix_timestamp(i64::from(self.time))
            .map(crate::timefmt::stamp)
            .unwrap_or_default()
    }
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(CONTEXT.len() + body.len());
    m.extend_from_slice(CONTEXT);
    m.extend_from_slice(body);
    m
}

impl Signed {
    /// Decodes `IKD1:…` text (no signature check yet: see [`Signed::verify`]).
    pub fn decode(text: &str) -> Result<Signed, DecodeError> {
        let text = text.trim_end_matches(['\r', '\n']);
        let b45 = text.strip_prefix(PREFIX).ok_or(DecodeError::NotIkd)?;
        // Base45 has a space in its alphabet, so spaces are kept; but a space pasted after the
        // text by accident is forgiven when the text does not decode with it.
        let bytes = base45::decode(b45)
            .or_else(|_| base45::decode(b45.trim_end_matches(' ')))
            .map_err(|_| DecodeError::Base45)?;
        if bytes.len() < HEADER_LEN + 1 + SIGNATURE_LEN || bytes.len() > MAX_LEN {
            return Err(DecodeError::Malformed("length"));
        }
        let (body, sig) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
        if body[0] != VERSION {
            return Err(DecodeError::Malformed("version"));
        }
        let flags = body[1];
        if flags & !(FLAG_PACKED | FLAG_TRUNCATED) != 0 {
            return Err(DecodeError::Malformed("flags"));
        }
        let village = digits40(&body[30..35]).ok_or(DecodeError::Malformed("village"))?;
        let nik10 = digits40(&body[35..40]).ok_or(DecodeError::Malformed("nik"))?;
        let name_bytes = &body[HEADER_LEN..];
        let name = if flags & FLAG_PACKED != 0 {
            unpack(name_bytes).ok_or(DecodeError::Malformed("name"))?
        } else {
            String::from_utf8(name_bytes.to_vec()).map_err(|_| DecodeError::Malformed("name"))?
        };
        if name.is_empty() {
            return Err(DecodeError::Malformed("name"));
        }
        let payload = Payload {
            record_id: body[2..18].try_into().expect("16 bytes"),
            device_id: body[18..26].try_into().expect("8 bytes"),
            time: u32::from_be_bytes(body[26..30].try_into().expect("4 bytes")),
            village,
            nik10,
            name,
            truncated: flags & FLAG_TRUNCATED != 0,
        };
        Ok(Signed {
            payload,
            body: body.to_vec(),
            signature: sig.try_into().expect("64 bytes"),
        })
    }

    /// Checks the signature with `public`, which must be the key of the slip's device.
    pub fn verify(&self, public: &[u8; PUBLIC_KEY_LEN]) -> Result<(), VerifyError> {
        let key_device = crypto::key_id(public);
        if key_device != self.payload.device_hex() {
            return Err(VerifyError::WrongKey { key_device });
        }
        if crypto::verify(public, &signed_message(&self.body), &self.signature) {
            Ok(())
        } else {
            Err(VerifyError::BadSignature)
        }
    }
}

fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn u40(digits: &str) -> [u8; 5] {
    let v: u64 = digits.parse().unwrap_or(0);
    let b = v.to_be_bytes();
    [b[3], b[4], b[5], b[6], b[7]]
}

fn digits40(b: &[u8]) -> Option<String> {
    let mut v = 0u64;
    for &x in b {
        v = (v << 8) | u64::from(x);
    }
    (v < 10_000_000_000).then(|| format!("{v:010}"))
}

/// The name cut to what fits in [`MAX_NAME_BYTES`], and whether it was cut.
fn fit_name(name: &str) -> (String, bool) {
    let name = name.trim();
    let packable = name.bytes().all(|b| ALPHABET.contains(&b));
    let max_chars = if packable {
        MAX_NAME_BYTES / 2 * 3
    } else {
        usize::MAX
    };
    let mut out = String::new();
    for c in name.chars() {
        let fits = if packable {
            out.len() < max_chars
        } else {
            out.len() + c.len_utf8() <= MAX_NAME_BYTES
        };
        if !fits {
            return (out.trim_end().to_string(), true);
        }
        out.push(c);
    }
    (out, false)
}

/// Three characters of the alphabet (index + 1, 0 = padding) in two bytes: 40³ = 64,000.
fn pack(name: &str) -> Option<Vec<u8>> {
    let idx: Vec<u16> = name
        .bytes()
        .map(|b| ALPHABET.iter().position(|&a| a == b).map(|i| i as u16 + 1))
        .collect::<Option<_>>()?;
    let mut out = Vec::with_capacity(idx.len().div_ceil(3) * 2);
    for chunk in idx.chunks(3) {
        let g = |i: usize| chunk.get(i).copied().unwrap_or(0);
        let v = g(0) * 1600 + g(1) * 40 + g(2);
        out.extend_from_slice(&v.to_be_bytes());
    }
    Some(out)
}

fn unpack(bytes: &[u8]) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let mut idx = Vec::with_capacity(bytes.len() / 2 * 3);
    for pair in bytes.chunks(2) {
        let v = u16::from_be_bytes([pair[0], pair[1]]);
        if v >= 64_000 {
            return None;
        }
        idx.extend([v / 1600, v / 40 % 40, v % 40]);
    }
    while idx.last() == Some(&0) {
        idx.pop();
    }
    idx.iter()
        .map(|&i| match i {
            1..=31 => Some(char::from(ALPHABET[usize::from(i) - 1])),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE_TEXT: &str = "IKD1:W50/80P3E0KFZVFQ:HPD2--ACPJ%7WWP59 ULW9ZNDYUPB204MEGDF6$CM5CB2C:VA761B1HW424HK9Q5TAW  78I9+TC9+OFRH%IT06B5VHMVG0BP28HM+ORNPBB24RA ZCB8QS6IF8B:9F G7-4B86R3APUCBSXNDULNID3W7";
    const RID: &str = "01936f5e-7a2b-7c3d-8e4f-123456789abc";

    fn sample(key: &KeyPair, name: &str) -> Payload {
        Payload::new(
            RID,
            &key.id(),
            "2026-11-23T05:12:09.123Z",
            "1702011001",
            "1702064107950003",
            name,
        )
        .unwrap()
    }

    fn key() -> KeyPair {
        KeyPair::from_seed([7; 32])
    }

    #[test]
    fn round_trip_and_verify() {
        let k = key();
        let p = sample(&k, "NI LUH PUTU AYU");
        let text = p.sign(&k);
        assert!(text.starts_with("IKD1:"));
        let s = Signed::decode(&text).unwrap();
        assert_eq!(s.payload, p);
        assert_eq!(Signed::decode(&format!("{text} \n")).unwrap().payload, p);
        s.verify(&k.public()).unwrap();
        assert_eq!(s.payload.record_uuid(), RID);
        assert_eq!(s.payload.masked_nik(), "170206******0003");
        assert_eq!(s.payload.time_utc(), "2026-11-23T05:12:09.000Z");
        assert_eq!(s.payload.device_hex(), k.id());
    }

    /// The example of docs/slip-format.md (Ed25519 signatures are deterministic).
    #[test]
    fn documented_example() {
        let k = key();
        let p = sample(&k, "NI LUH PUTU AYU");
        let body = p.body();
        assert_eq!(body.len(), 50);
        assert_eq!(&body[26..30], &1_795_410_729u32.to_be_bytes());
        let text = p.sign(&k);
        assert_eq!(text.len(), 5 + 171);
        assert_eq!(super::super::qr::Qr::encode(&text).unwrap().version, 7);
        assert_eq!(k.id(), "fe812c12f3ab4ce6");
        assert_eq!(
            hex::encode(&body),
            "010101936f5e7a2b7c3d8e4f123456789abcfe812c12f3ab4ce66b03cb29\
             006572a0790065735fe35f5154b908fe86b110a6"
        );
        assert_eq!(text, EXAMPLE_TEXT);
    }

    #[test]
    fn every_flipped_bit_fails() {
        let k = key();
        let text = sample(&k, "M. YUSUF-AL'ANSHARI").sign(&k);
        let mut bytes = base45::decode(&text[PREFIX.len()..]).unwrap();
        for i in 0..bytes.len() * 8 {
            bytes[i / 8] ^= 1 << (i % 8);
            let t = format!("{PREFIX}{}", base45::encode(&bytes));
            let ok = Signed::decode(&t).map(|s| s.verify(&k.public()).is_ok());
            assert!(!matches!(ok, Ok(true)), "bit {i} flipped still verifies");
            bytes[i / 8] ^= 1 << (i % 8);
        }
    }

    #[test]
    fn swapped_name_or_wrong_key_fails() {
        let k = key();
        let a = Signed::decode(&sample(&k, "BUDI SANTOSO").sign(&k)).unwrap();
        let b = Signed::decode(&sample(&k, "SITI AMINAH").sign(&k)).unwrap();
        // Splice b's name into a's bytes, keep a's signature.
        let mut forged = a.body[..HEADER_LEN].to_vec();
        forged.extend_from_slice(&b.body[HEADER_LEN..]);
        forged.extend_from_slice(&a.signature);
        let t = format!("{PREFIX}{}", base45::encode(&forged));
        let s = Signed::decode(&t).unwrap();
        assert_eq!(s.payload.name, "SITI AMINAH");
        assert_eq!(s.verify(&k.public()), Err(VerifyError::BadSignature));
        let other = KeyPair::from_seed([8; 32]);
        assert!(matches!(
            a.verify(&other.public()),
            Err(VerifyError::WrongKey { .. })
        ));
        // A key of the right id cannot exist for another seed, but a forged signature by another
        // key under this device id fails as a bad signature.
        let mut p = sample(&k, "BUDI SANTOSO");
        p.device_id = hex::decode(other.id()).unwrap().try_into().unwrap();
        let by_other = Signed::decode(&p.sign(&k)).unwrap();
        assert_eq!(
            by_other.verify(&other.public()),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn names_fit_and_long_ones_are_marked() {
        let k = key();
        let sixty = "ABCDEFGHIJ KLMNOPQRS TUVWXYZAB CDEFGHIJK LMNOPQRST UVWXYZABC";
        assert_eq!(sixty.len(), 60);
        let p = sample(&k, sixty);
        assert!(!p.truncated);
        let text = p.sign(&k);
        assert!(text.len() <= 221, "{}", text.len());
        assert_eq!(Signed::decode(&text).unwrap().payload.name, sixty);

        let long = format!("{sixty} PANJANG SEKALI");
        let p = sample(&k, &long);
        assert!(p.truncated);
        assert!(p.display_name().ends_with(TRUNCATION_MARK));
        assert!(p.sign(&k).len() <= 221);

        // Letters outside the packed alphabet go as UTF-8, cut at a character boundary.
        let accented = "JOSÉ ÁLVARO ÑUÑEZ DE LA CRUZ PÉREZ GONZÁLEZ MARTÍNEZ";
        let p = sample(&k, accented);
        assert!(p.truncated && p.name.len() <= MAX_NAME_BYTES);
        let s = Signed::decode(&p.sign(&k)).unwrap();
        assert_eq!(s.payload.name, p.name);
        s.verify(&k.public()).unwrap();
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(Signed::decode("hello").unwrap_err(), DecodeError::NotIkd);
        assert_eq!(Signed::decode("IKD1:a!!").unwrap_err(), DecodeError::Base45);
        assert!(matches!(
            Signed::decode("IKD1:00").unwrap_err(),
            DecodeError::Malformed(_)
        ));
    }
}
