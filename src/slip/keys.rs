//! Public keys that `verify` trusts: one given on the command line, a keys file from the
//! district, or this device's own key.
//!
//! A keys file maps device ids to public keys, one device per line: `DEVICE_ID PUBLIC_KEY_HEX`
//! (whitespace, `=`, `:` or `,` between them; `#` starts a comment). A line may also hold the key
//! alone, its id is then derived. A JSON object `{"DEVICE_ID": "PUBLIC_KEY_HEX", …}` works too.
//! A line whose device id is not the id of its key is refused: the id is derived from the key.
use crate::crypto::{self, PUBLIC_KEY_LEN};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: BTreeMap<String, [u8; PUBLIC_KEY_LEN]>,
}

impl KeyRing {
    pub fn single(public: [u8; PUBLIC_KEY_LEN]) -> KeyRing {
        let mut r = KeyRing::default();
        r.keys.insert(crypto::key_id(&public), public);
        r
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn get(&self, device_id: &str) -> Option<&[u8; PUBLIC_KEY_LEN]> {
        self.keys.get(device_id)
    }

    /// The only key, when there is exactly one (used to tell "wrong key" from "unknown device").
    pub fn only(&self) -> Option<(&String, &[u8; PUBLIC_KEY_LEN])> {
        (self.keys.len() == 1)
            .then(|| self.keys.iter().next())
            .flatten()
    }

    /// Parses a keys file; the error names the line.
    pub fn parse(text: &str) -> Result<KeyRing, String> {
        let mut ring = KeyRing::default();
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') {
            let map: BTreeMap<String, String> =
                serde_json::from_str(trimmed).map_err(|e| format!("JSON: {e}"))?;
            for (id, key) in map {
                ring.add(Some(&id), &key)
                    .map_err(|e| format!("{id}: {e}"))?;
            }
            return Ok(ring);
        }
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let parts: Vec<&str> = line
                .split(|c: char| c.is_whitespace() || matches!(c, '=' | ':' | ','))
                .filter(|p| !p.is_empty())
                .collect();
            let res = match parts.as_slice() {
                [key] => ring.add(None, key),
                [id, key] => ring.add(Some(id), key),
                _ => Err("expected DEVICE_ID PUBLIC_KEY".to_string()),
            };
            res.map_err(|e| format!("line {}: {e}", n + 1))?;
        }
        Ok(ring)
    }

    /// Adds `key` (64 hex) under its own id; `id`, when given, must be that id.
    pub(crate) fn add(&mut self, id: Option<&str>, key: &str) -> Result<(), String> {
        let public = crypto::parse_public_hex(key).ok_or("the public key is not 64 hex digits")?;
        let derived = crypto::key_id(&public);
        if let Some(id) = id
            && !id.eq_ignore_ascii_case(&derived)
        {
            return Err(format!(
                "device id {id} does not match its key (id {derived})"
            ));
        }
        self.keys.insert(derived, public);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyPair;

    #[test]
    fn keys_files() {
        let a = KeyPair::from_seed([1; 32]);
        let b = KeyPair::from_seed([2; 32]);
        let text = format!(
            "# district keys\n{} {}\n{}  # no id\n",
            a.id(),
            a.public_hex(),
            b.public_hex()
        );
        let r = KeyRing::parse(&text).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r.get(&b.id()), Some(&b.public()));
        let json = format!("{{\"{}\": \"{}\"}}", a.id(), a.public_hex());
        assert_eq!(
            KeyRing::parse(&json).unwrap().get(&a.id()),
            Some(&a.public())
        );
        let wrong = format!("{} {}\n", b.id(), a.public_hex());
        assert!(KeyRing::parse(&wrong).unwrap_err().contains("line 1"));
        assert!(KeyRing::parse("abc def\n").is_err());
    }
}
