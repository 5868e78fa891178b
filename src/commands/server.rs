//! District server commands: `serve`, and `server token|devices|revoke|stats|export|import`
//! (`server tls init` is in server_tls.rs).
//! Every one takes `--db FILE` or `--db postgres://…` (default: `server.database_url`, else
//! `server.db` from config.toml, relative to the data directory; a `--db` file given on the
//! command line is relative to the current directory).
use super::Ctx;
use crate::error::AppError;
use crate::output::{self, Table};
use crate::server::rows::Row;
use crate::server::{self, Limits, http};
use crate::{timefmt, tr};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Alamat / address to listen on, e.g. 0.0.0.0:8080 (127.0.0.1:0 = any free port)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Database server: berkas SQLite atau postgres://… / district database: a SQLite file or
    /// postgres://USER:PASSWORD@HOST:PORT/DBNAME [default: server.database_url, else server.db]
    #[arg(long, value_name = "FILE|URL")]
    pub db: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Database server: berkas SQLite atau postgres://… / district database: a SQLite file or
    /// postgres://USER:PASSWORD@HOST:PORT/DBNAME [default: server.database_url, else server.db]
    #[arg(long, global = true, value_name = "FILE|URL")]
    pub db: Option<PathBuf>,
    #[command(subcommand)]
    pub command: ServerCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum ServerCommand {
    /// Buat token pendaftaran sekali pakai / make a one-time enrolment token
    Token(TokenArgs),
    /// Daftar perangkat terdaftar / list enrolled devices
    Devices(super::devices::DevicesArgs),
    /// Cabut perangkat / revoke a device
    Revoke(super::devices::RevokeArgs),
    /// Jumlah catatan, konflik, penolakan / totals
    Stats,
    /// Ekspor semua catatan / export every record
    Export(ExportArgs),
    /// Masukkan berkas dari `sync --to-file` / ingest a `sync --to-file` file
    Import(ImportArgs),
    /// Target cakupan per wilayah (impor CSV) / coverage targets per region (CSV import)
    Targets(super::coverage::TargetsArgs),
    /// Laporan cakupan untuk provinsi, angka yang sama dengan dasbor / coverage report
    Report(super::coverage::ReportArgs),
    /// Kunci segel Dinas untuk laptop (init --district-key) / the district's sealing public key
    SealKey,
    /// Teruskan catatan ke server provinsi / forward the records to a province server
    Forward(super::forward::ForwardArgs),
    /// HTTPS untuk LAN kantor tanpa CA publik / HTTPS on the office LAN without a public CA
    Tls(super::server_tls::TlsArgs),
    /// Token admin untuk masuk ke dasbor / the admin's token for the dashboard's login
    #[command(name = "admin-token")]
    AdminToken(AdminTokenArgs),
}

#[derive(clap::Args, Debug)]
pub struct AdminTokenArgs {
    /// Buat token baru (yang lama tidak berlaku setelah server dijalankan ulang) / make a new
    /// token (the old one stops working once the server restarts)
    #[arg(long)]
    pub new: bool,
}

#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    /// Nama tim untuk perangkat ini / team the device joins
    #[arg(long, default_value = "")]
    pub team: String,
    /// Berlaku berapa jam / hours the token stays valid [default: server.token_ttl_hours]
    #[arg(long, value_name = "H")]
    pub ttl_hours: Option<u64>,
    /// Token relay untuk server Dinas yang meneruskan ke sini (server provinsi) / a relay token,
    /// for a district server forwarding to this (province) server
    #[arg(long)]
    pub relay: bool,
}

pub use crate::output::ExportFormat;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ExportFormat,
    /// Berkas tujuan / output file [default: stdout]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Berkas dari `ikd-field sync --to-file` / file written by `sync --to-file`
    pub file: PathBuf,
}

