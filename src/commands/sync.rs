//! Sync commands of the field kit: `enrol`, `sync` (with `--watch` and `--to-file`), and the
//! enrolment step of `init --server URL --token T`.
use super::Ctx;
use crate::client::pin::ExpectedServer;
use crate::client::{self as sync_client, Client, Retry};
use crate::error::{AppError, Kind};
use crate::field::datadir::DataDir;
use crate::field::enrolment::{self, Enrolment};
use crate::field::outbox;
use crate::field::sync_run::{self, Event, Options, Report};
use crate::{output, timefmt, tr};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct EnrolArgs {
    /// Alamat server Dinas / district server URL (http:// or https://)
    #[arg(long)]
    pub server: String,
    /// Token sekali pakai dari admin Dinas / one-time token from the district admin
    #[arg(long)]
    pub token: String,
    /// Id server dari admin (atau kunci publiknya): daftar hanya bila cocok / the server id from
    /// the admin (or its public key): enrol only with that server
    #[arg(long, value_name = "ID")]
    pub expect_server_id: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct SyncArgs {
    /// Alamat server lain untuk kali ini / another route to the enrolled server, this time
    #[arg(long)]
    pub server: Option<String>,
    /// Tepat sekian catatan per batch, tanpa menyesuaikan sinyal / exactly this many records per batch, not sized to the link (1–5000) [default: from config sync.batch_size, sized to the link]
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=5000))]
    pub batch_size: Option<u16>,
    /// Tunggu sinyal dan kirim sendiri (Ctrl-C berhenti) / wait for the server and sync by itself
    #[arg(long, conflicts_with = "to_file")]
    pub watch: bool,
    /// Tanpa sinyal: tulis batch bertanda tangan ke berkas (flashdisk) / write signed batches to FILE
    #[arg(long, value_name = "FILE")]
    pub to_file: Option<PathBuf>,
}

/// Registers the device with the server behind `server` using a one-time token (see
/// [`enrolment::enrol`]).
pub fn enrol_device(
    ctx: &Ctx,
    dd: &DataDir,
    server: &str,
    token: &str,
    expect: Option<&ExpectedServer>,
) -> Result<Enrolment, AppError> {
    enrolment::enrol(dd, &client(ctx, server)?, token, expect)
}

pub fn print_enrolled(ctx: &Ctx, dd: &DataDir, e: &Enrolment) {
    if ctx.json {
        output::ok(&Enrolled {
            data_dir: &dd.path,
            device: &dd.identity.device_id,
            enrolment: e,
        });
    } else {
        println!(
            "{}",
            tr!(
                "✓ Perangkat {} terdaftar di server {} ({}).\nKirim catatan dengan: ikd-field sync",
                "✓ Device {} enrolled with server {} ({}).\nSend records with: ikd-field sync",
                dd.identity.device_id,
                e.server_id,
                e.server_url
            )
        );
    }
}

pub fn enrol(ctx: &Ctx, a: EnrolArgs) -> Result<(), AppError> {
    let expect = a
        .expect_server_id
        .as_deref()
        .map(ExpectedServer::parse)
        .transpose()?;
    let dd = ctx.open()?;
    let e = enrol_device(ctx, &dd, &a.server, &a.token, expect.as_ref())?;
    print_enrolled(ctx, &dd, &e);
    Ok(())
}

fn not_enrolled() -> AppError {
    AppError::usage(tr!(
        "Perangkat ini belum terdaftar di server Dinas.",
        "This device is not enrolled with a district server yet."
    ))
    .hint(tr!(
        "Minta token ke admin Dinas lalu: ikd-field enrol --server URL --token TOKEN (tanpa sinyal: ikd-field sync --to-file BERKAS)",
        "Ask the district admin for a token, then: ikd-field enrol --server URL --token TOKEN (no signal: ikd-field sync --to-file FILE)"
    ))
}

fn human_bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KB", n as f64 / 1024.0),
        _ => format!("{:.1} MB", n as f64 / 1_048_576.0),
    }
}

/// A progress bar on stderr (records and bytes), hidden for --json or when stderr is not a
/// terminal; retries are reported as lines in text mode.
struct Progress {
    bar: ProgressBar,
    json: bool,
    bytes: u64,
}

