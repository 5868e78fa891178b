//! The district dashboard: server-side HTML in Bahasa Indonesia (minijinja templates embedded in
//! the binary, inline CSS, SVG charts drawn here; no JavaScript, no CDN). Independent of the HTTP
//! library: [`respond`] takes a path and answers a [`Page`].
//!
//! | path | what |
//! | --- | --- |
//! | `/` | totals against target, table per kecamatan, where to go next, teams, conflicts |
//! | `/kecamatan/CODE` | one kecamatan and its desa |
//! | `/konflik` | conflicts to resolve (counts; names and NIKs only with the admin token) |
//! | `/laporan.csv?level=…`, `/laporan.json?level=…` | the same numbers as `server report` |
//!
//! Everything but the record-level part of `/konflik` is aggregates.
use super::chart::bar_chart;
use super::coverage::{
    self, Area, Coverage, DeviceActivity, ReportLevel, ReportRow, fmt_int, fmt_pct,
};
use super::db::Db;
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
/// Most conflict records listed for the admin.
const CONFLICT_LIMIT: usize = 500;

/// What the dashboard needs from config.toml.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Local time for dates and "today".
    pub offset: time::UtcOffset,
    /// `server.admin_token`; empty means record-level views are off.
    pub admin_token: String,
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
    fn html(status: u16, body: String) -> Page {
        Page {
            status,
            content_type: HTML,
            body: body.into_bytes(),
            headers: vec![],
        }
    }
}

/// Headers every dashboard answer carries: nothing cached (numbers change with every sync), no
/// script, nothing from elsewhere.
pub const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'",
    ),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
];

/// Is this a dashboard path (a GET outside the sync protocol's `/v1/`)?
pub fn owns(path: &str) -> bool {
    !path.starts_with("/v1/") && path != "/v1"
}

/// Answers one GET request. `authorization` is the request's `Authorization` header, if any.
pub fn respond(
    conn: &mut Db<'_>,
    settings: &Settings,
    path: &str,
    query: &str,
    authorization: Option<&str>,
) -> Page {
    let result = match path {
        "/" | "/index.html" => index(conn, settings),
        "/konflik" => conflicts(conn, settings, authorization),
        "/laporan.csv" | "/laporan.json" => report(conn, path.ends_with(".json"), query),
        "/favicon.ico" => {
            return Page {
                status: 204,
                content_type: "image/x-icon",
                body: vec![],
                headers: vec![],
            };
        }
        p => match p.strip_prefix("/kecamatan/") {
            Some(code) => district(conn, settings, code),
            None => Ok(not_found(p)),
        },
    };
    result.unwrap_or_else(|e| {
        eprintln!("{} dashboard error: {e}", crate::timefmt::now_utc());
        error_page(
            500,
            "Server gagal",
            "Halaman ini tidak bisa dibuat sekarang; coba lagi sebentar lagi. Rinciannya ada di log server.",
        )
    })
}

/// The answer when no database connection can be had (PostgreSQL down or the pool exhausted).
pub fn unavailable(e: &dyn std::fmt::Display) -> Page {
    eprintln!("{} dashboard error: {e}", crate::timefmt::now_utc());
    error_page(
        503,
        "Database tidak tersedia",
        "Database server tidak bisa dihubungi sekarang; coba lagi sebentar lagi. Rinciannya ada di log server.",
    )
}

type Res = Result<Page, Box<dyn std::error::Error>>;

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
            ("error.html", include_str!("templates/error.html")),
        ] {
            env.add_template(name, text)
                .expect("embedded templates are valid");
        }
        env
    })
}

const CSS: &str = include_str!("templates/style.css");

fn render(
    name: &str,
    offset: time::UtcOffset,
    ctx: minijinja::Value,
) -> Result<String, minijinja::Error> {
    let base = context! {
        css => CSS,
        generated => crate::timefmt::local_display(&crate::timefmt::now_utc(), offset),
    };
    env().get_template(name)?.render(context! { ..ctx, ..base })
}

fn error_page(status: u16, title: &str, message: &str) -> Page {
    let body = render(
        "error.html",
        time::UtcOffset::UTC,
        context! { title => title, message => message },
    )
    .unwrap_or_else(|_| format!("{status} {title}"));
    Page::html(status, body)
}

fn not_found(path: &str) -> Page {
    error_page(
        404,
        "Halaman tidak ada",
        &format!(
            "Tidak ada halaman {}.",
            path.chars().take(100).collect::<String>()
        ),
    )
}

