//! `record` on a terminal, as the desk does it: each field checked as it is entered (the NIK
//! first, with what it says about the person, and a NIK already activated on this laptop refused
//! before anything else is typed), the desa of the session kept and found by name, the warnings
//! and a summary shown **before** saving with a yes/no. Line editing by `dialoguer`.
use super::Ctx;
use super::desk::M_VILLAGE;
use crate::domain::validate::{self, Input, Valid};
use crate::domain::{email, nik, phone, region};
use crate::error::{AppError, Kind};
use crate::field::datadir::DataDir;
use crate::{timefmt, tr};
use dialoguer::theme::Theme;
use dialoguer::{Confirm, Input as Ask, Select};
use std::fmt;

/// dialoguer's plain theme, in the officer's words: a refused value is "✗ …" (not "error:"),
/// and yes/no reads "ya"/"tidak".
struct Words;

impl Theme for Words {
    fn format_error(&self, f: &mut dyn fmt::Write, err: &str) -> fmt::Result {
        write!(f, "  ✗ {err}")
    }

    fn format_confirm_prompt(
        &self,
        f: &mut dyn fmt::Write,
        prompt: &str,
        default: Option<bool>,
    ) -> fmt::Result {
        let keys = match default {
            Some(true) => tr!("[Y/n, Enter = ya]", "[Y/n, Enter = yes]"),
            Some(false) => tr!("[y/N, Enter = tidak]", "[y/N, Enter = no]"),
            None => "[y/n]".to_string(),
        };
        write!(f, "{prompt} {keys} ")
    }

    fn format_confirm_prompt_selection(
        &self,
        f: &mut dyn fmt::Write,
        prompt: &str,
        selection: Option<bool>,
    ) -> fmt::Result {
        let answer = match selection {
            Some(true) => tr!("ya", "yes"),
            Some(false) => tr!("tidak", "no"),
            None => String::new(),
        };
        write!(f, "{prompt} {answer}")
    }
}

fn lost(e: dialoguer::Error) -> AppError {
    AppError::usage(tr!(
        "Terminal tertutup; catatan TIDAK disimpan ({e}).",
        "The terminal went away; the record was NOT saved ({e})."
    ))
}