pub fn serve(ctx: &Ctx, a: ServeArgs) -> Result<(), AppError> {
    server::limit_malloc_arenas();
    let cfg = &ctx.config.server;
    let key_path = ctx.server_key_file(a.db.clone())?;
    let (db, first) = ctx.server_db(a.db)?;
    let key = server::server_key(&key_path)?;
    let threads = cfg.threads.clamp(1, 256);
    let mut stores = Vec::with_capacity(threads);
    for _ in 1..threads {
        stores.push(first.another()?);
    }
    stores.push(first);
    let listen = a.listen.unwrap_or_else(|| cfg.listen.clone());
    // TLS from server.tls_cert/tls_key; plain HTTP off loopback only when allowed (warned).
    let server::listen::Listening {
        listener,
        tls,
        scheme,
        office_ca,
        addr,
    } = server::listen::open(cfg, &listen, &ctx.data_dir)?;
    // A second Ctrl+C / SIGTERM while stopping exits at once.
    let stop = crate::stop::flag(1)?;
    let id = key.id();
    if ctx.json {
        println!(
            "{}",
            serde_json::to_string(&Listening {
                listening: format!("{scheme}://{addr}"),
                server_id: &id,
                db: db.display(),
            })
            .unwrap_or_default()
        );
    } else {
        println!("listening on {scheme}://{addr}");
        println!(
            "{}",
            tr!(
                "ID server {id}, database {}, {threads} pekerja. Hentikan dengan Ctrl+C.",
                "server id {id}, database {}, {threads} workers. Stop with Ctrl+C.",
                db.display()
            )
        );
        if office_ca.is_some() {
            println!(
                "{}",
                tr!(
                    "HTTPS dengan sertifikat kantor (server tls init): laptop mendaftar dengan --expect-server-id {id}.",
                    "HTTPS with the office certificate (server tls init): laptops enrol with --expect-server-id {id}."
                )
            );
        }
    }
    std::io::stdout().flush().ok();
    let shared = Arc::new(http::Shared {
        key,
        limits: Limits::from_config(cfg),
        stop,
        dashboard: server::dashboard::Settings {
            offset: ctx.offset(),
            // config.toml's, else the one `server admin-token` keeps in the data folder.
            admin_token: cfg
                .admin_token
                .clone()
                .or_else(|| server::admin_token::load(&ctx.data_dir))
                .unwrap_or_default(),
        },
        rates: http::Rates::from_config(cfg),
        sessions: server::session::Sessions::default(),
        tls: tls.is_some(),
        office_ca: office_ca.unwrap_or_default(),
    });
    // `[forward] to`: forward to the province in the background on a handle of its own.
    let forwarder = if ctx.config.forward.to.is_none() {
        None
    } else {
        let store = stores[0].another()?;
        let key = server::server_key(&key_path)?;
        Some(super::forward::spawn_background(
            ctx,
            store,
            key,
            Arc::clone(&shared.stop),
        ))
    };
    http::run(listener, tls, stores, shared).map_err(|e| {
        AppError::other(tr!(
            "Server berhenti karena galat: {e}",
            "The server stopped on an error: {e}"
        ))
    })?;
    if let Some(f) = forwarder {
        let _ = f.join();
    }
    log::info!(
        "{}",
        tr!("server berhenti dengan rapi", "server stopped cleanly")
    );
    Ok(())
}

pub fn run(ctx: &Ctx, a: ServerArgs) -> Result<(), AppError> {
    match a.command {
        ServerCommand::Token(t) => token(ctx, a.db, t),
        ServerCommand::Devices(d) => super::devices::devices(ctx, a.db, d),
        ServerCommand::Revoke(r) => super::devices::revoke(ctx, a.db, r),
        ServerCommand::Stats => stats(ctx, a.db),
        ServerCommand::Export(e) => export(ctx, a.db, e),
        ServerCommand::Import(i) => import(ctx, a.db, i),
        ServerCommand::Targets(t) => super::coverage::targets(ctx, a.db, t),
        ServerCommand::Report(r) => super::coverage::report(ctx, a.db, r),
        ServerCommand::SealKey => seal_key(ctx, a.db),
        ServerCommand::Forward(f) => super::forward::run(ctx, a.db, f),
        ServerCommand::Tls(t) => super::server_tls::run(ctx, a.db, t),
        ServerCommand::AdminToken(t) => admin_token(ctx, t),
    }
}

