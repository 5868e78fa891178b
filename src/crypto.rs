//! Keys, signatures and hashes, all from audited crates (ed25519-dalek, sha2); nothing home-made.
//!
//! A device's id is derived from its public key: the first 8 bytes of SHA-256(public key), in hex
//! (16 characters). So a slip that names a device id can be matched to its key, and a key cannot be
//! swapped under an existing id.
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

/// Windows' owner-only files and folders (what mode 0600 and 0700 are on unix).
#[cfg(windows)]
pub mod owner_only;

pub const PUBLIC_KEY_LEN: usize = 32;
pub const SIGNATURE_LEN: usize = 64;

/// An Ed25519 signing key (a device's or the district server's).
pub struct KeyPair {
    signing: SigningKey,
}

impl KeyPair {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> std::io::Result<KeyPair> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(KeyPair {
            signing: SigningKey::from_bytes(&seed),
        })
    }

    pub fn from_seed(seed: [u8; 32]) -> KeyPair {
        KeyPair {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// Reads a key file written by [`KeyPair::save`] (the 32-byte seed in hex).
    pub fn load(path: &Path) -> std::io::Result<KeyPair> {
        load_secret(path).map(KeyPair::from_seed)
    }

    /// Writes the seed in hex to a new file readable by its owner only (mode 0600), durably.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        save_secret(path, &self.signing.to_bytes())
    }

    /// A laptop's device key: as [`save_field_secret`] writes it (locked under the PIN, if any).
    pub fn save_field(&self, path: &Path) -> std::io::Result<()> {
        save_field_secret(path, &self.signing.to_bytes())
    }

    /// 32 bytes derived from this key's seed for another purpose, named by `label`:
    /// SHA-256(label, 0x00, seed). One key file serves several independent keys (the district
    /// server's sealing key, a device's keyed NIK hash) without any of them revealing another.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(label.as_bytes());
        h.update([0u8]);
        h.update(self.signing.to_bytes());
        h.finalize().into()
    }

    pub fn public(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.signing.verifying_key().to_bytes()
    }

    pub fn public_hex(&self) -> String {
        hex::encode(self.public())
    }

    pub fn id(&self) -> String {
        key_id(&self.public())
    }

    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }
}

/// Reads a 32-byte secret written by [`save_secret`] (hex, one line), or a laptop's secret
/// locked under the officer's PIN ([`crate::keylock`]; the error then carries a
/// [`crate::keylock::Locked`] when it cannot be opened).
pub fn load_secret(path: &Path) -> std::io::Result<[u8; 32]> {
    let text = std::fs::read_to_string(path)?;
    if crate::keylock::is_locked(&text) {
        return crate::keylock::open(&text).map_err(|l| {
            let kind = match l {
                crate::keylock::Locked::Damaged => std::io::ErrorKind::InvalidData,
                _ => std::io::ErrorKind::PermissionDenied,
            };
            std::io::Error::new(kind, l)
        });
    }
    hex::decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is not an ikd-field key file", path.display()),
            )
        })
}

/// Writes a 32-byte secret in hex to a new file readable by its owner only (mode 0600; on
/// Windows the owner alone in its DACL), and syncs it to disk. Never overwrites an existing file.
pub fn save_secret(path: &Path, secret: &[u8; 32]) -> std::io::Result<()> {
    write_owner_only(path, format!("{}\n", hex::encode(secret)).as_bytes())
}

/// A laptop's secret (device key, holding key): locked under the officer's PIN when one was given
/// in this process ([`crate::keylock`]), else as [`save_secret`] writes it.
pub fn save_field_secret(path: &Path, secret: &[u8; 32]) -> std::io::Result<()> {
    match crate::keylock::pin() {
        Some(pin) => write_owner_only(path, crate::keylock::lock(secret, &pin)?.as_bytes()),
        None => save_secret(path, secret),
    }
}

