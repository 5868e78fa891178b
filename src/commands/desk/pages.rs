//! The desk's page (one HTML file, its script and style, all in the binary: no CDN, no network),
//! its words in Bahasa Indonesia and English, the printable slips and the A4 sheet of the day.
use super::Desk;
use super::guard::Verdict;
use super::serve::{Req, Resp};
use crate::domain::Kind;
use crate::field::records::{Filter, Stored};
use crate::slip::{Paper, Slip};
use crate::{timefmt, tr};

static HTML: &str = include_str!("assets/desk.html");
static JS: &str = include_str!("assets/desk.js");
static CSS: &str = include_str!("assets/desk.css");

/// Every word the page shows: key, Bahasa Indonesia, English. `{{t.key}}` in the HTML; the
/// script reads the same table for what it writes.
const TEXTS: &[(&str, &str, &str)] = &[
    ("desk", "Desk Petugas", "Officer desk"),
    ("nav_record", "Catat", "Record"),
    ("nav_today", "Hari ini", "Today"),
    ("nav_send", "Kirim", "Send"),
    ("nav_settings", "Pengaturan", "Settings"),
    (
        "setup_title",
        "Selamat datang — siapkan laptop ini",
        "Welcome — set up this laptop",
    ),
    (
        "setup_lead",
        "Isi sekali saja. Nama petugas dan kantor dicetak di setiap slip.",
        "Fill this in once. The officer's and the office's names are printed on every slip.",
    ),
    ("officer", "Nama petugas", "Officer's name"),
    ("team", "Tim", "Team"),
    ("office", "Nama kantor di slip", "Office name on slips"),
    (
        "pin_new",
        "PIN laptop (disarankan)",
        "Laptop PIN (recommended)",
    ),
    ("pin_again", "Ulangi PIN", "PIN again"),
    (
        "pin_note",
        "Dengan PIN, data warga di laptop ini tidak bisa dibuka bila laptop hilang. Paling sedikit 6 karakter. Jangan lupa: tanpa PIN, catatan yang belum terkirim tidak bisa dikirim.",
        "With a PIN, citizens' data on this laptop cannot be opened if the laptop is lost. At least 6 characters. Do not forget it: without the PIN, records not yet sent cannot be sent.",
    ),
    ("unlock_title", "Laptop terkunci", "The laptop is locked"),
    (
        "unlock_lead",
        "Ketik PIN petugas untuk mulai bekerja. PIN diminta sekali setiap desk dibuka.",
        "Type the officer's PIN to start work. It is asked once each time the desk is opened.",
    ),
    ("unlock_go", "Buka", "Unlock"),
    (
        "enrol_optional",
        "Daftarkan ke server Dinas (boleh nanti)",
        "Enrol with the district server (can wait)",
    ),
    (
        "enrol",
        "Daftarkan ke server Dinas",
        "Enrol with the district server",
    ),
    ("server", "Alamat server", "Server address"),
    (
        "token",
        "Token dari admin Dinas",
        "Token from the district admin",
    ),
    (
        "server_id",
        "Id server (dari admin; wajib untuk server dengan sertifikat kantor)",
        "Server id (from the admin; needed for a server with an office certificate)",
    ),
    ("setup_go", "Mulai", "Start"),
    (
        "village_session",
        "Desa/kelurahan sesi ini",
        "Village of this session",
    ),
    (
        "village_placeholder",
        "Ketik nama desa, mis. SUMBER URIP",
        "Type the village name, e.g. SUMBER URIP",
    ),
    ("change", "Ganti", "Change"),
    ("name", "Nama (sesuai KTP)", "Name (as on the KTP)"),
    ("ph_nik", "16 digit, dari KTP", "16 digits, from the KTP"),
    (
        "ph_name",
        "seperti tertulis di KTP",
        "as written on the KTP",
    ),
    ("ph_email", "boleh kosong", "may be empty"),
    ("phone", "Nomor HP", "Mobile number"),
    ("email", "E-mail (boleh kosong)", "E-mail (optional)"),
    ("check_save", "Periksa & simpan", "Check & save"),
    (
        "keys",
        "Enter: lanjut · Esc: batal",
        "Enter: next · Esc: cancel",
    ),
    ("today_title", "Hari ini", "Today"),
    ("sheet", "Cetak lembar A4", "Print an A4 sheet"),
    ("time", "Jam", "Time"),
    ("village", "Desa", "Village"),
    ("status", "Status", "Status"),
    (
        "today_empty",
        "Belum ada catatan hari ini.",
        "No records today yet.",
    ),
    ("send_title", "Kirim ke Dinas", "Send to the district"),
    ("send_go", "Kirim ke Dinas", "Send to the district"),
    (
        "usb_title",
        "Tanpa sinyal: simpan ke flashdisk",
        "No signal: save to a USB stick",
    ),
    (
        "usb_lead",
        "Berkas ini dibawa ke kantor Dinas dan dimasukkan admin. Catatan tetap menunggu sampai terkirim.",
        "Take the file to the district office for the admin to load. The records stay waiting until sent.",
    ),
    ("usb_folder", "Folder flashdisk", "USB stick folder"),
    ("usb_go", "Simpan ke flashdisk", "Save to the USB stick"),
    ("settings_title", "Pengaturan", "Settings"),
    ("paper", "Kertas slip", "Slip paper"),
    (
        "printer_note",
        "Slip dicetak lewat jendela cetak browser: pilih printer termal (mis. POS-58) sekali, browser mengingatnya. Ukuran kertas di jendela cetak: sesuai printer.",
        "Slips print through the browser's print window: pick the thermal printer (e.g. POS-58) once and the browser keeps it. Paper size in the print window: as the printer.",
    ),
    (
        "printer_direct",
        "Printer termal langsung (boleh kosong)",
        "Direct thermal printer (optional)",
    ),
    (
        "printer_direct_note",
        "Untuk mencetak satu tombol tanpa jendela cetak: nama printer di Windows (mis. POS-58) atau perangkat di Linux (mis. /dev/usb/lp0). Kosongkan untuk mencetak lewat browser.",
        "For one-key printing without the print window: the printer's name on Windows (e.g. POS-58) or a device on Linux (e.g. /dev/usb/lp0). Leave empty to print through the browser.",
    ),
    ("save", "Simpan", "Save"),
    (
        "summary_title",
        "Periksa sekali lagi dengan KTP",
        "Check once more against the KTP",
    ),
    ("save_print", "Simpan & cetak", "Save & print"),
    ("edit", "Ubah", "Edit"),
    ("cancel", "Batal", "Cancel"),
    ("void_reason", "Alasan", "Reason"),
    ("r_nik", "Salah ketik NIK", "Wrong NIK typed"),
    ("r_desa", "Salah desa", "Wrong village"),
    ("r_double", "Dobel (tercatat dua kali)", "Recorded twice"),
    ("r_other", "Lainnya", "Other"),
    ("r_other_placeholder", "Tulis alasannya", "Write the reason"),
    (
        "void_remind",
        "Ambil kembali slip lama dari warga.",
        "Take the old slip back from the citizen.",
    ),
    ("void_go", "Batalkan catatan", "Void the record"),
    // Written by the script.
    ("j_saved", "Tersimpan", "Saved"),
    ("j_printing", "slip sedang dicetak", "the slip is printing"),
    (
        "j_printed_direct",
        "slip dikirim ke printer",
        "the slip went to the printer",
    ),
    ("j_reprint", "Cetak ulang", "Reprint"),
    (
        "j_next",
        "Siap untuk warga berikutnya.",
        "Ready for the next citizen.",
    ),
    (
        "j_pick_village",
        "Pilih desa dulu: ketik namanya lalu pilih dari daftar.",
        "Pick the village first: type its name and choose from the list.",
    ),
    (
        "j_no_village",
        "Tidak ada desa dengan nama itu. Coba sebagian nama saja, mis. SUMBER.",
        "No village by that name. Try part of the name, e.g. SUMBER.",
    ),
    ("j_sex", "Jenis kelamin", "Sex"),
    ("j_born", "lahir", "born"),
    ("j_years", "tahun", "years"),
    ("j_kec", "Kec.", "Kec."),
    ("j_compare", "cocokkan dengan KTP", "compare with the KTP"),
    (
        "j_dup",
        "Sudah diaktivasi di laptop ini",
        "Already activated on this laptop",
    ),
    (
        "j_district",
        "Kemungkinan sudah diaktivasi tim lain (daftar Dinas per {}). Tanyakan ke warga; bila IKD-nya sudah aktif, jangan simpan.",
        "Probably activated already by another team (district list as of {}). Ask the citizen; if their IKD is active, do not save.",
    ),
    (
        "j_young",
        "Umur {} tahun menurut NIK. Saya sudah melihat KTP-el warga ini (mis. sudah menikah).",
        "Age {} by the NIK. I have seen this citizen's KTP-el (e.g. married).",
    ),
    (
        "j_young_needed",
        "Centang dulu bahwa KTP-el sudah dilihat.",
        "Tick first that you have seen the KTP-el.",
    ),
    (
        "j_fix",
        "Perbaiki yang ditandai merah, lalu tekan Enter.",
        "Fix what is marked red, then press Enter.",
    ),
    ("j_example", "contoh", "example"),
    ("j_counts", "{} warga diaktivasi", "{} citizens activated"),
    ("j_voided", "{} dibatalkan", "{} voided"),
    ("j_voided_word", "dibatalkan", "voided"),
    ("j_void_of", "pembatalan #{}", "void of #{}"),
    ("j_void", "Batalkan", "Void"),
    ("j_void_title", "Batalkan catatan #{}?", "Void record #{}?"),
    (
        "j_void_done",
        "Catatan #{} ({}) dibatalkan. Ambil kembali slipnya.",
        "Record #{} ({}) is voided. Take its slip back.",
    ),
    ("j_pick_reason", "Pilih alasannya.", "Pick a reason."),
    (
        "j_pending",
        "{} catatan menunggu dikirim.",
        "{} records waiting to be sent.",
    ),
    (
        "j_nothing_pending",
        "Semua catatan sudah terkirim.",
        "Every record is sent.",
    ),
    (
        "j_not_enrolled",
        "Laptop ini belum terdaftar di server Dinas: isi token di Pengaturan.",
        "This laptop is not enrolled yet: enter the token in Settings.",
    ),
    (
        "j_saved_settings",
        "Pengaturan disimpan.",
        "Settings saved.",
    ),
    (
        "j_enrolled",
        "Terdaftar di server Dinas.",
        "Enrolled with the district server.",
    ),
    (
        "j_enrol_failed",
        "Laptop siap dipakai, tetapi pendaftaran ke server belum berhasil:",
        "The laptop is ready, but enrolment did not succeed:",
    ),
    (
        "j_lost",
        "Desk tidak menjawab. Pastikan jendela ikd-field masih terbuka, lalu muat ulang halaman ini.",
        "The desk does not answer. Check that the ikd-field window is still open, then reload this page.",
    ),
    ("j_team", "Tim", "Team"),
];

