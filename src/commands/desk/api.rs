//! The desk's JSON endpoints and its routing. Every check is the Rust validator's
//! (`domain::validate`, `domain::nik`): the page shows what these answers say.
use super::Desk;
use super::json::{Desa, desa_of, ok};
use super::serve::{Req, Resp};
use crate::domain::problem::field_label;
use crate::domain::validate::{self, Input};
use crate::domain::{Problem, nik, region};
use crate::error::AppError;
use crate::field::records::Stored;
use crate::{timefmt, tr};
use serde::{Deserialize, Serialize};

/// The session's desa, kept in the database so it survives a restart of the desk.
pub const M_VILLAGE: &str = "desk.village";

#[derive(Serialize)]
struct State {
    ready: bool,
    /// Set up, but the keys are locked under the officer's PIN: the page asks for it.
    locked: bool,
    lang: &'static str,
    officer: String,
    team: String,
    office: String,
    paper: u32,
    enrolled: bool,
    village: Option<Desa>,
    today: super::today::Counts,
    pending: i64,
    /// Raw ESC/POS to a configured printer is set up (`[slip] format = "escpos"`, a printer).
    direct_printer: bool,
    /// The thermal printer set on the settings page ("" for the browser's print window).
    printer: String,
}

fn lang() -> &'static str {
    if crate::i18n::is_en() { "en" } else { "id" }
}

pub fn state(d: &Desk) -> Result<Resp, AppError> {
    // Not set up yet (the setup page), or locked (the PIN page): nothing from the data.
    if !d.initialised() || d.locked() {
        let ready = d.initialised();
        return ok(&State {
            ready,
            locked: ready,
            lang: lang(),
            officer: String::new(),
            team: String::new(),
            office: if ready {
                String::new()
            } else {
                d.ctx.config.slip.office.clone()
            },
            paper: d.ctx.config.slip.paper,
            enrolled: false,
            village: None,
            today: super::today::Counts::default(),
            pending: 0,
            direct_printer: false,
            printer: String::new(),
        });
    }
    let g = d.data()?;
    let dd = g.as_ref().expect("opened");
    let identity = dd.store.identity()?.unwrap_or(dd.identity.clone());
    let rows = super::today::today_rows(d, dd)?;
    let counts = super::today::count(&rows);
    let pending = dd
        .store
        .counts_by_status()?
        .iter()
        .find(|(s, _)| *s == crate::domain::SyncStatus::Pending)
        .map(|(_, n)| *n)
        .unwrap_or(0);
    ok(&State {
        ready: true,
        locked: false,
        lang: lang(),
        officer: identity.officer,
        team: identity.team,
        office: super::setup::office(d, dd),
        paper: super::setup::paper(d, dd),
        enrolled: crate::field::enrolment::Enrolment::load(&dd.store)?.is_some(),
        village: dd.store.meta(M_VILLAGE)?.and_then(|c| desa_of(&c)),
        today: counts,
        pending,
        direct_printer: super::setup::direct_printer(d, dd),
        printer: super::setup::printer(dd),
    })
}

/// Desa whose name matches, those of kecamatan `kec` (the last NIK's) first.
pub fn desa(req: &Req) -> Resp {
    let q = req.param("q").unwrap_or_default();
    let kec = req.param("kec").unwrap_or_default();
    let mut hits: Vec<Desa> = region::search(&q, 400)
        .into_iter()
        .filter(|h| h.level == region::Level::Desa)
        .filter_map(|h| desa_of(&h.region.code))
        .collect();
    // A typed code finds its desa too.
    let code = region::normalize_code(&q);
    if code.len() == 10
        && let Some(d) = desa_of(&code)
    {
        hits.insert(0, d);
    }
    if kec.len() == 6 {
        hits.sort_by_key(|h| !h.code.starts_with(&kec));
    }
    hits.truncate(12);
    Resp::json(200, &hits)
}

#[derive(Serialize)]
struct NikAnswer {
    ok: bool,
    problem: Option<Shown>,
    info: Option<NikInfo>,
    /// `ok`, `confirm` (10–16 years: ask the officer) or `refuse` (under 10: a KK number).
    age_check: &'static str,
    warnings: Vec<Shown>,
    /// The live record of this NIK on this laptop.
    duplicate: Option<Earlier>,
    /// The district's list says another team probably activated it (local time of the list).
    district: Option<String>,
}

#[derive(Serialize)]
struct NikInfo {
    sex: String,
    birth_date: String,
    age: i32,
    kecamatan: String,
    kabupaten: String,
}

#[derive(Serialize)]
pub struct Earlier {
    seq: i64,
    time: String,
    desa: String,
    name: String,
}

/// A problem as the page shows it: the field's name, what is wrong, an example.
#[derive(Serialize)]
pub struct Shown {
    field: &'static str,
    label: String,
    message: String,
    example: Option<String>,
}