/// The address laptops reach this server at, when `[server] listen` names one they can reach
/// (not loopback, not "all addresses"); with the office certificate of `server tls init`, this
/// computer's LAN address on that port (the one the certificate was made for); `None`
/// otherwise (the hints then say `URL`, for the admin to fill in).
fn laptop_url(ctx: &Ctx) -> Option<String> {
    let c = &ctx.config.server;
    let office = crate::server::office_tls::Files::new(&ctx.data_dir).present();
    let scheme = if c.tls_cert.is_some() || office {
        "https"
    } else {
        "http"
    };
    match c.listen.parse::<std::net::SocketAddr>() {
        Ok(a) if !a.ip().is_loopback() && !a.ip().is_unspecified() => {
            Some(format!("{scheme}://{a}"))
        }
        Ok(a) if office && c.tls_cert.is_none() => crate::server::office_tls::default_ips()
            .into_iter()
            .find(|ip| !ip.is_loopback())
            .map(|ip| format!("https://{}", std::net::SocketAddr::new(ip, a.port()))),
        _ => None,
    }
}

fn token(ctx: &Ctx, db: Option<PathBuf>, a: TokenArgs) -> Result<(), AppError> {
    let (_, store) = ctx.server_db(db.clone())?;
    let ttl = a.ttl_hours.unwrap_or(ctx.config.server.token_ttl_hours);
    let (token, expires) = server::enrol::create_token_for(&store, &a.team, ttl, a.relay)?;
    let id = ctx.server_id_here(db);
    if ctx.json {
        output::ok(&TokenMade {
            token: &token,
            team: a.team.trim(),
            expires_at: &expires,
            relay: a.relay,
            server_id: id.as_deref(),
        });
        return Ok(());
    }
    println!("{token}");
    let pin = id
        .as_deref()
        .map(|id| format!(" --expect-server-id {id}"))
        .unwrap_or_default();
    let (kind, on) = if a.relay {
        (
            tr!("Token relay sekali pakai", "One-time relay token"),
            tr!(
                "Di server Dinas: ikd-field server forward enrol --to URL --token {token}{pin}",
                "On the district server: ikd-field server forward enrol --to URL --token {token}{pin}"
            ),
        )
    } else {
        let url = laptop_url(ctx).unwrap_or_else(|| "URL".to_string());
        (
            tr!("Token sekali pakai", "One-time token"),
            tr!(
                "Di laptop: ikd-field init --officer \"NAMA PETUGAS\" --team \"{}\" --server {url} --token {token}{pin}\n(atau di desk: Pengaturan → Daftarkan ke server Dinas)",
                "On the laptop: ikd-field init --officer \"OFFICER NAME\" --team \"{}\" --server {url} --token {token}{pin}\n(or in the desk: Settings → Enrol with the district server)",
                a.team.trim()
            ),
        )
    };
    eprintln!(
        "{}",
        tr!(
            "{kind}, tim '{}', berlaku sampai {}.",
            "{kind}, team '{}', valid until {}.",
            a.team.trim(),
            timefmt::local_display(&expires, ctx.offset())
        )
    );
    match &id {
        Some(id) => eprintln!(
            "{}",
            tr!(
                "ID SERVER: {id}   (serahkan bersama token; perangkat memeriksanya sebelum mendaftar)",
                "SERVER ID: {id}   (hand it over with the token; the device checks it before enrolling)"
            )
        ),
        None => eprintln!(
            "{}",
            tr!(
                "! Kunci server (server.key_file) tidak ada di mesin ini: lihat id server di keluaran 'ikd-field serve' dan serahkan bersama token.",
                "! The server key (server.key_file) is not on this machine: take the server id from the output of 'ikd-field serve' and hand it over with the token."
            )
        ),
    }
    eprintln!("{on}");
    Ok(())
}

#[derive(serde::Serialize)]
struct AdminToken<'a> {
    token: &'a str,
    made: bool,
    file: String,
    /// False when `server.admin_token` in config.toml is set: that one is used instead.
    in_use: bool,
    login: String,
}

