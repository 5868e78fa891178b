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
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Label of the district server's sealing key, derived from its Ed25519 seed.
pub const SEAL_KEY_LABEL: &str = "ikd-field seal key v1";
/// Label of a device's key for the keyed NIK hash, derived from its Ed25519 seed.
pub const NIK_TAG_LABEL: &str = "ikd-field nik tag v1";

/// What is sealed: the identifiers a lost laptop must not expose.
///
/// Inside the box they are in the compact binary form of [`Secrets::encode`] (docs/sealing.md,
/// "What is inside a box"), not JSON: the box is random, so gzip cannot shrink field names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secrets {
    /// 16-digit NIK.
    pub nik: String,
    /// E.164 mobile number.
    pub phone: String,
    pub email: Option<String>,
}

/// Version byte of the sealed plaintext format ([`Secrets::encode`]).
pub const FORMAT_VERSION: u8 = 1;
/// Digits of a NIK.
const NIK_DIGITS: usize = 16;
/// Most digits of an E.164 number (after the `+`).
pub const PHONE_MAX_DIGITS: usize = 15;
/// Longest e-mail (UTF-8 bytes) the format holds; validation allows 254 (domain/email.rs).
pub const EMAIL_MAX_BYTES: usize = 255;
/// The filler nibble after an odd number of phone digits.
const BCD_FILL: u8 = 0xF;

/// Why [`Secrets`] cannot be sealed: a value that validation would not have let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsealable {
    /// The NIK is not exactly 16 digits.
    Nik,
    /// The phone is not `+` and 1–15 digits.
    Phone,
    /// The e-mail is empty or longer than [`EMAIL_MAX_BYTES`].
    Email,
}

impl std::fmt::Display for Unsealable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&match self {
            Unsealable::Nik => crate::tr!(
                "NIK bukan 16 digit angka, tidak dapat disegel",
                "the NIK is not 16 digits and cannot be sealed"
            ),
            Unsealable::Phone => crate::tr!(
                "nomor HP bukan + diikuti 1–15 digit, tidak dapat disegel",
                "the phone number is not + and 1–15 digits and cannot be sealed"
            ),
            Unsealable::Email => crate::tr!(
                "alamat e-mail kosong atau lebih dari 255 byte, tidak dapat disegel",
                "the e-mail address is empty or longer than 255 bytes and cannot be sealed"
            ),
        })
    }
}

impl std::error::Error for Unsealable {}

impl Secrets {
    /// The plaintext that goes into a box, format version 1 (big-endian, no padding):
    ///
    /// | bytes | content |
    /// |---|---|
    /// | 1 | format version, `1` |
    /// | 8 | NIK, its 16 digits as a `u64` |
    /// | 1 | `n`, the phone's digit count after `+` (1–15) |
    /// | ⌈n/2⌉ | the digits, packed BCD, first digit in the high nibble; `0xF` fills an odd last byte |
    /// | 1 | `m`, the e-mail's length in UTF-8 bytes (0 = no e-mail) |
    /// | m | the e-mail, UTF-8 |
    pub fn encode(&self) -> Result<Vec<u8>, Unsealable> {
        let nik = self.nik.as_bytes();
        if nik.len() != NIK_DIGITS || !nik.iter().all(u8::is_ascii_digit) {
            return Err(Unsealable::Nik);
        }
        let nik: u64 = self.nik.parse().map_err(|_| Unsealable::Nik)?;
        let phone = self
            .phone
            .strip_prefix('+')
            .map(str::as_bytes)
            .filter(|d| {
                (1..=PHONE_MAX_DIGITS).contains(&d.len()) && d.iter().all(u8::is_ascii_digit)
            })
            .ok_or(Unsealable::Phone)?;
        let email = match &self.email {
            None => &[][..],
            Some(e) if (1..=EMAIL_MAX_BYTES).contains(&e.len()) => e.as_bytes(),
            Some(_) => return Err(Unsealable::Email),
        };
        let mut out = Vec::with_capacity(1 + 8 + 1 + phone.len().div_ceil(2) + 1 + email.len());
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&nik.to_be_bytes());
        out.push(phone.len() as u8);
        for pair in phone.chunks(2) {
            let high = pair[0] - b'0';
            let low = pair.get(1).map_or(BCD_FILL, |d| d - b'0');
            out.push(high << 4 | low);
        }
        out.push(email.len() as u8);
        out.extend_from_slice(email);
        Ok(out)
    }

    /// Reads what [`Secrets::encode`] wrote, strictly: the known version, exactly the right
    /// length, a NIK below 10¹⁶, only decimal digits and the `0xF` filler in the phone, valid
    /// UTF-8 in the e-mail. Anything else is `None`. Every plaintext it accepts encodes back to
    /// the same bytes.
    pub fn decode(plain: &[u8]) -> Option<Secrets> {
        let (&version, rest) = plain.split_first()?;
        if version != FORMAT_VERSION {
            return None;
        }
        let (nik, rest) = rest.split_first_chunk::<8>()?;
        let nik = u64::from_be_bytes(*nik);
        if nik >= 10u64.pow(NIK_DIGITS as u32) {
            return None;
        }
        let (&n, rest) = rest.split_first()?;
        let n = usize::from(n);
        if !(1..=PHONE_MAX_DIGITS).contains(&n) {
            return None;
        }
        let (packed, rest) = rest.split_at_checked(n.div_ceil(2))?;
        let mut phone = String::with_capacity(1 + n);
        phone.push('+');
        for (i, byte) in packed.iter().enumerate() {
            let (high, low) = (byte >> 4, byte & 0x0F);
            let last_odd = i + 1 == packed.len() && n % 2 == 1;
            if high > 9 || (if last_odd { low != BCD_FILL } else { low > 9 }) {
                return None;
            }
            phone.push(char::from(b'0' + high));
            if !last_odd {
                phone.push(char::from(b'0' + low));
            }
        }
        let (&m, rest) = rest.split_first()?;
        if rest.len() != usize::from(m) {
            return None;
        }
        let email = match m {
            0 => None,
            _ => Some(String::from_utf8(rest.to_vec()).ok()?),
        };
        Some(Secrets {
            nik: format!("{nik:016}"),
            phone,
            email,
        })
    }
}

