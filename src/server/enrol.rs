//! Enrolment: one-time tokens made by the admin, spent by a device registering its public key.
//! Only a token's SHA-256 is stored, so a copy of the database cannot enrol anything.
use super::Refusal;
use super::db::Mode;
use super::store::Store;
use crate::args;
use crate::crypto::{self, KeyPair};
use crate::error::AppError;
use crate::protocol::ErrorCode;
use crate::protocol::{EnrolRequest, EnrolResponse};

/// Letters and digits that cannot be misread for each other (no 0/O, 1/I/L, U/V).
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTWXYZ";
const GROUPS: usize = 4;
const GROUP_LEN: usize = 4;

/// A fresh token, `K7Q2-MX9D-…`: 16 characters from the OS random source (about 78 bits).
pub fn new_token() -> std::io::Result<String> {
    let mut out = String::with_capacity(GROUPS * (GROUP_LEN + 1));
    let mut buf = [0u8; 64];
    let mut n = 0;
    while n < GROUPS * GROUP_LEN {
        getrandom::fill(&mut buf).map_err(|e| std::io::Error::other(e.to_string()))?;
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % ALPHABET.len();
        for &b in &buf {
            if (b as usize) < limit && n < GROUPS * GROUP_LEN {
                if n > 0 && n % GROUP_LEN == 0 {
                    out.push('-');
                }
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
                n += 1;
            }
        }
    }
    Ok(out)
}

/// The stored form of a token: SHA-256 hex of its characters, upper case, without separators.
pub fn token_hash(token: &str) -> String {
    let norm: String = token
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    crypto::sha256_hex(norm.as_bytes())
}

const MAX_NAME: usize = 100;

/// Registers a device with a one-time token, spending the token in the same transaction.
pub fn enrol(
    store: &mut Store,
    key: &KeyPair,
    req: &EnrolRequest,
) -> Result<EnrolResponse, Refusal> {
    let bad = |m: &str| Refusal::new(400, ErrorCode::BadJson, m.to_string());
    let public = crypto::parse_public_hex(&req.public_key)
        .ok_or_else(|| bad("public_key must be 64 hex characters (an Ed25519 public key)"))?;
    if ed25519_dalek::VerifyingKey::from_bytes(&public).is_err() {
        return Err(bad("public_key is not a valid Ed25519 public key"));
    }
    // Proof of possession: the request is signed by the key it enrols, for this server.
    let digest =
        crate::protocol::enrol_proof_digest(&req.token, &key.public_hex(), &req.public_key);
    let proof =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, req.proof.trim())
            .unwrap_or_default();
    if !crypto::verify(&public, &digest, &proof) {
        return Err(Refusal::new(
            401,
            ErrorCode::BadSignature,
            "the enrolment is not signed by the device key it names (proof); update ikd-field on the laptop",
        ));
    }
    if req.officer.chars().count() > MAX_NAME || req.team.chars().count() > MAX_NAME {
        return Err(bad("officer and team are at most 100 characters"));
    }
    // Names shown on the dashboard and in `server devices`: no escape sequences, no text
    // direction overrides (the same rule the laptop applies at `init`).
    if [&req.officer, &req.team]
        .iter()
        .any(|s| s.chars().any(crate::domain::validate::is_hidden_control))
    {
        return Err(bad(
            "officer and team must not hold control or text-direction characters",
        ));
    }
    let device_id = crypto::key_id(&public);
    let now = crate::timefmt::now_utc();
    let hash = token_hash(&req.token);
    let mut db = store.db().map_err(Refusal::internal)?;
    // The writer lock on both databases: a token is used once even by two servers at once.
    let mut tx = db.begin(Mode::Write).map_err(Refusal::internal)?;
    let token: Option<(String, String, Option<String>, i64)> = tx
        .query_opt(
            "SELECT team, expires_at, used_at, relay FROM tokens WHERE token_hash = ?1",
            args![hash],
        )
        .and_then(|r| {
            r.map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .transpose()
        })
        .map_err(Refusal::internal)?;
    let Some((token_team, expires_at, used_at, relay)) = token else {
        return Err(Refusal::new(
            401,
            ErrorCode::TokenUnknown,
            "this enrolment token does not exist; ask the district admin for a new one (ikd-field server token)",
        ));
    };
    if let Some(at) = used_at {
        return Err(Refusal::new(
            410,
            ErrorCode::TokenUsed,
            format!(
                "this enrolment token was already used at {at}; ask the district admin for a new one"
            ),
        ));
    }
    if expires_at <= now {
        return Err(Refusal::new(
            410,
            ErrorCode::TokenExpired,
            format!(
                "this enrolment token expired at {expires_at}; ask the district admin for a new one"
            ),
        ));
    }
    let known: Option<(Option<String>, Option<String>)> = tx
        .query_opt(
            "SELECT revoked_at, relayed_by FROM devices WHERE id = ?1",
            args![device_id],
        )
        .and_then(|r| r.map(|r| Ok((r.get(0)?, r.get(1)?))).transpose())
        .map_err(Refusal::internal)?;
    if let Some((_, Some(relay))) = &known {
        return Err(Refusal::new(
            403,
            ErrorCode::DeviceRelayed,
            format!(
                "device {device_id} sends its records through district server {relay}; enrol it with that district, not here"
            ),
        ));
    }
    if let Some((Some(at), _)) = known {
        return Err(Refusal::new(
            403,
            ErrorCode::DeviceRevoked,
            format!("device {device_id} was revoked at {at}; make a new key (new data directory)"),
        ));
    }
    let team = if token_team.is_empty() {
        req.team.trim().to_string()
    } else {
        token_team.clone()
    };
    let officer = req.officer.trim();
    // Enrolling the same key again (a lost answer, a new officer) updates it.
    tx.execute(
        "INSERT INTO devices (id, public_key, officer, team, enrolled_at, relay)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(id) DO UPDATE SET officer = excluded.officer, team = excluded.team,
                                       relay = excluded.relay",
        args![device_id, hex::encode(public), officer, team, now, relay],
    )
    .map_err(Refusal::internal)?;
    tx.execute(
        "UPDATE tokens SET used_at = ?2, used_by = ?3 WHERE token_hash = ?1",
        args![hash, now, device_id],
    )
    .map_err(Refusal::internal)?;
    tx.commit().map_err(Refusal::internal)?;
    Ok(EnrolResponse {
        device_id,
        server_id: key.id(),
        server_public_key: key.public_hex(),
        team: token_team,
        seal_public_key: crate::seal::server_public_hex(key),
        relay: relay != 0,
        tls_ca: String::new(),
    })
}

