//! "Kirim ke Dinas": the sync runs on its own thread (its own connection to the database) while
//! the page asks how it goes, so the officer sees at once that something is happening and each
//! retry in plain words. And the USB file for an office with no signal at all.
use super::Desk;
use super::serve::Resp;
use crate::domain::SyncStatus;
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
    {
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
    }
    let desk = SendHandle {
        ctx: crate::commands::Ctx {
            data_dir: d.ctx.data_dir.clone(),
            config: d.ctx.config.clone(),
            json: false,
        },
        send: std::sync::Arc::clone(&d.send),
        stop: std::sync::Arc::clone(&d.stop),
    };
    std::thread::spawn(move || desk.run());
    progress(d)
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
        let result = self.sync();
        match result {
            Ok(done) => self.set(|s| *s = done),
            Err(e) => self.set(|s| {
                *s = SendState {
                    state: "failed",
                    message: e.message.clone(),
                    hint: e.hint.clone(),
                    ..SendState::default()
                }
            }),
        }
    }

    fn sync(&self) -> Result<SendState, AppError> {
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
        let client = super::super::sync::client(ctx, &url)?;
        let before = pending_by_kind(&dd)?;
        let opts = super::super::sync::options(ctx, ctx.config.sync.batch_size);
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
                    let line = r.to_string();
                    self.set(|s| s.message = line);
                }
            },
        )?;
        let problems = report
            .problems
            .iter()
            .map(|p| {
                let what = match p.status {
                    SyncStatus::Conflict => tr!(
                        "sudah diaktivasi tim lain. Hubungi admin Dinas; bila benar, batalkan catatan ini di halaman Hari ini dan ambil kembali slipnya",
                        "already activated by another team. Call the district admin; if so, void this record on the Today page and take the slip back"
                    ),
                    _ if p.reason == "damaged" => tr!(
                        "rusak di laptop ini dan tidak dikirim; hubungi admin Dinas",
                        "damaged on this laptop and not sent; call the district admin"
                    ),
                    _ => tr!(
                        "ditolak server Dinas; hubungi admin Dinas",
                        "refused by the district server; call the district admin"
                    ),
                };
                format!("#{} {} — {what}", p.seq, p.name)
            })
            .collect();
        let after = pending_by_kind(&dd)?;
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

/// Records waiting to be sent: (activations, voids).
fn pending_by_kind(dd: &crate::field::datadir::DataDir) -> Result<(u64, u64), AppError> {
    dd.store
        .conn()
        .query_row(
            "SELECT COALESCE(SUM(kind = 'activation'), 0), COALESCE(SUM(kind = 'void'), 0)
             FROM records WHERE status = 'pending'",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )
        .map_err(|e| crate::sqlite::db_error(dd.store.path(), e))
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
