//! The district dashboard: server-side HTML in Bahasa Indonesia (minijinja templates embedded in
//! the binary, inline CSS, SVG charts drawn here; no JavaScript, no CDN). Independent of the HTTP
//! library: [`respond`] takes a path and answers a [`Page`].
//!
//! | path | what |
//! | --- | --- |
//! | `/` | totals against target, table per kecamatan, where to go next, teams, conflicts |
//! | `/kecamatan/CODE` | one kecamatan and its desa |
//! | `/konflik` | conflicts to resolve (server/konflik.rs: counts; names, both sides and the "handled" form for the admin) |
//! | `/masuk`, `/cek-slip` | the admin's login and slip check (server/web.rs, server/slipcheck.rs) |
//! | `/laporan?level=…&bulan=…` (or `dari=…&sampai=…`, `sasaran=…`) | the report for the head of office |
//! | `/laporan.csv`, `.xlsx`, `.pdf`, `.json` with the same query | the same files as `server report` |
//!
//! Everything but the admin's pages (record-level part of `/konflik`, `/cek-slip`) is aggregates.
//! Who asks is a [`Viewer`], worked out by server/web.rs (session cookie or bearer token).
use super::chart::bar_chart;
use super::coverage::{self, Area, DeviceActivity, fmt_int, fmt_pct, trend};
use super::db::Db;
use super::laporan::{self, Format, Laporan, NONE, Request};
use crate::domain::region;
use crate::domain::validate;
use minijinja::value::Serde;
use minijinja::{Environment, Value, context};
use serde::Serialize;
use std::sync::OnceLock;

/// How many days the activity charts cover.
pub const CHART_DAYS: u16 = 14;
/// How many villages "where to go next" lists.
const NEXT_LIMIT: usize = 10;

/// What the dashboard needs from config.toml.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Local time for dates and "today".
    pub offset: time::UtcOffset,
    /// `server.admin_token`; empty means record-level views are off.
    pub admin_token: String,
}

/// Who is asking, as server/web.rs found out (a session cookie or `Authorization: Bearer`).
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    /// Logged in, or the right bearer token.
    pub admin: bool,
    /// The session's anti-forgery token for the page's forms (none for a bearer token: scripts
    /// post without forms).
    pub csrf: Option<String>,
}

/// An answer: status, content type, body and extra headers.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

const HTML: &str = "text/html; charset=utf-8";

impl Page {
    pub fn html(status: u16, body: String) -> Page {
        Page {
            status,
            content_type: HTML,
            body: body.into_bytes(),
            headers: vec![],
        }
    }
}

/// Headers every dashboard answer carries: nothing cached (numbers change with every sync), no
/// script, nothing from elsewhere. The referrer policy is `same-origin`, not `no-referrer`: under
/// `no-referrer` a browser sends `Origin: null` with the dashboard's own forms, and the admin's
/// forms are checked against their origin (server/session.rs); no address leaves for
/// another site either way.
pub const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
    ),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
];

/// Is this a dashboard path (a GET outside the sync protocol's `/v1/`)?
pub fn owns(path: &str) -> bool {
    !path.starts_with("/v1/") && path != "/v1"
}

/// Answers one GET request for the aggregate pages.
pub fn respond(
    conn: &mut Db<'_>,
    settings: &Settings,
    path: &str,
    query: &str,
    viewer: &Viewer,
) -> Page {
    let result = match path {
        "/" | "/index.html" => index(conn, settings, viewer),
        "/laporan" | "/laporan.csv" | "/laporan.json" | "/laporan.xlsx" | "/laporan.pdf" => {
            report(conn, settings, path, query, viewer)
        }
        "/favicon.ico" => {
            return Page {
                status: 204,
                content_type: "image/x-icon",
                body: vec![],
                headers: vec![],
            };
        }
        p => match p.strip_prefix("/kecamatan/") {
            Some(code) => district(conn, settings, code, viewer),
            None => Ok(not_found(p, viewer)),
        },
    };
    result.unwrap_or_else(|e| failed(&e, viewer))
}

/// The page of a failure the admin cannot fix from the browser (logged).
pub fn failed(e: &dyn std::fmt::Display, viewer: &Viewer) -> Page {
    eprintln!("{} dashboard error: {e}", crate::timefmt::now_utc());
    error_page(
        500,
        "Server gagal",
        "Halaman ini tidak bisa dibuat sekarang; coba lagi sebentar lagi. Rinciannya ada di log server.",
        viewer,
    )
}

