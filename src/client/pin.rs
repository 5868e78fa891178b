//! Enrolment pinning (`enrol --expect-server-id ID`, `server forward enrol --expect-server-id
//! ID`): the server's identity is given beforehand — its short id (16 hex characters, as `serve`
//! and `server token` print) or its full public key (64 hex) — and enrolment goes ahead only
//! when the server proves to be that one: its `/v1/health` answer must name it (checked before
//! the token is spent), and the enrolment answer must name it too and be signed by that key
//! (so its sealing key and device id cannot have been swapped on the way).
use crate::crypto::{self, PUBLIC_KEY_LEN};
use crate::error::AppError;
use crate::protocol::{EnrolResponse, Health};
use crate::tr;

/// The server identity an enrolment expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedServer {
    /// The short server id (hex of the first 8 bytes of SHA-256 of the key).
    id: String,
    /// The full key, when it was given.
    key: Option<[u8; PUBLIC_KEY_LEN]>,
}

impl ExpectedServer {
    /// Reads a short server id (16 hex) or a full server public key (64 hex); case, spaces,
    /// dashes and colons do not matter. Anything else is a usage error (exit 2).
    pub fn parse(text: &str) -> Result<ExpectedServer, AppError> {
        let clean: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | ':'))
            .collect::<String>()
            .to_ascii_lowercase();
        let hex_only = clean.chars().all(|c| c.is_ascii_hexdigit());
        match clean.len() {
            16 if hex_only => Ok(ExpectedServer {
                id: clean,
                key: None,
            }),
            64 if hex_only => {
                let key = crypto::parse_public_hex(&clean).ok_or_else(|| bad(text))?;
                Ok(ExpectedServer {
                    id: crypto::key_id(&key),
                    key: Some(key),
                })
            }
            _ => Err(bad(text)),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// True when `server_public_key` (hex) is the expected server's key and `server_id` its id.
    pub fn matches(&self, server_id: &str, server_public_key: &str) -> bool {
        let Some(key) = crypto::parse_public_hex(server_public_key) else {
            return false;
        };
        crypto::key_id(&key) == self.id
            && server_id.trim().eq_ignore_ascii_case(&self.id)
            && self.key.is_none_or(|k| k == key)
    }

    /// Before the token is spent: the server at `url` must answer `/v1/health` as this server.
    pub fn check_health(&self, url: &str, h: &Health) -> Result<(), AppError> {
        if self.matches(&h.server_id, &h.server_public_key) {
            return Ok(());
        }
        Err(AppError::other(tr!(
            "Server di {url} bukan server yang diharapkan: id-nya {}, seharusnya {}. Pendaftaran dibatalkan; token belum terpakai dan tidak ada yang diubah.",
            "The server at {url} is not the expected one: its id is {}, expected {}. Enrolment cancelled; the token is not spent and nothing was changed.",
            h.server_id,
            self.id
        ))
        .hint(hint())
        .details(serde_json::json!({
            "server": url,
            "server_id": h.server_id,
            "expected_server_id": self.id,
            "token_spent": false,
        })))
    }

    /// After enrolment: the answer must name this server and be signed by its key (`signed`:
    /// the answer's signature verifies with the key it names). The token may already be spent.
    pub fn check_answer(
        &self,
        url: &str,
        ans: &EnrolResponse,
        signed: bool,
    ) -> Result<(), AppError> {
        if self.matches(&ans.server_id, &ans.server_public_key) && signed {
            return Ok(());
        }
        Err(AppError::other(tr!(
            "Jawaban pendaftaran dari {url} bukan dari server yang diharapkan ({}; id dalam jawaban {}, bertanda tangan sah: {}). Tidak ada yang disimpan; token mungkin sudah terpakai.",
            "The enrolment answer from {url} is not from the expected server ({}; id in the answer {}, validly signed: {}). Nothing was stored; the token may be spent.",
            self.id,
            ans.server_id,
            if signed { tr!("ya", "yes") } else { tr!("tidak", "no") }
        ))
        .hint(tr!(
            "Jaringan ini mungkin disadap. Daftar lewat HTTPS atau dari jaringan kantor, dengan token baru dari admin.",
            "This network may be intercepted. Enrol over HTTPS or from the office network, with a new token from the admin."
        ))
        .details(serde_json::json!({
            "server": url,
            "server_id": ans.server_id,
            "expected_server_id": self.id,
            "signed": signed,
        })))
    }
}