/// Seals `secrets` to `public` (an X25519 public key). Each call uses a fresh ephemeral key, so
/// sealing the same secrets twice gives different bytes. Refuses secrets that
/// [`Secrets::encode`] cannot hold (validated input always fits).
pub fn seal(public: &[u8; 32], secrets: &Secrets) -> Result<Vec<u8>, Unsealable> {
    let plain = secrets.encode()?;
    Ok(PublicKey::from(*public)
        .seal(&mut OsRng, &plain)
        .expect("sealing into memory cannot fail"))
}

/// Seals each of `secrets` to `public`, as [`seal`] does one (a fresh ephemeral key each), on as
/// many threads as there are cores when there are many: the X25519 work of a seal is most of the
/// cost of storing a record, and a paper list typed in later is sealed at once.
pub fn seal_many(public: &[u8; 32], secrets: &[Secrets]) -> Vec<Result<Vec<u8>, Unsealable>> {
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
    /// does not hold what [`seal`] puts in one ([`Secrets::decode`]).
    pub fn open(&self, sealed: &[u8]) -> Option<Secrets> {
        let plain = self.secret.unseal(sealed).ok()?;
        Secrets::decode(&plain)
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
        <Hmac<Sha256> as Mac>::new_from_slice(tag_key).expect("HMAC takes keys of any length");
    mac.update(nik.as_bytes());
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secrets() -> Secrets {
        Secrets {
            nik: "1702064107950003".into(),
            phone: "+6281234567890".into(),
            email: Some("siti@example.org".into()),
        }
    }

    fn round_trip(s: &Secrets) {
        let plain = s.encode().unwrap();
        assert_eq!(Secrets::decode(&plain).as_ref(), Some(s), "{s:?}");
    }

    #[test]
    fn only_the_server_opens_what_was_sealed_to_it() {
        let server = KeyPair::from_seed([1; 32]);
        let public = parse_public_hex(&server_public_hex(&server)).unwrap();
        let a = seal(&public, &secrets()).unwrap();
        let b = seal(&public, &secrets()).unwrap();
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
        let boxes: Vec<Vec<u8>> = seal_many(&public, &all)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let key = OpenKey::of_server(&server);
        let opened: Vec<_> = boxes.iter().map(|b| key.open(b).unwrap()).collect();
        assert_eq!(opened, all);
        let ephemeral: std::collections::HashSet<_> =
            boxes.iter().map(|b| b[..32].to_vec()).collect();
        assert_eq!(ephemeral.len(), boxes.len(), "no ephemeral key used twice");
        // One that does not fit is refused alone, in its place.
        let mut mixed = all.clone();
        mixed[70].nik = "170206410795".into();
        let boxes = seal_many(&public, &mixed);
        assert_eq!(boxes[70], Err(Unsealable::Nik));
        assert_eq!(boxes.iter().filter(|b| b.is_err()).count(), 1);
    }

    #[test]
    fn the_plaintext_is_the_documented_layout() {
        let plain = secrets().encode().unwrap();
        let mut want = vec![1];
        want.extend_from_slice(&1_702_064_107_950_003u64.to_be_bytes());
        want.extend_from_slice(&[13, 0x62, 0x81, 0x23, 0x45, 0x67, 0x89, 0x0F]);
        want.push(16);
        want.extend_from_slice(b"siti@example.org");
        assert_eq!(plain, want);
    }

    #[test]
    fn round_trips_with_and_without_email_and_at_every_limit() {
        round_trip(&secrets());
        round_trip(&Secrets {
            email: None,
            ..secrets()
        });
        // Even digit count (no filler), the longest phone, the shortest, leading zeros.
        round_trip(&Secrets {
            phone: "+62812345678901".into(),
            ..secrets()
        });
        round_trip(&Secrets {
            phone: "+999999999999999".into(),
            ..secrets()
        });
        round_trip(&Secrets {
            phone: "+0".into(),
            nik: "0000000000000001".into(),
            email: None,
        });
        round_trip(&Secrets {
            nik: "9999999999999999".into(),
            ..secrets()
        });
        // The longest e-mail validation lets through (254 bytes), multi-byte characters in it,
        // and the format's own limit (255 bytes).
        let local = "é".repeat(120); // 240 bytes
        let at_254 = format!("{local}@contoh.com.id"); // 240 + 14
        assert_eq!(at_254.len(), 254);
        let valid = crate::domain::email::normalize(&at_254).unwrap().unwrap();
        round_trip(&Secrets {
            email: Some(valid),
            ..secrets()
        });
        let at_255 = format!("{local}@contohh.com.id");
        assert_eq!(at_255.len(), EMAIL_MAX_BYTES);
        round_trip(&Secrets {
            email: Some(at_255),
            ..secrets()
        });
    }

    #[test]
    fn what_validation_would_refuse_is_not_sealed() {
        let public = OpenKey::generate().unwrap().public();
        let refused = |s: Secrets| seal(&public, &s).err();
        for nik in [
            "170206410795000",
            "17020641079500031",
            "17020641079500a3",
            "+702064107950003",
            "１702064107950003",
        ] {
            let s = Secrets {
                nik: nik.into(),
                ..secrets()
            };
            assert_eq!(refused(s), Some(Unsealable::Nik), "{nik}");
        }
        for phone in [
            "6281234567890",
            "+",
            "+6281234567890123",
            "+62 812345",
            "++6281234567",
        ] {
            let s = Secrets {
                phone: phone.into(),
                ..secrets()
            };
            assert_eq!(refused(s), Some(Unsealable::Phone), "{phone}");
        }
        for email in [String::new(), "a".repeat(256)] {
            let s = Secrets {
                email: Some(email),
                ..secrets()
            };
            assert_eq!(refused(s), Some(Unsealable::Email));
        }
    }

    #[test]
    fn every_truncated_extended_or_garbled_plaintext_is_refused() {
        for s in [
            secrets(),
            Secrets {
                email: None,
                ..secrets()
            },
            Secrets {
                phone: "+62812345678901".into(),
                ..secrets()
            },
        ] {
            let plain = s.encode().unwrap();
            for len in 0..plain.len() {
                assert_eq!(Secrets::decode(&plain[..len]), None, "{s:?} cut at {len}");
            }
            for extra in [0u8, 1, 0xFF] {
                let mut longer = plain.clone();
                longer.push(extra);
                assert_eq!(Secrets::decode(&longer), None, "{s:?} + {extra}");
            }
        }
        let good = secrets().encode().unwrap();
        let garbled = |at: usize, byte: u8| {
            let mut p = good.clone();
            p[at] = byte;
            Secrets::decode(&p)
        };
        assert_eq!(garbled(0, 0), None, "unknown version");
        assert_eq!(garbled(0, 2), None, "unknown version");
        let mut big = good.clone();
        big[1..9].copy_from_slice(&10_000_000_000_000_000u64.to_be_bytes());
        assert_eq!(Secrets::decode(&big), None, "a NIK of 17 digits");
        assert_eq!(garbled(9, 0), None, "a phone of no digits");
        assert_eq!(garbled(9, 16), None, "a phone of 16 digits");
        assert_eq!(garbled(9, 12), None, "digit count and bytes disagree");
        assert_eq!(garbled(10, 0xA2), None, "not a digit (high nibble)");
        assert_eq!(garbled(10, 0x6B), None, "not a digit (low nibble)");
        assert_eq!(
            garbled(16, 0x00),
            None,
            "odd last byte without the 0xF filler"
        );
        assert_eq!(garbled(16, 0xF0), None, "filler in the digit's place");
        assert_eq!(garbled(17, 15), None, "e-mail length too short");
        assert_eq!(garbled(17, 17), None, "e-mail length too long");
        assert_eq!(garbled(17, 0), None, "no e-mail but bytes follow");
        assert_eq!(garbled(18, 0xC3), None, "e-mail not UTF-8");
        // The old JSON plaintext is not read.
        assert_eq!(
            Secrets::decode(br#"{"nik":"1702064107950003","phone":"+6281234567890"}"#),
            None
        );
    }

    #[test]
    fn a_sealed_box_is_48_bytes_over_its_compact_plaintext() {
        let server = KeyPair::from_seed([4; 32]);
        let public = OpenKey::of_server(&server).public();
        let bound = |s: &Secrets| 48 + 1 + 8 + 1 + 8 + 1 + s.email.as_ref().map_or(0, String::len);
        for s in [
            secrets(),
            Secrets {
                email: None,
                ..secrets()
            },
            Secrets {
                phone: "+999999999999999".into(),
                ..secrets()
            },
        ] {
            let sealed = seal(&public, &s).unwrap();
            assert_eq!(sealed.len(), 48 + s.encode().unwrap().len());
            assert!(
                sealed.len() <= bound(&s),
                "{} > {}",
                sealed.len(),
                bound(&s)
            );
            assert_eq!(OpenKey::of_server(&server).open(&sealed), Some(s));
        }
        // A typical record: 13-digit phone, no e-mail: 48 + 18 bytes (it was 48 + 51 as JSON).
        let typical = Secrets {
            email: None,
            ..secrets()
        };
        assert_eq!(seal(&public, &typical).unwrap().len(), 66);
    }

    fn cases(n: u32) -> ProptestConfig {
        ProptestConfig {
            cases: n,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    /// Plaintexts worth trying: anything, or anything after the right version byte, or a
    /// valid plaintext with one byte changed, cut or extended.
    fn plaintexts() -> impl Strategy<Value = Vec<u8>> {
        let any_bytes = prop::collection::vec(any::<u8>(), 0..300);
        let versioned = prop::collection::vec(any::<u8>(), 0..300).prop_map(|mut v| {
            v.insert(0, FORMAT_VERSION);
            v
        });
        let mutated = (any::<usize>(), any::<u8>(), 0..3u8).prop_map(|(at, byte, how)| {
            let mut p = secrets().encode().unwrap();
            let at = at % p.len();
            match how {
                0 => p[at] = byte,
                1 => p.truncate(at),
                _ => p.insert(at, byte),
            }
            p
        });
        prop_oneof![any_bytes, versioned, mutated]
    }

    fn valid_secrets() -> impl Strategy<Value = Secrets> {
        (
            "[0-9]{16}",
            "\\+[0-9]{1,15}",
            prop::option::of("[^@]{1,60}@[a-z0-9é]{1,20}\\.id"),
        )
            .prop_map(|(nik, phone, email)| Secrets { nik, phone, email })
    }

    proptest! {
        #![proptest_config(cases(2000))]

        /// The decoder never panics, and what it accepts is exactly what the encoder writes.
        #[test]
        fn decoding_arbitrary_plaintext_never_panics(plain in plaintexts()) {
            if let Some(s) = Secrets::decode(&plain) {
                prop_assert_eq!(s.encode().unwrap(), plain);
            }
        }
    }

    proptest! {
        #![proptest_config(cases(300))]

        #[test]
        fn valid_secrets_round_trip(s in valid_secrets()) {
            let plain = s.encode().unwrap();
            prop_assert_eq!(Secrets::decode(&plain), Some(s));
        }
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
