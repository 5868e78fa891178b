//! `server tls init`: the office's CA and server certificate (server::office_tls), and the next
//! steps for the admin in plain words: the https:// address to give laptops, the server id.
use super::Ctx;
use crate::error::AppError;
use crate::output;
use crate::server::office_tls::{self, Files, Issued};
use crate::tr;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct TlsArgs {
    #[command(subcommand)]
    pub command: TlsCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum TlsCommand {
    /// Buat CA Dinas dan sertifikat server untuk LAN kantor / make the office CA and the
    /// server certificate for the office LAN
    Init(InitArgs),
}

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Nama komputer server di LAN (boleh berulang) / the server's LAN name (repeatable)
    /// [default: this computer's name and NAME.local; localhost always]
    #[arg(long = "name", value_name = "HOST")]
    pub names: Vec<String>,
    /// Alamat IP server di LAN (boleh berulang) / the server's LAN address (repeatable)
    /// [default: this computer's LAN IPv4 address; 127.0.0.1 always]
    #[arg(long = "ip", value_name = "ADDR")]
    pub ips: Vec<IpAddr>,
    /// Buat CA baru juga (semua laptop harus mendaftar ulang) / make a new CA too (every laptop
    /// must enrol again)
    #[arg(long)]
    pub new_ca: bool,
}

pub fn run(ctx: &Ctx, db: Option<PathBuf>, a: TlsArgs) -> Result<(), AppError> {
    match a.command {
        TlsCommand::Init(i) => init(ctx, db, i),
    }
}

#[derive(serde::Serialize)]
struct Made<'a> {
    #[serde(flatten)]
    issued: &'a Issued,
    /// The addresses to give laptops.
    urls: Vec<String>,
    server_id: Option<&'a str>,
    /// False when `server.tls_cert` is set: `serve` keeps using that certificate.
    used_by_serve: bool,
    /// True when a certificate of an earlier run was replaced: a running `serve` keeps the old
    /// one until it is restarted.
    restart_server: bool,
}

fn init(ctx: &Ctx, db: Option<PathBuf>, a: InitArgs) -> Result<(), AppError> {
    // Given names and addresses replace the detected ones; localhost and 127.0.0.1 are always
    // in (the server's own machine, and the tests).
    let mut names = if a.names.is_empty() {
        office_tls::default_names()
    } else {
        a.names
            .iter()
            .map(|n| n.trim().to_ascii_lowercase())
            .collect()
    };
    let mut ips = if a.ips.is_empty() {
        office_tls::default_ips()
    } else {
        a.ips.clone()
    };
    names.push("localhost".into());
    ips.push(IpAddr::from([127, 0, 0, 1]));
    dedup(&mut names);
    dedup(&mut ips);
    let files = Files::new(&ctx.data_dir);
    let replaced = files.present();
    let issued = office_tls::init(&files, &names, &ips, a.new_ca)?;
    // After the checks of init (the data folder's owner): this may make the server key.
    let id = ctx.server_id_here(db);
    let port = port(&ctx.config.server.listen);
    let urls: Vec<String> = ips
        .iter()
        .filter(|ip| !ip.is_loopback())
        .map(|ip| match ip {
            IpAddr::V6(v6) => format!("https://[{v6}]:{port}"),
            IpAddr::V4(v4) => format!("https://{v4}:{port}"),
        })
        .chain(
            names
                .iter()
                .filter(|n| *n != "localhost")
                .map(|n| format!("https://{n}:{port}")),
        )
        .collect();
    let used_by_serve = ctx.config.server.tls_cert.is_none();
    if ctx.json {
        output::ok(&Made {
            issued: &issued,
            urls,
            server_id: id.as_deref(),
            used_by_serve,
            restart_server: replaced,
        });
        return Ok(());
    }
    print_next_steps(&issued, &urls, id.as_deref(), port, used_by_serve);
    if replaced {
        println!(
            "{}",
            tr!(
                "! Server yang sedang berjalan tetap memakai sertifikat lama sampai dinyalakan ulang: di Linux 'sudo systemctl restart ikd-field', di Windows nyalakan ulang komputer.",
                "! A server already running keeps the old certificate until it is restarted: on Linux 'sudo systemctl restart ikd-field', on Windows restart the computer."
            )
        );
        if issued.new_ca {
            println!(
                "{}",
                tr!(
                    "! CA baru: setiap laptop yang sudah terdaftar harus mendaftar ulang dengan token baru (langkah 3 dan 4); sampai itu sinkronnya ditolak, catatannya tetap aman di laptop.",
                    "! New CA: every laptop already enrolled must enrol again with a new token (steps 3 and 4); until then its sync is refused, its records stay safe on the laptop."
                )
            );
        }
    }
    Ok(())
}

