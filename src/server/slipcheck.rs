//! `/cek-slip`, the office's slip check (admin only: it tells a record's state): the `IKD1:` text
//! pasted, or a photo or scan uploaded (at most [`MAX_UPLOAD_BYTES`]), is read with the same
//! code as `ikd-field verify` (`slip::scan`, `slip::check`) against the keys of the devices
//! enrolled here, then looked up: reached the server (and counts, or is a conflict), voided (by
//! whom), or unknown to the server (not synced yet).
use super::dashboard::{Page, Res, Settings, Viewer, render};
use super::db::{self, Db};
use crate::args;
use crate::domain::region;
use crate::slip::check::{self, Facts, Verdict};
use crate::slip::keys::KeyRing;
use crate::slip::scan::{self, ScanError};
use minijinja::context;
use minijinja::value::{Serde, Value};
use serde::Serialize;

/// Largest upload taken (a phone photo is 2–5 MB).
pub const MAX_UPLOAD_BYTES: u64 = 8 * 1024 * 1024;
/// Most slips read from one image.
const MAX_SLIPS: usize = 20;

/// One slip's answer on the page.
#[derive(Debug, Serialize)]
struct SlipView {
    /// `ok`, `warn` or `bad`: the colour of the verdict.
    class: &'static str,
    verdict: String,
    /// Where the record stands on the server (genuine slips only).
    record: String,
    facts: Vec<(String, String)>,
}

/// The enrolled field devices: the key ring, and each device's team and officer.
struct Devices {
    ring: KeyRing,
    who: std::collections::HashMap<String, (String, String, Option<String>)>,
}

fn devices(conn: &mut Db<'_>) -> db::Result<Devices> {
    // A device known only through a relay has no key here (as for signed requests).
    let rows = conn.query_all(
        "SELECT id, public_key, team, officer, revoked_at FROM devices \
         WHERE relay = 0 AND relayed_by IS NULL",
        args![],
    )?;
    let mut ring = KeyRing::default();
    let mut who = std::collections::HashMap::new();
    for r in &rows {
        let (id, key): (String, String) = (r.get(0)?, r.get(1)?);
        // A stored key whose id does not match is left out (it cannot sign a slip of that id).
        let _ = ring.add(Some(&id), &key);
        who.insert(id, (r.get(2)?, r.get(3)?, r.get(4)?));
    }
    Ok(Devices { ring, who })
}

fn facts_rows(f: &Facts, s: &Settings) -> Vec<(String, String)> {
    let place = region::village(&f.village)
        .map(|_| region::place(&f.village))
        .unwrap_or_else(|| region::dotted(&f.village));
    vec![
        ("Nama".into(), f.name.clone()),
        ("NIK".into(), f.nik_masked.clone()),
        ("Desa".into(), place),
        (
            "Waktu".into(),
            crate::timefmt::local_display(&f.recorded_at, s.offset),
        ),
    ]
}

/// Where a genuine slip's record stands on the server: (class, words).
fn record_state(conn: &mut Db<'_>, s: &Settings, id: &str) -> db::Result<(&'static str, String)> {
    let row = conn.query_opt(
        "SELECT r.state, r.seq, v.officer, v.team, v.recorded_at, v.reason
         FROM records r LEFT JOIN records v ON v.id = r.voided_by
         WHERE r.id = ?1 AND r.kind = 'activation'",
        args![id],
    )?;
    let Some(r) = row else {
        return Ok((
            "warn",
            "Belum sampai di server: laptop itu belum mengirim catatan ini. Minta petugasnya \
             menyinkronkan laptopnya, lalu periksa lagi."
                .into(),
        ));
    };
    let (state, seq): (String, i64) = (r.get(0)?, r.get(1)?);
    if let Some(officer) = r.get::<Option<String>>(2)? {
        let team: String = r.get(3)?;
        let at = crate::timefmt::local_display(&r.get::<String>(4)?, s.offset);
        let reason = r.get::<Option<String>>(5)?.unwrap_or_default();
        let why = if reason.trim().is_empty() {
            String::new()
        } else {
            format!(" (alasan: {})", reason.trim())
        };
        return Ok((
            "bad",
            format!(
                "DIBATALKAN: catatan #{seq} dibatalkan oleh {officer} ({team}) pada {at}{why}. \
                 Aktivasi ini tidak berlaku; ambil kembali slipnya."
            ),
        ));
    }
    Ok(if state == "conflict" {
        (
            "warn",
            format!(
                "Sudah sampai di server (catatan #{seq}), tetapi berkonflik: NIK ini sudah \
                 diaktivasi catatan lain. Lihat halaman Konflik."
            ),
        )
    } else {
        (
            "ok",
            format!("Sudah sampai di server dan berlaku (catatan #{seq} di laptopnya)."),
        )
    })
}

