//! The admin's browser sessions on the dashboard (issue #13): a login with `server.admin_token`
//! gives a random session id (32 bytes from the operating system's CSPRNG) in a cookie
//! `HttpOnly; SameSite=Strict; Path=/; Max-Age=…` (and `Secure` over TLS). The server keeps only
//! the SHA-256 of each id, in memory, with the session's own anti-forgery (CSRF) token and its
//! end: a stolen memory dump or log shows no usable cookie, and a restart of `serve` ends every
//! session (the admin logs in again). Sessions last [`TTL`] from login, at most [`MAX_SESSIONS`]
//! at once (the oldest goes first).
//!
//! Every POST form of a session carries its CSRF token, compared in constant time; an `Origin`
//! or `Referer`, when the browser sends one, must be the server's own address.
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cookie's name.
pub const COOKIE: &str = "ikd_admin";
/// How long a login lasts: a working day.
pub const TTL: Duration = Duration::from_secs(8 * 3600);
/// Most sessions kept at once.
pub const MAX_SESSIONS: usize = 256;

/// A live session, as a request sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The token every POST form of this session must carry.
    pub csrf: String,
}

struct Entry {
    csrf: String,
    until: Instant,
}

/// The sessions of one `serve` process.
pub struct Sessions {
    ttl: Duration,
    by_hash: Mutex<HashMap<[u8; 32], Entry>>,
}

fn hash(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

fn random() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)?;
    Ok(hex::encode(b))
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions::new(TTL)
    }
}

impl Sessions {
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            ttl,
            by_hash: Mutex::new(HashMap::new()),
        }
    }

    /// The session lifetime, for the cookie's `Max-Age`.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new session: its id (for the cookie only; never kept) and the session.
    pub fn start(&self) -> Result<(String, Session), getrandom::Error> {
        self.start_at(Instant::now())
    }

    fn start_at(&self, now: Instant) -> Result<(String, Session), getrandom::Error> {
        let (id, csrf) = (random()?, random()?);
        let mut m = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, e| e.until > now);
        while m.len() >= MAX_SESSIONS {
            let Some(oldest) = m.iter().min_by_key(|(_, e)| e.until).map(|(k, _)| *k) else {
                break;
            };
            m.remove(&oldest);
        }
        m.insert(
            hash(&id),
            Entry {
                csrf: csrf.clone(),
                until: now + self.ttl,
            },
        );
        Ok((id, Session { csrf }))
    }

    /// The live session of a cookie value.
    pub fn find(&self, id: &str) -> Option<Session> {
        self.find_at(id, Instant::now())
    }

    fn find_at(&self, id: &str, now: Instant) -> Option<Session> {
        if id.is_empty() || id.len() > 128 {
            return None;
        }
        let mut m = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        let key = hash(id);
        match m.get(&key) {
            Some(e) if e.until > now => Some(Session {
                csrf: e.csrf.clone(),
            }),
            Some(_) => {
                m.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends a session (logout). True when there was one.
    pub fn end(&self, id: &str) -> bool {
        let mut m = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        m.remove(&hash(id)).is_some()
    }
}

/// The session cookie's value in a `Cookie` header.
pub fn cookie(header: Option<&str>) -> Option<&str> {
    header?.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k == COOKIE).then_some(v.trim())
    })
}