/// Asks for a field until `check` takes it (or takes the value given on the command line).
fn field(
    given: &str,
    prompt: &str,
    allow_empty: bool,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<String, AppError> {
    if !given.is_empty() && check(given).is_ok() {
        return Ok(given.to_string());
    }
    if !given.is_empty()
        && let Err(why) = check(given)
    {
        eprintln!("  ✗ {why}");
    }
    Ask::<String>::with_theme(&Words)
        .with_prompt(prompt)
        .allow_empty(allow_empty)
        .validate_with(|s: &String| check(s.trim()))
        .interact_text()
        .map(|s| s.trim().to_string())
        .map_err(lost)
}

/// The desa: the session's (Enter keeps it), a 10-digit code, or a name chosen from a list
/// (those in the NIK's kecamatan first, then its kabupaten).
fn village(dd: &DataDir, given: &str, near: &str) -> Result<String, AppError> {
    if let Ok(code) = validate::village(given) {
        return Ok(code);
    }
    let session = dd
        .store
        .meta(M_VILLAGE)?
        .filter(|c| region::village(c).is_some());
    loop {
        let mut ask = Ask::<String>::with_theme(&Words)
            .with_prompt(tr!(
                "Desa/kelurahan (nama atau kode 10 digit)",
                "Village (name or 10-digit code)"
            ))
            .allow_empty(session.is_some());
        if let Some(c) = &session {
            ask = ask.with_prompt(tr!(
                "Desa/kelurahan (Enter: {})",
                "Village (Enter: {})",
                region::place(c)
            ));
        }
        let typed = ask.interact_text().map_err(lost)?;
        let typed = typed.trim();
        if typed.is_empty()
            && let Some(c) = &session
        {
            return Ok(c.clone());
        }
        if let Ok(code) = validate::village(typed) {
            return Ok(code);
        }
        let mut hits: Vec<_> = region::search(typed, 400)
            .into_iter()
            .filter(|h| h.level == region::Level::Desa)
            .collect();
        hits.sort_by_key(|h| {
            let c = &h.region.code;
            (
                !c.starts_with(near),
                !c.starts_with(&near[..4.min(near.len())]),
            )
        });
        hits.truncate(9);
        match hits.len() {
            0 => eprintln!(
                "  ✗ {}",
                tr!(
                    "Tidak ada desa bernama '{typed}'. Coba sebagian nama saja, mis. SUMBER.",
                    "No village named '{typed}'. Try part of the name, e.g. SUMBER."
                )
            ),
            _ => {
                let items: Vec<String> =
                    hits.iter().map(|h| region::place(&h.region.code)).collect();
                let pick = Select::with_theme(&Words)
                    .with_prompt(tr!(
                        "Pilih desa (panah, Enter)",
                        "Pick the village (arrows, Enter)"
                    ))
                    .items(&items)
                    .default(0)
                    .interact_opt()
                    .map_err(lost)?;
                if let Some(i) = pick {
                    return Ok(hits[i].region.code.clone());
                }
            }
        }
    }
}

/// Asks what is missing or wrong, field by field; `None` when the officer says no at the end.
pub fn ask(ctx: &Ctx, dd: &DataDir, given: &Input) -> Result<Option<Valid>, AppError> {
    let today = timefmt::today(ctx.offset());
    // 1. The NIK, and what it says, before anything else is typed.
    let nik_text = field(&given.nik, "NIK (16 digit)", false, |s| {
        let n = nik::parse(s, today).map_err(|p| p.to_string())?;
        let age = n.age_on(today);
        if nik::age_check(age) == "refuse" {
            return Err(nik::refuse_child(age).to_string());
        }
        Ok(())
    })?;
    let n = nik::parse(&nik_text, today).map_err(|p| AppError::invalid(p.to_string()))?;
    let age = n.age_on(today);
    eprintln!(
        "  {} · {} {} · {age} {} · Kec. {}, {} — {}",
        n.sex.label(),
        tr!("lahir", "born"),
        timefmt::id_date(n.birth_date),
        tr!("tahun", "years"),
        region::district(&n.district)
            .map(|r| r.name.clone())
            .unwrap_or_else(|| n.district.clone()),
        region::regency(&n.regency)
            .map(|r| r.name.clone())
            .unwrap_or_else(|| n.regency.clone()),
        tr!("cocokkan dengan KTP", "compare with the KTP")
    );
    if let Some(e) = dd.store.live_activation_of(&n.nik)? {
        return Err(AppError::new(
            Kind::Duplicate,
            tr!(
                "NIK ini sudah diaktivasi di laptop ini: catatan #{} atas nama {} ({}). Aktivasi hanya sekali per orang.",
                "This NIK was already activated on this laptop: record #{} for {} ({}). Activation is once per person.",
                e.record.seq,
                e.record.name,
                timefmt::local_display(&e.record.recorded_at, ctx.offset())
            ),
        )
        .hint(tr!(
            "Cetak ulang slipnya: ikd-field slip {}; jika catatan itu salah, batalkan dulu: ikd-field void {}",
            "Reprint its slip: ikd-field slip {}; if that record is wrong, void it first: ikd-field void {}",
            e.record.seq,
            e.record.seq
        )));
    }
    // 2. The rest, each checked as it is entered.
    let name = field(
        &given.name,
        &tr!("Nama (sesuai KTP)", "Name (as on the KTP)"),
        false,
        |s| validate::name(s).map(|_| ()).map_err(|p| p.to_string()),
    )?;
    let phone_text = field(
        &given.phone,
        &tr!("Nomor HP", "Mobile number"),
        false,
        |s| phone::normalize(s).map(|_| ()).map_err(|p| p.to_string()),
    )?;
    let village = village(dd, &given.village, &n.district)?;
    let email_text = field(
        &given.email,
        &tr!("E-mail (boleh kosong)", "E-mail (optional)"),
        true,
        |s| email::normalize(s).map(|_| ()).map_err(|p| p.to_string()),
    )?;
    let input = Input {
        nik: nik_text,
        name,
        phone: phone_text,
        email: email_text,
        village,
    };
    let v = validate::activation(&input, today).map_err(|problems| {
        AppError::invalid(tr!(
            "Data belum benar, catatan TIDAK disimpan:",
            "The data is not right; the record was NOT saved:"
        ))
        .problems(problems)
    })?;
    dd.store.set_meta(M_VILLAGE, &v.village)?;
    // 3. Warnings and the summary, then yes/no, before anything is written.
    eprintln!();
    eprintln!("  NIK       {}", v.nik.nik);
    eprintln!("  {:<9} {}", tr!("Nama", "Name"), v.name);
    eprintln!("  {:<9} {}", tr!("HP", "Phone"), v.phone);
    eprintln!(
        "  {:<9} {}",
        "E-mail",
        v.email.clone().unwrap_or_else(|| "-".into())
    );
    eprintln!(
        "  {:<9} {}",
        tr!("Desa", "Village"),
        region::place(&v.village)
    );
    for w in &v.warnings {
        eprintln!("  ! {}", w.message);
    }
    if let Some(at) = crate::field::activated::listed(&dd.store, &v.nik.nik)? {
        eprintln!(
            "  ! {}",
            tr!(
                "NIK ini kemungkinan sudah diaktivasi tim lain (daftar Dinas per {}). Tanyakan ke warga; bila IKD-nya sudah aktif, jangan simpan.",
                "This NIK was probably activated already by another team (district list as of {}). Ask the citizen; if their IKD is active, do not save.",
                timefmt::local_display(&at, ctx.offset())
            )
        );
    }
    if nik::age_check(age) == "confirm" {
        let seen = Confirm::with_theme(&Words)
            .with_prompt(tr!(
                "Umur {age} tahun menurut NIK. KTP-el warga ini sudah dilihat (mis. sudah menikah)?",
                "Age {age} by the NIK. Have you seen this citizen's KTP-el (e.g. married)?"
            ))
            .default(false)
            .interact()
            .map_err(lost)?;
        if !seen {
            return Ok(None);
        }
    }
    let save = Confirm::with_theme(&Words)
        .with_prompt(tr!("Simpan?", "Save?"))
        .default(true)
        .interact()
        .map_err(lost)?;
    Ok(save.then_some(v))
}