/// The answer when no database connection can be had (PostgreSQL down or the pool exhausted).
pub fn unavailable(e: &dyn std::fmt::Display) -> Page {
    eprintln!("{} dashboard error: {e}", crate::timefmt::now_utc());
    error_page(
        503,
        "Database tidak tersedia",
        "Database server tidak bisa dihubungi sekarang; coba lagi sebentar lagi. Rinciannya ada di log server.",
        &Viewer::default(),
    )
}

pub type Res = Result<Page, Box<dyn std::error::Error>>;

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Every value a page prints is escaped as HTML, and first rid of hidden controls: a
        // team or officer name stored before enrolment refused them (older databases) cannot
        // reorder the page with a right-to-left override. Markup the templates mark safe (the
        // style, the charts) passes as it is.
        env.set_formatter(|out, state, value| match value.as_str() {
            Some(s) if !value.is_safe() && s.chars().any(validate::is_hidden_control) => {
                let clean: String = s
                    .chars()
                    .map(|c| {
                        if validate::is_hidden_control(c) {
                            '\u{fffd}'
                        } else {
                            c
                        }
                    })
                    .collect();
                minijinja::escape_formatter(out, state, &Value::from(clean))
            }
            _ => minijinja::escape_formatter(out, state, value),
        });
        for (name, text) in [
            ("base.html", include_str!("templates/base.html")),
            ("macros.html", include_str!("templates/macros.html")),
            ("index.html", include_str!("templates/index.html")),
            ("kecamatan.html", include_str!("templates/kecamatan.html")),
            ("konflik.html", include_str!("templates/konflik.html")),
            ("masuk.html", include_str!("templates/masuk.html")),
            ("cek-slip.html", include_str!("templates/cek-slip.html")),
            ("error.html", include_str!("templates/error.html")),
            ("laporan.html", include_str!("templates/laporan.html")),
        ] {
            env.add_template(name, text)
                .expect("embedded templates are valid");
        }
        env
    })
}

const CSS: &str = include_str!("templates/style.css");

/// A page from template `name`, with what every page shows: the style, the time it was made,
/// and the admin's links (login, or logout with the session's form token).
pub fn render(
    name: &str,
    offset: time::UtcOffset,
    viewer: &Viewer,
    ctx: minijinja::Value,
) -> Result<String, minijinja::Error> {
    let base = context! {
        css => CSS,
        generated => crate::timefmt::local_display(&crate::timefmt::now_utc(), offset),
        admin => viewer.admin,
        csrf => viewer.csrf.clone(),
    };
    env().get_template(name)?.render(context! { ..ctx, ..base })
}

pub fn error_page(status: u16, title: &str, message: &str, viewer: &Viewer) -> Page {
    let body = render(
        "error.html",
        time::UtcOffset::UTC,
        viewer,
        context! { title => title, message => message },
    )
    .unwrap_or_else(|_| format!("{status} {title}"));
    Page::html(status, body)
}

fn not_found(path: &str, viewer: &Viewer) -> Page {
    error_page(
        404,
        "Halaman tidak ada",
        &format!(
            "Tidak ada halaman {}.",
            path.chars().take(100).collect::<String>()
        ),
        viewer,
    )
}

/// A region as the templates show it: every number already formatted the Indonesian way.
#[derive(Debug, Serialize)]
pub struct AreaView {
    code: String,
    dotted: String,
    name: String,
    href: Option<String>,
    parent_name: String,
    parent_href: String,
    has_target: bool,
    wajib: String,
    live: String,
    target: String,
    remaining: String,
    pct: String,
    pct_wajib: String,
    /// Width of the progress bar, percent (0–100).
    width: String,
    /// Under a third of the target: the bar turns amber.
    low: bool,
    conflicts: String,
}

pub fn view(a: &Area) -> AreaView {
    let f = &a.figures;
    let opt = |v: Option<u64>| v.map(fmt_int).unwrap_or_else(|| NONE.into());
    let of_target = f.of_target();
    let parent = if a.code.len() == 10 { &a.code[..6] } else { "" };
    AreaView {
        code: a.code.clone(),
        dotted: region::dotted(&a.code),
        name: a.name.clone(),
        href: (a.code.len() == 6).then(|| format!("/kecamatan/{}", a.code)),
        parent_name: region::lookup(parent)
            .map(|r| r.name.clone())
            .unwrap_or_default(),
        parent_href: format!("/kecamatan/{parent}"),
        has_target: f.target.is_some(),
        wajib: opt(f.wajib_ktp),
        live: fmt_int(f.live),
        target: opt(f.target),
        remaining: opt(f.remaining()),
        pct: of_target.map(fmt_pct).unwrap_or_else(|| NONE.into()),
        pct_wajib: f.of_wajib_ktp().map(fmt_pct).unwrap_or_else(|| NONE.into()),
        width: format!("{:.2}", of_target.unwrap_or(0).min(10_000) as f64 / 100.0),
        low: of_target.is_some_and(|p| p < 3_333),
        conflicts: fmt_int(f.conflicts),
    }
}