fn text(key: &str) -> String {
    TEXTS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, id, en)| if crate::i18n::is_en() { *en } else { *id })
        .unwrap_or(key)
        .to_string()
}

/// `<`, `>`, `&`, quotes escaped for HTML text and attributes.
pub fn esc(s: &str) -> String {
    crate::slip::svg::escape(s)
}

/// The page, its words filled in.
pub fn app(d: &Desk) -> Resp {
    let texts: serde_json::Map<String, serde_json::Value> = TEXTS
        .iter()
        .filter(|(k, _, _)| k.starts_with("j_"))
        .map(|(k, _, _)| (k.to_string(), text(k).into()))
        .collect();
    // In a JSON data block `</` must not appear (it would end the element).
    let texts = serde_json::Value::Object(texts)
        .to_string()
        .replace("</", "<\\/");
    let mut html = HTML
        .replace("{{lang}}", if crate::i18n::is_en() { "en" } else { "id" })
        .replace("{{csrf}}", &d.secrets.csrf)
        .replace("{{office}}", &esc(&d.ctx.config.slip.office))
        .replace("{{texts}}", &texts);
    for (k, _, _) in TEXTS {
        html = html.replace(&format!("{{{{t.{k}}}}}"), &esc(&text(k)));
    }
    Resp::html(html)
}

