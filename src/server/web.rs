//! The dashboard over HTTP, independent of `routes` (which hands it a [`Request`] and sends the
//! [`Page`] back): who is asking (a session cookie, or `Authorization: Bearer` for scripts), the
//! admin's login and logout, and the POST forms.
//!
//! | request | what |
//! | --- | --- |
//! | `GET /masuk?lanjut=/…` | the login form |
//! | `POST /masuk` | `token=…`: the admin token; a session cookie and on to `lanjut` |
//! | `POST /keluar` | ends the session |
//! | `POST /konflik/selesai` | `id=…&catatan=…`: a conflict handled, with a note |
//! | `GET`, `POST /cek-slip` | the slip check (`super::slipcheck`) |
//! | any other GET or HEAD | `/konflik` (`super::konflik`), the rest `super::dashboard` |
//!
//! Every POST of a session carries the session's CSRF token (`csrf`) and, when the browser sends
//! an `Origin` or `Referer`, it must be this server's; else `403`. Wrong tokens (at login, or a
//! wrong bearer token) count against the client address's limit (`[server]
//! address_requests_per_minute`, `address_burst`) like the admin API's; once spent, logging in
//! from there waits (`429` with `Retry-After`).
use super::Refusal;
use super::admin;
use super::dashboard::{self, Page, Settings, Viewer, error_page};
use super::db::Db;
use super::konflik::{self, MarkError};
use super::ratelimit::RateLimiter;
use super::session::{self, Sessions};
use super::slipcheck;
use crate::protocol::ErrorCode;
use minijinja::context;
use std::time::Duration;

/// Largest form body (login, conflict note).
const MAX_FORM_BYTES: u64 = 16 * 1024;

/// What the dashboard needs of the server.
pub struct Ctx<'a> {
    pub settings: &'a Settings,
    pub sessions: &'a Sessions,
    /// The per-address limit that wrong admin tokens spend.
    pub address: &'a RateLimiter,
    /// Served over TLS: the cookie is `Secure`, origins are `https://`.
    pub tls: bool,
}

/// The request's method, as the dashboard tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// GET or HEAD.
    Read,
    Post,
    Other,
}

/// What the dashboard needs of a request.
pub struct Request<'a> {
    pub verb: Verb,
    pub path: &'a str,
    pub query: &'a str,
    pub ip: String,
    /// Header value by name (any case).
    pub header: &'a dyn Fn(&str) -> Option<&'a str>,
}

/// Who asks: the viewer, and for a session its cookie value (to end it).
struct Who {
    viewer: Viewer,
    session_id: Option<String>,
    /// A bearer token was sent and is wrong.
    bad_bearer: bool,
}

fn who(ctx: &Ctx<'_>, req: &Request<'_>) -> Result<Who, Duration> {
    if let Some(authorization) = (req.header)("Authorization") {
        // Guessing the token on a page is limited like on the admin API: the limit is looked
        // at first (a right token does not show while the address waits) and a wrong one
        // spends it.
        ctx.address.check(&req.ip)?;
        let ok = admin::token_matches(&ctx.settings.admin_token, Some(authorization));
        if !ok {
            let _ = ctx.address.take(&req.ip);
        }
        return Ok(Who {
            viewer: Viewer {
                admin: ok,
                csrf: None,
            },
            session_id: None,
            bad_bearer: !ok,
        });
    }
    let id = session::cookie((req.header)("Cookie")).map(str::to_string);
    let found = id.as_deref().and_then(|id| ctx.sessions.find(id));
    Ok(Who {
        viewer: Viewer {
            admin: found.is_some(),
            csrf: found.map(|s| s.csrf),
        },
        session_id: id,
        bad_bearer: false,
    })
}

fn redirect(to: &str) -> Page {
    Page {
        status: 303,
        content_type: "text/html; charset=utf-8",
        body: vec![],
        headers: vec![("Location", to.to_string())],
    }
}

