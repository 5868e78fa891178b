//! `server forward`: a district server sends its records upward to a province server
//! (docs/protocol.md "Forwarding"): `server forward enrol --to URL --token T`, `server forward
//! [--to URL] [--once|--watch]`, `server forward status`; and the background forwarder that
//! `serve` runs when `[forward] to` is set.
use super::Ctx;
use crate::error::{AppError, Kind};
use crate::server::forward::{self, Report};
use crate::server::forward_run::{self, Event, Settings};
use crate::server::store::Store;
use crate::{output, server, timefmt, tr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ForwardArgs {
    #[command(subcommand)]
    pub action: Option<ForwardAction>,
    /// Alamat server provinsi (default: yang terdaftar) / province server URL [default: the
    /// enrolled one]
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// Sekali sampai habis, lalu selesai (bawaan) / one pass until nothing is left (default)
    #[arg(long, conflicts_with = "watch")]
    pub once: bool,
    /// Terus meneruskan setiap forward.every_secs detik / keep forwarding every
    /// forward.every_secs seconds
    #[arg(long)]
    pub watch: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum ForwardAction {
    /// Daftarkan server Dinas ini di server provinsi / enrol this district server with the
    /// province server
    Enrol(EnrolArgs),
    /// Status penerusan / forwarding status
    Status,
}

#[derive(clap::Args, Debug)]
pub struct EnrolArgs {
    /// Alamat server provinsi / province server URL
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Token relay dari admin provinsi / relay token from the province admin
    #[arg(long)]
    pub token: String,
    /// Nama Dinas ini di provinsi / this district's name at the province [default: SERVER <id>]
    #[arg(long)]
    pub name: Option<String>,
    /// Id server provinsi dari admin provinsi (atau kunci publiknya): daftar hanya bila cocok /
    /// the province server id from its admin (or its public key): enrol only with that server
    #[arg(long, value_name = "ID")]
    pub expect_server_id: Option<String>,
}

pub fn run(ctx: &Ctx, db: Option<PathBuf>, a: ForwardArgs) -> Result<(), AppError> {
    let key = server::server_key(&ctx.server_key_file(db.clone())?)?;
    let (_, store) = ctx.server_db(db)?;
    let settings = Settings::from_config(&ctx.config.forward, &ctx.data_dir);
    match a.action {
        Some(ForwardAction::Enrol(e)) => enrol(ctx, &store, &key, &settings, e),
        Some(ForwardAction::Status) => status(ctx, &store),
        None => {
            let to =
                a.to.or_else(|| ctx.config.forward.to.clone())
                    .filter(|s| !s.is_empty());
            if a.watch {
                watch(ctx, &store, &key, to.as_deref(), &settings)
            } else {
                let stop = crate::stop::flag(1)?;
                let report = forward_run::pass(
                    &store,
                    &key,
                    to.as_deref(),
                    &settings,
                    &stop,
                    &mut progress(ctx),
                )?;
                print_report(ctx, &store, &report);
                Ok(())
            }
        }
    }
}

fn enrol(
    ctx: &Ctx,
    store: &Store,
    key: &crate::crypto::KeyPair,
    settings: &Settings,
    e: EnrolArgs,
) -> Result<(), AppError> {
    let name = e
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("SERVER {}", key.id()));
    let expect = e
        .expect_server_id
        .as_deref()
        .map(crate::client::pin::ExpectedServer::parse)
        .transpose()?;
    let t = forward_run::enrol(
        store,
        key,
        &e.to,
        &e.token,
        &name,
        expect.as_ref(),
        settings,
    )?;
    if ctx.json {
        output::ok(&Province {
            province: &t,
            backlog: None,
        });
    } else {
        println!(
            "{}",
            tr!(
                "✓ Terdaftar di server provinsi {} (server {}) sebagai relay {}.",
                "✓ Enrolled with the province server {} (server {}) as relay {}.",
                t.url,
                t.server_id,
                t.device_id
            )
        );
        eprintln!(
            "{}",
            tr!(
                "Kirim sekarang: ikd-field server forward — atau setel [forward] to = \"{}\" agar serve meneruskan terus.",
                "Send now: ikd-field server forward — or set [forward] to = \"{}\" so serve forwards continuously.",
                t.url
            )
        );
    }
    Ok(())
}

fn status(ctx: &Ctx, store: &Store) -> Result<(), AppError> {
    let t = forward::target(store)?.ok_or_else(forward_run::not_enrolled)?;
    let backlog = forward::backlog(store)?;
    if ctx.json {
        output::ok(&Province {
            province: &t,
            backlog: Some(backlog),
        });
    } else {
        println!(
            "{}",
            tr!(
                "Provinsi {} (server {}), relay {}; {} catatan menunggu; terakhir berhasil {}.",
                "Province {} (server {}), relay {}; {} records waiting; last success {}.",
                t.url,
                t.server_id,
                t.device_id,
                backlog,
                t.last_ok_at
                    .as_deref()
                    .map(|s| timefmt::local_display(s, ctx.offset()))
                    .unwrap_or_else(|| "—".into())
            )
        );
        if let Some(e) = &t.last_error {
            println!("{}", tr!("Galat terakhir: {e}", "Last error: {e}"));
        }
    }
    Ok(())
}

/// Progress lines on stderr (none with `--json`).
fn progress(ctx: &Ctx) -> impl FnMut(Event<'_>) + use<> {
    let quiet = ctx.json;
    move |e| {
        if quiet {
            return;
        }
        eprintln!("{}", event_line(&e));
    }
}

/// One line for an event (the command's progress, `serve`'s log).
pub fn event_line(e: &Event<'_>) -> String {
    match e {
        Event::Answered { batch, summary: s } => tr!(
            "→ batch {}: {} catatan: {} diterima, {} duplikat, {} konflik, {} ditolak",
            "→ batch {}: {} records: {} accepted, {} duplicate, {} conflict, {} rejected",
            batch.id,
            batch.records,
            s.accepted,
            s.duplicate,
            s.conflict,
            s.rejected
        ),
        Event::Retry { batch, retry } => format!("  batch {}: {retry}", batch.id),
    }
}

fn print_report(ctx: &Ctx, store: &Store, r: &Report) {
    if ctx.json {
        let province = forward::target(store).ok().flatten().map(|t| t.url);
        output::ok(&Forwarded {
            province: province.as_deref(),
            report: r,
        });
        return;
    }
    if r.lease_held_elsewhere && r.batches == 0 {
        println!(
            "{}",
            tr!(
                "Proses server lain sedang meneruskan ke provinsi; tidak ada yang dikirim dari sini. {} catatan menunggu.",
                "Another server process is forwarding to the province; nothing was sent from here. {} records waiting.",
                r.backlog
            )
        );
        return;
    }
    println!(
        "{}",
        tr!(
            "✓ {} batch, {} catatan ke provinsi: {} diterima, {} duplikat, {} konflik, {} ditolak; {} menunggu.",
            "✓ {} batches, {} records to the province: {} accepted, {} duplicate, {} conflict, {} rejected; {} waiting.",
            r.batches,
            r.records,
            r.summary.accepted,
            r.summary.duplicate,
            r.summary.conflict,
            r.summary.rejected,
            r.backlog
        )
    );
}

/// `--watch`: a pass every `forward.every_secs` until Ctrl+C; an unreachable province is
/// reported and tried again, any other error ends the command.
fn watch(
    ctx: &Ctx,
    store: &Store,
    key: &crate::crypto::KeyPair,
    to: Option<&str>,
    settings: &Settings,
) -> Result<(), AppError> {
    let stop = crate::stop::flag(1)?;
    let every = Duration::from_secs(ctx.config.forward.every_secs.max(1));
    while !stop.load(Ordering::Relaxed) {
        match forward_run::pass(store, key, to, settings, &stop, &mut progress(ctx)) {
            Ok(r) => print_report(ctx, store, &r),
            Err(e) if e.kind == Kind::Unreachable => {
                if ctx.json {
                    output::json(&crate::output::Failed {
                        ok: false,
                        error: &e,
                    });
                } else {
                    eprintln!("{}", e.message);
                }
            }
            Err(e) => return Err(e),
        }
        if !crate::client::sleep_unless(&stop, every) {
            break;
        }
    }
    Ok(())
}

/// `serve`'s background forwarder (`[forward] to` set): a pass every `forward.every_secs` on its
/// own database handle until `stop`; every outcome is one log line on stderr, and no error stops
/// the server.
pub fn spawn_background(
    ctx: &Ctx,
    store: Store,
    key: crate::crypto::KeyPair,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let settings = Settings::from_config(&ctx.config.forward, &ctx.data_dir);
    let every = Duration::from_secs(ctx.config.forward.every_secs.max(1));
    let to = ctx.config.forward.to.clone();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let mut log = |e: Event<'_>| log::info!("forward {}", event_line(&e));
            match forward_run::pass(&store, &key, to.as_deref(), &settings, &stop, &mut log) {
                Ok(r) if r.batches > 0 => log::info!(
                    "forward: {} batch(es), {} records, {} waiting",
                    r.batches,
                    r.records,
                    r.backlog
                ),
                Ok(_) => {}
                Err(e) => log::warn!(
                    "forward: {}{}",
                    e.message,
                    e.hint.map(|h| format!(" — {h}")).unwrap_or_default()
                ),
            }
            if !crate::client::sleep_unless(&stop, every) {
                break;
            }
        }
    })
}

// The `--json` answers of these commands (each printed as `{"ok": true, …}`).

#[derive(serde::Serialize)]
struct Province<'a> {
    province: &'a forward::Target,
    /// Records waiting to be forwarded (`server forward status`).
    #[serde(skip_serializing_if = "Option::is_none")]
    backlog: Option<i64>,
}

#[derive(serde::Serialize)]
struct Forwarded<'a> {
    province: Option<&'a str>,
    report: &'a Report,
}
