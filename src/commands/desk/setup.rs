//! The first run (officer, team, the office printed on slips, optionally enrolment) and the
//! settings page that changes them later.
use super::Desk;
use super::serve::Resp;
use super::serve::failed;
use crate::domain::validate;
use crate::error::AppError;
use crate::field::datadir::DataDir;
use crate::tr;
use serde::{Deserialize, Serialize};

/// The slip paper chosen on the settings page (58 or 80 mm).
const M_PAPER: &str = "desk.paper";

#[derive(Deserialize)]
pub struct SetupIn {
    officer: String,
    team: String,
    #[serde(default)]
    office: String,
    #[serde(default)]
    server: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    server_id: String,
    /// The officer's PIN (twice), locking the laptop's keys; may be empty.
    #[serde(default)]
    pin: String,
    #[serde(default)]
    pin2: String,
}

#[derive(Serialize)]
struct SetupDone {
    ready: bool,
    enrolled: bool,
    /// Why enrolment failed (the laptop is set up all the same; enrol later in the settings).
    enrol_error: Option<String>,
}

/// Officer and team names as the server will take them, with the field's name in the message;
/// in capitals, as on official forms.
fn names(officer: &str, team: &str) -> Result<(String, String), AppError> {
    let (o, t) = validate::officer_and_team(officer, team).map_err(|problems| {
        AppError::invalid(
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    Ok((o.to_uppercase(), t.to_uppercase()))
}

fn office_name(office: &str) -> Result<String, AppError> {
    let o = office.trim();
    if o.chars().count() > 60 || o.chars().any(validate::is_hidden_control) {
        return Err(AppError::invalid(tr!(
            "Nama kantor paling banyak 60 huruf, tanpa tanda tersembunyi.",
            "The office name is at most 60 characters, with no hidden characters."
        )));
    }
    Ok(o.to_uppercase())
}

pub fn setup(d: &Desk, s: &SetupIn) -> Result<Resp, AppError> {
    if d.initialised() {
        return Err(AppError::invalid(tr!(
            "Laptop ini sudah disiapkan; ubah nama di halaman Pengaturan.",
            "This laptop is set up already; change names on the Settings page."
        )));
    }
    let (officer, team) = names(&s.officer, &s.team)?;
    let office = office_name(&s.office)?;
    if !s.pin.is_empty() || !s.pin2.is_empty() {
        if !crate::keylock::acceptable(&s.pin) {
            return Err(AppError::invalid(tr!(
                "PIN paling sedikit {} karakter dan tidak semuanya sama (mis. bukan 000000).",
                "A PIN has at least {} characters, not all the same (e.g. not 000000).",
                crate::keylock::MIN_PIN
            )));
        }
        if s.pin != s.pin2 {
            return Err(AppError::invalid(tr!(
                "Kedua PIN tidak sama; ketik ulang.",
                "The two PINs differ; type them again."
            )));
        }
        // New keys are written locked under it from the first byte.
        crate::keylock::set_pin(Some(&s.pin));
    }
    let dd = DataDir::init_with(
        &d.ctx.data_dir,
        &officer,
        &team,
        d.ctx.config.field.district_seal_key.as_deref(),
    )
    .inspect_err(|_| crate::keylock::set_pin(None))?;
    if !office.is_empty() {
        dd.store.set_meta(super::super::slip::M_OFFICE, &office)?;
    }
    let (enrolled, enrol_error) = enrol(d, &dd, &s.server, &s.token, &s.server_id);
    *d.dd
        .lock()
        .map_err(|_| AppError::other("desk: lock".to_string()))? = Some(dd);
    Ok(Resp::json(
        200,
        &SetupDone {
            ready: true,
            enrolled,
            enrol_error,
        },
    ))
}

/// Enrols when a server and a token were given; the plain reason when it fails.
fn enrol(
    d: &Desk,
    dd: &DataDir,
    server: &str,
    token: &str,
    server_id: &str,
) -> (bool, Option<String>) {
    let (server, token, server_id) = (server.trim(), token.trim(), server_id.trim());
    if server.is_empty() && token.is_empty() {
        return (false, None);
    }
    let run = || -> Result<(), AppError> {
        if server.is_empty() || token.is_empty() {
            return Err(AppError::invalid(tr!(
                "Untuk mendaftar, isi alamat server dan token dari admin Dinas.",
                "To enrol, fill in both the server address and the token from the district admin."
            )));
        }
        let expect = (!server_id.is_empty())
            .then(|| crate::client::pin::ExpectedServer::parse(server_id))
            .transpose()?;
        super::super::sync::enrol_device(&d.ctx, dd, server, token, expect.as_ref())?;
        Ok(())
    };
    match run() {
        Ok(()) => (true, None),
        Err(e) => (
            false,
            Some(match &e.hint {
                Some(h) => format!("{} {h}", e.message),
                None => e.message,
            }),
        ),
    }
}

#[derive(Deserialize)]
pub struct SettingsIn {
    officer: String,
    team: String,
    #[serde(default)]
    office: String,
    #[serde(default)]
    paper: Option<u32>,
    /// A thermal printer for raw ESC/POS (a Windows printer's name, a Linux device); empty:
    /// print through the browser.
    #[serde(default)]
    printer: Option<String>,
    #[serde(default)]
    server: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    server_id: String,
}

pub fn settings(d: &Desk, s: &SettingsIn) -> Result<Resp, AppError> {
    let (officer, team) = names(&s.officer, &s.team)?;
    let office = office_name(&s.office)?;
    let mut g = d.data()?;
    let dd = g.as_mut().expect("opened");
    dd.store.set_officer_team(&officer, &team)?;
    if let Some(id) = dd.store.identity()? {
        dd.identity = id;
    }
    dd.store.set_meta(super::super::slip::M_OFFICE, &office)?;
    if let Some(p) = s.paper {
        if p != 58 && p != 80 {
            return Err(AppError::invalid(tr!(
                "Lebar kertas 58 atau 80 mm.",
                "Paper is 58 or 80 mm wide."
            )));
        }
        dd.store.set_meta(M_PAPER, &p.to_string())?;
    }
    if let Some(p) = &s.printer {
        let p = p.trim();
        if p.chars().any(validate::is_hidden_control) || p.chars().count() > 200 {
            return Err(AppError::invalid(tr!(
                "Nama printer tidak bisa dipakai.",
                "That printer name cannot be used."
            )));
        }
        dd.store.set_meta(super::super::slip::M_PRINTER, p)?;
    }
    let (enrolled, enrol_error) = enrol(d, dd, &s.server, &s.token, &s.server_id);
    if let Some(e) = enrol_error {
        return Ok(failed(&AppError::other(e)));
    }
    Ok(Resp::json(
        200,
        &SetupDone {
            ready: true,
            enrolled,
            enrol_error: None,
        },
    ))
}

#[derive(Deserialize)]
pub struct UnlockIn {
    pin: String,
}

/// One unlock at a time: parallel guesses wait their turn (and their second each).
static UNLOCKING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The PIN page: opens the laptop's keys for this session of the desk. A guess is tried on the
/// key file without becoming the desk's PIN, so a wrong one (an old tab, a second try) never
/// locks a desk that is open.
pub fn unlock(d: &Desk, u: &UnlockIn) -> Result<Resp, AppError> {
    let _turn = UNLOCKING
        .lock()
        .map_err(|_| AppError::other("desk: lock".to_string()))?;
    if !d.locked() {
        return Ok(Resp::json(200, &serde_json::json!({ "ok": true })));
    }
    let key_file = d.ctx.data_dir.join(crate::field::datadir::KEY_FILE);
    let text = std::fs::read_to_string(&key_file).unwrap_or_default();
    if !crate::keylock::take_pin_if_it_opens(&text, &u.pin) {
        // Each wrong guess costs a second here, on top of the stretching.
        std::thread::sleep(std::time::Duration::from_secs(1));
        return Err(AppError::invalid(tr!(
            "PIN salah. Coba lagi; bila lupa, hubungi admin Dinas.",
            "Wrong PIN. Try again; if it is forgotten, call the district admin."
        )));
    }
    let dd = d.ctx.open()?;
    *d.dd
        .lock()
        .map_err(|_| AppError::other("desk: lock".to_string()))? = Some(dd);
    Ok(Resp::json(200, &serde_json::json!({ "ok": true })))
}

pub fn office(d: &Desk, dd: &DataDir) -> String {
    super::super::slip::office(&d.ctx, dd)
}

pub fn paper(d: &Desk, dd: &DataDir) -> u32 {
    dd.store
        .meta(M_PAPER)
        .ok()
        .flatten()
        .and_then(|p| p.parse().ok())
        .filter(|p| *p == 58 || *p == 80)
        .unwrap_or(d.ctx.config.slip.paper)
}

/// Raw ESC/POS straight to a printer is set up in config.toml (`[slip] format = "escpos"` and
/// `printer`): the desk prints each new slip there as well as offering the browser's dialog.
pub fn direct_printer(d: &Desk, dd: &DataDir) -> bool {
    let s = &d.ctx.config.slip;
    (s.format == crate::slip::Format::Escpos && s.printer.is_some())
        || super::super::slip::direct_printer(dd).is_some()
}

/// The printer set on the settings page, for the page ("" when printing through the browser).
pub fn printer(dd: &DataDir) -> String {
    super::super::slip::direct_printer(dd)
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}