/// `server admin-token [--new]`: the token of the dashboard's login, kept in the data folder.
fn admin_token(ctx: &Ctx, a: AdminTokenArgs) -> Result<(), AppError> {
    let (token, made) = server::admin_token::ensure(&ctx.data_dir, a.new)?;
    let in_use = ctx.config.server.admin_token.is_none();
    let login = match laptop_url(ctx) {
        Some(base) => format!("{base}/masuk"),
        None => format!("http://{}/masuk", ctx.config.server.listen),
    };
    let file = server::admin_token::path(&ctx.data_dir)
        .display()
        .to_string();
    if ctx.json {
        output::ok(&AdminToken {
            token: &token,
            made,
            file,
            in_use,
            login,
        });
        return Ok(());
    }
    println!("{token}");
    eprintln!(
        "{}",
        if made {
            tr!(
                "Token admin baru, disimpan di {file}. Server memakainya sejak dijalankan berikutnya (jika sudah berjalan, jalankan ulang layanannya).",
                "A new admin token, kept in {file}. The server uses it from its next start (restart the service if it is running)."
            )
        } else {
            tr!(
                "Token admin yang tersimpan di {file}.",
                "The admin token kept in {file}."
            )
        }
    );
    eprintln!(
        "{}",
        tr!(
            "Masuk ke dasbor: buka {login} dan tempel token ini. Simpan baik-baik; siapa pun yang memegangnya bisa melihat nama dan NIK warga.",
            "Log in to the dashboard: open {login} and paste this token. Keep it safe: whoever holds it sees citizens' names and NIKs."
        )
    );
    if !in_use {
        eprintln!(
            "{}",
            tr!(
                "! server.admin_token di config.toml sudah diisi: server memakai token itu, bukan yang ini.",
                "! server.admin_token is set in config.toml: the server uses that token, not this one."
            )
        );
    }
    Ok(())
}

fn stats(ctx: &Ctx, db: Option<PathBuf>) -> Result<(), AppError> {
    let (_, store) = ctx.existing_server_db(db)?;
    let s = store.stats()?;
    if ctx.json {
        output::ok(&server::admin::StatsBody { stats: s });
        return Ok(());
    }
    let mut t = Table::new([tr!("APA", "WHAT"), tr!("JUMLAH", "COUNT")]);
    for (label, n) in [
        (tr!("catatan", "records"), s.records),
        (
            tr!("aktivasi berlaku", "live activations"),
            s.activations_live,
        ),
        (tr!("konflik terbuka", "open conflicts"), s.conflicts),
        (
            tr!(
                "konflik ditutup (dibatalkan di lapangan)",
                "conflicts closed (voided in the field)"
            ),
            s.conflicts_closed,
        ),
        (
            tr!(
                "konflik ditandai selesai oleh admin",
                "conflicts marked handled by the admin"
            ),
            s.conflicts_handled,
        ),
        (tr!("pembatalan", "voids"), s.voids),
        (tr!("ditolak", "rejects"), s.rejects),
        (tr!("perangkat", "devices"), s.devices),
        (
            tr!("perangkat dicabut", "devices revoked"),
            s.devices_revoked,
        ),
        (tr!("kiriman (batch)", "batches"), s.batches),
        (tr!("token belum dipakai", "unused tokens"), s.tokens_unused),
    ] {
        t.row([label, n.to_string()]);
    }
    print!("{}", t.render());
    Ok(())
}

/// Prints the district's sealing public key (derived from the server key, docs/sealing.md), for
/// laptops set up before they can reach the server: `ikd-field init --district-key HEX`.
fn seal_key(ctx: &Ctx, db: Option<PathBuf>) -> Result<(), AppError> {
    let key = server::server_key(&ctx.server_key_file(db)?)?;
    let public = crate::seal::server_public_hex(&key);
    if ctx.json {
        output::ok(&SealKey {
            seal_public_key: &public,
            server_id: key.id(),
        });
    } else {
        println!("{public}");
        eprintln!(
            "{}",
            tr!(
                "Kunci segel publik server {} (boleh dibagikan). Di laptop: ikd-field init --district-key {public}",
                "Public sealing key of server {} (safe to share). On a laptop: ikd-field init --district-key {public}",
                key.id()
            )
        );
    }
    Ok(())
}