impl Progress {
    fn new(json: bool) -> Progress {
        let target = if json || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        bar.set_style(
            ProgressStyle::with_template("{bar:30.green} {pos}/{len} {prefix} · {msg}")
                .expect("valid template")
                .progress_chars("█▌ "),
        );
        bar.set_prefix(tr!("catatan", "records"));
        Progress {
            bar,
            json,
            bytes: 0,
        }
    }

    fn event(&mut self, e: Event) {
        match e {
            Event::Start { pending } => {
                self.bar.set_length(pending);
                self.bar.set_message(human_bytes(0));
            }
            Event::Answered { records, bytes } => {
                self.bytes += bytes;
                if self.bar.position() + records > self.bar.length().unwrap_or(0) {
                    self.bar.set_length(self.bar.position() + records);
                }
                self.bar.inc(records);
                self.bar.set_message(human_bytes(self.bytes));
            }
            Event::Retry(retry) => {
                if !self.json {
                    self.bar.suspend(|| eprintln!("  {retry}"));
                }
            }
        }
    }
}

/// The retention purge after a successful sync (`[field] purge_after_sync`). A failure here is
/// reported but does not make the sync fail: the records are safe on the server and on the
/// laptop, and the next sync (or `ikd-field purge`) tries again.
fn purge_after(ctx: &Ctx, dd: &DataDir, r: &Report) -> Option<crate::field::retention::Purge> {
    if !ctx.config.field.purge_after_sync || r.stopped {
        return None;
    }
    let days = ctx.config.field.retention_days;
    match crate::field::retention::purge(&dd.store, days, crate::timefmt::now(), false) {
        Ok(p) => Some(p),
        Err(e) => {
            if !ctx.json {
                eprintln!(
                    "{}\n{e}",
                    tr!(
                        "! Sinkron berhasil, tetapi penghapusan catatan lama gagal:",
                        "! The sync worked, but purging old records failed:"
                    )
                );
            }
            None
        }
    }
}

/// `received`: the activations and voids of this laptop the district now has (answered), the
/// officer's count; the batch-level counts stay in `--json`.
fn print_report(
    ctx: &Ctx,
    r: &Report,
    purged: Option<&crate::field::retention::Purge>,
    received: (u64, u64),
) {
    if ctx.json {
        output::ok(&Synced {
            report: r,
            purge: purged,
        });
        return;
    }
    if let Some(p) = purged.filter(|p| p.records > 0) {
        println!("{}", p.describe());
    }
    if r.records == 0 && r.pending == 0 {
        println!(
            "{}",
            tr!(
                "Tidak ada yang perlu dikirim; semua catatan sudah terkirim.",
                "Nothing to send; every record is synced."
            )
        );
        return;
    }
    println!(
        "{} ({})",
        tr!(
            "✓ Diterima server Dinas: {} aktivasi, {} pembatalan",
            "✓ Received by the district server: {} activations, {} voids",
            received.0,
            received.1
        ),
        human_bytes(r.bytes_sent)
    );
    for p in &r.problems {
        println!(
            "  ! #{} {} — {}: {}",
            p.seq,
            p.name,
            p.status.label(),
            crate::domain::record::plain_reason(&p.reason, p.seq, ctx.offset())
        );
    }
    if r.stopped {
        println!(
            "{}",
            tr!(
                "Dihentikan. {} catatan masih menunggu; jalankan lagi nanti (tidak ada yang hilang).",
                "Stopped. {} records still pending; run again later (nothing lost).",
                r.pending
            )
        );
    } else if r.pending > 0 {
        println!(
            "{}",
            tr!(
                "{} catatan masih menunggu jawaban server; jalankan sync lagi.",
                "{} records still wait for the server's answer; run sync again.",
                r.pending
            )
        );
    }
}

/// Batch sizes and retry policy from the configuration; `fixed` = every batch that many
/// records (`--batch-size`), else sized to the link from `sync.batch_size` up to
/// `sync.max_batch_size`.
pub fn options(ctx: &Ctx, fixed: Option<usize>) -> Options {
    let c = &ctx.config.sync;
    Options {
        batch_size: fixed.unwrap_or(c.batch_size),
        max_batch_size: fixed.unwrap_or(c.max_batch_size),
        fixed: fixed.is_some(),
        retry: Retry {
            max_attempts: c.max_attempts.max(1),
            base: Duration::from_millis(c.retry_base_ms),
            max: Duration::from_secs(c.retry_max_secs),
        },
    }
}