/// The `Set-Cookie` value giving a session.
pub fn set_cookie(id: &str, ttl: Duration, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        ttl.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes it (logout).
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// True unless the request names another site: an `Origin` (or, without one, a `Referer`)
/// must be `scheme://host` of this server, `host` being the request's `Host`. A browser that
/// sends neither is let through (the CSRF token still has to match).
pub fn same_origin(
    origin: Option<&str>,
    referer: Option<&str>,
    host: Option<&str>,
    secure: bool,
) -> bool {
    let Some(host) = host.map(str::trim).filter(|h| !h.is_empty()) else {
        return origin.is_none() && referer.is_none();
    };
    let own = format!(
        "{}://{}",
        if secure { "https" } else { "http" },
        host.to_ascii_lowercase()
    );
    match (origin.map(str::trim), referer.map(str::trim)) {
        (Some(o), _) => o.to_ascii_lowercase() == own,
        (None, Some(r)) => {
            let r = r.to_ascii_lowercase();
            r == own || r.starts_with(&format!("{own}/"))
        }
        (None, None) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_id_only_and_ends() {
        let s = Sessions::new(Duration::from_secs(60));
        let (id, session) = s.start().unwrap();
        assert_eq!(id.len(), 64);
        assert_ne!(id, session.csrf);
        assert_eq!(s.find(&id), Some(session.clone()));
        // The server keeps the id's hash, not the id.
        let kept = s.by_hash.lock().unwrap();
        assert!(kept.contains_key(&hash(&id)));
        drop(kept);
        assert_eq!(s.find(&format!("{id}0")), None);
        assert_eq!(s.find(""), None);
        let (other, _) = s.start().unwrap();
        assert_ne!(id, other);
        assert!(s.end(&id));
        assert_eq!(s.find(&id), None);
        assert!(!s.end(&id));
        assert!(s.find(&other).is_some());
    }

    #[test]
    fn a_session_expires() {
        let s = Sessions::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let (id, _) = s.start_at(t0).unwrap();
        assert!(s.find_at(&id, t0 + Duration::from_secs(59)).is_some());
        assert!(s.find_at(&id, t0 + Duration::from_secs(60)).is_none());
        // And is gone for good.
        assert!(s.find_at(&id, t0).is_none());
    }

    #[test]
    fn sessions_stay_bounded_the_oldest_going_first() {
        let s = Sessions::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let (first, _) = s.start_at(t0).unwrap();
        let mut last = String::new();
        for i in 1..=MAX_SESSIONS {
            last = s.start_at(t0 + Duration::from_millis(i as u64)).unwrap().0;
        }
        assert_eq!(s.by_hash.lock().unwrap().len(), MAX_SESSIONS);
        assert!(s.find_at(&first, t0).is_none());
        assert!(s.find_at(&last, t0).is_some());
    }

    #[test]
    fn the_csrf_token_must_match_exactly() {
        // web.rs checks a form's token as the admin token is checked (hashed, constant time).
        let csrf_ok = |presented| super::super::admin::secret_matches("abc123", presented);
        assert!(csrf_ok("abc123"));
        for wrong in ["", "abc12", "abc1234", "ABC123", "x"] {
            assert!(!csrf_ok(wrong), "{wrong}");
        }
    }

    #[test]
    fn cookies() {
        assert_eq!(cookie(Some("a=b; ikd_admin=xyz; c=d")), Some("xyz"));
        assert_eq!(cookie(Some("ikd_admin_x=1")), None);
        assert_eq!(cookie(None), None);
        let set = set_cookie("xyz", Duration::from_secs(600), false);
        assert_eq!(
            set,
            "ikd_admin=xyz; HttpOnly; SameSite=Strict; Path=/; Max-Age=600"
        );
        assert!(set_cookie("xyz", TTL, true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn origins() {
        let h = Some("dinas.example:8443");
        assert!(same_origin(None, None, h, true));
        assert!(same_origin(
            Some("https://dinas.example:8443"),
            None,
            h,
            true
        ));
        assert!(same_origin(
            Some("HTTPS://Dinas.example:8443"),
            None,
            h,
            true
        ));
        assert!(!same_origin(
            Some("http://dinas.example:8443"),
            None,
            h,
            true
        ));
        assert!(!same_origin(Some("https://evil.example"), None, h, true));
        assert!(!same_origin(Some("null"), None, h, true));
        assert!(same_origin(
            None,
            Some("https://dinas.example:8443/konflik"),
            h,
            true
        ));
        assert!(!same_origin(
            None,
            Some("https://dinas.example:8443.evil.example/"),
            h,
            true
        ));
        // The Origin wins over the Referer.
        assert!(!same_origin(
            Some("https://evil.example"),
            Some("https://dinas.example:8443/"),
            h,
            true
        ));
        assert!(!same_origin(Some("https://x"), None, None, true));
    }
}