fn one(conn: &mut Db<'_>, s: &Settings, d: &Devices, text: &str) -> db::Result<SlipView> {
    let bad = |verdict: &str, f: Option<&Facts>| SlipView {
        class: "bad",
        verdict: verdict.to_string(),
        record: String::new(),
        facts: f.map(|f| facts_rows(f, s)).unwrap_or_default(),
    };
    Ok(match check::check(&d.ring, text) {
        Verdict::Genuine(f) => {
            let (team, officer, revoked) = d.who.get(&f.device_id).cloned().unwrap_or_default();
            let (class, record) = record_state(conn, s, &f.record_id)?;
            let mut facts = facts_rows(&f, s);
            facts.push(("Laptop".into(), format!("{team} · {officer}")));
            if let Some(at) = revoked {
                facts.push((
                    "Catatan".into(),
                    format!(
                        "laptop ini dicabut pada {}; slip yang dibuat sebelumnya tetap asli",
                        crate::timefmt::local_display(&at, s.offset)
                    ),
                ));
            }
            SlipView {
                class,
                verdict: format!("✓ SLIP ASLI — ditandatangani laptop {team} · {officer}."),
                record,
                facts,
            }
        }
        Verdict::Forged(f) | Verdict::WrongKey { facts: f, .. } => bad(
            "✗ SLIP TIDAK SAH — tanda tangannya tidak cocok: isi slip diubah atau dipalsukan. \
             Jangan terima slip ini.",
            Some(&f),
        ),
        Verdict::UnknownDevice(f) => bad(
            "✗ LAPTOP TIDAK DIKENAL — slip ini ditandatangani laptop yang tidak terdaftar di \
             Dinas ini, jadi keasliannya tidak bisa dipastikan. Jangan terima sebelum dicek.",
            Some(&f),
        ),
        Verdict::Damaged(_) => bad(
            "✗ Isi kode QR rusak atau bukan slip IKD. Periksa lagi teksnya (diawali IKD1:) atau foto ulang slipnya.",
            None,
        ),
    })
}

/// The form alone (GET).
pub fn form(s: &Settings, v: &Viewer) -> Res {
    show(s, v, None, vec![], None)
}

fn show(
    s: &Settings,
    v: &Viewer,
    problem: Option<String>,
    slips: Vec<SlipView>,
    text: Option<&str>,
) -> Res {
    let body = render(
        "cek-slip.html",
        s.offset,
        v,
        context! {
            title => "Cek slip",
            problem => problem,
            slips => Value::from(Serde(&slips)),
            text => text,
            max_mb => MAX_UPLOAD_BYTES / (1024 * 1024),
        },
    )?;
    Ok(Page::html(200, body))
}

/// Checks what was sent: the pasted `text` (lines starting `IKD1:`), else the `photo`.
pub fn check_page(
    conn: &mut Db<'_>,
    s: &Settings,
    v: &Viewer,
    text: &str,
    photo: Option<&[u8]>,
) -> Res {
    let text = text.trim();
    let found = if !text.is_empty() {
        scan::scan(text.as_bytes())
    } else {
        match photo.filter(|p| !p.is_empty()) {
            Some(p) => scan::scan(p),
            None => {
                return show(
                    s,
                    v,
                    Some("Tempel teks IKD1:… dari slip, atau pilih foto slipnya.".into()),
                    vec![],
                    None,
                );
            }
        }
    };
    let found = match found {
        Ok(f) => f,
        Err(e) => {
            let why = match e {
                ScanError::NotImage(_) if !text.is_empty() => {
                    "Teks ini bukan isi slip IKD: isinya harus diawali IKD1:.".to_string()
                }
                ScanError::NotImage(_) => {
                    "Berkas ini bukan foto yang bisa dibaca; pakai foto atau pindaian JPEG/PNG."
                        .into()
                }
                ScanError::TooLarge => format!(
                    "Foto ini terlalu besar untuk diperiksa (paling besar {} × {} titik). \
                     Perkecil fotonya atau foto hanya bagian QR-nya, lalu coba lagi.",
                    scan::MAX_SIDE,
                    scan::MAX_SIDE
                ),
                ScanError::NoQr => {
                    "Tidak ada kode QR yang terbaca pada foto. Foto ulang: slip datar, \
                     cukup cahaya, seluruh QR masuk bingkai dan tajam."
                        .into()
                }
                ScanError::Unreadable(n) => format!(
                    "Ada {n} kode QR pada foto, tetapi tidak ada yang terbaca. Foto ulang: slip datar, \
                     cukup cahaya, QR utuh dan tajam."
                ),
                ScanError::NotIkd(_) => "Kode QR pada foto bukan slip IKD.".into(),
            };
            return show(s, v, Some(why), vec![], Some(text));
        }
    };
    let d = devices(conn)?;
    let mut slips = Vec::new();
    for t in found.payloads.iter().take(MAX_SLIPS) {
        slips.push(one(conn, s, &d, t)?);
    }
    let problem = (found.unread > 0).then(|| {
        format!(
            "{} kode QR lain pada foto tidak terbaca — slip itu belum diperiksa. Foto ulang slip itu sendiri.",
            found.unread
        )
    });
    show(s, v, problem, slips, Some(text))
}