pub fn script() -> Resp {
    Resp::new(200, "text/javascript; charset=utf-8", JS)
}

pub fn style() -> Resp {
    Resp::new(200, "text/css; charset=utf-8", CSS)
}

fn page(title: &str, body: &str, class: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <link rel=\"stylesheet\" href=\"/desk.css\"><script src=\"/desk.js\" defer></script></head>\
         <body class=\"{class}\">{body}</body></html>",
        if crate::i18n::is_en() { "en" } else { "id" },
        esc(title)
    )
}

/// Without the secret (an old tab, another program) or from another host.
pub fn refused(v: &Verdict) -> Resp {
    let (status, msg) = match v {
        Verdict::WrongHost => (
            421,
            tr!(
                "Alamat ini bukan desk ikd-field. Buka desk dari jendela ikd-field di laptop ini.",
                "This address is not the ikd-field desk. Open the desk from the ikd-field window on this laptop."
            ),
        ),
        Verdict::Forged => (
            403,
            tr!(
                "Permintaan ini tidak datang dari halaman desk; tidak dijalankan. Muat ulang halaman desk.",
                "This request did not come from the desk's page; it was not carried out. Reload the desk's page."
            ),
        ),
        _ => (
            403,
            tr!(
                "Halaman ini perlu dibuka dari jendela ikd-field: salin alamat lengkap yang tertulis di sana (desk mungkin dimulai ulang).",
                "Open this page from the ikd-field window: copy the full address shown there (the desk may have been restarted)."
            ),
        ),
    };
    let mut r = Resp::new(
        status,
        "text/html; charset=utf-8",
        page(
            "IKD Desk",
            &format!(
                "<main class=\"refused\"><h1>IKD Desk</h1><p>{}</p></main>",
                esc(&msg)
            ),
            "",
        ),
    );
    r.headers.push(("connection", "close".into()));
    r
}

