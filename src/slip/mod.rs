//! Signed QR confirmation slips (DESIGN.md §5): the payload, and renderers for PNG, SVG, PDF,
//! ESC/POS thermal printers and the terminal. `Slip` holds what every renderer prints; `layout`
//! places it once for PNG, SVG and PDF, so they look the same.
pub mod check;
pub mod escpos;
pub mod font;
pub mod keys;
pub mod layout;
pub mod payload;
pub mod pdf;
pub mod png;
pub mod qr;
pub mod scan;
pub mod svg;
pub mod text;

use crate::crypto::KeyPair;
use crate::domain::{Record, nik, region};
use crate::error::AppError;
use crate::{timefmt, tr};
use payload::Payload;
use qr::Qr;

/// The slip is a document for the citizen, so its own wording is Indonesian whatever the
/// operator's interface language is.
pub const TITLE: &str = "BUKTI AKTIVASI IKD";
pub const INSTRUCTION: &str =
    "Simpan bukti ini. Petugas Dukcapil dapat memeriksa keasliannya dari kode QR ini.";

/// Output formats of `ikd-field slip`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Png,
    Svg,
    Pdf,
    Escpos,
    Text,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        <Format as clap::ValueEnum>::from_str(s, true).ok()
    }
    pub fn name(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
            Format::Pdf => "pdf",
            Format::Escpos => "escpos",
            Format::Text => "text",
        }
    }
    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
            Format::Pdf => "pdf",
            Format::Escpos => "bin",
            Format::Text => "txt",
        }
    }
}

/// Thermal paper width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paper {
    Mm58,
    Mm80,
}

impl Paper {
    pub fn from_mm(mm: u32) -> Option<Paper> {
        match mm {
            58 => Some(Paper::Mm58),
            80 => Some(Paper::Mm80),
            _ => None,
        }
    }
    /// Printable dots at 203 dpi (8 dots/mm): 384 on 58 mm paper, 576 on 80 mm.
    pub fn dots(self) -> usize {
        match self {
            Paper::Mm58 => 384,
            Paper::Mm80 => 576,
        }
    }
    /// Characters per line in the printer's font A (12 × 24 dots).
    pub fn columns(self) -> usize {
        self.dots() / 12
    }
}

/// Everything a slip shows, ready to render.
#[derive(Debug, Clone)]
pub struct Slip {
    pub office: String,
    pub name: String,
    pub masked_nik: String,
    /// "Desa" or "Kelurahan".
    pub village_label: &'static str,
    pub village: String,
    pub district: String,
    pub regency: String,
    /// Local date and time, e.g. `23-11-2026 12:12 WIB`.
    pub time: String,
    pub officer: String,
    pub seq: i64,
    pub record_id: String,
    /// `IKD1:…`, the QR's text.
    pub payload: String,
    pub qr: Qr,
}

impl Slip {
    /// Signs the record's payload with this device's key and gathers the slip's text.
    pub fn new(
        rec: &Record,
        key: &KeyPair,
        office: &str,
        offset: time::UtcOffset,
    ) -> Result<Slip, AppError> {
        let bad = |why: &str| {
            AppError::other(tr!(
                "Catatan {} tidak bisa dibuatkan slip: {why}",
                "Cannot make a slip for record {}: {why}",
                rec.id
            ))
        };
        if rec.device_id != key.id() {
            return Err(bad(&tr!(
                "dicatat oleh perangkat lain ({})",
                "it was recorded by another device ({})",
                rec.device_id
            )));
        }
        let p = Payload::new(
            &rec.id,
            &rec.device_id,
            &rec.recorded_at,
            &rec.village,
            &rec.nik,
            &rec.name,
        )
        .map_err(bad)?;
        // Every character a slip prints must be in the font and the printers' code page: names
        // are checked at record time; the office, officer and place names are checked here.
        let village = region::village(&rec.village)
            .map(|r| r.name.clone())
            .unwrap_or_else(|| region::dotted(&rec.village));
        let texts = [
            (
                tr!(
                    "nama kantor (slip.office di config.toml)",
                    "office name (slip.office in config.toml)"
                ),
                office,
            ),
            (tr!("nama petugas", "officer name"), rec.officer.as_str()),
            (tr!("nama warga", "citizen's name"), rec.name.as_str()),
            (tr!("nama desa", "village name"), village.as_str()),
        ];
        for (what, text) in texts {
            if let Some(c) = text.chars().find(|c| !font::printable(*c)) {
                return Err(bad(&tr!(
                    "{what} memuat huruf '{c}' yang tidak bisa dicetak; tulis dengan huruf Latin (A–Z)",
                    "the {what} holds '{c}', which cannot be printed; write it in Latin letters (A–Z)"
                )));
            }
        }
        let payload = p.sign(key);
        let qr = Qr::encode(&payload).map_err(|e| bad(&e))?;
        let name_of = |r: Option<&region::Region>| r.map(|r| r.name.clone()).unwrap_or_default();
        let village_label = match region::village_kind(&rec.village) {
            "kelurahan" => "Kelurahan",
            _ => "Desa",
        };
        Ok(Slip {
            office: office.to_string(),
            name: rec.name.clone(),
            masked_nik: nik::mask(&rec.nik),
            village_label,
            village,
            district: name_of(region::district(&rec.village[..6.min(rec.village.len())])),
            regency: name_of(region::regency(&rec.village[..4.min(rec.village.len())])),
            time: timefmt::local_display(&rec.recorded_at, offset),
            officer: rec.officer.clone(),
            seq: rec.seq,
            record_id: rec.id.clone(),
            payload,
            qr,
        })
    }