/// A client for `url` with the configured timeout.
pub fn client(ctx: &Ctx, url: &str) -> Result<Client, AppError> {
    Client::with_transport(
        url,
        &sync_client::Transport::from_config(&ctx.config.sync, &ctx.data_dir),
    )
}

/// A client for the enrolled server at `url`: with the office CA it handed out at enrolment,
/// `https://` is checked against exactly that CA (and `sync.ca_file`).
pub fn enrolled_client(ctx: &Ctx, url: &str, e: &Enrolment) -> Result<Client, AppError> {
    let mut t = sync_client::Transport::from_config(&ctx.config.sync, &ctx.data_dir);
    t.office_ca = e.office_ca().map(str::to_string);
    Client::with_transport(url, &t)
}

pub fn sync(ctx: &Ctx, a: SyncArgs) -> Result<(), AppError> {
    let mut dd = ctx.open()?;
    let batch_size = a
        .batch_size
        .map(usize::from)
        .unwrap_or(ctx.config.sync.batch_size);
    if let Some(path) = &a.to_file {
        let r = sync_run::to_file(&mut dd, path, batch_size)?;
        // Records still under the holding key cannot be opened at the office: they wait.
        let held = dd.store.pending_seal()?;
        if ctx.json {
            output::ok(&ToFile {
                to_file: &r,
                pending_seal: held,
            });
        } else {
            warn_held(held);
            println!(
                "{}",
                tr!(
                    "✓ {} catatan dalam {} batch bertanda tangan ditulis ke {} ({}).\nBawa ke kantor Dinas: ikd-field server import {}\nCatatan tetap 'menunggu' sampai sync online berikutnya.",
                    "✓ {} records in {} signed batches written to {} ({}).\nTake it to the district office: ikd-field server import {}\nThe records stay pending until the next online sync.",
                    r.records,
                    r.batches,
                    r.file,
                    human_bytes(r.bytes),
                    r.file
                )
            );
        }
        return Ok(());
    }
    let enrolment = Enrolment::load(&dd.store)?.ok_or_else(not_enrolled)?;
    let url = a
        .server
        .clone()
        .or_else(|| ctx.config.sync.server.clone())
        .unwrap_or_else(|| enrolment.server_url.clone());
    let client = enrolled_client(ctx, &url, &enrolment)?;
    let opts = options(ctx, a.batch_size.map(usize::from));
    let stop = crate::stop::flag(130)?;
    if a.watch {
        return watch(ctx, &mut dd, &client, &enrolment, &opts, &stop);
    }
    if !ctx.json {
        // At once, before any answer or timeout: a dead link is known by what follows.
        eprintln!(
            "{}",
            tr!(
                "Menghubungi server Dinas di {} …",
                "Contacting the district server at {} …",
                client.base()
            )
        );
    }
    let mut progress = Progress::new(ctx.json);
    let before = dd.store.pending_by_kind()?;
    let result = sync_run::run(&mut dd, &client, &enrolment, &opts, &stop, &mut |e| {
        progress.event(e)
    });
    progress.bar.finish_and_clear();
    let report = result?;
    let purged = purge_after(ctx, &dd, &report);
    let after = dd.store.pending_by_kind()?;
    let received = (
        before.0.saturating_sub(after.0),
        before.1.saturating_sub(after.1),
    );
    print_report(ctx, &report, purged.as_ref(), received);
    // A laptop enrolled before sealing existed has no district key: its records wait.
    warn_held(dd.store.pending_seal()?);
    if report.stopped {
        // Interrupted by Ctrl-C: the conventional status, so scripts do not take it for done.
        std::process::exit(130);
    }
    Ok(())
}

