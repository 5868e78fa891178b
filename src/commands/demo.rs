//! `ikd-field demo`: the main job end to end on the embedded default, in a temporary folder.
//!
//! A district server is started on 127.0.0.1 (a real `ikd-field serve` child process with its
//! own SQLite database and targets), a field kit is set up and enrolled with a one-time token,
//! synthetic citizens are recorded one by one with a signed PNG slip each (plus an A4 PDF sheet),
//! one slip is read back and verified, the records are synced, sync is run again to show nothing
//! is sent twice, and the dashboard address is printed.
use super::Ctx;
use crate::domain::validate;
use crate::error::AppError;
use crate::field::datadir::DataDir;
use crate::field::enrolment::Enrolment;
use crate::field::sync_run;
use crate::slip::{self, Format, Paper};
use crate::{output, synth, timefmt, tr};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Jumlah warga sintetis / number of synthetic citizens
    #[arg(long, default_value_t = 36)]
    pub citizens: usize,
    /// Kode kabupaten untuk data sintetis / regency for the synthetic data (Rejang Lebong)
    #[arg(long, default_value = "1702")]
    pub regency: String,
    /// Simpan hasil di folder ini (bukan folder sementara) / keep the output here
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// Jangan menunggu Enter sebelum menghentikan server / don't wait before stopping the server
    #[arg(long)]
    pub no_wait: bool,
}

fn err(e: impl std::fmt::Display) -> AppError {
    AppError::other(e.to_string())
}

/// A district server child process, stopped (SIGTERM, then kill) when dropped.
struct District {
    child: Child,
    url: String,
    db: PathBuf,
}

impl District {
    fn start(dir: &Path) -> Result<District, AppError> {
        std::fs::create_dir_all(dir).map_err(err)?;
        let db = dir.join("district.db");
        let mut child = Command::new(std::env::current_exe().map_err(err)?)
            .arg("--data-dir")
            .arg(dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(&db)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(err)?;
        let mut first = String::new();
        let mut out = BufReader::new(child.stdout.take().expect("piped"));
        out.read_line(&mut first).map_err(err)?;
        // Keep reading what the server prints, so it never writes into a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .map(str::to_string)
            .ok_or_else(|| {
                let _ = child.kill();
                err(tr!(
                    "server demo tidak mau mulai",
                    "the demo server did not start"
                ))
            })?;
        Ok(District { child, url, db })
    }

    /// Runs an admin command of the same binary against this server's database.
    fn admin(&self, args: &[&str]) -> Result<serde_json::Value, AppError> {
        let out = Command::new(std::env::current_exe().map_err(err)?)
            .args(["--json", "server"])
            .args(args)
            .arg("--db")
            .arg(&self.db)
            .stdin(Stdio::null())
            .output()
            .map_err(err)?;
        if !out.status.success() {
            return Err(err(String::from_utf8_lossy(&out.stderr)));
        }
        serde_json::from_slice(&out.stdout).map_err(err)
    }
}

impl Drop for District {
    fn drop(&mut self) {
        // SIGTERM lets the server finish cleanly; kill is the fallback (and on Windows, where
        // there is no SIGTERM to send to a child, the only way).
        #[cfg(unix)]
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) with our own child's pid; no memory is involved.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run(ctx: &Ctx, a: DemoArgs) -> Result<(), AppError> {
    let tmp;
    let root = match &a.keep {
        Some(p) => p.clone(),
        None => {
            tmp = tempfile::Builder::new()
                .prefix("ikd-demo-")
                .tempdir()
                .map_err(err)?;
            tmp.path().to_path_buf()
        }
    };
    let say = |s: String| {
        if !ctx.json {
            println!("{s}");
        }
    };

