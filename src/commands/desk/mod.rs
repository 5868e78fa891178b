//! `ikd-field desk`: the officer's local web desk (issue #18). The same binary, data folder and
//! database as the command line (both may run at once: SQLite in WAL mode), served on
//! 127.0.0.1 to the laptop's own browser, in Bahasa Indonesia first.
//!
//! - `guard`: the local server's protections (Host, per-launch secret, anti-forgery, CSP);
//! - `serve`: the HTTP server (hyper on tokio, as `serve`);
//! - `api`: the JSON endpoints the page asks (the Rust validator answers; the page never
//!   re-implements a rule), `setup` the first run and the settings, `send` the sync and the USB
//!   file, `pages` the page, its script and the printable slips.
mod api;
pub mod guard;
/// The desa of the session, kept in the laptop's meta; the terminal prompt shares it.
pub use api::M_VILLAGE;
mod json;
mod pages;
mod send;
pub mod serve;
mod setup;
mod today;

use super::Ctx;
use crate::error::AppError;
use crate::field::datadir::DataDir;
use crate::tr;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(clap::Args, Debug)]
pub struct DeskArgs {
    /// Port di 127.0.0.1 (0 = pilih sendiri) / port on 127.0.0.1 (0 = any free one)
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Jangan buka browser; cukup tampilkan alamatnya / do not open the browser, print the address
    #[arg(long)]
    pub no_browser: bool,
}

impl Default for DeskArgs {
    fn default() -> DeskArgs {
        DeskArgs {
            port: DEFAULT_PORT,
            no_browser: false,
        }
    }
}

/// The desk's usual port (a second desk on the same laptop takes any free one).
pub const DEFAULT_PORT: u16 = 8450;

/// The desk: settings, the open data folder, the state of a running send.
pub struct Desk {
    ctx: Ctx,
    secrets: guard::Secrets,
    /// Opened on first use (after setup on a new laptop).
    dd: Mutex<Option<DataDir>>,
    send: Arc<Mutex<send::SendState>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Desk {
    /// The data folder, opened once and kept.
    fn data(&self) -> Result<MutexGuard<'_, Option<DataDir>>, AppError> {
        let mut g = self
            .dd
            .lock()
            .map_err(|_| AppError::other("desk: lock".to_string()))?;
        if g.is_none() {
            *g = Some(self.ctx.open()?);
        }
        Ok(g)
    }

    fn initialised(&self) -> bool {
        DataDir::db_path(&self.ctx.data_dir).exists()
    }

    /// Set up with keys locked under the officer's PIN, and no PIN given yet.
    fn locked(&self) -> bool {
        let opened = self.dd.lock().map(|g| g.is_some()).unwrap_or(false);
        !opened
            && !crate::keylock::have_pin()
            && std::fs::read_to_string(self.ctx.data_dir.join(crate::field::datadir::KEY_FILE))
                .is_ok_and(|t| crate::keylock::is_locked(&t))
    }
}

/// Starts the desk and serves until Ctrl+C or the window is closed.
pub fn run(ctx: Ctx, a: DeskArgs) -> Result<(), AppError> {
    serve_desk(ctx, a)
}

/// Started by a double click (no command) in a console window, an error stays on screen until
/// Enter: the window would otherwise close before the officer could read it. This covers errors
/// before the desk starts too (a broken `config.toml`, an unreadable data folder).
pub fn hold_window_after_error(double_clicked: bool) {
    if !double_clicked || !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return;
    }
    eprintln!(
        "{}",
        tr!(
            "Tekan Enter untuk menutup jendela ini.",
            "Press Enter to close this window."
        )
    );
    let _ = std::io::stdin().read_line(&mut String::new());
}