fn paper_of(req: &Req, d: &Desk, dd: &crate::field::datadir::DataDir) -> Paper {
    req.param("kertas")
        .and_then(|p| p.trim_end_matches("mm").parse().ok())
        .and_then(Paper::from_mm)
        .unwrap_or_else(|| Paper::from_mm(super::setup::paper(d, dd)).unwrap_or(Paper::Mm58))
}

/// One slip's SVG for inlining in HTML, and its height in mm.
fn inline_svg(slip: &Slip, paper: Paper) -> (String, f32) {
    let svg = crate::slip::svg::render(slip, paper);
    let body = match svg.find("<svg") {
        Some(i) => svg[i..].to_string(),
        None => svg.clone(),
    };
    let height = body
        .split("height=\"")
        .nth(1)
        .and_then(|h| h.split("mm\"").next())
        .and_then(|h| h.parse::<f32>().ok())
        .unwrap_or(120.0);
    (body, height)
}

fn message_page(msg: &str) -> Resp {
    Resp::html(page(
        "IKD Desk",
        &format!(
            "<main class=\"refused\"><p>{}</p><p><a href=\"/#hari-ini\">{}</a></p></main>",
            esc(msg),
            esc(&tr!("Kembali ke Hari ini", "Back to Today"))
        ),
        "",
    ))
}

/// `/slip/N?kertas=58|80[&auto=1]`: one slip sized for the thermal paper, printed through the
/// browser's print window (any printer with a driver). `auto` opens the print window at once.
pub fn slip(d: &Desk, req: &Req) -> Resp {
    let seq = req.path.trim_start_matches("/slip/").to_string();
    let g = match d.data() {
        Ok(g) => g,
        Err(e) => return message_page(&e.message),
    };
    let dd = g.as_ref().expect("opened");
    let stored = match dd.store.find(&seq) {
        Ok(s) => s,
        Err(e) => return message_page(&e.message),
    };
    if stored.record.kind != Kind::Activation || stored.voided_by.is_some() {
        return message_page(&tr!(
            "Catatan #{} sudah dibatalkan; slipnya tidak dicetak lagi.",
            "Record #{} was voided; its slip is not printed again.",
            stored.record.seq
        ));
    }
    let paper = paper_of(req, d, dd);
    let slip = match Slip::new(
        &stored.record,
        &dd.key,
        &super::setup::office(d, dd),
        d.ctx.offset(),
    ) {
        Ok(s) => s,
        Err(e) => return message_page(&e.message),
    };
    let _ = dd
        .store
        .audit("slip", Some(&stored.record.id), "desk print page");
    let (svg, height) = inline_svg(&slip, paper);
    let width = match paper {
        Paper::Mm58 => 58,
        Paper::Mm80 => 80,
    };
    let other = if width == 58 { 80 } else { 58 };
    let body = format!(
        "<div class=\"no-print bar\"><button id=\"print-now\" class=\"primary\" autofocus>{print}</button> \
         <a href=\"/slip/{seq}?kertas={other}\">{other} mm</a> <a href=\"/#catat\">{back}</a></div>\
         <div class=\"slip\" data-auto=\"{auto}\">{svg}</div>\
         <link rel=\"stylesheet\" href=\"/page.css?w={width}&h={h}\">",
        print = esc(&tr!("Cetak", "Print")),
        back = esc(&tr!("Kembali", "Back")),
        seq = stored.record.seq,
        auto = req.param("auto").is_some(),
        h = (height + 10.0).ceil() as u32,
    );
    Resp::html(page(
        &format!("Slip #{}", stored.record.seq),
        &body,
        &format!("print-page paper-{width}"),
    ))
}