    // 1. The district office: a server on 127.0.0.1 with targets, and an enrolment token.
    let district = District::start(&root.join("district"))?;
    say(tr!(
        "1. Server Dinas berjalan di {} (database {})",
        "1. District server running at {} (database {})",
        district.url,
        district.db.display()
    ));
    let targets = root.join("district").join("targets.csv");
    std::fs::write(
        &targets,
        crate::server::fill::targets_csv(7, &a.regency, None),
    )
    .map_err(err)?;
    district.admin(&["targets", "import", &targets.to_string_lossy()])?;
    let issued = district.admin(&["token", "--team", "TIM KELILING 1"])?;
    let token = issued["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| err("no token"))?;
    // The laptop checks it enrols with this server (the id the admin hands over with the token).
    let expect = issued["server_id"]
        .as_str()
        .map(crate::client::pin::ExpectedServer::parse)
        .transpose()?;
    say(tr!(
        "   target per desa diimpor; token pendaftaran sekali pakai: {token}",
        "   village targets imported; one-time enrolment token: {token}"
    ));

    // 2. A field laptop: data folder, device key, enrolment.
    let field_dir = root.join("field");
    let mut dd = DataDir::init(&field_dir, "PETUGAS DEMO", "TIM KELILING 1")?;
    let enrolment: Enrolment =
        super::sync::enrol_device(ctx, &dd, &district.url, &token, expect.as_ref())?;
    say(tr!(
        "2. Laptop lapangan {} siap di {} dan terdaftar di server {}",
        "2. Field laptop {} ready in {} and enrolled with server {}",
        dd.identity.device_id,
        field_dir.display(),
        enrolment.server_id
    ));

    // 3. Record citizens one by one, each with its signed slip, as in a village hall.
    let today = timefmt::today(ctx.offset());
    let slips_dir = field_dir.join("slips");
    std::fs::create_dir_all(&slips_dir).map_err(err)?;
    let mut recorded = Vec::new();
    let mut slips = Vec::new();
    for input in synth::citizens(42, &a.regency, a.citizens) {
        let v =
            validate::activation(&input, today).map_err(|p| AppError::invalid(format!("{p:?}")))?;
        let r = dd.store.record_activation(&v, &dd.identity)?;
        let s = slip::Slip::new(&r, &dd.key, &ctx.config.slip.office, ctx.offset())?;
        let png = slip::render(&s, Format::Png, Paper::Mm58, &Default::default());
        std::fs::write(slips_dir.join(format!("slip-{:04}.png", r.seq)), png).map_err(err)?;
        slips.push(s);
        recorded.push(r);
    }
    let sheet = slips_dir.join("slips-A4.pdf");
    std::fs::write(&sheet, slip::pdf::render(&slips, slip::pdf::Page::A4Sheet)).map_err(err)?;
    let first = &recorded[0];
    say(tr!(
        "3. {} warga dicatat, masing-masing dengan slip PNG bertanda tangan ({}), dan satu PDF A4 ({})",
        "3. {} citizens recorded, each with a signed PNG slip ({}), plus an A4 PDF sheet ({})",
        recorded.len(),
        slips_dir.display(),
        sheet.display()
    ));
    say(tr!(
        "   mis. #{} {} — {}",
        "   e.g. #{} {} — {}",
        first.seq,
        first.name,
        crate::domain::region::place(&first.village)
    ));

    // 4. Anyone can check a slip offline: read the QR back from the PNG and verify it.
    let png = std::fs::read(slips_dir.join("slip-0001.png")).map_err(err)?;
    let payload = slip::scan::payloads_in(&png)
        .map_err(|e| err(format!("{e:?}")))?
        .into_iter()
        .next()
        .ok_or_else(|| err("no QR"))?;
    let signed = slip::payload::Signed::decode(&payload).map_err(|e| err(format!("{e:?}")))?;
    let verified = signed.verify(&dd.key.public()).is_ok();
    say(tr!(
        "4. QR slip #1 dibaca dari PNG dan tanda tangannya diperiksa: {}",
        "4. Slip #1's QR read back from the PNG and its signature checked: {}",
        if verified {
            "SAH / valid"
        } else {
            "TIDAK SAH / invalid"
        }
    ));

    // 5. The same NIK again is refused on the laptop.
    let same_person = synth::citizens(42, &a.regency, 1).remove(0);
    let v = validate::activation(&same_person, today)
        .map_err(|p| AppError::invalid(format!("{p:?}")))?;
    let dup = dd.store.record_activation(&v, &dd.identity).unwrap_err();
    say(tr!(
        "5. NIK yang sama dicatat lagi → ditolak (kode keluar {})",
        "5. The same NIK recorded again → refused (exit code {})",
        dup.exit_code()
    ));

    // 6. Sync: signed, compressed, journalled batches; then again, which sends nothing.
    let client = super::sync::enrolled_client(ctx, &district.url, &enrolment)?;
    let opts = super::sync::options(ctx, None);
    let stop = AtomicBool::new(false);
    let report = sync_run::run(&mut dd, &client, &enrolment, &opts, &stop, &mut |_| {})?;
    let second = sync_run::run(&mut dd, &client, &enrolment, &opts, &stop, &mut |_| {})?;
    say(tr!(
        "6. Sync: {} ({} batch, {} byte terkirim). Sync lagi: {} batch, tidak ada yang dobel.",
        "6. Sync: {} ({} batches, {} bytes sent). Sync again: {} batches, nothing doubled.",
        report.line(),
        report.batches,
        report.bytes_sent,
        second.batches
    ));
    let stats = district.admin(&["stats"])?;
    let dashboard = format!("{}/", district.url);
    let integrity = dd.store.integrity_check()?;

    if ctx.json {
        output::ok(&DemoDone {
            dir: &root,
            server: &district.url,
            dashboard: &dashboard,
            device: &dd.identity.device_id,
            recorded: recorded.len(),
            slips: slips.len(),
            slip_verified: verified,
            sync: &report,
            second_sync_batches: second.batches,
            server_stats: &stats,
            integrity: &integrity,
        });
        return Ok(());
    }
    say(tr!(
        "7. Dashboard cakupan per kecamatan dan desa: {dashboard}",
        "7. Coverage dashboard per kecamatan and desa: {dashboard}"
    ));
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if interactive && !a.no_wait {
        print!(
            "{}",
            tr!(
                "   Buka alamat itu di peramban, lalu tekan Enter untuk menghentikan server demo… ",
                "   Open it in a browser, then press Enter to stop the demo server… "
            )
        );
        std::io::stdout().flush().ok();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).ok();
    }
    drop(district);
    if a.keep.is_some() {
        say(tr!(
            "Selesai. Data tersimpan di {}: ikd-field --data-dir {} list · ikd-field serve --db {}",
            "Done. Data kept in {}: ikd-field --data-dir {} list · ikd-field serve --db {}",
            root.display(),
            field_dir.display(),
            root.join("district").join("district.db").display()
        ));
    } else {
        say(tr!(
            "Selesai (folder sementara dihapus; pakai --keep DIR untuk menyimpannya).",
            "Done (temporary folder removed; use --keep DIR to keep it)."
        ));
    }
    Ok(())
}

/// The demo's `--json` answer.
#[derive(serde::Serialize)]
struct DemoDone<'a> {
    dir: &'a Path,
    server: &'a str,
    dashboard: &'a str,
    device: &'a str,
    recorded: usize,
    slips: usize,
    slip_verified: bool,
    sync: &'a sync_run::Report,
    second_sync_batches: usize,
    /// `server stats --json` as the district server printed it.
    server_stats: &'a serde_json::Value,
    integrity: &'a str,
}