fn serve_desk(mut ctx: Ctx, a: DeskArgs) -> Result<(), AppError> {
    // The officer answers in the page, not in the console window.
    ctx.ask = false;
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, a.port)))
        .or_else(|e| {
            // Another desk on the usual port: take any free one rather than fail.
            if a.port == DEFAULT_PORT {
                TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            } else {
                Err(e)
            }
        })
        .map_err(|e| {
            AppError::other(tr!(
                "Desk tidak bisa dibuka di port {}: {e}",
                "The desk cannot listen on port {}: {e}",
                a.port
            ))
            .hint(tr!(
                "Tutup desk lain yang masih terbuka, atau pakai --port 0.",
                "Close the other desk that is still open, or use --port 0."
            ))
        })?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(a.port);
    let secrets =
        guard::Secrets::new(port).map_err(|e| AppError::other(format!("desk: random: {e}")))?;
    let url = format!("http://127.0.0.1:{port}/?k={}", secrets.session);
    let stop = crate::stop::flag(0)?;
    let desk = Arc::new(Desk {
        ctx,
        secrets: secrets.clone(),
        dd: Mutex::new(None),
        send: Arc::new(Mutex::new(send::SendState::default())),
        stop: Arc::clone(&stop),
    });
    println!(
        "{}",
        tr!(
            "Desk ikd-field terbuka di:\n  {url}\nBiarkan jendela ini terbuka selama bekerja; tutup (atau Ctrl+C) untuk berhenti.",
            "The ikd-field desk is open at:\n  {url}\nKeep this window open while working; close it (or Ctrl+C) to stop."
        )
    );
    use std::io::Write;
    std::io::stdout().flush().ok();
    if !a.no_browser
        && let Err(e) = open::that_detached(&url)
    {
        eprintln!(
            "{}",
            tr!(
                "Browser tidak terbuka sendiri ({e}); salin alamat di atas ke browser.",
                "The browser did not open by itself ({e}); copy the address above into a browser."
            )
        );
    }
    serve::run(listener, secrets, desk, stop).map_err(|e| AppError::other(format!("desk: {e}")))?;
    println!("{}", tr!("Desk ditutup.", "Desk closed."));
    Ok(())
}

impl serve::Handler for Desk {
    fn handle(&self, req: serve::Req) -> serve::Resp {
        route(self, req)
    }

    fn refused(&self, verdict: &guard::Verdict) -> serve::Resp {
        pages::refused(verdict)
    }
}

/// Sends a request to its handler.
fn route(d: &Desk, req: serve::Req) -> serve::Resp {
    let r = match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/") => return pages::app(d),
        ("GET", "/desk.js") => return pages::script(),
        ("GET", "/desk.css") => return pages::style(),
        ("GET", "/page.css") => return pages::page_css(&req),
        ("GET", "/lembar") => return pages::sheet(d, &req),
        ("GET", p) if p.starts_with("/slip/") => return pages::slip(d, &req),
        ("GET", "/api/state") => api::state(d),
        ("GET", "/api/desa") => Ok(api::desa(&req)),
        ("GET", "/api/nik") => api::check_nik(d, &req),
        ("POST", "/api/field") => json::body(&req).map(|f: api::FieldIn| api::field(&f)),
        ("POST", "/api/check") => json::body(&req).and_then(|f: api::Form| api::check(d, &f)),
        ("POST", "/api/save") => json::body(&req).and_then(|f: api::Form| api::save(d, &f)),
        ("GET", "/api/today") => today::today(d),
        ("POST", "/api/void") => json::body(&req).and_then(|v: today::VoidIn| today::void(d, &v)),
        ("POST", "/api/village") => {
            json::body(&req).and_then(|v: api::VillageIn| api::set_village(d, &v))
        }
        ("POST", "/api/unlock") => json::body(&req).and_then(|u| setup::unlock(d, &u)),
        ("POST", "/api/setup") => json::body(&req).and_then(|s| setup::setup(d, &s)),
        ("POST", "/api/settings") => json::body(&req).and_then(|s| setup::settings(d, &s)),
        ("POST", "/api/send") => Ok(send::start(d)),
        ("GET", "/api/send") => Ok(send::progress(d)),
        ("GET", "/api/usb") => Ok(send::usb_places()),
        ("POST", "/api/usb") => json::body(&req).and_then(|u| send::usb(d, &u)),
        _ => {
            return serve::Resp::json(
                404,
                &serve::Failed {
                    message: tr!("Halaman tidak ada.", "No such page."),
                    hint: None,
                },
            );
        }
    };
    match r {
        Ok(resp) => resp,
        Err(e) => serve::failed(&e),
    }
}