fn shown(p: &Problem) -> Shown {
    Shown {
        field: p.field,
        label: field_label(p.field),
        message: p.message.clone(),
        example: p.example.clone(),
    }
}

fn earlier(d: &Desk, s: &Stored) -> Earlier {
    Earlier {
        seq: s.record.seq,
        time: timefmt::local_display(&s.record.recorded_at, d.ctx.offset()),
        desa: desa_of(&s.record.village)
            .map(|v| v.name)
            .unwrap_or_else(|| s.record.village.clone()),
        name: s.record.name.clone(),
    }
}

pub fn check_nik(d: &Desk, req: &Req) -> Result<Resp, AppError> {
    let input = req.param("nik").unwrap_or_default();
    let today = timefmt::today(d.ctx.offset());
    let n = match nik::parse(&input, today) {
        Ok(n) => n,
        Err(p) => {
            return ok(&NikAnswer {
                ok: false,
                problem: Some(shown(&p)),
                info: None,
                age_check: "ok",
                warnings: vec![],
                duplicate: None,
                district: None,
            });
        }
    };
    let age = n.age_on(today);
    let g = d.data()?;
    let dd = g.as_ref().expect("opened");
    let duplicate = dd.store.live_activation_of(&n.nik)?.map(|s| earlier(d, &s));
    let district = crate::field::activated::listed(&dd.store, &n.nik)?
        .map(|at| timefmt::local_display(&at, d.ctx.offset()));
    let refuse = nik::age_check(age) == "refuse";
    ok(&NikAnswer {
        ok: !refuse,
        problem: refuse.then(|| shown(&nik::refuse_child(age))),
        info: Some(NikInfo {
            sex: n.sex.label(),
            birth_date: timefmt::id_date(n.birth_date),
            age,
            kecamatan: region::district(&n.district)
                .map(|r| r.name.clone())
                .unwrap_or_else(|| n.district.clone()),
            kabupaten: region::regency(&n.regency)
                .map(|r| r.name.clone())
                .unwrap_or_else(|| n.regency.clone()),
        }),
        age_check: nik::age_check(age),
        warnings: n
            .warnings
            .iter()
            .filter(|w| w.code != "nik_under_17")
            .map(shown)
            .collect(),
        duplicate,
        district,
    })
}

#[derive(Deserialize)]
pub struct FieldIn {
    field: String,
    value: String,
}

#[derive(Serialize)]
struct FieldAnswer {
    ok: bool,
    value: String,
    problem: Option<Shown>,
}

/// One field checked on leaving it (name, phone, e-mail).
pub fn field(f: &FieldIn) -> Resp {
    let r = match f.field.as_str() {
        "name" => validate::name(&f.value),
        "phone" => crate::domain::phone::normalize(&f.value),
        "email" => crate::domain::email::normalize(&f.value).map(|e| e.unwrap_or_default()),
        _ => Ok(f.value.clone()),
    };
    Resp::json(
        200,
        &match r {
            Ok(value) => FieldAnswer {
                ok: true,
                value,
                problem: None,
            },
            Err(p) => FieldAnswer {
                ok: false,
                value: String::new(),
                problem: Some(shown(&p)),
            },
        },
    )
}

#[derive(Deserialize)]
pub struct Form {
    nik: String,
    name: String,
    phone: String,
    #[serde(default)]
    email: String,
    village: String,
    /// The officer confirmed a 10–16-year-old's KTP.
    #[serde(default)]
    young_ok: bool,
}

#[derive(Serialize)]
struct Summary {
    ok: bool,
    problems: Vec<Shown>,
    /// Shown in the summary, before saving.
    warnings: Vec<Shown>,
    /// Needs the officer's "yes" (a 10–16-year-old).
    confirm_young: Option<i32>,
    rows: Vec<(String, String)>,
}

impl Form {
    fn input(&self) -> Input {
        Input {
            nik: self.nik.clone(),
            name: self.name.clone(),
            phone: self.phone.clone(),
            email: self.email.clone(),
            village: self.village.clone(),
        }
    }
}

