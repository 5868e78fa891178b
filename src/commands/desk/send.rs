//! "Kirim ke Dinas": the sync runs on its own thread (its own connection to the database) while
//! the page asks how it goes, so the officer sees at once that something is happening and each
//! retry in plain words. And the USB file for an office with no signal at all.
use super::Desk;
use super::serve::Resp;
use crate::client::Failure;
use crate::error::AppError;
use crate::field::enrolment::Enrolment;
use crate::field::sync_run::{self, Event};
use crate::tr;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What the page shows about the last or running send.
#[derive(Serialize, Clone, Default)]
pub struct SendState {
    /// `idle`, `running`, `done` or `failed`.
    pub state: &'static str,
    /// One sentence: what is happening or what happened.
    pub message: String,
    /// What to do next, when there is something to do.
    pub hint: Option<String>,
    /// Records the officer must act on (conflicts, refusals), in plain words.
    pub problems: Vec<String>,
    pub sent: u64,
    pub total: u64,
}

/// Starts a send unless one is running; answers with the state at once.
pub fn start(d: &Desk) -> Resp {
    // The answer is the state as the send starts ("contacting…"): the thread may have moved on
    // by the time the page reads it, and the page polls for that.
    let starting = {
        let Ok(mut s) = d.send.lock() else {
            return Resp::json(500, &SendState::default());
        };
        if s.state == "running" {
            return Resp::json(200, &*s);
        }
        *s = SendState {
            state: "running",
            message: tr!(
                "Menghubungi server Dinas…",
                "Contacting the district server…"
            ),
            ..SendState::default()
        };
        s.clone()
    };
    let desk = SendHandle {
        ctx: crate::commands::Ctx {
            data_dir: d.ctx.data_dir.clone(),
            config: d.ctx.config.clone(),
            json: false,
            ask: false,
        },
        send: std::sync::Arc::clone(&d.send),
        stop: std::sync::Arc::clone(&d.stop),
    };
    std::thread::spawn(move || desk.run());
    Resp::json(200, &starting)
}

pub fn progress(d: &Desk) -> Resp {
    let s = d.send.lock().map(|s| s.clone()).unwrap_or_default();
    Resp::json(
        200,
        &SendState {
            state: if s.state.is_empty() { "idle" } else { s.state },
            ..s
        },
    )
}

