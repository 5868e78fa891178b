//! What keeps the desk's local web server the officer's alone (issue #18, item 6):
//! - it listens on 127.0.0.1 only (see `serve`);
//! - the `Host` header must name that address (`127.0.0.1:PORT` or `localhost:PORT`), so a page
//!   elsewhere that rebinds its own DNS name to 127.0.0.1 is refused (DNS rebinding);
//! - every request carries the per-launch secret: the browser is opened on `/?k=SECRET`, which
//!   sets it as an HttpOnly, SameSite=Strict cookie and redirects to the clean address;
//! - every POST also carries the page's anti-forgery token in a header a cross-site form cannot
//!   set, and an `Origin`, when sent, must be the desk's own;
//! - every answer has a Content-Security-Policy that allows only the desk's own files.
use subtle::ConstantTimeEq;

/// The cookie holding the per-launch secret, named with the desk's port (two desks on one
/// laptop keep their own; a browser sends cookies to every port of a host).
pub const COOKIE: &str = "ikd_desk";
/// The header carrying the anti-forgery token on POSTs.
pub const CSRF_HEADER: &str = "x-desk-token";

/// The Content-Security-Policy of every answer: the desk's own script, style and images
/// (slips are inline SVG; QR images as `data:`), no frames from elsewhere, no plugins.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'";

/// The per-launch secrets.
#[derive(Clone)]
pub struct Secrets {
    pub port: u16,
    /// In the address the desk opens, then in the cookie.
    pub session: String,
    /// In the page (a `<meta>`), sent back in [`CSRF_HEADER`] on every POST.
    pub csrf: String,
}

/// What the guard needs of a request.
pub struct Seen<'a> {
    pub method: &'a str,
    pub host: Option<&'a str>,
    pub cookie: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub csrf: Option<&'a str>,
    /// The `k` query parameter.
    pub key: Option<&'a str>,
}

/// The guard's verdict.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// The right secret in the address: set the cookie and go to the clean address.
    SetCookie,
    /// The `Host` is not the desk's own.
    WrongHost,
    /// No secret, or an old one (a desk started earlier).
    NoSecret,
    /// A POST from another site, or without the page's token.
    Forged,
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

impl Secrets {
    pub fn new(port: u16) -> Result<Secrets, getrandom::Error> {
        Ok(Secrets {
            port,
            session: random_hex()?,
            csrf: random_hex()?,
        })
    }

    /// The hosts this desk answers to.
    fn host_ok(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        host == format!("127.0.0.1:{}", self.port) || host == format!("localhost:{}", self.port)
    }

    fn origin_ok(&self, origin: &str) -> bool {
        let o = origin.to_ascii_lowercase();
        o == format!("http://127.0.0.1:{}", self.port)
            || o == format!("http://localhost:{}", self.port)
    }

    pub fn check(&self, r: &Seen<'_>) -> Verdict {
        if !r.host.is_some_and(|h| self.host_ok(h)) {
            return Verdict::WrongHost;
        }
        let cookie_ok = r
            .cookie
            .and_then(|c| cookie_value(c, &self.cookie_name()))
            .is_some_and(|v| same(v, &self.session));
        if !cookie_ok {
            // Only a GET may bring the secret in the address (the link the desk opens).
            return match r.key {
                Some(k) if r.method == "GET" && same(k, &self.session) => Verdict::SetCookie,
                _ => Verdict::NoSecret,
            };
        }
        if r.method != "GET" && r.method != "HEAD" {
            let origin_ok = r.origin.is_none_or(|o| self.origin_ok(o));
            let token_ok = r.csrf.is_some_and(|t| same(t, &self.csrf));
            if !origin_ok || !token_ok {
                return Verdict::Forged;
            }
        }
        Verdict::Pass
    }

    /// The session cookie's name: `ikd_desk_PORT`.
    pub fn cookie_name(&self) -> String {
        format!("{COOKIE}_{}", self.port)
    }

    /// The `Set-Cookie` value for the session.
    pub fn set_cookie(&self) -> String {
        format!(
            "{}={}; Path=/; HttpOnly; SameSite=Strict",
            self.cookie_name(),
            self.session
        )
    }
}

fn random_hex() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b)?;
    Ok(hex::encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        Secrets {
            port: 8450,
            session: "s3cret".into(),
            csrf: "t0ken".into(),
        }
    }

    fn seen<'a>(method: &'a str, host: &'a str, cookie: Option<&'a str>) -> Seen<'a> {
        Seen {
            method,
            host: Some(host),
            cookie,
            origin: None,
            csrf: None,
            key: None,
        }
    }

    #[test]
    fn the_host_must_be_the_desks_own() {
        let s = secrets();
        let ok = seen("GET", "127.0.0.1:8450", Some("ikd_desk_8450=s3cret"));
        assert_eq!(s.check(&ok), Verdict::Pass);
        let local = seen("GET", "LOCALHOST:8450", Some("ikd_desk_8450=s3cret"));
        assert_eq!(s.check(&local), Verdict::Pass);
        for host in [
            "evil.example:8450",
            "127.0.0.1:80",
            "127.0.0.1",
            "192.168.1.5:8450",
        ] {
            let r = seen("GET", host, Some("ikd_desk_8450=s3cret"));
            assert_eq!(s.check(&r), Verdict::WrongHost, "{host}");
        }
        let mut none = seen("GET", "", Some("ikd_desk_8450=s3cret"));
        none.host = None;
        assert_eq!(s.check(&none), Verdict::WrongHost);
    }

    #[test]
    fn the_secret_comes_in_the_address_once_then_in_the_cookie() {
        let s = secrets();
        let mut first = seen("GET", "127.0.0.1:8450", None);
        first.key = Some("s3cret");
        assert_eq!(s.check(&first), Verdict::SetCookie);
        first.key = Some("guess");
        assert_eq!(s.check(&first), Verdict::NoSecret);
        let old = seen("GET", "127.0.0.1:8450", Some("a=b; ikd_desk_8450=0ld"));
        assert_eq!(s.check(&old), Verdict::NoSecret);
        // A POST never takes the secret from the address.
        let mut post = seen("POST", "127.0.0.1:8450", None);
        post.key = Some("s3cret");
        assert_eq!(s.check(&post), Verdict::NoSecret);
        assert!(s.set_cookie().contains("HttpOnly; SameSite=Strict"));
    }

    #[test]
    fn a_post_needs_the_page_token_and_its_own_origin() {
        let s = secrets();
        let mut p = seen("POST", "127.0.0.1:8450", Some("ikd_desk_8450=s3cret"));
        assert_eq!(s.check(&p), Verdict::Forged);
        p.csrf = Some("t0ken");
        assert_eq!(s.check(&p), Verdict::Pass);
        p.origin = Some("http://127.0.0.1:8450");
        assert_eq!(s.check(&p), Verdict::Pass);
        p.origin = Some("http://evil.example");
        assert_eq!(s.check(&p), Verdict::Forged);
        p.origin = Some("null");
        assert_eq!(s.check(&p), Verdict::Forged);
    }

    #[test]
    fn cookies_are_read_by_name() {
        assert_eq!(
            cookie_value("a=1; ikd_desk_8450=xyz", "ikd_desk_8450"),
            Some("xyz")
        );
        assert_eq!(cookie_value("ikd_desk_8451=1", "ikd_desk_8450"), None);
    }
}