fn export(ctx: &Ctx, db: Option<PathBuf>, a: ExportArgs) -> Result<(), AppError> {
    let (_, store) = ctx.existing_server_db(db)?;
    let mut export = output::Export::start(a.out.as_deref(), a.format, &Row::COLUMNS)?;
    store.for_each_record(|r| export.row(r, |r| r.cells()))?;
    let n = export.finish()?;
    if a.out.is_some() {
        eprintln!("{}", tr!("{n} catatan diekspor.", "{n} records exported."));
    }
    Ok(())
}

fn import(ctx: &Ctx, db: Option<PathBuf>, a: ImportArgs) -> Result<(), AppError> {
    let key_path = ctx.server_key_file(db.clone())?;
    let (_, mut store) = ctx.server_db(db)?;
    let key = server::server_key(&key_path)?;
    let limits = Limits::from_config(&ctx.config.server);
    let file = std::fs::File::open(&a.file).map_err(|e| {
        AppError::usage(tr!(
            "Berkas {} tidak bisa dibuka: {e}",
            "Cannot open {}: {e}",
            a.file.display()
        ))
    })?;
    let name = a.file.display().to_string();
    let report = server::import::import(
        &mut store,
        &key,
        &limits,
        std::io::BufReader::new(file),
        &name,
    )?;
    if ctx.json {
        if report.refused.is_empty() {
            output::ok(&report);
            return Ok(());
        }
        // One JSON document: main prints the error with this report as its details.
        return Err(refused_error(report.refused.len())
            .details(serde_json::to_value(&report).unwrap_or_default()));
    }
    for r in &report.refused {
        eprintln!(
            "{}",
            tr!(
                "baris {}: ditolak utuh ({})",
                "line {}: refused whole ({})",
                r.line,
                r.message
            )
        );
    }
    // A summary for the admin (the per-record answers are in --json).
    let total = &report.summary;
    let fresh = report.batches.len() - report.already;
    println!(
        "{}",
        tr!(
            "{}: {fresh} kiriman baru — {} aktivasi/pembatalan diterima, {} sudah ada di server, {} konflik, {} ditolak.",
            "{}: {fresh} new batches — {} activations/voids accepted, {} already on the server, {} conflicts, {} rejected.",
            a.file.display(),
            total.accepted,
            total.duplicate,
            total.conflict,
            total.rejected
        )
    );
    if report.already > 0 {
        println!(
            "{}",
            tr!(
                "{} kiriman di berkas ini sudah pernah diimpor atau dikirim: tidak ada yang dihitung dua kali.",
                "{} batches in this file were imported or synced before: nothing is counted twice.",
                report.already
            )
        );
    }
    if total.conflict + total.rejected > 0 {
        println!(
            "{}",
            tr!(
                "Konflik dan yang ditolak: lihat halaman Konflik di dasbor, atau ikd-field server import --json.",
                "Conflicts and rejections: see the Conflicts page of the dashboard, or ikd-field server import --json."
            )
        );
    }
    if report.refused.is_empty() {
        Ok(())
    } else {
        Err(refused_error(report.refused.len()))
    }
}

fn refused_error(n: usize) -> AppError {
    AppError::invalid(tr!(
        "{n} batch di berkas itu ditolak; yang lain sudah masuk.",
        "{n} batches in that file were refused; the others are in."
    ))
}

// The `--json` answers of these commands (each printed as `{"ok": true, …}`, but `serve`'s one
// line when it listens).

#[derive(serde::Serialize)]
struct Listening<'a> {
    listening: String,
    server_id: &'a str,
    db: String,
}

#[derive(serde::Serialize)]
struct TokenMade<'a> {
    token: &'a str,
    team: &'a str,
    expires_at: &'a str,
    relay: bool,
    /// The id to hand over with the token (`enrol --expect-server-id`), when the key is here.
    server_id: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct SealKey<'a> {
    seal_public_key: &'a str,
    server_id: String,
}