#[derive(Serialize)]
struct RegencyView {
    area: AreaView,
    districts: Vec<AreaView>,
    next: Vec<AreaView>,
    missing: usize,
}

#[derive(Serialize)]
struct DeviceView {
    id: String,
    team: String,
    officer: String,
    revoked: bool,
    last_sync: String,
    last_sync_at: String,
    sync_class: &'static str,
    live: String,
    chart: String,
}

fn today(offset: time::UtcOffset) -> time::Date {
    time::OffsetDateTime::now_utc().to_offset(offset).date()
}

fn index(conn: &mut Db<'_>, s: &Settings, v: &Viewer) -> Res {
    let cov = coverage::coverage(conn)?;
    let regencies: Vec<RegencyView> = cov
        .regencies
        .iter()
        .map(|r| RegencyView {
            area: view(r),
            districts: cov.districts_of(&r.code).map(view).collect(),
            next: cov
                .where_next(&r.code)
                .into_iter()
                .take(NEXT_LIMIT)
                .map(view)
                .collect(),
            missing: cov.villages_without_target(&r.code),
        })
        .collect();
    let devices = coverage::device_activity(conn, s.offset, today(s.offset), CHART_DAYS)?;
    let now = time::OffsetDateTime::now_utc();
    let mut total = vec![0u64; CHART_DAYS as usize];
    let mut labels: Vec<String> = vec![];
    for d in &devices {
        for (i, (day, n)) in d.per_day.iter().enumerate() {
            total[i] += n;
            if labels.len() <= i {
                labels.push(day.clone());
            }
        }
    }
    let chart = (!devices.is_empty()).then(|| {
        let series: Vec<(String, u64)> = labels.into_iter().zip(total).collect();
        bar_chart(&series, 640, 160, true)
    });
    let device_views: Vec<DeviceView> = devices
        .iter()
        .map(|d| device_view(d, now, s.offset))
        .collect();
    let conflicts: u64 = cov.regencies.iter().map(|r| r.figures.conflicts).sum();
    let body = render(
        "index.html",
        s.offset,
        v,
        context! {
            title => "Ringkasan",
            regencies => Value::from(Serde(&regencies)),
            devices => Value::from(Serde(&device_views)),
            chart => chart,
            days => CHART_DAYS,
            conflicts => fmt_int(conflicts),
        },
    )?;
    Ok(Page::html(200, body))
}

fn device_view(
    d: &DeviceActivity,
    now: time::OffsetDateTime,
    offset: time::UtcOffset,
) -> DeviceView {
    let (last_sync, last_sync_at, sync_class) = match d
        .last_sync_at
        .as_deref()
        .and_then(|t| crate::timefmt::parse(t).map(|p| (t, p)))
    {
        Some((raw, t)) => {
            let ago = now - t;
            let class = if ago.whole_hours() < 24 {
                "ok"
            } else if ago.whole_days() < 3 {
                "warn"
            } else {
                "bad"
            };
            (
                relative(ago),
                crate::timefmt::local_display(raw, offset),
                class,
            )
        }
        None => ("belum pernah".into(), String::new(), "bad"),
    };
    DeviceView {
        id: d.id.clone(),
        team: d.team.clone(),
        officer: d.officer.clone(),
        revoked: d.revoked,
        last_sync,
        last_sync_at,
        sync_class,
        live: fmt_int(d.live),
        chart: bar_chart(&d.per_day, 168, 36, false),
    }
}

/// "5 menit lalu", "3 jam lalu", "2 hari lalu".
fn relative(ago: time::Duration) -> String {
    let m = ago.whole_minutes();
    if m < 1 {
        "baru saja".into()
    } else if m < 60 {
        format!("{m} menit lalu")
    } else if m < 48 * 60 {
        format!("{} jam lalu", m / 60)
    } else {
        format!("{} hari lalu", m / (24 * 60))
    }
}