/// What the sending thread needs (the desk itself stays with the server).
struct SendHandle {
    ctx: crate::commands::Ctx,
    send: std::sync::Arc<std::sync::Mutex<SendState>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SendHandle {
    fn set(&self, f: impl FnOnce(&mut SendState)) {
        if let Ok(mut s) = self.send.lock() {
            f(&mut s);
        }
    }

    fn run(self) {
        let mut last = None;
        let result = self.sync(&mut last);
        match result {
            Ok(done) => self.set(|s| *s = done),
            Err(e) => {
                let (message, hint) = if e.kind == crate::error::Kind::Unreachable {
                    unreachable_words(last.as_ref(), &e)
                } else {
                    (e.message.clone(), e.hint.clone())
                };
                self.set(|s| {
                    *s = SendState {
                        state: "failed",
                        message,
                        hint,
                        ..SendState::default()
                    }
                })
            }
        }
    }

    fn sync(&self, last: &mut Option<Failure>) -> Result<SendState, AppError> {
        let ctx = &self.ctx;
        let mut dd = ctx.open()?;
        let enrolment = Enrolment::load(&dd.store)?.ok_or_else(|| {
            AppError::usage(tr!(
                "Laptop ini belum terdaftar di server Dinas.",
                "This laptop is not enrolled with the district server yet."
            ))
            .hint(tr!(
                "Minta token ke admin Dinas dan isi di halaman Pengaturan; tanpa sinyal, pakai \"Simpan ke flashdisk\".",
                "Ask the district admin for a token and enter it on the Settings page; with no signal, use \"Save to a USB stick\"."
            ))
        })?;
        let url = ctx
            .config
            .sync
            .server
            .clone()
            .unwrap_or_else(|| enrolment.server_url.clone());
        let client = super::super::sync::enrolled_client(ctx, &url, &enrolment)?;
        let before = dd.store.pending_by_kind()?;
        let opts = super::super::sync::options(ctx, None);
        let report = sync_run::run(
            &mut dd,
            &client,
            &enrolment,
            &opts,
            &self.stop,
            &mut |e| match e {
                Event::Start { pending } => self.set(|s| {
                    s.total = pending;
                    s.message = tr!("Mengirim {pending} catatan…", "Sending {pending} records…");
                }),
                Event::Answered { records, .. } => self.set(|s| {
                    s.sent += records;
                    s.message = tr!(
                        "Terkirim {} dari {}…",
                        "Sent {} of {}…",
                        s.sent,
                        s.total.max(s.sent)
                    );
                }),
                Event::Retry(r) => {
                    *last = Some(r.why.clone());
                    let line = r.to_string();
                    self.set(|s| s.message = line);
                }
            },
        )?;
        let problems = report
            .problems
            .iter()
            .map(|p| {
                format!(
                    "#{} {} — {}",
                    p.seq,
                    p.name,
                    crate::domain::record::plain_reason(&p.reason, p.seq, ctx.offset())
                )
            })
            .collect();
        let after = dd.store.pending_by_kind()?;
        let (activations, voids) = (
            before.0.saturating_sub(after.0),
            before.1.saturating_sub(after.1),
        );
        let message = if report.stopped {
            tr!(
                "Dihentikan. {} catatan masih menunggu; kirim lagi nanti (tidak ada yang hilang).",
                "Stopped. {} records still waiting; send again later (nothing is lost).",
                report.pending
            )
        } else if report.records == 0 && report.pending == 0 {
            tr!(
                "Semua catatan sudah terkirim; tidak ada yang perlu dikirim.",
                "Every record is sent already; nothing to send."
            )
        } else if voids > 0 {
            tr!(
                "Selesai: {} aktivasi dan {} pembatalan diterima server Dinas.",
                "Done: {} activations and {} voids received by the district server.",
                activations,
                voids
            )
        } else {
            tr!(
                "Selesai: {} aktivasi diterima server Dinas.",
                "Done: {} activations received by the district server.",
                activations
            )
        };
        let hint = (report.pending > 0 && !report.stopped).then(|| {
            tr!(
                "{} catatan belum dijawab server; tekan Kirim lagi nanti.",
                "{} records were not answered yet; press Send again later.",
                report.pending
            )
        });
        Ok(SendState {
            state: "done",
            message,
            hint,
            problems,
            sent: report.records as u64,
            total: report.records as u64,
        })
    }
}

/// The page's words when the district server could not be reached, from the last failure seen
/// (the command line's message names the server's address and its commands instead).
fn unreachable_words(last: Option<&Failure>, e: &AppError) -> (String, Option<String>) {
    let certificate = e.details["certificate"] == true;
    let what = match last {
        Some(Failure::Unsigned(_)) => tr!(
            "Jaringan ini meminta login dulu (WiFi hotspot), jadi server Dinas belum terjangkau.",
            "This network wants a login first (a WiFi hotspot), so the district server was not reached."
        ),
        _ if certificate => tr!(
            "Koneksi aman ke server Dinas ditolak, jadi tidak ada yang dikirim.",
            "The secure connection to the district server was refused, so nothing was sent."
        ),
        Some(Failure::Busy(_) | Failure::RateLimited { .. }) => {
            tr!("Server Dinas sedang sibuk.", "The district server is busy.")
        }
        _ => tr!(
            "Server Dinas tidak terjangkau: tidak ada sinyal, atau server sedang mati.",
            "The district server cannot be reached: no signal, or the server is down."
        ),
    };
    let pending = e.details["pending"].as_i64().unwrap_or(0);
    let message = format!(
        "{what} {}",
        tr!(
            "Tidak ada yang hilang: {pending} catatan tetap menunggu di laptop ini.",
            "Nothing is lost: {pending} records stay waiting on this laptop."
        )
    );
    let hint = match last {
        Some(Failure::Unsigned(_)) => tr!(
            "Buka browser dan login WiFi dulu, lalu tekan Kirim ke Dinas lagi.",
            "Open the browser and log in to the WiFi first, then press Send again."
        ),
        _ if certificate => tr!(
            "Periksa jam dan tanggal laptop; di hotspot, login dulu lewat browser. Bila tetap gagal, hubungi admin Dinas.",
            "Check the laptop's date and time; on a hotspot, log in through the browser first. If it still fails, call the district admin."
        ),
        _ => tr!(
            "Tekan Kirim ke Dinas lagi saat ada sinyal, atau simpan ke flashdisk di bawah.",
            "Press Send again when there is signal, or save to a USB stick below."
        ),
    };
    (message, Some(hint))
}

#[derive(Serialize)]
struct Places {
    places: Vec<String>,
}

/// Folders a USB stick is likely mounted at: the drive letters other than C: on Windows, the
/// media folders on Linux.
pub fn usb_places() -> Resp {
    let mut places = Vec::new();
    if cfg!(windows) {
        for l in 'D'..='Z' {
            let p = format!("{l}:\\");
            if std::path::Path::new(&p).is_dir() {
                places.push(p);
            }
        }
    } else {
        let user = std::env::var("USER").unwrap_or_default();
        for base in [
            format!("/media/{user}"),
            format!("/run/media/{user}"),
            "/mnt".into(),
        ] {
            if let Ok(rd) = std::fs::read_dir(&base) {
                for e in rd.flatten() {
                    if e.path().is_dir() {
                        places.push(e.path().display().to_string());
                    }
                }
            }
        }
    }
    Resp::json(200, &Places { places })
}

#[derive(Deserialize)]
pub struct UsbIn {
    folder: String,
}

#[derive(Serialize)]
struct UsbDone {
    message: String,
    file: String,
    records: usize,
}

pub fn usb(d: &Desk, u: &UsbIn) -> Result<Resp, AppError> {
    let folder = PathBuf::from(u.folder.trim());
    if u.folder.trim().is_empty() || !folder.is_dir() {
        return Err(AppError::invalid(tr!(
            "Folder '{}' tidak ada. Colokkan flashdisk lalu pilih foldernya.",
            "The folder '{}' does not exist. Plug in the USB stick and pick its folder.",
            u.folder.trim()
        )));
    }
    let mut g = d.data()?;
    let dd = g.as_mut().expect("opened");
    let stamp = crate::timefmt::now()
        .to_offset(d.ctx.offset())
        .format(time::macros::format_description!(
            "[year][month][day]-[hour][minute]"
        ))
        .unwrap_or_default();
    let file = folder.join(format!(
        "ikd-{}-{stamp}.jsonl",
        &dd.identity.device_id.chars().take(8).collect::<String>()
    ));
    let r = sync_run::to_file(dd, &file, d.ctx.config.sync.batch_size)?;
    Ok(Resp::json(
        200,
        &UsbDone {
            message: tr!(
                "{} catatan disimpan ke {}. Bawa flashdisk ini ke kantor Dinas. Catatan tetap menunggu sampai terkirim.",
                "{} records saved to {}. Take this USB stick to the district office. The records stay waiting until sent.",
                r.records,
                file.display()
            ),
            file: file.display().to_string(),
            records: r.records,
        },
    ))
}