fn limited(wait: Duration, v: &Viewer) -> Page {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    let mut p = error_page(
        429,
        "Terlalu banyak percobaan",
        &format!(
            "Terlalu banyak token admin yang salah dari alamat ini. Tunggu {minutes} menit, lalu coba lagi."
        ),
        v,
    );
    p.headers
        .push(("Retry-After", wait.as_secs().max(1).to_string()));
    p
}

fn forged(v: &Viewer) -> Page {
    error_page(
        403,
        "Formulir ditolak",
        "Formulir ini sudah kedaluwarsa atau tidak dikirim dari halaman dasbor ini. Muat ulang halamannya, lalu coba lagi.",
        v,
    )
}

fn need_login(path: &str) -> Page {
    redirect(&format!("/masuk?lanjut={path}"))
}

/// A local path to go on to after login (never another site). Only visible ASCII is taken: a
/// browser drops tabs and line breaks inside a URL, so `/<TAB>/evil.example` would become
/// `//evil.example`, another site.
fn next_path(raw: Option<&str>) -> String {
    match raw {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && p.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
                && p.len() <= 200 =>
        {
            p.to_string()
        }
        _ => "/konflik".to_string(),
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn form(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

/// Answers one dashboard request. `read_body` reads the request body (at most the given
/// number of bytes).
pub fn answer(
    db: &mut Db<'_>,
    ctx: &Ctx<'_>,
    req: &Request<'_>,
    read_body: &mut dyn FnMut(u64) -> Result<Vec<u8>, Refusal>,
) -> Page {
    let w = match who(ctx, req) {
        Ok(w) => w,
        Err(wait) => return limited(wait, &Viewer::default()),
    };
    let v = &w.viewer;
    let s = ctx.settings;
    let result = match (req.verb, req.path) {
        (Verb::Read, "/masuk") => login_page(ctx, v, req.query, None, 200),
        (Verb::Post, "/masuk") => return login(ctx, req, v, read_body),
        (Verb::Post, "/keluar") => return logout(ctx, req, &w, read_body),
        // A wrong bearer token on an admin page or form: the admin API's plain refusal (a
        // script is answered, not sent to the login page), counted by `who`.
        (_, "/konflik" | "/konflik/selesai" | "/cek-slip") if w.bad_bearer => Ok(bad_bearer(v)),
        (Verb::Read, "/konflik") => konflik::page(db, s, v, None),
        (Verb::Post, "/konflik/selesai") => match checked_form(ctx, req, v, read_body) {
            Ok(f) => mark(db, s, v, &f),
            Err(p) => return p,
        },
        (_, "/cek-slip") if !v.admin => return need_login("/cek-slip"),
        (Verb::Read, "/cek-slip") => slipcheck::form(s, v),
        (Verb::Post, "/cek-slip") => match slip_form(ctx, req, v, read_body) {
            Ok((text, photo)) => slipcheck::check_page(db, s, v, &text, photo.as_deref()),
            Err(p) => return p,
        },
        (Verb::Read, path) => return dashboard::respond(db, s, path, req.query, v),
        _ => Ok(error_page(
            405,
            "Tidak bisa di halaman ini",
            "Halaman ini hanya untuk dibuka, bukan untuk mengirim formulir.",
            v,
        )),
    };
    result.unwrap_or_else(|e| dashboard::failed(&e, v))
}

fn bad_bearer(v: &Viewer) -> Page {
    let mut p = error_page(
        401,
        "Token admin salah",
        "Token admin tidak cocok dengan server.admin_token (atau belum diatur di config.toml).",
        v,
    );
    p.headers
        .push(("WWW-Authenticate", "Bearer realm=\"ikd-field\"".into()));
    p
}

fn login_page(
    ctx: &Ctx<'_>,
    v: &Viewer,
    query: &str,
    problem: Option<&str>,
    status: u16,
) -> dashboard::Res {
    let q = form(query.as_bytes());
    let body = dashboard::render(
        "masuk.html",
        ctx.settings.offset,
        v,
        context! {
            title => "Masuk admin",
            next => next_path(field(&q, "lanjut")),
            off => ctx.settings.admin_token.trim().is_empty(),
            problem => problem,
            hours => session::TTL.as_secs() / 3600,
        },
    )?;
    Ok(Page::html(status, body))
}

fn login(
    ctx: &Ctx<'_>,
    req: &Request<'_>,
    v: &Viewer,
    read_body: &mut dyn FnMut(u64) -> Result<Vec<u8>, Refusal>,
) -> Page {
    if !origin_ok(ctx, req) {
        return forged(v);
    }
    if let Err(wait) = ctx.address.check(&req.ip) {
        return limited(wait, v);
    }
    let fields = match read_body(MAX_FORM_BYTES) {
        Ok(b) => form(&b),
        Err(_) => return forged(v),
    };
    let next = next_path(field(&fields, "lanjut"));
    let again = |problem: &str, status: u16| {
        let query = format!(
            "lanjut={}",
            form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        login_page(ctx, v, &query, Some(problem), status)
            .unwrap_or_else(|e| dashboard::failed(&e, v))
    };
    if ctx.settings.admin_token.trim().is_empty() {
        return again("Login admin belum aktif di server ini.", 404);
    }
    let token = field(&fields, "token").unwrap_or("");
    if !admin::secret_matches(&ctx.settings.admin_token, token) {
        let _ = ctx.address.take(&req.ip);
        return again(
            "Token admin salah. Periksa lalu coba lagi; setelah beberapa kali salah, alamat ini harus menunggu sebelum bisa mencoba lagi.",
            403,
        );
    }
    // A session the browser held before is ended: the new login gets a new id (no fixation).
    if let Some(old) = session::cookie((req.header)("Cookie")) {
        ctx.sessions.end(old);
    }
    match ctx.sessions.start() {
        Ok((id, _)) => {
            let mut p = redirect(&next);
            p.headers.push((
                "Set-Cookie",
                session::set_cookie(&id, ctx.sessions.ttl(), ctx.tls),
            ));
            p
        }
        Err(e) => dashboard::failed(&e, v),
    }
}

fn logout(
    ctx: &Ctx<'_>,
    req: &Request<'_>,
    w: &Who,
    read_body: &mut dyn FnMut(u64) -> Result<Vec<u8>, Refusal>,
) -> Page {
    let v = &w.viewer;
    if let (Some(id), Some(_)) = (&w.session_id, &v.csrf) {
        if let Err(p) = checked_form(ctx, req, v, read_body) {
            return p;
        }
        ctx.sessions.end(id);
    }
    let mut p = redirect("/");
    p.headers
        .push(("Set-Cookie", session::clear_cookie(ctx.tls)));
    p
}

fn origin_ok(ctx: &Ctx<'_>, req: &Request<'_>) -> bool {
    session::same_origin(
        (req.header)("Origin"),
        (req.header)("Referer"),
        (req.header)("Host"),
        ctx.tls,
    )
}

/// A session's form fields once its CSRF token and origin check out (a bearer-token request,
/// which a browser cannot forge, needs no token); else the page refusing it.
fn checked_form(
    ctx: &Ctx<'_>,
    req: &Request<'_>,
    v: &Viewer,
    read_body: &mut dyn FnMut(u64) -> Result<Vec<u8>, Refusal>,
) -> Result<Vec<(String, String)>, Page> {
    if !v.admin {
        return Err(need_login("/konflik"));
    }
    let fields = read_body(MAX_FORM_BYTES)
        .map(|b| form(&b))
        .map_err(|_| forged(v))?;
    csrf_ok(ctx, req, v, field(&fields, "csrf"))?;
    Ok(fields)
}

fn csrf_ok(
    ctx: &Ctx<'_>,
    req: &Request<'_>,
    v: &Viewer,
    presented: Option<&str>,
) -> Result<(), Page> {
    let Some(csrf) = &v.csrf else {
        return Ok(()); // the bearer token
    };
    if origin_ok(ctx, req) && admin::secret_matches(csrf, presented.unwrap_or("")) {
        Ok(())
    } else {
        Err(forged(v))
    }
}

fn mark(db: &mut Db<'_>, s: &Settings, v: &Viewer, f: &[(String, String)]) -> dashboard::Res {
    let id = field(f, "id").unwrap_or("");
    let note = field(f, "catatan").unwrap_or("");
    match konflik::mark_handled(db, id, note, &crate::timefmt::now_utc())? {
        Ok(()) => Ok(redirect(&format!("/konflik#k-{id}"))),
        Err(MarkError::Note) => konflik::page(
            db,
            s,
            v,
            Some(
                "Tulis catatan singkat (paling banyak 500 huruf) tentang apa yang sudah diputuskan, lalu tandai lagi.",
            ),
        ),
        Err(MarkError::Unknown) => Ok(error_page(
            404,
            "Konflik tidak ada",
            "Konflik itu tidak ada (lagi) di server. Buka lagi halaman Konflik.",
            v,
        )),
    }
}

/// The slip check's form: its CSRF token checked, the pasted text and the photo.
fn slip_form(
    ctx: &Ctx<'_>,
    req: &Request<'_>,
    v: &Viewer,
    read_body: &mut dyn FnMut(u64) -> Result<Vec<u8>, Refusal>,
) -> Result<(String, Option<Vec<u8>>), Page> {
    let too_big = || {
        error_page(
            413,
            "Foto terlalu besar",
            &format!(
                "Foto paling besar {} MB. Perkecil fotonya atau foto hanya bagian QR-nya, lalu coba lagi.",
                slipcheck::MAX_UPLOAD_BYTES / (1024 * 1024)
            ),
            v,
        )
    };
    let body = read_body(slipcheck::MAX_UPLOAD_BYTES).map_err(|r| match r.code {
        ErrorCode::BodyTooLarge => too_big(),
        // The server holds only so many large uploads at once (`super::budget`).
        ErrorCode::RateLimited => {
            let wait = r.retry_after.unwrap_or(Duration::from_secs(5));
            let mut p = error_page(
                429,
                "Server sedang sibuk",
                &format!(
                    "Server sedang menerima banyak foto sekaligus, jadi foto ini belum diperiksa. Tunggu {} detik, lalu kirim lagi.",
                    wait.as_secs().max(1)
                ),
                v,
            );
            p.headers
                .push(("Retry-After", wait.as_secs().max(1).to_string()));
            p
        }
        // Cut off, too slow, or not the length it said (a browser sends the length it sends).
        ErrorCode::IncompleteBody | ErrorCode::LengthRequired | ErrorCode::BadRequest => error_page(
            400,
            "Foto belum terkirim utuh",
            "Kiriman foto terputus sebelum selesai. Periksa jaringannya, lalu kirim lagi.",
            v,
        ),
        _ => forged(v),
    })?;
    let content_type = (req.header)("Content-Type").unwrap_or("");
    let parts = if content_type.starts_with("multipart/form-data") {
        multipart(body, content_type).map_err(|_| forged(v))?
    } else {
        form(&body)
            .into_iter()
            .map(|(k, val)| (k, val.into_bytes()))
            .collect()
    };
    let get = |name: &str| parts.iter().find(|(k, _)| k == name).map(|(_, b)| b);
    let text = |name: &str| get(name).map(|b| String::from_utf8_lossy(b).into_owned());
    csrf_ok(ctx, req, v, text("csrf").as_deref())?;
    Ok((text("teks").unwrap_or_default(), get("foto").cloned()))
}

/// The parts of a `multipart/form-data` body already in memory (multer's parser; its stream
/// is the one body, so every step completes at once).
fn multipart(body: Vec<u8>, content_type: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    use futures_util::FutureExt;
    let boundary = multer::parse_boundary(content_type).map_err(|e| e.to_string())?;
    let once = futures_util::stream::once(std::future::ready(Ok::<_, std::convert::Infallible>(
        bytes::Bytes::from(body),
    )));
    let mut mp = multer::Multipart::new(once, boundary);
    let mut out = Vec::new();
    loop {
        let field = match mp.next_field().now_or_never() {
            Some(Ok(Some(f))) => f,
            Some(Ok(None)) => return Ok(out),
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("incomplete".into()),
        };
        let name = field.name().unwrap_or("").to_string();
        match field.bytes().now_or_never() {
            Some(Ok(b)) => out.push((name, b.to_vec())),
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("incomplete".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One request to [`answer`] on an empty district database, from `dinas.example` over TLS.
    fn ask(
        ctx: &Ctx<'_>,
        verb: Verb,
        path: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
        body: &str,
    ) -> Page {
        ask_with(ctx, verb, path, cookie, origin, &mut |_| {
            Ok(body.as_bytes().to_vec())
        })
    }

    /// [`ask`] with the body as the transport would give it (or refuse it).
    fn ask_with(
        ctx: &Ctx<'_>,
        verb: Verb,
        path: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
        read_body: &mut dyn FnMut(u64) -> Result<Vec<u8>, Refusal>,
    ) -> Page {
        let conn = crate::server::coverage::test_db();
        let cookie = cookie.map(|c| format!("{}={c}", session::COOKIE));
        let header = |name: &str| match name {
            "Cookie" => cookie.as_deref(),
            "Origin" => origin,
            "Host" => Some("dinas.example"),
            _ => None,
        };
        let req = Request {
            verb,
            path,
            query: "",
            ip: "10.0.0.7".into(),
            header: &header,
        };
        answer(&mut Db::sqlite(&conn), ctx, &req, read_body)
    }

    fn settings() -> Settings {
        Settings {
            offset: time::UtcOffset::UTC,
            admin_token: "token-admin-yang-panjang".into(),
        }
    }

    /// Over TLS, with the given sessions and wrong-token limit.
    fn tls_ctx<'a>(s: &'a Settings, sessions: &'a Sessions, address: &'a RateLimiter) -> Ctx<'a> {
        Ctx {
            settings: s,
            sessions,
            address,
            tls: true,
        }
    }

    /// A login with the right token from this site; `then` adds to the form.
    fn log_in(ctx: &Ctx<'_>, then: &str) -> Page {
        let form = format!("token=token-admin-yang-panjang{then}");
        ask(ctx, Verb::Post, "/masuk", None, OWN, &form)
    }

    const OWN: Option<&str> = Some("https://dinas.example");

    /// The session id a login answer set.
    fn session_id(p: &Page) -> String {
        let cookie = set_cookie(p).unwrap().split(';').next().unwrap();
        cookie.split_once('=').unwrap().1.to_string()
    }

    fn set_cookie(p: &Page) -> Option<&str> {
        p.headers
            .iter()
            .find(|(k, _)| *k == "Set-Cookie")
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn login_logout_and_the_forms_token() {
        let (settings, sessions, address) =
            (settings(), Sessions::default(), RateLimiter::new(1, 2));
        let ctx = tls_ctx(&settings, &sessions, &address);
        let own = OWN;
        // A right token: a Secure cookie over TLS, on to a local page only.
        let p = log_in(&ctx, "&lanjut=%2Fcek-slip");
        assert_eq!(p.status, 303);
        assert!(p.headers.contains(&("Location", "/cek-slip".into())));
        let set = set_cookie(&p).unwrap();
        assert!(
            set.ends_with("; HttpOnly; SameSite=Strict; Path=/; Max-Age=28800; Secure"),
            "{set}"
        );
        let id = session_id(&p);
        let csrf = sessions.find(&id).unwrap().csrf;
        // A login form from another site is refused before the token is looked at.
        let p = ask(
            &ctx,
            Verb::Post,
            "/masuk",
            None,
            Some("https://evil.example"),
            "token=token-admin-yang-panjang",
        );
        assert_eq!((p.status, set_cookie(&p)), (403, None));
        // Logout: the token of the session, from this site.
        for (body, origin) in [
            (String::new(), own),
            ("csrf=salah".to_string(), own),
            (format!("csrf={csrf}"), Some("https://evil.example")),
            (format!("csrf={csrf}"), Some("http://dinas.example")),
        ] {
            let p = ask(&ctx, Verb::Post, "/keluar", Some(&id), origin, &body);
            assert_eq!(p.status, 403, "{body} {origin:?}");
            assert!(sessions.find(&id).is_some());
        }
        let p = ask(
            &ctx,
            Verb::Post,
            "/keluar",
            Some(&id),
            own,
            &format!("csrf={csrf}"),
        );
        assert_eq!(p.status, 303);
        assert!(set_cookie(&p).unwrap().contains("Max-Age=0"));
        assert!(sessions.find(&id).is_none());
        // Two wrong tokens spend the address's two; the third try waits, even with the right one.
        for _ in 0..2 {
            let p = ask(&ctx, Verb::Post, "/masuk", None, own, "token=tebakan");
            assert_eq!(p.status, 403);
        }
        let p = ask(
            &ctx,
            Verb::Post,
            "/masuk",
            None,
            own,
            "token=token-admin-yang-panjang",
        );
        assert_eq!((p.status, set_cookie(&p)), (429, None));
        assert!(p.headers.iter().any(|(k, _)| *k == "Retry-After"));
    }

    /// A photo the server could not take in whole is not called a forged form: the admin is told
    /// what happened and what to do (wait and send again, or check the network).
    #[test]
    fn a_slip_photo_refused_by_the_transport_says_why() {
        let (settings, sessions, address) =
            (settings(), Sessions::default(), RateLimiter::new(5, 5));
        let ctx = tls_ctx(&settings, &sessions, &address);
        let (own, id) = (OWN, session_id(&log_in(&ctx, "")));
        let text = |p: &Page| String::from_utf8_lossy(&p.body).into_owned();
        let cases: [(Refusal, u16, &str); 3] = [
            (super::super::http_body::busy(), 429, "Server sedang sibuk"),
            (
                Refusal::new(400, ErrorCode::IncompleteBody, "the body came too slowly"),
                400,
                "Foto belum terkirim utuh",
            ),
            (
                Refusal::new(413, ErrorCode::BodyTooLarge, "too large"),
                413,
                "Foto terlalu besar",
            ),
        ];
        for (refusal, status, title) in cases {
            let mut refused = Some(refusal);
            let p = ask_with(&ctx, Verb::Post, "/cek-slip", Some(&id), own, &mut |_| {
                Err(refused.take().unwrap())
            });
            let body = text(&p);
            assert_eq!(p.status, status, "{body}");
            assert!(body.contains(title), "{body}");
            assert!(!body.contains("Formulir ditolak"), "{body}");
            assert_eq!(
                p.headers.iter().any(|(k, _)| *k == "Retry-After"),
                status == 429
            );
        }
    }

    #[test]
    fn only_local_paths_after_login() {
        assert_eq!(next_path(Some("/cek-slip")), "/cek-slip");
        for bad in [
            None,
            Some("https://evil.example/"),
            Some("//evil.example"),
            Some("/\\evil"),
            Some("konflik"),
            Some("/\t/evil.example"),
            Some("/\n/evil.example"),
            Some("/\r\n/evil.example"),
            Some("/ /evil.example"),
            Some("/\u{0}/evil.example"),
        ] {
            assert_eq!(next_path(bad), "/konflik", "{bad:?}");
        }
    }

    #[test]
    fn multipart_bodies_are_read() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"foto\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\x00\x01\r\n--XyZ--\r\n".to_vec();
        let parts = multipart(body, "multipart/form-data; boundary=XyZ").unwrap();
        assert_eq!(parts[0], ("csrf".to_string(), b"abc".to_vec()));
        assert_eq!(parts[1], ("foto".to_string(), b"\x89PNG\x00\x01".to_vec()));
        assert!(
            multipart(
                b"--XyZ\r\nbroken".to_vec(),
                "multipart/form-data; boundary=XyZ"
            )
            .is_err()
        );
        assert!(multipart(vec![], "multipart/form-data").is_err());
    }
}