/// Drops repeats, keeping the first of each.
fn dedup<T: PartialEq + Clone>(v: &mut Vec<T>) {
    let mut seen: Vec<T> = Vec::with_capacity(v.len());
    v.retain(|x| {
        let new = !seen.contains(x);
        if new {
            seen.push(x.clone());
        }
        new
    });
}

/// The port laptops will use: that of `[server] listen`.
fn port(listen: &str) -> u16 {
    listen
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080)
}

fn print_next_steps(issued: &Issued, urls: &[String], id: Option<&str>, port: u16, used: bool) {
    let dir = issued
        .ca_cert
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if issued.new_ca {
        println!(
            "{}",
            tr!(
                "✓ CA Dinas dibuat di {dir}. Simpan cadangan folder itu di tempat aman (flashdisk yang dikunci): tanpa CA yang sama, semua laptop harus mendaftar ulang.",
                "✓ District CA made in {dir}. Keep a backup of that folder somewhere safe (a locked-away USB stick): without the same CA, every laptop must enrol again."
            )
        );
    } else {
        println!(
            "{}",
            tr!(
                "✓ CA Dinas yang lama tetap dipakai ({dir}); laptop yang sudah terdaftar tidak perlu apa-apa.",
                "✓ The existing district CA is kept ({dir}); enrolled laptops need nothing."
            )
        );
    }
    let mut covers: Vec<String> = issued.names.clone();
    covers.extend(issued.ips.iter().map(IpAddr::to_string));
    println!(
        "{}",
        tr!(
            "✓ Sertifikat server untuk {} berlaku sampai {}. Jika alamat IP server berubah, jalankan perintah ini lagi.",
            "✓ Server certificate for {} valid until {}. If the server's IP address changes, run this command again.",
            covers.join(", "),
            issued.valid_until.get(..10).unwrap_or(&issued.valid_until)
        )
    );
    if !used {
        println!(
            "{}",
            tr!(
                "! config.toml menyetel server.tls_cert: serve tetap memakai sertifikat itu. Kosongkan tls_cert dan tls_key untuk memakai sertifikat kantor ini.",
                "! config.toml sets server.tls_cert: serve keeps using that certificate. Empty tls_cert and tls_key to use this office certificate."
            )
        );
    }
    let url = urls
        .first()
        .cloned()
        .unwrap_or_else(|| format!("https://ALAMAT-SERVER:{port}"));
    let id = id.unwrap_or("(lihat keluaran 'ikd-field serve')");
    println!(
        "{}",
        tr!(
            "Langkah berikutnya:\n  1. Jalankan server untuk jaringan kantor: ikd-field serve --listen 0.0.0.0:{port}\n  2. Izinkan port {port} (TCP) di firewall komputer ini.\n  3. Untuk tiap laptop: ikd-field server token --team \"NAMA TIM\"\n  4. Berikan ke petugas: token, ID SERVER {id}, dan alamat {url}\n     Di laptop: ikd-field enrol --server {url} --token TOKEN --expect-server-id {id}\n  Laptop memercayai sertifikat ini lewat pendaftaran; tidak ada yang perlu disetel di laptop.",
            "Next steps:\n  1. Start the server for the office network: ikd-field serve --listen 0.0.0.0:{port}\n  2. Allow port {port} (TCP) in this computer's firewall.\n  3. For each laptop: ikd-field server token --team \"TEAM NAME\"\n  4. Give the officer: the token, SERVER ID {id}, and the address {url}\n     On the laptop: ikd-field enrol --server {url} --token TOKEN --expect-server-id {id}\n  Laptops trust this certificate through enrolment; nothing needs setting on the laptop."
        )
    );
    if urls.len() > 1 {
        println!(
            "{}",
            tr!(
                "  Alamat lain yang juga sah: {}",
                "  Other addresses that work too: {}",
                urls[1..].join("  ")
            )
        );
    }
}
