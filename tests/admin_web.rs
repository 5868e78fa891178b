//! The admin in the browser (issue #13, items 2 and 3) against a real `serve` on 127.0.0.1, on
//! SQLite and PostgreSQL: login gives a session cookie with the right flags; forms without or
//! with a wrong CSRF token (or from another origin) are refused; the conflict page names both
//! sides and what to do, a "handled" note sticks, a void from the field closes a conflict by
//! itself; the slip check tells valid, voided, not yet synced, forged and unknown-device slips
//! apart (pasted text and a photo); logout ends the session; the bearer token still works for
//! scripts; the N+1th wrong token from one address is rate-limited. With chromium and
//! chromedriver, the login, report and conflict pages are shot at 1366×768 and 390×844
//! (`IKD_ADMIN_SHOTS=DIR` keeps them; else the target's temporary directory).
mod util;

use ikd_field::domain::Record;
use ikd_field::slip::{self, Paper, Slip};
use std::path::{Path, PathBuf};
use std::time::Duration;
use util::server::{Server, TestDevice};

const TOKEN: &str = "uji-token-admin-0123456789";
/// Wrong tokens allowed from one address before it must wait.
const BURST: usize = 4;

fn config() -> String {
    format!(
        "timezone = \"WITA\"\n[server]\nthreads = 2\nadmin_token = \"{TOKEN}\"\n\
         address_requests_per_minute = 1\naddress_burst = {BURST}\n"
    )
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// One request: `body` is (content type, bytes) for a POST.
fn http(url: &str, headers: &[(&str, &str)], body: Option<(&str, Vec<u8>)>) -> Resp {
    let a = agent();
    let r = match body {
        None => {
            let mut req = a.get(url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.call()
        }
        Some((ct, bytes)) => {
            let mut req = a.post(url).header("Content-Type", ct);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.send(&bytes[..])
        }
    }
    .unwrap();
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = r
        .into_body()
        .with_config()
        .limit(16 << 20)
        .read_to_string()
        .unwrap_or_default();
    Resp {
        status,
        headers,
        body,
    }
}

fn urlencode(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish().into_bytes()
}

fn post_form(url: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Resp {
    post_form_from(url, cookie, fields, None)
}

fn post_form_from(
    url: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
    origin: Option<&str>,
) -> Resp {
    let mut h = vec![];
    let c;
    if let Some(cookie) = cookie {
        c = format!("ikd_admin={cookie}");
        h.push(("Cookie", c.as_str()));
    }
    if let Some(o) = origin {
        h.push(("Origin", o));
    }
    http(
        url,
        &h,
        Some(("application/x-www-form-urlencoded", urlencode(fields))),
    )
}

fn get_with(url: &str, cookie: &str) -> Resp {
    http(url, &[("Cookie", &format!("ikd_admin={cookie}"))], None)
}

/// The page's CSRF token.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a csrf token")
        + 19;
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

/// A multipart body: text fields and files (name, file name, bytes).
fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let b = "----ikdUjiBatas7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    for (k, name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{name}\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

fn check_slip(srv: &Server, cookie: &str, csrf: &str, text: &str, photo: Option<&[u8]>) -> Resp {
    let files: Vec<(&str, &str, &[u8])> =
        photo.map(|p| ("foto", "slip.png", p)).into_iter().collect();
    let (ct, body) = multipart(&[("csrf", csrf), ("teks", text)], &files);
    http(
        &format!("{}/cek-slip", srv.url),
        &[("Cookie", &format!("ikd_admin={cookie}"))],
        Some((&ct, body)),
    )
}

/// The card of conflict record `id` on the conflict page.
fn card<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!("id=\"k-{id}\""))
        .unwrap_or_else(|| panic!("no card for {id}:\n{html}"));
    &html[at..at + html[at..].find("</article>").unwrap()]
}

fn device(srv: &Server, officer: &str, team: &str) -> TestDevice {
    let mut d = TestDevice::new();
    d.officer = officer.into();
    d.team = team.into();
    let r = d.enrol(&srv.url, &srv.token(team));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    d
}

fn slip_of(d: &TestDevice, r: &Record) -> Slip {
    Slip::new(
        r,
        &d.key,
        "DINAS DUKCAPIL UJI",
        time::UtcOffset::from_hms(8, 0, 0).unwrap(),
    )
    .unwrap()
}

fn shots_dir() -> PathBuf {
    match std::env::var_os("IKD_ADMIN_SHOTS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_TARGET_TMPDIR")).join("admin-shots"),
    }
}