/// The `/v1/health` answer of the server with `key`; `office_ca`: the office CA it serves under
/// (PEM, empty when none).
/// `/v1/health` for the request's `query`: its `challenge` (16 to 64 hex characters) is echoed
/// in the signed answer, proving the answer fresh.
pub fn health(key: &KeyPair, office_ca: &str, query: &str) -> crate::protocol::Health {
    let challenge = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("challenge="))
        .filter(|c| (16..=64).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_default()
        .to_ascii_lowercase();
    crate::protocol::Health {
        challenge,
        ok: true,
        service: "ikd-field".into(),
        protocol: crate::protocol::VERSION,
        server_id: key.id(),
        server_public_key: key.public_hex(),
        seal_public_key: crate::seal::server_public_hex(key),
        tls_ca: office_ca.to_string(),
    }
}

/// Creates a token valid for `ttl_hours`; returns it and its expiry.
pub fn create_token(
    store: &Store,
    team: &str,
    ttl_hours: u64,
) -> Result<(String, String), AppError> {
    create_token_for(store, team, ttl_hours, false)
}

/// [`create_token`] for a relay when `relay` is set: the device it enrols (a district server
/// forwarding upward) may send records made by other devices (super::relay).
pub fn create_token_for(
    store: &Store,
    team: &str,
    ttl_hours: u64,
    relay: bool,
) -> Result<(String, String), AppError> {
    let token = new_token().map_err(|e| AppError::other(e.to_string()))?;
    let now = time::OffsetDateTime::now_utc();
    let hours = i64::try_from(ttl_hours)
        .unwrap_or(i64::MAX / 7200)
        .min(24 * 365 * 100);
    let expires = crate::timefmt::stamp(now + time::Duration::hours(hours));
    store.add_token(
        &token_hash(&token),
        team.trim(),
        &crate::timefmt::stamp(now),
        &expires,
        relay,
    )?;
    Ok((token, expires))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The health echoes a well-formed challenge (16 to 64 hex), lower case, and nothing else.
    #[test]
    fn health_echoes_only_a_hex_challenge() {
        let k = KeyPair::from_seed([5; 32]);
        let c = |q: &str| health(&k, "", q).challenge;
        assert_eq!(c("challenge=ABCDEF0123456789"), "abcdef0123456789");
        assert_eq!(
            c("x=1&challenge=00112233445566778899"),
            "00112233445566778899"
        );
        for bad in [
            "",
            "challenge=",
            "challenge=abc",
            "challenge=zz23456789abcdef",
        ] {
            assert_eq!(c(bad), "", "{bad}");
        }
        assert_eq!(c(&format!("challenge={}", "a".repeat(65))), "");
    }

    #[test]
    fn tokens_are_readable_and_normalised() {
        let t = new_token().unwrap();
        assert_eq!(t.len(), 19, "{t}");
        assert_eq!(t.matches('-').count(), 3);
        assert!(t.chars().all(|c| c == '-' || ALPHABET.contains(&(c as u8))));
        assert_ne!(new_token().unwrap(), t);
        assert_eq!(
            token_hash(&t),
            token_hash(&t.to_lowercase().replace('-', " "))
        );
    }

    #[test]
    fn hidden_characters_in_a_name_are_refused_and_the_token_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("d.db")).unwrap();
        let server = KeyPair::generate().unwrap();
        let (token, _) = create_token(&s, "", 1).unwrap();
        let dev = KeyPair::generate().unwrap();
        for (officer, team) in [("BUDI\u{1b}[2J", "TIM 1"), ("BUDI", "\u{202e}1 MIT")] {
            let req = EnrolRequest::signed(&dev, &token, &server.public_hex(), officer, team);
            let e = enrol(&mut s, &server, &req).unwrap_err();
            assert_eq!(
                (e.status, e.code.as_str()),
                (400, "bad_json"),
                "{officer:?} {team:?}"
            );
        }
        // The token was not spent by the refusals.
        let req = EnrolRequest::signed(&dev, &token, &server.public_hex(), "BUDI", "TIM 1");
        assert!(enrol(&mut s, &server, &req).is_ok());
    }

    /// Proof of possession: a request for someone else's public key (readable on slips, in key
    /// lists), unsigned, signed by another key or signed for another server, is refused and
    /// spends nothing; the device's own signed request enrols.
    #[test]
    fn only_the_holder_of_a_key_can_enrol_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("d.db")).unwrap();
        let server = KeyPair::generate().unwrap();
        let other_server = KeyPair::generate().unwrap();
        let (token, _) = create_token(&s, "", 1).unwrap();
        let victim = KeyPair::generate().unwrap();
        let thief = KeyPair::generate().unwrap();
        let mut unsigned = EnrolRequest::signed(&victim, &token, &server.public_hex(), "X", "Y");
        unsigned.proof = String::new();
        let mut forged = EnrolRequest::signed(&thief, &token, &server.public_hex(), "X", "Y");
        forged.public_key = victim.public_hex();
        let elsewhere = EnrolRequest::signed(&victim, &token, &other_server.public_hex(), "X", "Y");
        for req in [unsigned, forged, elsewhere] {
            let e = enrol(&mut s, &server, &req).unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (401, "bad_signature"));
        }
        assert!(s.device(&victim.id()).unwrap().is_none());
        let own = EnrolRequest::signed(&victim, &token, &server.public_hex(), "BUDI", "TIM 1");
        assert_eq!(enrol(&mut s, &server, &own).unwrap().device_id, victim.id());
    }

    #[test]
    fn a_token_enrols_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("d.db")).unwrap();
        let server = KeyPair::generate().unwrap();
        let (token, _) = create_token(&s, "TIM 1", 1).unwrap();
        let dev = KeyPair::generate().unwrap();
        let req = EnrolRequest::signed(&dev, &token, &server.public_hex(), "BUDI", "X");
        let ok = enrol(&mut s, &server, &req).unwrap();
        assert_eq!(ok.device_id, dev.id());
        assert_eq!(ok.team, "TIM 1");
        assert_eq!(s.device(&dev.id()).unwrap().unwrap().team, "TIM 1");
        assert_eq!(enrol(&mut s, &server, &req).unwrap_err().code, "token_used");
        let unknown = EnrolRequest::signed(
            &dev,
            "AAAA-AAAA-AAAA-AAAA",
            &server.public_hex(),
            "BUDI",
            "X",
        );
        assert_eq!(
            enrol(&mut s, &server, &unknown).unwrap_err().code,
            "token_unknown"
        );
        let (expired, _) = create_token(&s, "", 0).unwrap();
        let req = EnrolRequest::signed(&dev, &expired, &server.public_hex(), "BUDI", "X");
        assert_eq!(
            enrol(&mut s, &server, &req).unwrap_err().code,
            "token_expired"
        );
    }
}