    /// Label/value rows in print order.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = vec![
            ("NIK", self.masked_nik.clone()),
            (self.village_label, self.village.clone()),
            ("Kecamatan", self.district.clone()),
        ];
        if !self.regency.is_empty() {
            rows.push(("Kab/Kota", self.regency.clone()));
        }
        rows.extend([
            ("Waktu", self.time.clone()),
            ("Petugas", self.officer.clone()),
            ("No.", format!("#{}", self.seq)),
        ]);
        rows
    }
}

/// Renders one slip in a single-file format (PNG, SVG, PDF A6, ESC/POS, text).
pub fn render(slip: &Slip, format: Format, paper: Paper, opts: &escpos::Options) -> Vec<u8> {
    match format {
        Format::Png => png::render(slip, paper),
        Format::Svg => svg::render(slip, paper).into_bytes(),
        Format::Pdf => pdf::render(std::slice::from_ref(slip), pdf::Page::A6),
        Format::Escpos => escpos::render(slip, paper, opts),
        Format::Text => text::render(slip).into_bytes(),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::domain::Kind;

    pub fn key() -> KeyPair {
        KeyPair::from_seed([3; 32])
    }

    /// A synthetic record (never real personal data).
    pub fn record(name: &str) -> Record {
        let people = crate::synth::citizens(11, "1702", 1);
        let p = &people[0];
        Record {
            id: "01936f5e-7a2b-7c3d-8e4f-123456789abc".into(),
            seq: 12,
            device_id: key().id(),
            officer: "PETUGAS UJI".into(),
            team: "TIM UJI".into(),
            recorded_at: "2026-11-23T05:12:09.123Z".into(),
            kind: Kind::Activation,
            village: p.village.clone(),
            nik: p.nik.clone(),
            name: name.into(),
            phone: "+6281234567890".into(),
            email: None,
            voids: None,
            reason: None,
            warnings: vec![],
        }
    }

    pub fn slip(name: &str) -> Slip {
        Slip::new(
            &record(name),
            &key(),
            "DINAS KEPENDUDUKAN DAN PENCATATAN SIPIL KABUPATEN REJANG LEBONG",
            time::UtcOffset::from_hms(7, 0, 0).unwrap(),
        )
        .unwrap()
    }

    pub const LONG_NAME: &str = "MUHAMMAD ABDURRAHMAN WAHYUDI SETIAWAN NUGROHO PRAWIRADIREDJA";
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn every_place_name_prints() {
        let mut n = 0;
        for p in region::children("") {
            for r in region::children(&p.code) {
                for d in region::children(&r.code) {
                    for v in region::children(&d.code).iter().chain([p, r, d]) {
                        n += 1;
                        let bad: String = v.name.chars().filter(|c| !font::printable(*c)).collect();
                        assert!(bad.is_empty(), "{} {}: {bad}", v.code, v.name);
                    }
                }
            }
        }
        assert!(n > 80_000, "{n}");
    }

    #[test]
    fn unprintable_office_or_officer_is_refused() {
        let rec = record("BUDI");
        let offset = time::UtcOffset::from_hms(7, 0, 0).unwrap();
        let e = Slip::new(&rec, &key(), "DINAS \u{15E}", offset).unwrap_err();
        assert!(e.to_string().contains("slip.office"), "{e}");
        let mut rec = record("BUDI");
        rec.officer = "\u{738B}".into();
        assert!(Slip::new(&rec, &key(), "DINAS", offset).is_err());
    }

    #[test]
    fn slip_has_the_places_and_a_small_qr() {
        assert_eq!(LONG_NAME.len(), 60);
        let s = slip(LONG_NAME);
        assert!(!s.village.is_empty() && !s.district.is_empty());
        assert!(s.qr.version <= 8, "version {}", s.qr.version);
        assert!(s.time.ends_with("WIB"));
        let p = payload::Signed::decode(&s.payload).unwrap();
        assert_eq!(p.payload.name, LONG_NAME);
        p.verify(&key().public()).unwrap();
    }
}