/// Says on stderr that `held` records are still sealed to the holding key (no district key
/// yet), so they are neither sent nor written, and how to set the key.
fn warn_held(held: i64) {
    if held > 0 {
        eprintln!(
            "{}",
            tr!(
                "! {held} catatan belum terkunci untuk server Dinas dan tidak ikut dikirim/ditulis; daftarkan laptop dulu (ikd-field enrol, atau Pengaturan di desk) atau pasang kunci Dinas (di server: ikd-field server seal-key; di laptop: config field.district_seal_key).",
                "! {held} records are not sealed for the district yet and were not sent or written; enrol the device first (ikd-field enrol) or set the district key (on the server: ikd-field server seal-key; on the laptop: config field.district_seal_key)."
            )
        );
    }
}

/// `sync --watch`: checks `/v1/health` every `watch_interval_secs`; when the enrolled server
/// answers and something is waiting, syncs. Unreachable servers are waited out; a refusal ends it.
fn watch(
    ctx: &Ctx,
    dd: &mut DataDir,
    client: &Client,
    enrolment: &Enrolment,
    opts: &Options,
    stop: &AtomicBool,
) -> Result<(), AppError> {
    let interval = Duration::from_secs(ctx.config.sync.watch_interval_secs.max(1));
    let say = |s: String| {
        if !ctx.json {
            eprintln!("{s}");
        }
    };
    say(tr!(
        "Menunggu server {} (cek tiap {} dtk; Ctrl-C untuk berhenti)…",
        "Waiting for server {} (checking every {} s; Ctrl-C to stop)…",
        client.base(),
        interval.as_secs()
    ));
    let mut was_online = None;
    loop {
        let online = match client.health() {
            Ok(h) if h.server_id == enrolment.server_id => true,
            Ok(h) => {
                say(tr!(
                    "  {} menjawab sebagai server lain ({}); tidak dikirim.",
                    "  {} answers as another server ({}); nothing sent.",
                    client.base(),
                    h.server_id
                ));
                false
            }
            Err(_) => false,
        };
        if was_online != Some(online) {
            say(if online {
                tr!("  server terjangkau.", "  server reachable.")
            } else {
                tr!("  server belum terjangkau.", "  server not reachable yet.")
            });
            was_online = Some(online);
        }
        let (pending, open) = outbox::backlog(&dd.store)?;
        if online && (pending > 0 || open > 0) {
            let mut progress = Progress::new(ctx.json);
            let before = dd.store.pending_by_kind()?;
            let result = sync_run::run(dd, client, enrolment, opts, stop, &mut |e| {
                progress.event(e)
            });
            progress.bar.finish_and_clear();
            match result {
                Ok(r) => {
                    let purged = purge_after(ctx, dd, &r);
                    if ctx.json {
                        // One line per pass (JSON lines) while watching.
                        output::ok_line(&Synced {
                            report: &r,
                            purge: purged.as_ref(),
                        });
                    } else {
                        let after = dd.store.pending_by_kind()?;
                        println!(
                            "{} — {}",
                            timefmt::local_display(&timefmt::now_utc(), ctx.offset()),
                            tr!(
                                "diterima server Dinas: {} aktivasi, {} pembatalan",
                                "received by the district server: {} activations, {} voids",
                                before.0.saturating_sub(after.0),
                                before.1.saturating_sub(after.1)
                            )
                        );
                    }
                }
                Err(e) if e.kind == Kind::Unreachable => say(format!("  {}", e.message)),
                Err(e) => return Err(e),
            }
        }
        if !sync_client::sleep_unless(stop, interval) {
            say(tr!("Berhenti.", "Stopped."));
            return Ok(());
        }
    }
}

// The `--json` answers of these commands (each printed as `{"ok": true, …}`).

#[derive(Serialize)]
struct Enrolled<'a> {
    data_dir: &'a std::path::Path,
    device: &'a str,
    enrolment: &'a Enrolment,
}

#[derive(Serialize)]
struct Synced<'a> {
    #[serde(flatten)]
    report: &'a Report,
    /// What the retention purge after the sync removed (`[field] purge_after_sync`).
    purge: Option<&'a crate::field::retention::Purge>,
}

#[derive(Serialize)]
struct ToFile<'a> {
    to_file: &'a sync_run::FileReport,
    /// Records still under the holding key: not in the file until the laptop is enrolled.
    pending_seal: i64,
}