/// Everything checked at once, with the summary shown before saving.
pub fn check(d: &Desk, f: &Form) -> Result<Resp, AppError> {
    let input = f.input();
    let today = timefmt::today(d.ctx.offset());
    let v = match validate::activation(&input, today) {
        Ok(v) => v,
        Err(problems) => {
            return ok(&Summary {
                ok: false,
                problems: problems.iter().map(shown).collect(),
                warnings: vec![],
                confirm_young: None,
                rows: vec![],
            });
        }
    };
    let age = v.nik.age_on(today);
    if nik::age_check(age) == "refuse" {
        return ok(&Summary {
            ok: false,
            problems: vec![shown(&nik::refuse_child(age))],
            warnings: vec![],
            confirm_young: None,
            rows: vec![],
        });
    }
    let g = d.data()?;
    let dd = g.as_ref().expect("opened");
    let mut warnings: Vec<Shown> = v
        .warnings
        .iter()
        .filter(|w| w.code != "nik_under_17")
        .map(shown)
        .collect();
    if let Some(e) = dd.store.live_activation_of(&v.nik.nik)? {
        let e = earlier(d, &e);
        return ok(&Summary {
            ok: false,
            problems: vec![Shown {
                field: "nik",
                label: "NIK".into(),
                message: tr!(
                    "NIK ini sudah diaktivasi di laptop ini: #{} {} ({}, {}). Aktivasi hanya sekali per orang.",
                    "This NIK was already activated on this laptop: #{} {} ({}, {}). Activation is once per person.",
                    e.seq,
                    e.name,
                    e.time,
                    e.desa
                ),
                example: None,
            }],
            warnings: vec![],
            confirm_young: None,
            rows: vec![],
        });
    }
    if let Some(at) = crate::field::activated::listed(&dd.store, &v.nik.nik)? {
        warnings.push(Shown {
            field: "nik",
            label: "NIK".into(),
            message: tr!(
                "NIK ini kemungkinan sudah diaktivasi tim lain (daftar Dinas per {}). Tanyakan warga apakah IKD-nya sudah aktif; bila ya, jangan simpan.",
                "This NIK was probably activated already by another team (district list as of {}). Ask whether their IKD is active; if so, do not save.",
                timefmt::local_display(&at, d.ctx.offset())
            ),
            example: None,
        });
    }
    let place = region::place(&v.village);
    ok(&Summary {
        ok: true,
        problems: vec![],
        warnings,
        confirm_young: (nik::age_check(age) == "confirm" && !f.young_ok).then_some(age),
        rows: vec![
            ("NIK".into(), v.nik.nik.clone()),
            (tr!("Nama", "Name"), v.name.clone()),
            (
                tr!("Jenis kelamin, lahir", "Sex, born"),
                format!(
                    "{}, {} ({} {})",
                    v.nik.sex.label(),
                    timefmt::id_date(v.nik.birth_date),
                    age,
                    tr!("tahun", "years")
                ),
            ),
            (tr!("Nomor HP", "Phone"), v.phone.clone()),
            (
                "E-mail".into(),
                v.email.clone().unwrap_or_else(|| "-".into()),
            ),
            (tr!("Desa/kelurahan", "Village"), place),
        ],
    })
}

#[derive(Serialize)]
struct Saved {
    seq: i64,
    time: String,
    name: String,
    /// The print page of this slip.
    slip: String,
    /// Sent straight to the configured printer.
    printed: bool,
    print_error: Option<String>,
}

pub fn save(d: &Desk, f: &Form) -> Result<Resp, AppError> {
    let input = f.input();
    let today = timefmt::today(d.ctx.offset());
    let v = validate::activation(&input, today).map_err(|problems| {
        AppError::invalid(
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let age = v.nik.age_on(today);
    if nik::age_check(age) == "refuse" {
        return Err(AppError::invalid(nik::refuse_child(age).to_string()));
    }
    if nik::age_check(age) == "confirm" && !f.young_ok {
        return Err(AppError::invalid(tr!(
            "Umur {age} tahun perlu dikonfirmasi dulu.",
            "Age {age} needs confirming first."
        )));
    }
    let mut g = d.data()?;
    let dd = g.as_mut().expect("opened");
    // The names new records carry are the ones set in the settings (another process may have
    // changed them).
    if let Some(id) = dd.store.identity()? {
        dd.identity = id;
    }
    let record = dd.store.record_activation(&v, &dd.identity)?;
    dd.store.set_meta(M_VILLAGE, &v.village)?;
    let stored = Stored::new_pending(
        record,
        crate::field::sealing::new_records_sealed_to(&dd.store)?,
    );
    let (printed, print_error) = if super::setup::direct_printer(d, dd) {
        match super::super::slip::print_new(&d.ctx, dd, &stored) {
            Ok(_) => (true, None),
            Err(e) => (false, Some(e.message)),
        }
    } else {
        (false, None)
    };
    let r = &stored.record;
    ok(&Saved {
        seq: r.seq,
        time: timefmt::local_display(&r.recorded_at, d.ctx.offset()),
        name: r.name.clone(),
        slip: format!("/slip/{}", r.seq),
        printed,
        print_error,
    })
}

#[derive(Deserialize)]
pub struct VillageIn {
    code: String,
}

/// Picks the session's desa (kept for the next citizen, and after a restart).
pub fn set_village(d: &Desk, v: &VillageIn) -> Result<Resp, AppError> {
    let code = validate::village(&v.code).map_err(|p| AppError::invalid(p.message.clone()))?;
    let g = d.data()?;
    let dd = g.as_ref().expect("opened");
    dd.store.set_meta(M_VILLAGE, &code)?;
    ok(&desa_of(&code))
}
