//! The laptop's secrets at rest under the officer's PIN (issue #17, item 11).
//!
//! A locked key file holds the 32-byte secret sealed with XSalsa20-Poly1305 under a key stretched
//! from the PIN with Argon2id (64 MiB, 3 passes), one line of text:
//!
//! ```text
//! ikd-key-v2 argon2id m=65536 t=3 p=1 SALT NONCE BOX      (base64, no padding)
//! ```
//!
//! With the device key locked, a copied data folder yields neither the device's signing key nor
//! the key of the NIK hashes: the masked NIK and its hash no longer give the NIK by a search over
//! birth dates, and each guess of the PIN costs an Argon2id run (SECURITY.md gives the figures).
//!
//! The PIN is given once per process (the desk's unlock page, a terminal prompt, or
//! `IKD_FIELD_PIN` for scripts) and kept in memory for it; the stretched key is cached per salt.
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use std::sync::Mutex;
use zeroize::Zeroizing;

const MAGIC: &str = "ikd-key-v2";
/// Argon2id memory (KiB), passes and lanes of new files.
pub const MEMORY_KIB: u32 = 64 * 1024;
pub const PASSES: u32 = 3;
pub const LANES: u32 = 1;
/// The shortest PIN taken.
pub const MIN_PIN: usize = 6;

/// Why a locked secret could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    /// No PIN was given in this process.
    NoPin,
    /// The PIN given does not open it.
    WrongPin,
    /// Not a locked key file this version can read.
    Damaged,
}

impl std::fmt::Display for Locked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Locked::NoPin => "locked with a PIN; no PIN given",
            Locked::WrongPin => "the PIN does not open it",
            Locked::Damaged => "damaged locked key file",
        })
    }
}

impl std::error::Error for Locked {}

/// The PIN of this process, and the keys stretched from it (by salt).
struct Unlocked {
    pin: Option<Zeroizing<String>>,
    stretched: Vec<([u8; 16], Zeroizing<[u8; 32]>)>,
}

static STATE: Mutex<Unlocked> = Mutex::new(Unlocked {
    pin: None,
    stretched: Vec::new(),
});

/// Sets the PIN of this process (`None` forgets it).
/// A PIN as every path takes it: without spaces around it (a terminal prompt trims them).
pub fn normalise(pin: &str) -> &str {
    pin.trim()
}

pub fn set_pin(pin: Option<&str>) {
    if let Ok(mut s) = STATE.lock() {
        s.pin = pin.map(|p| Zeroizing::new(normalise(p).to_string()));
        s.stretched.clear();
    }
}

/// The PIN of this process.
pub fn pin() -> Option<Zeroizing<String>> {
    STATE.lock().ok().and_then(|s| s.pin.clone())
}

/// True when a PIN was given in this process.
pub fn have_pin() -> bool {
    STATE.lock().map(|s| s.pin.is_some()).unwrap_or(false)
}

/// True when `text` is a locked key file.
pub fn is_locked(text: &str) -> bool {
    text.trim_start().starts_with(MAGIC)
}

/// A PIN the officer may choose: at least [`MIN_PIN`] characters, not all the same.
pub fn acceptable(pin: &str) -> bool {
    let pin = normalise(pin);
    let mut chars = pin.chars();
    let first = chars.next();
    pin.chars().count() >= MIN_PIN && chars.any(|c| Some(c) != first)
}

fn stretch(
    pin: &str,
    salt: &[u8; 16],
    m: u32,
    t: u32,
    p: u32,
) -> Result<Zeroizing<[u8; 32]>, Locked> {
    let params = Params::new(m, t, p, Some(32)).map_err(|_| Locked::Damaged)?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(pin.as_bytes(), salt, out.as_mut())
        .map_err(|_| Locked::Damaged)?;
    Ok(out)
}

/// The stretched key for `salt` under this process's PIN (cached).
fn key_for(salt: &[u8; 16], m: u32, t: u32, p: u32) -> Result<Zeroizing<[u8; 32]>, Locked> {
    let pin = {
        let s = STATE.lock().map_err(|_| Locked::NoPin)?;
        if let Some((_, k)) = s.stretched.iter().find(|(s, _)| s == salt) {
            return Ok(k.clone());
        }
        s.pin.clone().ok_or(Locked::NoPin)?
    };
    let k = stretch(&pin, salt, m, t, p)?;
    if let Ok(mut s) = STATE.lock() {
        s.stretched.push((*salt, k.clone()));
    }
    Ok(k)
}