/// `/page.css?w=58&h=140`: the printed page's size for one slip (a style file, as the
/// Content-Security-Policy allows no inline style).
pub fn page_css(req: &Req) -> Resp {
    let w: u32 = req
        .param("w")
        .and_then(|w| w.parse().ok())
        .filter(|w| *w == 58 || *w == 80)
        .unwrap_or(58);
    let h: u32 = req
        .param("h")
        .and_then(|h| h.parse().ok())
        .unwrap_or(150)
        .clamp(40, 600);
    Resp::new(
        200,
        "text/css; charset=utf-8",
        format!("@page {{ size: {w}mm {h}mm; margin: 0; }}\n"),
    )
}

/// `/lembar`: an A4 sheet of today's live slips (voided ones left out, and named).
pub fn sheet(d: &Desk, _req: &Req) -> Resp {
    let g = match d.data() {
        Ok(g) => g,
        Err(e) => return message_page(&e.message),
    };
    let dd = g.as_ref().expect("opened");
    let offset = d.ctx.offset();
    let today = timefmt::today(offset);
    let all: Vec<Stored> = match dd.store.list(&Filter::default()) {
        Ok(a) => a,
        Err(e) => return message_page(&e.message),
    };
    let todays: Vec<&Stored> = all
        .iter()
        .filter(|s| s.record.kind == Kind::Activation)
        .filter(|s| {
            timefmt::parse(&s.record.recorded_at).map(|t| t.to_offset(offset).date()) == Some(today)
        })
        .collect();
    let voided: Vec<String> = todays
        .iter()
        .filter(|s| s.voided_by.is_some())
        .map(|s| format!("#{}", s.record.seq))
        .collect();
    let office = super::setup::office(d, dd);
    let mut slips = String::new();
    for s in todays.iter().filter(|s| s.voided_by.is_none()) {
        if let Ok(slip) = Slip::new(&s.record, &dd.key, &office, offset) {
            slips.push_str(&format!(
                "<div class=\"cell\">{}</div>",
                inline_svg(&slip, Paper::Mm58).0
            ));
        }
    }
    let note = if voided.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"note\">{}</p>",
            esc(&tr!(
                "{} slip dibatalkan tidak ikut dicetak: {}",
                "{} voided slips are left out: {}",
                voided.len(),
                voided.join(", ")
            ))
        )
    };
    let empty = if slips.is_empty() {
        format!(
            "<p class=\"lead\">{}</p>",
            esc(&tr!("Belum ada slip hari ini.", "No slips today yet."))
        )
    } else {
        String::new()
    };
    let body = format!(
        "<div class=\"no-print bar\"><button id=\"print-now\" class=\"primary\" autofocus>{}</button> \
         <a href=\"/#hari-ini\">{}</a>{note}</div>{empty}<div class=\"sheet\">{slips}</div>",
        esc(&tr!("Cetak", "Print")),
        esc(&tr!("Kembali", "Back")),
    );
    Resp::html(page(
        &tr!("Slip hari ini", "Today's slips"),
        &body,
        "print-page sheet-page",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_in_both_languages_and_every_placeholder_is_known() {
        for (k, id, en) in TEXTS {
            assert!(!id.is_empty() && !en.is_empty(), "{k}");
        }
        let mut rest = HTML;
        while let Some(i) = rest.find("{{t.") {
            let key = &rest[i + 4..];
            let key = &key[..key.find("}}").expect("closed")];
            assert!(
                TEXTS.iter().any(|(k, _, _)| *k == key),
                "unknown text {key}"
            );
            rest = &rest[i + 4..];
        }
        // The script's words (t('j_…')) are in the table too.
        let mut rest = JS;
        while let Some(i) = rest.find("t('j_") {
            let key = &rest[i + 3..];
            let key = &key[..key.find('\'').expect("closed")];
            assert!(
                TEXTS.iter().any(|(k, _, _)| *k == key),
                "unknown script text {key}"
            );
            rest = &rest[i + 3..];
        }
    }
}