/// Locks the laptop's secrets at `paths` under `pin`, all or none: each is first written locked
/// beside itself (`X.key.new`, synced), and only when every one is written are they renamed over
/// the originals, whose old content is then overwritten where the file system allows. An
/// interruption between two renames is finished by [`recover_field_secrets`] at the next open.
pub fn relock_field_secrets(paths: &[&Path], pin: &str) -> std::io::Result<()> {
    let mut staged = Vec::new();
    for path in paths {
        let secret = zeroize::Zeroizing::new(load_secret(path)?);
        let text = crate::keylock::lock(&secret, pin)?;
        let tmp = staged_path(path);
        let _ = std::fs::remove_file(&tmp);
        write_owner_only(&tmp, text.as_bytes())?;
        staged.push((path.to_path_buf(), tmp));
    }
    for (path, tmp) in &staged {
        // Kept open across the rename: the old content is overwritten through it afterwards.
        let old = std::fs::OpenOptions::new().write(true).open(path).ok();
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        std::fs::rename(tmp, path)?;
        if let Some(mut f) = old {
            let _ = f
                .write_all(&vec![0u8; len as usize])
                .and_then(|_| f.sync_all());
        }
    }
    if let Some(dir) = paths.first().and_then(|p| p.parent())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

fn staged_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    path.with_file_name(name)
}

/// Finishes or undoes an interrupted [`relock_field_secrets`]: a staged `X.key.new` that opens
/// with this process's PIN replaces `X.key`; one that does not, while `X.key` does, is left
/// over from a change that never started its renames and is removed.
pub fn recover_field_secrets(paths: &[&Path]) -> std::io::Result<()> {
    for path in paths {
        let tmp = staged_path(path);
        let Ok(text) = std::fs::read_to_string(&tmp) else {
            continue;
        };
        if crate::keylock::open(&text).is_ok() {
            std::fs::rename(&tmp, path)?;
        } else if load_secret(path).is_ok() {
            std::fs::remove_file(&tmp)?;
        }
    }
    Ok(())
}

/// A new file readable by its owner only, with `bytes`, synced to disk.
fn write_owner_only(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(windows)]
    owner_only::prepare(&mut opts);
    let mut f = opts.open(path)?;
    // Before a byte of the secret is in it.
    #[cfg(windows)]
    owner_only::restrict(&f)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The id of a public key: hex of the first 8 bytes of its SHA-256.
pub fn key_id(public: &[u8; PUBLIC_KEY_LEN]) -> String {
    hex::encode(&sha256(public)[..8])
}

/// Parses a public key written in hex (64 characters).
pub fn parse_public_hex(text: &str) -> Option<[u8; PUBLIC_KEY_LEN]> {
    hex::decode(text.trim()).ok()?.try_into().ok()
}

/// True when `signature` is `public`'s Ed25519 signature of `message` (strict verification).
pub fn verify(public: &[u8; PUBLIC_KEY_LEN], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(signature) else {
        return false;
    };
    key.verify_strict(message, &sig).is_ok() && key.verify(message, &sig).is_ok()
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha256(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_tamper() {
        let k = KeyPair::generate().unwrap();
        let sig = k.sign(b"batch body");
        assert!(verify(&k.public(), b"batch body", &sig));
        assert!(!verify(&k.public(), b"batch bodY", &sig));
        let other = KeyPair::generate().unwrap();
        assert!(!verify(&other.public(), b"batch body", &sig));
        assert!(!verify(&k.public(), b"batch body", &sig[..63]));
        assert_eq!(k.id().len(), 16);
    }

    #[test]
    fn key_file_round_trip_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        let k = KeyPair::generate().unwrap();
        k.save(&path).unwrap();
        assert_eq!(KeyPair::load(&path).unwrap().public(), k.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Never overwrites an existing key.
        assert!(k.save(&path).is_err());
    }

    #[test]
    fn derived_keys_differ_by_label_and_key() {
        let k = KeyPair::from_seed([7; 32]);
        assert_eq!(k.derive("a"), k.derive("a"));
        assert_ne!(k.derive("a"), k.derive("b"));
        assert_ne!(k.derive("a"), KeyPair::from_seed([8; 32]).derive("a"));
        assert_ne!(k.derive("a")[..], [7u8; 32][..]);
    }
}