fn bad(text: &str) -> AppError {
    AppError::usage(tr!(
        "'{}' bukan id server: berikan 16 karakter heksadesimal (id server) atau 64 (kunci publik server).",
        "'{}' is not a server id: give 16 hex characters (the server id) or 64 (the server public key).",
        text.trim()
    ))
    .hint(hint())
}

fn hint() -> String {
    tr!(
        "Id server ditampilkan oleh 'ikd-field server token' dan 'ikd-field serve' di server; mintalah bersama token, lalu periksa alamat server.",
        "The server id is shown by 'ikd-field server token' and 'ikd-field serve' on the server; get it with the token, then check the server address."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyPair;

    fn answer(k: &KeyPair) -> EnrolResponse {
        EnrolResponse {
            device_id: "d".into(),
            server_id: k.id(),
            server_public_key: k.public_hex(),
            team: String::new(),
            seal_public_key: String::new(),
            relay: false,
            tls_ca: String::new(),
        }
    }

    #[test]
    fn short_id_and_full_key_are_accepted_in_any_case_and_grouping() {
        let k = KeyPair::from_seed([3; 32]);
        let by_id = ExpectedServer::parse(&format!(" {} ", k.id().to_uppercase())).unwrap();
        let id = k.id();
        let dashed = format!("{}-{}", &id[..8], &id[8..]);
        assert_eq!(ExpectedServer::parse(&dashed).unwrap().id(), k.id());
        let by_key = ExpectedServer::parse(&k.public_hex()).unwrap();
        assert_eq!((by_id.id(), by_key.id()), (id.as_str(), id.as_str()));
        assert!(by_id.matches(&k.id(), &k.public_hex()));
        assert!(by_key.matches(&k.id(), &k.public_hex()));
        for bad in [
            "",
            "abc",
            "zz3a5b7c9d1e2f40",
            &k.public_hex()[..63],
            "g".repeat(64).as_str(),
        ] {
            let e = ExpectedServer::parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn another_key_or_a_lying_id_does_not_match() {
        let k = KeyPair::from_seed([3; 32]);
        let other = KeyPair::from_seed([4; 32]);
        let want = ExpectedServer::parse(&k.id()).unwrap();
        assert!(!want.matches(&other.id(), &other.public_hex()));
        // An answer naming the expected id with another key.
        assert!(!want.matches(&k.id(), &other.public_hex()));
        assert!(!want.matches(&k.id(), "not hex"));
    }

    #[test]
    fn the_enrolment_answer_must_be_signed_and_name_the_server() {
        let k = KeyPair::from_seed([3; 32]);
        let other = KeyPair::from_seed([4; 32]);
        let want = ExpectedServer::parse(&k.public_hex()).unwrap();
        assert!(want.check_answer("u", &answer(&k), true).is_ok());
        let unsigned = want.check_answer("u", &answer(&k), false).unwrap_err();
        assert_eq!(unsigned.exit_code(), 1);
        assert_eq!(unsigned.details["signed"], false);
        assert!(want.check_answer("u", &answer(&other), true).is_err());
        let h = Health {
            ok: true,
            service: "ikd-field".into(),
            protocol: 1,
            server_id: other.id(),
            server_public_key: other.public_hex(),
            seal_public_key: String::new(),
            tls_ca: String::new(),
            challenge: String::new(),
        };
        let e = want.check_health("u", &h).unwrap_err();
        assert_eq!(
            (e.exit_code(), &e.details["token_spent"]),
            (1, &serde_json::json!(false))
        );
    }
}