/// A region as the templates show it: every number already formatted the Indonesian way.
#[derive(Debug, Serialize)]
struct AreaView {
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

const NONE: &str = "—";

fn view(a: &Area) -> AreaView {
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

fn index(conn: &mut Db<'_>, s: &Settings) -> Res {
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

fn district(conn: &mut Db<'_>, s: &Settings, code: &str) -> Res {
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

/// Whether the request carries the admin token (never, when none is configured); compared in
/// constant time by [`super::admin::token_matches`].
pub fn is_admin(settings: &Settings, authorization: Option<&str>) -> bool {
    super::admin::token_matches(&settings.admin_token, authorization)
}

#[derive(Serialize)]
struct ConflictRecord {
    id: String,
    recorded_at: String,
    nik: String,
    name: String,
    village: String,
    team: String,
    officer: String,
    conflict_with: String,
    other: String,
}

fn conflicts(conn: &mut Db<'_>, s: &Settings, authorization: Option<&str>) -> Res {
    let admin = is_admin(s, authorization);
    if authorization.is_some() && !admin {
        let mut p = error_page(
            401,
            "Token admin salah",
            "Token admin tidak cocok dengan server.admin_token (atau belum diatur di config.toml).",
        );
        p.headers
            .push(("WWW-Authenticate", "Bearer realm=\"ikd-field\"".into()));
        return Ok(p);
    }
    let cov = coverage::coverage(conn)?;
    let villages: Vec<AreaView> = cov
        .villages
        .iter()
        .filter(|v| v.figures.conflicts > 0)
        .map(view)
        .collect();
    let total: u64 = cov.villages.iter().map(|v| v.figures.conflicts).sum();
    let records = if admin {
        let rows = conn.query_all(
            "SELECT r.id, r.recorded_at, r.nik, r.name, r.village, r.team, r.officer,
                    coalesce(r.conflict_with, ''), coalesce(o.team || ' / ' || o.officer, '')
             FROM records r LEFT JOIN records o ON o.id = r.conflict_with
             WHERE r.state = 'conflict' AND r.voided_by IS NULL
             ORDER BY r.village, r.recorded_at LIMIT ?1",
            crate::args![CONFLICT_LIMIT as i64],
        )?;
        let rows = rows.iter().map(|r| {
            let village: String = r.get(4)?;
            Ok(ConflictRecord {
                id: r.get(0)?,
                recorded_at: crate::timefmt::local_display(&r.get::<String>(1)?, s.offset),
                nik: r.get(2)?,
                name: r.get(3)?,
                village: region::village(&village)
                    .map(|v| v.name.clone())
                    .unwrap_or(village),
                team: r.get(5)?,
                officer: r.get(6)?,
                conflict_with: r.get(7)?,
                other: r.get(8)?,
            })
        });
        Some(rows.collect::<super::db::Result<Vec<_>>>()?)
    } else {
        None
    };
    let body = render(
        "konflik.html",
        s.offset,
        context! {
            title => "Konflik",
            total => fmt_int(total),
            villages => Value::from(Serde(&villages)),
            records => Value::from(Serde(&records)),
        },
    )?;
    Ok(Page::html(200, body))
}

/// `level=` of a report URL (default: kecamatan).
fn level_of(query: &str) -> Option<ReportLevel> {
    let value = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("level="))
        .unwrap_or("kecamatan");
    match value {
        "kabupaten" => Some(ReportLevel::Kabupaten),
        "kecamatan" => Some(ReportLevel::Kecamatan),
        "desa" => Some(ReportLevel::Desa),
        _ => None,
    }
}

fn report(conn: &mut Db<'_>, json: bool, query: &str) -> Res {
    let Some(level) = level_of(query) else {
        return Ok(error_page(
            400,
            "Tingkat laporan salah",
            "Pakai level=kabupaten, level=kecamatan atau level=desa.",
        ));
    };
    let cov = coverage::coverage(conn)?;
    let (body, content_type) = if json {
        (report_json(&cov, level)?, "application/json")
    } else {
        (report_csv(&cov, level)?, "text/csv; charset=utf-8")
    };
    Ok(Page {
        status: 200,
        content_type,
        body,
        headers: vec![(
            "Content-Disposition",
            format!(
                "attachment; filename=\"ikd-cakupan-{}.{}\"",
                level_name(level),
                if json { "json" } else { "csv" }
            ),
        )],
    })
}

fn level_name(level: ReportLevel) -> &'static str {
    match level {
        ReportLevel::Kabupaten => "kabupaten",
        ReportLevel::Kecamatan => "kecamatan",
        ReportLevel::Desa => "desa",
    }
}

/// The report as CSV (header + one line per region), shared with `server report`.
pub fn report_csv(cov: &Coverage, level: ReportLevel) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(ReportRow::COLUMNS)?;
    for a in cov.level(level) {
        crate::output::csv_row(&mut w, ReportRow::of(a).cells())?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// The report as JSON, shared with `server report`.
pub fn report_json(cov: &Coverage, level: ReportLevel) -> Result<Vec<u8>, serde_json::Error> {
    let rows: Vec<ReportRow> = cov.level(level).iter().map(ReportRow::of).collect();
    #[derive(Serialize)]
    struct Report<'a> {
        ok: bool,
        level: ReportLevel,
        rows: &'a [ReportRow],
    }
    let mut out = serde_json::to_vec_pretty(&Report {
        ok: true,
        level,
        rows: &rows,
    })?;
    out.push(b'\n');
    Ok(out)
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
        assert!(!is_admin(&s, Some("Bearer ")));
        s.admin_token = "rahasia-panjang".into();
        assert!(is_admin(&s, Some("Bearer rahasia-panjang")));
        assert!(!is_admin(&s, Some("Bearer rahasia-panjanG")));
        assert!(!is_admin(&s, Some("rahasia-panjang")));
        assert!(!is_admin(&s, None));
    }

    #[test]
    fn report_level_from_query() {
        assert_eq!(level_of("level=desa"), Some(ReportLevel::Desa));
        assert_eq!(
            level_of("x=1&level=kabupaten"),
            Some(ReportLevel::Kabupaten)
        );
        assert_eq!(level_of(""), Some(ReportLevel::Kecamatan));
        assert_eq!(level_of("level=provinsi"), None);
        assert!(owns("/") && owns("/kecamatan/170209") && !owns("/v1/health"));
    }

    fn filled() -> rusqlite::Connection {
        let conn = coverage::test_db();
        let plan = crate::server::fill::Plan {
            seed: 3,
            regency: "1702".into(),
            records: 2_000,
            devices: 4,
            days: 10,
            now: time::OffsetDateTime::now_utc(),
        };
        crate::server::fill::fill(&mut Db::sqlite(&conn), &plan).unwrap();
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
        let page = respond(&mut Db::sqlite(&conn), &s, "/", "", None);
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
        let (nik, name): (String, String) = conn
            .query_row(
                "SELECT nik, name FROM records WHERE state = 'conflict' LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert!(!html.contains(&nik));

        let k = respond(&mut Db::sqlite(&conn), &s, "/kecamatan/170209", "", None);
        assert_eq!(k.status, 200);
        let kh = text(&k);
        assert!(kh.contains("Kecamatan CURUP"));
        assert!(kh.contains("id=\"desa-1702091012\""));
        assert_eq!(
            respond(&mut Db::sqlite(&conn), &s, "/kecamatan/999999", "", None).status,
            404
        );
        assert_eq!(
            respond(&mut Db::sqlite(&conn), &s, "/tidak-ada", "", None).status,
            404
        );

        let open = text(&respond(&mut Db::sqlite(&conn), &s, "/konflik", "", None));
        assert!(!open.contains(&nik) && open.contains("Authorization: Bearer"));
        let admin = respond(
            &mut Db::sqlite(&conn),
            &s,
            "/konflik",
            "",
            Some("Bearer token-admin-uji"),
        );
        assert_eq!(admin.status, 200);
        let ah = text(&admin);
        assert!(ah.contains(&nik) && ah.contains(&name));
        let wrong = respond(
            &mut Db::sqlite(&conn),
            &s,
            "/konflik",
            "",
            Some("Bearer salah"),
        );
        assert_eq!(wrong.status, 401);
        assert!(!text(&wrong).contains(&nik));

        let csv = respond(
            &mut Db::sqlite(&conn),
            &s,
            "/laporan.csv",
            "level=desa",
            None,
        );
        assert_eq!(csv.status, 200);
        assert_eq!(text(&csv).lines().count(), 1 + 156);
        assert_eq!(
            respond(&mut Db::sqlite(&conn), &s, "/laporan.csv", "level=x", None).status,
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
        let page = respond(&mut Db::sqlite(&conn), &s, "/", "", None);
        assert_eq!(page.status, 200);
        let html = text(&page);
        assert!(html.contains("Belum ada data"), "{html}");
        assert!(html.contains("Belum ada perangkat terdaftar"));
        // Without a configured token, even a "Bearer" header gets no record-level view.
        assert_eq!(
            respond(&mut Db::sqlite(&conn), &s, "/konflik", "", Some("Bearer ")).status,
            401
        );
        assert_eq!(
            respond(&mut Db::sqlite(&conn), &s, "/konflik", "", None).status,
            200
        );
    }
}