fn district(conn: &mut Db<'_>, s: &Settings, code: &str, v: &Viewer) -> Res {
    let code = region::normalize_code(code);
    let cov = coverage::coverage(conn)?;
    let Some(area) = cov.area(&code).filter(|a| a.code.len() == 6).cloned() else {
        return Ok(error_page(
            404,
            "Kecamatan tidak ada",
            &format!(
                "Kecamatan {} tidak ada di data dasbor ini.",
                code.chars().take(20).collect::<String>()
            ),
            v,
        ));
    };
    let villages: Vec<AreaView> = cov.villages_of(&code).map(view).collect();
    let next: Vec<AreaView> = cov
        .where_next(&code)
        .into_iter()
        .take(NEXT_LIMIT)
        .map(view)
        .collect();
    let body = render(
        "kecamatan.html",
        s.offset,
        v,
        context! {
            title => format!("Kecamatan {}", area.name),
            regency_name => region::lookup(&code[..4]).map(|r| r.name.clone()).unwrap_or_default(),
            area => Value::from(Serde(view(&area))),
            villages => Value::from(Serde(&villages)),
            next => Value::from(Serde(&next)),
            missing => cov.villages_without_target(&code),
        },
    )?;
    Ok(Page::html(200, body))
}

/// The report (`/laporan` as a page, `/laporan.csv|xlsx|pdf|json` as files): the period, level and
/// target date from the query, the same figures as `server report`.
fn report(conn: &mut Db<'_>, s: &Settings, path: &str, query: &str, v: &Viewer) -> Res {
    let now = crate::timefmt::now();
    let req = match Request::from_query(query, now.to_offset(s.offset).date()) {
        Ok(r) => r,
        Err(message) => return Ok(error_page(400, "Permintaan laporan salah", &message, v)),
    };
    let l = laporan::build(conn, s.offset, now, req)?;
    let format = match path.rsplit_once('.').map(|x| x.1) {
        Some("csv") => Format::Csv,
        Some("xlsx") => Format::Xlsx,
        Some("pdf") => Format::Pdf,
        Some("json") => Format::Json,
        _ => return report_page(&l, s, v),
    };
    Ok(Page {
        status: 200,
        content_type: format.content_type(),
        body: l.render(format)?,
        headers: vec![(
            "Content-Disposition",
            format!("attachment; filename=\"{}\"", req.file_name(format)),
        )],
    })
}