both_stores! {
fn the_admin_logs_in_resolves_conflicts_and_checks_slips() {
    let srv = Server::start_with_config(&config());
    let people = ikd_field::synth::citizens(31, "1702", 8);
    let mut a = device(&srv, "SITI AMINAH", "TIM KELILING 1");
    let mut b = device(&srv, "BUDI SANTOSO", "TIM KELILING 2");
    // a activates four citizens (#1–#4); b someone new (#1), then three of a's (#2–#4):
    // three conflicts.
    let first: Vec<Record> = people[..4].iter().map(|p| a.record(p)).collect();
    a.batch(&first).send_ok(&srv);
    let mut second = vec![b.record(&people[4])];
    second.extend(people[..3].iter().map(|p| b.record(p)));
    let answer = b.batch(&second).send_ok(&srv);
    assert_eq!(answer["summary"]["conflict"], 3, "{answer}");
    let (c_handled, c_voided, c_open) = (&second[1], &second[2], &second[3]);

    // The conflict page without logging in: counts, a link to log in, no names.
    let open = http(&format!("{}/konflik", srv.url), &[], None);
    assert_eq!(open.status, 200);
    assert!(open.body.contains("href=\"/masuk?lanjut=/konflik\""), "{}", open.body);
    assert!(!open.body.contains(&people[0].name));

    // Login: the session cookie, HttpOnly, SameSite=Strict, Path=/, an expiry; no Secure over
    // plain HTTP.
    let page = http(&format!("{}/masuk?lanjut=/konflik", srv.url), &[], None);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("name=\"token\"") && page.body.contains("name=\"lanjut\" value=\"&#x2f;konflik\""), "{}", page.body);
    let login = post_form(
        &format!("{}/masuk", srv.url),
        None,
        &[("token", TOKEN), ("lanjut", "/konflik")],
    );
    assert_eq!(login.status, 303, "{}", login.body);
    assert_eq!(login.header("Location"), Some("/konflik"));
    let set = login.header("Set-Cookie").expect("a session cookie").to_string();
    let flags: Vec<&str> = set.split(';').map(str::trim).collect();
    for f in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(flags.contains(&f), "{f} missing: {set}");
    }
    assert!(!flags.contains(&"Secure"), "{set}");
    let cookie = flags[0].strip_prefix("ikd_admin=").unwrap().to_string();
    assert_eq!(cookie.len(), 64);
    // The cookie is not the token, and a login elsewhere gets another one.
    let again = post_form(&format!("{}/masuk", srv.url), None, &[("token", TOKEN)]);
    assert_eq!(again.header("Location"), Some("/konflik"));
    let set = again.header("Set-Cookie").unwrap();
    assert!(!set.contains(&cookie));
    // Logging in again from a browser that holds a session ends that session (no fixation).
    let held = set.split(';').next().unwrap().strip_prefix("ikd_admin=").unwrap().to_string();
    assert!(get_with(&format!("{}/konflik", srv.url), &held).body.contains(&people[0].name));
    let third = post_form(&format!("{}/masuk", srv.url), Some(&held), &[("token", TOKEN)]);
    assert_eq!(third.status, 303);
    let page = get_with(&format!("{}/konflik", srv.url), &held);
    assert!(!page.body.contains(&people[0].name), "the old session still works");

    // Both sides of each conflict: team, officer, the laptop's record number, local time, desa,
    // and what each officer must do.
    let page = get_with(&format!("{}/konflik", srv.url), &cookie);
    assert_eq!(page.status, 200);
    let c = card(&page.body, &c_handled.id);
    for want in [
        "TIM KELILING 1 · SITI AMINAH",
        "TIM KELILING 2 · BUDI SANTOSO",
        "catatan #1 di laptopnya",
        "catatan #2 di laptopnya",
        " WITA",
        "SITI AMINAH: bila aktivasi #1 memang untuk warga ini, tidak perlu berbuat apa-apa",
        "BUDI SANTOSO: temui atau hubungi warga ini",
        "batalkan #2 di laptop (menu Batal)",
    ] {
        assert!(c.contains(want), "{want:?} not in\n{c}");
    }
    let village = ikd_field::domain::region::village(&people[0].village).unwrap();
    assert!(c.contains(&format!("Desa {}", village.name)), "{c}");
    assert!(c.contains(&people[0].name), "{c}");
    let csrf = csrf_of(&page.body);

    // "Handled" needs the session's CSRF token, and the origin if sent.
    let handled = format!("{}/konflik/selesai", srv.url);
    // Markup in the note is shown as text, never run.
    let note = "Sudah dicek ke rumah warga: dobel, tim 2 membatalkan <script>alert(1)</script>";
    for (fields, origin) in [
        (vec![("id", c_handled.id.as_str()), ("catatan", note)], None),
        (vec![("csrf", "salah"), ("id", &c_handled.id), ("catatan", note)], None),
        (
            vec![("csrf", &csrf), ("id", &c_handled.id), ("catatan", note)],
            Some("http://evil.example"),
        ),
    ] {
        let r = post_form_from(&handled, Some(&cookie), &fields, origin);
        assert_eq!(r.status, 403, "{fields:?} {origin:?}: {}", r.body);
        assert!(r.body.contains("Formulir ditolak"), "{}", r.body);
    }
    // Without a session: on to the login.
    let r = post_form(&handled, None, &[("csrf", &csrf), ("id", &c_handled.id), ("catatan", note)]);
    assert_eq!(r.status, 303);
    assert_eq!(srv.stats()["conflicts"], 3);
    let own_origin = srv.url.clone();
    let r = post_form_from(
        &handled,
        Some(&cookie),
        &[("csrf", &csrf), ("id", &c_handled.id), ("catatan", note)],
        Some(&own_origin),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("Location"), Some(format!("/konflik#k-{}", c_handled.id).as_str()));
    let page = get_with(&format!("{}/konflik", srv.url), &cookie);
    let c = card(&page.body, &c_handled.id);
    assert!(c.contains("Ditandai selesai oleh admin pada "), "{c}");
    let shown = note.replace('<', "&lt;").replace('>', "&gt;").replace('/', "&#x2f;");
    assert!(c.contains(&format!("“{shown}”")), "{c}");
    assert!(!page.body.contains("<script"), "{c}");
    assert!(!c.contains("name=\"catatan\""), "a closed conflict has no form: {c}");
    let st = srv.stats();
    assert_eq!((st["conflicts"].as_u64(), st["conflicts_handled"].as_u64()), (Some(2), Some(1)), "{st}");

    // A void from the field of one side (a's #2, the first activation) closes the next one by
    // itself, and the page says who voided it.
    let void = a.void(&first[1], "salah ketik NIK");
    a.batch(&[void]).send_ok(&srv);
    let page = get_with(&format!("{}/konflik", srv.url), &cookie);
    let c = card(&page.body, &c_voided.id);
    assert!(
        c.contains("Ditutup otomatis: dibatalkan oleh SITI AMINAH (TIM KELILING 1) pada ")
            && c.contains("catatan #2 (alasan: salah ketik NIK)"),
        "{c}"
    );
    let st = srv.stats();
    assert_eq!((st["conflicts"].as_u64(), st["conflicts_closed"].as_u64()), (Some(1), Some(1)), "{st}");
    // The last one is still open, with its form.
    assert!(card(&page.body, &c_open.id).contains("name=\"catatan\""));
    assert!(page.body.contains("<span class=\"big conflicts\">1</span>"), "{}", page.body);

    // The slip check: admin only.
    let r = http(&format!("{}/cek-slip", srv.url), &[], None);
    assert_eq!((r.status, r.header("Location")), (303, Some("/masuk?lanjut=/cek-slip")));
    let form = get_with(&format!("{}/cek-slip", srv.url), &cookie);
    assert_eq!(form.status, 200);
    assert!(form.body.contains("enctype=\"multipart/form-data\""));
    let valid = slip_of(&a, &first[3]);
    let voided = slip_of(&a, &first[1]);
    let unsent_record = a.record(&people[5]);
    let unsent = slip_of(&a, &unsent_record);
    // Forged: a's record signed by another key.
    let forger = ikd_field::crypto::KeyPair::generate().unwrap();
    let forged = ikd_field::slip::payload::Payload::new(
        &first[0].id,
        &a.id,
        &first[0].recorded_at,
        &first[0].village,
        &people[0].nik,
        "NAMA LAIN",
    )
    .unwrap()
    .sign(&forger);
    let mut stranger = TestDevice::new();
    let stranger_record = stranger.record(&people[6]);
    let unknown = slip_of(&stranger, &stranger_record);
    for (text, want) in [
        (valid.payload.as_str(), vec!["✓ SLIP ASLI — ditandatangani laptop TIM KELILING 1 · SITI AMINAH", "Sudah sampai di server dan berlaku (catatan #4 di laptopnya)"]),
        (voided.payload.as_str(), vec!["✓ SLIP ASLI", "DIBATALKAN: catatan #2 dibatalkan oleh SITI AMINAH (TIM KELILING 1)", "salah ketik NIK"]),
        (unsent.payload.as_str(), vec!["✓ SLIP ASLI", "Belum sampai di server"]),
        (forged.as_str(), vec!["✗ SLIP TIDAK SAH"]),
        (unknown.payload.as_str(), vec!["✗ LAPTOP TIDAK DIKENAL"]),
        ("IKD1:RUSAK", vec!["Isi kode QR rusak"]),
    ] {
        let r = check_slip(&srv, &cookie, &csrf, text, None);
        assert_eq!(r.status, 200, "{}", r.body);
        let verdict = &r.body[r.body.find("id=\"slip-1\"").unwrap_or_else(|| panic!("no verdict:\n{}", r.body))..];
        for w in &want {
            assert!(verdict.contains(w), "{w:?} not in\n{verdict}");
        }
        assert!(!verdict.contains("id=\"slip-2\""));
    }
    // The same valid slip from a photo (the slip as printed, PNG).
    let photo = slip::png::render(&valid, Paper::Mm58);
    let r = check_slip(&srv, &cookie, &csrf, "", Some(&photo));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("✓ SLIP ASLI") && r.body.contains("catatan #4 di laptopnya"), "{}", r.body);
    let r = check_slip(&srv, &cookie, &csrf, "", Some(b"bukan gambar"));
    assert!(r.body.contains("bukan foto yang bisa dibaca"), "{}", r.body);
    // Without the token: refused.
    let r = check_slip(&srv, &cookie, "salah", valid.payload.as_str(), None);
    assert_eq!(r.status, 403);

    // The browser: log in through the form, and look at the pages.
    browse(&srv, &valid.payload);

    // Logout needs the token too; then the cookie is worth nothing.
    let r = post_form(&format!("{}/keluar", srv.url), Some(&cookie), &[]);
    assert_eq!(r.status, 403);
    assert!(get_with(&format!("{}/konflik", srv.url), &cookie).body.contains(&people[0].name));
    let r = post_form(&format!("{}/keluar", srv.url), Some(&cookie), &[("csrf", &csrf)]);
    assert_eq!((r.status, r.header("Location")), (303, Some("/")));
    assert!(r.header("Set-Cookie").unwrap().contains("Max-Age=0"));
    let after = get_with(&format!("{}/konflik", srv.url), &cookie);
    assert!(!after.body.contains(&people[0].name) && after.body.contains("/masuk?lanjut=/konflik"));
    let r = post_form(&handled, Some(&cookie), &[("csrf", &csrf), ("id", &c_open.id), ("catatan", "x")]);
    assert_eq!((r.status, r.header("Location")), (303, Some("/masuk?lanjut=/konflik")));

    // Scripts keep the bearer token.
    let bearer = format!("Bearer {TOKEN}");
    let r = http(&format!("{}/konflik", srv.url), &[("Authorization", &bearer)], None);
    assert!(r.body.contains(&people[0].name));

    // Guessing: BURST wrong tokens are answered as wrong; the next is rate-limited, and so is
    // the right token from that address until it refills.
    for i in 0..BURST {
        let r = post_form(&format!("{}/masuk", srv.url), None, &[("token", &format!("tebakan-{i}"))]);
        assert_eq!(r.status, 403, "attempt {i}: {}", r.body);
        assert!(r.body.contains("Token admin salah"), "{}", r.body);
        assert!(r.header("Set-Cookie").is_none());
    }
    let r = post_form(&format!("{}/masuk", srv.url), None, &[("token", "tebakan-lagi")]);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("Retry-After").is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    assert!(r.body.contains("Terlalu banyak token admin yang salah dari alamat ini. Tunggu"), "{}", r.body);
    let r = post_form(&format!("{}/masuk", srv.url), None, &[("token", TOKEN)]);
    assert_eq!(r.status, 429);
    assert!(r.header("Set-Cookie").is_none());
}
}