/// `secret` locked under `pin`, as the text of a key file.
pub fn lock(secret: &[u8; 32], pin: &str) -> std::io::Result<String> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut salt).map_err(|e| std::io::Error::other(e.to_string()))?;
    getrandom::fill(&mut nonce).map_err(|e| std::io::Error::other(e.to_string()))?;
    let key = stretch(normalise(pin), &salt, MEMORY_KIB, PASSES, LANES)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let sealed = XSalsa20Poly1305::new(Key::from_slice(key.as_ref()))
        .encrypt(Nonce::from_slice(&nonce), secret.as_slice())
        .map_err(|_| std::io::Error::other("seal"))?;
    Ok(format!(
        "{MAGIC} argon2id m={MEMORY_KIB} t={PASSES} p={LANES} {} {} {}\n",
        B64.encode(salt),
        B64.encode(nonce),
        B64.encode(sealed)
    ))
}

/// Whether `pin` opens the locked key file's text. When it does, it becomes this process's PIN
/// with its stretched key cached, so the key file then opens without stretching again; a wrong
/// guess (the desk's unlock page) leaves the process as it was.
pub fn take_pin_if_it_opens(text: &str, pin: &str) -> bool {
    let Ok((salt, m, t, p, nonce, sealed)) = parts(text) else {
        return false;
    };
    let Ok(key) = stretch(normalise(pin), &salt, m, t, p) else {
        return false;
    };
    let opens = XSalsa20Poly1305::new(Key::from_slice(key.as_ref()))
        .decrypt(Nonce::from_slice(&nonce), sealed.as_slice())
        .is_ok();
    if opens {
        set_pin(Some(pin));
        if let Ok(mut s) = STATE.lock() {
            s.stretched.push((salt, key));
        }
    }
    opens
}

type Parts = ([u8; 16], u32, u32, u32, [u8; 24], Vec<u8>);

/// Opens a locked key file's text with this process's PIN.
pub fn open(text: &str) -> Result<[u8; 32], Locked> {
    let (salt, m, t, p, nonce, sealed) = parts(text)?;
    let key = key_for(&salt, m, t, p)?;
    let plain = Zeroizing::new(
        XSalsa20Poly1305::new(Key::from_slice(key.as_ref()))
            .decrypt(Nonce::from_slice(&nonce), sealed.as_slice())
            .map_err(|_| Locked::WrongPin)?,
    );
    if plain.len() != 32 {
        return Err(Locked::Damaged);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&plain);
    Ok(out)
}

/// The fields of a locked key file.
fn parts(text: &str) -> Result<Parts, Locked> {
    let f: Vec<&str> = text.split_whitespace().collect();
    let [magic, alg, m, t, p, salt, nonce, sealed] = f[..] else {
        return Err(Locked::Damaged);
    };
    if magic != MAGIC || alg != "argon2id" {
        return Err(Locked::Damaged);
    }
    let num = |s: &str, key: &str, max: u32| -> Result<u32, Locked> {
        s.strip_prefix(key)
            .and_then(|v| v.parse().ok())
            .filter(|v| (1..=max).contains(v))
            .ok_or(Locked::Damaged)
    };
    // Bounded near what is written (64 MiB, 3 passes, 1 lane), so an edited file cannot make
    // the laptop stretch for minutes or take a gigabyte.
    let (m, t, p) = (
        num(m, "m=", 256 * 1024)?,
        num(t, "t=", 10)?,
        num(p, "p=", 4)?,
    );
    let salt: [u8; 16] = B64
        .decode(salt)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(Locked::Damaged)?;
    let nonce: [u8; 24] = B64
        .decode(nonce)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(Locked::Damaged)?;
    let sealed = B64.decode(sealed).map_err(|_| Locked::Damaged)?;
    Ok((salt, m, t, p, nonce, sealed))
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test, as the PIN is the process's.
    #[test]
    fn a_locked_secret_opens_with_its_pin_only() {
        let secret = [7u8; 32];
        let text = lock(&secret, "261095").unwrap();
        assert!(is_locked(&text));
        assert!(!text.contains(&hex::encode(secret)));
        set_pin(None);
        assert_eq!(open(&text), Err(Locked::NoPin));
        set_pin(Some("261096"));
        assert_eq!(open(&text), Err(Locked::WrongPin));
        set_pin(Some("261095"));
        assert_eq!(open(&text), Ok(secret));
        // A changed byte of the box, or a missing field, is refused.
        let mut parts: Vec<String> = text.split_whitespace().map(String::from).collect();
        let mut b = B64.decode(&parts[7]).unwrap();
        b[0] ^= 1;
        parts[7] = B64.encode(b);
        assert_eq!(open(&parts.join(" ")), Err(Locked::WrongPin));
        assert_eq!(open(&parts[..7].join(" ")), Err(Locked::Damaged));
        // Parameters that would stretch for hours are refused before any work.
        let slow = text.replace("t=3", "t=5000");
        assert_eq!(open(&slow), Err(Locked::Damaged));
        set_pin(None);
    }

    #[test]
    fn pins_an_officer_may_choose() {
        assert!(acceptable("261095"));
        assert!(acceptable("kopi pagi"));
        assert!(!acceptable("12345"));
        assert!(!acceptable("000000"));
    }
}