fn report_page(l: &Laporan, s: &Settings, v: &Viewer) -> Res {
    let (rows, teams) = (l.page_rows(), l.team_rows());
    let r = &l.request;
    let body = render(
        "laporan.html",
        s.offset,
        v,
        context! {
            title => format!("Laporan {}", l.period_name),
            l => Value::from(Serde(l)),
            headline => l.headline(),
            as_of => trend::show_date(l.as_of),
            by => trend::show_date(l.target_date),
            rows => Value::from(Serde(&rows)),
            teams => Value::from(Serde(&teams)),
            chart => bar_chart(&l.daily, 640, 160, true),
            query => r.query(),
            teams_query => Request { teams: true, ..*r }.query(),
            level => laporan::level_name(r.level),
            month => r.period.month.then(|| r.period.slug()),
            by_iso => r.by.to_string(),
        },
    )?;
    Ok(Page::html(200, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_scales_bars_to_the_largest_day() {
        let series = vec![
            ("2026-11-20".to_string(), 0),
            ("2026-11-21".to_string(), 50),
            ("2026-11-22".to_string(), 100),
        ];
        let svg = bar_chart(&series, 300, 100, true);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 3);
        // Plot height 100 - 16 - 18 = 66: the largest bar fills it, the half one is half.
        assert!(svg.contains("height=\"66.0\""), "{svg}");
        assert!(svg.contains("height=\"33.0\""), "{svg}");
        assert!(svg.contains("height=\"0.0\""), "{svg}");
        assert!(svg.contains("2026-11-22: 100"));
        assert!(svg.contains("20/11") && svg.contains("22/11"));
        assert!(svg.contains("maks. 100 per hari"));
        // An empty week draws flat, without dividing by zero.
        let flat = bar_chart(&[("d".into(), 0)], 100, 30, false);
        assert!(!flat.contains("NaN") && !flat.contains("inf"));
    }

    #[test]
    fn admin_token_is_checked_exactly() {
        let mut s = Settings {
            offset: time::UtcOffset::UTC,
            admin_token: String::new(),
        };
        assert!(!super::super::admin::token_matches(
            &s.admin_token,
            Some("Bearer ")
        ));
        s.admin_token = "rahasia-panjang".into();
        assert!(super::super::admin::token_matches(
            &s.admin_token,
            Some("Bearer rahasia-panjang")
        ));
        assert!(!super::super::admin::token_matches(
            &s.admin_token,
            Some("Bearer rahasia-panjanG")
        ));
        assert!(!super::super::admin::token_matches(
            &s.admin_token,
            Some("rahasia-panjang")
        ));
        assert!(!super::super::admin::token_matches(&s.admin_token, None));
    }

    #[test]
    fn dashboard_paths() {
        assert!(owns("/") && owns("/kecamatan/170209") && owns("/laporan") && !owns("/v1/health"));
    }

    fn filled() -> rusqlite::Connection {
        let conn = crate::server::fill::test_filled();
        let csv = crate::server::fill::targets_csv(3, "1702", Some(("202820", "30%")));
        let rows = crate::server::targets::parse(&csv, 3000).unwrap();
        crate::server::targets::import(&mut Db::sqlite(&conn), &rows, "now").unwrap();
        conn
    }

    fn text(p: &Page) -> String {
        String::from_utf8(p.body.clone()).unwrap()
    }

    #[test]
    fn pages_render_with_the_coverage_numbers() {
        let conn = filled();
        let s = Settings {
            offset: time::UtcOffset::from_hms(7, 0, 0).unwrap(),
            admin_token: "token-admin-uji".into(),
        };
        let cov = coverage::coverage(&mut Db::sqlite(&conn)).unwrap();
        let r = &cov.regencies[0];
        let page = respond(&mut Db::sqlite(&conn), &s, "/", "", &Viewer::default());
        assert_eq!((page.status, page.content_type), (200, HTML));
        let html = text(&page);
        assert!(html.contains("KABUPATEN REJANG LEBONG"));
        assert!(html.contains(&format!(
            "<span class=\"big live\">{}</span>",
            fmt_int(r.figures.live)
        )));
        assert!(html.contains("<strong class=\"target\">60.846</strong>"));
        for d in cov.districts_of("1702") {
            assert!(
                html.contains(&format!("id=\"kec-{}\"", d.code)),
                "{}",
                d.code
            );
        }
        assert_eq!(html.matches("<li id=\"next-").count(), NEXT_LIMIT);
        assert_eq!(html.matches("<tr id=\"dev-").count(), 4);
        assert!(!html.contains("<script"));
        // No citizen's name or NIK on an aggregate page.
        let nik: String = conn
            .query_row(
                "SELECT nik FROM records WHERE state = 'conflict' LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!html.contains(&nik));

        let k = respond(
            &mut Db::sqlite(&conn),
            &s,
            "/kecamatan/170209",
            "",
            &Viewer::default(),
        );
        assert_eq!(k.status, 200);
        let kh = text(&k);
        assert!(kh.contains("Kecamatan CURUP"));
        assert!(kh.contains("id=\"desa-1702091012\""));
        assert_eq!(
            respond(
                &mut Db::sqlite(&conn),
                &s,
                "/kecamatan/999999",
                "",
                &Viewer::default()
            )
            .status,
            404
        );
        assert_eq!(
            respond(
                &mut Db::sqlite(&conn),
                &s,
                "/tidak-ada",
                "",
                &Viewer::default()
            )
            .status,
            404
        );

        let csv = respond(
            &mut Db::sqlite(&conn),
            &s,
            "/laporan.csv",
            "level=desa",
            &Viewer::default(),
        );
        assert_eq!(csv.status, 200);
        // The header, 156 desa and the total.
        assert_eq!(text(&csv).lines().count(), 1 + 156 + 1);
        assert!(text(&csv).starts_with("\u{feff}Tingkat;Kode;Nama;"));
        let page = respond(
            &mut Db::sqlite(&conn),
            &s,
            "/laporan",
            "bulan=2026-12",
            &Viewer::default(),
        );
        assert_eq!(page.status, 200);
        assert!(text(&page).contains("Desember 2026"), "{}", text(&page));
        assert_eq!(
            respond(
                &mut Db::sqlite(&conn),
                &s,
                "/laporan.csv",
                "level=x",
                &Viewer::default()
            )
            .status,
            400
        );
    }

    #[test]
    fn an_empty_district_says_what_to_do() {
        let conn = coverage::test_db();
        let s = Settings {
            offset: time::UtcOffset::UTC,
            admin_token: String::new(),
        };
        let page = respond(&mut Db::sqlite(&conn), &s, "/", "", &Viewer::default());
        assert_eq!(page.status, 200);
        let html = text(&page);
        assert!(html.contains("Belum ada data"), "{html}");
        assert!(html.contains("Belum ada perangkat terdaftar"));
    }
}