/// Logs in through the form in headless Chromium and shoots the login, report, conflict and
/// slip check pages (the slip check with `slip_text`'s verdict) at 1366×768 and 390×844, and
/// the whole conflict page at 1366 wide; at 390 px nothing may be wider than the screen.
fn browse(srv: &Server, slip_text: &str) {
    let Some((chromium, chromedriver)) = util::webdriver::installed() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium and chromedriver are required under CI"
        );
        eprintln!(
            "\n!!!!!!!! SKIPPED: the admin pages in a browser (no chromium/chromedriver) !!!!!!!!\n"
        );
        return;
    };
    let dir = shots_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let store = if util::store::is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let wd = util::webdriver::Driver::start(&chromium, &chromedriver, 1366, 768);
    wd.goto(&format!("{}/masuk?lanjut=/konflik", srv.url));
    wd.screenshot(&dir.join(format!("{store}-masuk-1366.png")));
    wd.type_in("input[name=token]", TOKEN);
    wd.click("form.stacked button");
    wd.wait_js(
        "the conflict page after login",
        "return location.pathname === '/konflik' && !!document.querySelector('form.logout')",
    );
    let pages = ["/konflik", "/laporan", "/cek-slip"];
    let check = |wd: &util::webdriver::Driver| {
        wd.type_in("textarea[name=teks]", slip_text);
        wd.click("form.stacked button");
        wd.wait_js("the verdict", "return !!document.getElementById('slip-1')");
        let verdict = wd.text("#slip-1 .verdict");
        assert!(verdict.starts_with("✓ SLIP ASLI"), "{verdict}");
    };
    for page in pages {
        wd.goto(&format!("{}{page}", srv.url));
        if page == "/cek-slip" {
            check(&wd);
        }
        let name = page.trim_start_matches('/');
        wd.screenshot(&dir.join(format!("{store}-{name}-1366.png")));
    }
    // The whole conflict page, as tall as it is.
    wd.goto(&format!("{}/konflik", srv.url));
    let height = wd
        .js("return document.documentElement.scrollHeight")
        .as_u64()
        .unwrap();
    wd.resize(1366, height as u32 + 200);
    wd.screenshot(&dir.join(format!("{store}-konflik-1366-penuh.png")));
    wd.phone(390, 844);
    for page in pages.into_iter().chain(["/masuk"]) {
        if page == "/masuk" {
            // Logged out through the header's button, the login form on a phone.
            wd.click("form.logout button");
            wd.wait_js(
                "logged out",
                "return !document.querySelector('form.logout')",
            );
        }
        wd.goto(&format!("{}{page}", srv.url));
        if page == "/cek-slip" {
            check(&wd);
        }
        let name = page.trim_start_matches('/');
        wd.screenshot(&dir.join(format!("{store}-{name}-390.png")));
        wd.assert_fits_phone(page);
    }
    assert!(
        !wd.find("input[name=token]").is_empty(),
        "logged out: the login form again"
    );
    eprintln!("screenshots: {}", dir.display());
}

/// Red team: the login's return path never leads to another site, however it is spelt. A
/// browser drops tabs and line breaks inside a URL, so `/<TAB>/evil.example` is
/// `//evil.example`: another site.
#[test]
fn the_login_never_sends_the_admin_to_another_site() {
    let srv = Server::start_with_config(&config());
    for next in [
        "/\t/evil.example",
        "/\t\t/evil.example/masuk",
        "/\n/evil.example",
        "\t//evil.example",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "/ /evil.example",
    ] {
        let login = post_form(
            &format!("{}/masuk", srv.url),
            None,
            &[("token", TOKEN), ("lanjut", next)],
        );
        assert_eq!(login.status, 303, "{next:?}: {}", login.body);
        assert_eq!(login.header("Location"), Some("/konflik"), "{next:?}");
        // The login form carries it on only as a local path too.
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("lanjut", next)
            .finish();
        let page = http(&format!("{}/masuk?{q}", srv.url), &[], None);
        assert!(
            page.body
                .contains("name=\"lanjut\" value=\"&#x2f;konflik\""),
            "{next:?}: {}",
            page.body
        );
    }
    // A local path with its query still works.
    let login = post_form(
        &format!("{}/masuk", srv.url),
        None,
        &[("token", TOKEN), ("lanjut", "/laporan?periode=bulan")],
    );
    assert_eq!(login.header("Location"), Some("/laporan?periode=bulan"));
}

/// A PNG of `side`×`side` white grey pixels: a few hundred kilobytes for a huge image.
fn blank_png(side: u32) -> Vec<u8> {
    use std::io::Write;
    let chunk = |out: &mut Vec<u8>, kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    };
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let mut row = vec![0xffu8; side as usize + 1];
    row[0] = 0; // no filter
    for _ in 0..side {
        z.write_all(&row).unwrap();
    }
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit grey
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &z.finish().unwrap());
    chunk(&mut png, b"IEND", &[]);
    png
}

/// The most memory the process has held (Linux), in bytes.
fn peak_memory(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Red team: a small upload that claims to be a huge image (16000×16000 pixels in 280 KB) is
/// refused before it is decoded; the server does not take half a gigabyte for it.
#[test]
fn a_small_photo_of_a_huge_image_is_refused_before_it_is_decoded() {
    let srv = Server::start_with_config(&config());
    let login = post_form(&format!("{}/masuk", srv.url), None, &[("token", TOKEN)]);
    let set = login.header("Set-Cookie").expect("a session cookie");
    let cookie = set
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("ikd_admin=")
        .unwrap()
        .to_string();
    let csrf = csrf_of(&get_with(&format!("{}/cek-slip", srv.url), &cookie).body);
    let bomb = blank_png(16_000);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let page = check_slip(&srv, &cookie, &csrf, "", Some(&bomb));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Foto ini terlalu besar untuk diperiksa"),
        "{}",
        page.body
    );
    if let Some(peak) = srv.pid().and_then(peak_memory) {
        assert!(peak < 150 << 20, "the server took {} MB", peak >> 20);
    }
    // A photo of ordinary size is still read (here: no QR on it).
    let page = check_slip(&srv, &cookie, &csrf, "", Some(&blank_png(1200)));
    assert!(
        page.body.contains("Tidak ada kode QR yang terbaca"),
        "{}",
        page.body
    );
}
