//! NIK (Nomor Induk Kependudukan): `PP KK CC DDMMYY SSSS`, 16 digits, no check digit.
//!
//! Province must exist; a regency or kecamatan code of 00 cannot exist. A regency or kecamatan code that is retired (legacy list) or unknown within
//! a known province is only a warning: a NIK is for life and keeps the code of first registration.
//! Women have 40 added to the day. The date may differ from the real birth date after a correction,
//! so it is derived and shown, never insisted on beyond being a real calendar date.
use super::problem::Problem;
use super::region;
use crate::tr;
use serde::Serialize;
use time::{Date, Month};

pub const EXAMPLE: &str = "1702064107950003";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    #[serde(rename = "L")]
    Male,
    #[serde(rename = "P")]
    Female,
}

impl Sex {
    /// As written on a KTP: `LAKI-LAKI` / `PEREMPUAN` (English: male / female).
    pub fn label(self) -> String {
        match self {
            Sex::Male => tr!("LAKI-LAKI", "male"),
            Sex::Female => tr!("PEREMPUAN", "female"),
        }
    }
}

/// What a valid NIK says, and the warnings about it.
#[derive(Debug, Clone, Serialize)]
pub struct Nik {
    pub nik: String,
    pub province: String,
    pub regency: String,
    pub district: String,
    pub sex: Sex,
    #[serde(serialize_with = "ser_date")]
    pub birth_date: Date,
    pub serial: u16,
    pub warnings: Vec<Problem>,
}

fn ser_date<S: serde::Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&iso_date(*d))
}

pub use crate::timefmt::iso_date;

impl Nik {
    /// Masked as on the slip: first 6 and last 4 digits, `170205******0003`.
    pub fn masked(&self) -> String {
        mask(&self.nik)
    }
    /// Age in whole years on `today`.
    pub fn age_on(&self, today: Date) -> i32 {
        age(self.birth_date, today)
    }
}

/// Under 10 the number is a child's (on the family card), not a KTP's: refused. From 10 to 16
/// a KTP is possible (married) but rare: the officer confirms.
pub fn age_check(age: i32) -> &'static str {
    match age {
        ..=9 => "refuse",
        10..=16 => "confirm",
        _ => "ok",
    }
}

pub fn refuse_child(age: i32) -> Problem {
    Problem::error(
        "nik",
        "nik_child",
        tr!(
            "menurut NIK umurnya {age} tahun: ini NIK anak (dari Kartu Keluarga), bukan KTP; IKD hanya untuk pemilik KTP-el",
            "by the NIK this person is {age}: a child's number (from the family card), not a KTP; IKD is for KTP holders only"
        ),
        EXAMPLE,
    )
}

pub fn mask(nik: &str) -> String {
    if nik.len() != 16 {
        return "*".repeat(nik.len());
    }
    format!("{}******{}", &nik[..6], &nik[12..])
}

fn age(born: Date, today: Date) -> i32 {
    let mut years = today.year() - born.year();
    if (u8::from(today.month()), today.day()) < (u8::from(born.month()), born.day()) {
        years -= 1;
    }
    years
}

fn err(code: &'static str, message: String) -> Problem {
    Problem::error("nik", code, message, EXAMPLE)
}

/// Parses and checks a NIK; `today` resolves the century and the age.
pub fn parse(input: &str, today: Date) -> Result<Nik, Problem> {
    let nik: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    if nik.is_empty() {
        return Err(err("nik_missing", tr!("NIK belum diisi", "NIK is missing")));
    }
    if let Some(bad) = nik.chars().find(|c| !c.is_ascii_digit()) {
        return Err(err(
            "nik_not_digits",
            tr!(
                "NIK hanya boleh berisi angka, ada '{bad}'",
                "NIK must contain digits only, found '{bad}'"
            ),
        ));
    }
    if nik.len() != 16 {
        let n = nik.len();
        return Err(err(
            "nik_length",
            tr!(
                "NIK harus 16 digit, yang diisi {n} digit",
                "NIK must have 16 digits, this one has {n}"
            ),
        ));
    }
    let num = |a: usize, b: usize| nik[a..b].parse::<u32>().expect("digits");
    let (prov, reg, dist) = (&nik[..2], &nik[..4], &nik[..6]);
    if region::province(prov).is_none() {
        return Err(err(
            "nik_province",
            tr!(
                "kode provinsi {prov} di awal NIK tidak ada; periksa dua digit pertama",
                "province code {prov} at the start of the NIK does not exist; check the first two digits"
            ),
        ));
    }
    // Kemendagri numbers regencies and kecamatan from 01: a 00 was never issued, so it is a
    // typing error, not a code retired by a split.
    if &nik[2..4] == "00" {
        return Err(err(
            "nik_regency",
            tr!(
                "kode kabupaten/kota di NIK (digit 3–4) tidak mungkin 00; periksa NIK di KTP",
                "the regency code in the NIK (digits 3–4) cannot be 00; check the NIK on the KTP"
            ),
        ));
    }
    if &nik[4..6] == "00" {
        return Err(err(
            "nik_district",
            tr!(
                "kode kecamatan di NIK (digit 5–6) tidak mungkin 00; periksa NIK di KTP",
                "the kecamatan code in the NIK (digits 5–6) cannot be 00; check the NIK on the KTP"
            ),
        ));
    }
    let mut warnings = Vec::new();
    if region::regency(reg).is_none() {
        warnings.push(match region::legacy_regency(reg) {
            Some(l) => Problem::warning(
                "nik",
                "nik_regency_legacy",
                tr!(
                    "kode kabupaten {reg} ({}) sudah dipecah, sekarang {} — NIK tetap berlaku",
                    "regency code {reg} ({}) was retired by a split, now {} — the NIK stays valid",
                    l.name,
                    l.successor
                ),
            ),
            None => Problem::warning(
                "nik",
                "nik_regency_unknown",
                tr!(
                    "kode kabupaten {reg} tidak ada di tabel wilayah saat ini; periksa NIK di KTP",
                    "regency code {reg} is not in the current region table; check the NIK on the KTP"
                ),
            ),
        });
    } else if region::district(dist).is_none() {
        warnings.push(match region::legacy_district(dist) {
            Some(l) => Problem::warning(
                "nik",
                "nik_district_legacy",
                tr!(
                    "kode kecamatan {dist} ({}) sudah diganti, sekarang {} — NIK tetap berlaku",
                    "kecamatan code {dist} ({}) was retired, now {} — the NIK stays valid",
                    l.name,
                    l.successor
                ),
            ),
            None => Problem::warning(
                "nik",
                "nik_district_unknown",
                tr!(
                    "kode kecamatan {dist} tidak ada di tabel wilayah saat ini; periksa NIK di KTP",
                    "kecamatan code {dist} is not in the current region table; check the NIK on the KTP"
                ),
            ),
        });
    }
    let (raw_day, month, yy) = (num(6, 8), num(8, 10), num(10, 12) as i32);
    let (sex, day) = match raw_day {
        1..=31 => (Sex::Male, raw_day),
        41..=71 => (Sex::Female, raw_day - 40),
        _ => {
            return Err(err(
                "nik_day",
                tr!(
                    "tanggal lahir di NIK (digit 7–8) harus 01–31, atau 41–71 untuk perempuan; tertulis {raw_day:02}",
                    "the birth day in the NIK (digits 7–8) must be 01–31, or 41–71 for women; it is {raw_day:02}"
                ),
            ));
        }
    };
    let month = Month::try_from(month as u8).map_err(|_| {
        err(
            "nik_month",
            tr!(
                "bulan lahir di NIK (digit 9–10) harus 01–12; tertulis {month:02}",
                "the birth month in the NIK (digits 9–10) must be 01–12; it is {month:02}"
            ),
        )
    })?;
    // The century: 20YY unless that date would be in the future, else 19YY.
    let mut birth = None;
    for century in [2000, 1900] {
        if let Ok(d) = Date::from_calendar_date(century + yy, month, day as u8)
            && d <= today
        {
            birth = Some(d);
            break;
        }
    }
    let Some(birth_date) = birth else {
        return Err(err(
            "nik_date",
            tr!(
                "tanggal lahir di NIK ({day:02}-{:02}-{yy:02}) bukan tanggal yang ada di kalender",
                "the birth date in the NIK ({day:02}-{:02}-{yy:02}) is not a real calendar date",
                u8::from(month)
            ),
        ));
    };
    let serial = num(12, 16) as u16;
    if serial == 0 {
        return Err(err(
            "nik_serial",
            tr!(
                "nomor urut NIK (4 digit terakhir) tidak boleh 0000",
                "the NIK serial (last 4 digits) cannot be 0000"
            ),
        ));
    }
    let years = age(birth_date, today);
    if years < 17 {
        warnings.push(Problem::warning(
            "nik",
            "nik_under_17",
            tr!(
                "menurut NIK umurnya {years} tahun (di bawah 17): pastikan sudah menikah atau sudah wajib KTP",
                "by the NIK this person is {years} (under 17): make sure they are married or otherwise hold a KTP"
            ),
        ));
    }
    Ok(Nik {
        province: prov.to_string(),
        regency: reg.to_string(),
        district: dist.to_string(),
        nik,
        sex,
        birth_date,
        serial,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_decide_the_question() {
        assert_eq!(age_check(3), "refuse");
        assert_eq!(age_check(9), "refuse");
        assert_eq!(age_check(10), "confirm");
        assert_eq!(age_check(16), "confirm");
        assert_eq!(age_check(17), "ok");
        assert_eq!(age_check(70), "ok");
    }
    use time::macros::date;

    const TODAY: Date = date!(2026 - 11 - 23);

    fn code(input: &str) -> &'static str {
        parse(input, TODAY).unwrap_err().code
    }
    fn warn_codes(input: &str) -> Vec<&'static str> {
        parse(input, TODAY)
            .unwrap()
            .warnings
            .iter()
            .map(|w| w.code)
            .collect()
    }

    #[test]
    fn man_and_woman() {
        let m = parse("1702061708900001", TODAY).unwrap();
        assert_eq!(m.sex, Sex::Male);
        assert_eq!(m.birth_date, date!(1990 - 08 - 17));
        assert_eq!(m.serial, 1);
        assert!(m.warnings.is_empty());
        let f = parse("1702065708900002", TODAY).unwrap();
        assert_eq!(f.sex, Sex::Female);
        assert_eq!(f.birth_date, date!(1990 - 08 - 17));
        assert_eq!(f.masked(), "170206******0002");
    }

    #[test]
    fn womens_days_bounds() {
        assert_eq!(
            parse("1702064101900001", TODAY).unwrap().birth_date.day(),
            1
        );
        assert_eq!(
            parse("1702067101900001", TODAY).unwrap().birth_date.day(),
            31
        );
        assert_eq!(code("1702067201900001"), "nik_day");
        assert_eq!(code("1702064001900001"), "nik_day");
        assert_eq!(code("1702063201900001"), "nik_day");
        assert_eq!(code("1702060001900001"), "nik_day");
        // 31 April does not exist, for men or women.
        assert_eq!(code("1702063104900001"), "nik_date");
        assert_eq!(code("1702067104900001"), "nik_date");
    }

    #[test]
    fn leap_days() {
        // 29 Feb 2000 and 1996 exist; 29 Feb 1999 does not (and 2099 would be the future).
        assert_eq!(
            parse("1702062902000001", TODAY).unwrap().birth_date,
            date!(2000 - 02 - 29)
        );
        assert_eq!(
            parse("1702066902960001", TODAY).unwrap().birth_date,
            date!(1996 - 02 - 29)
        );
        assert_eq!(code("1702062902990001"), "nik_date");
        assert_eq!(code("1702066902990001"), "nik_date");
        // 1900 was not a leap year, so 29-02-00 can only be 2000.
        assert_eq!(
            parse("1702062902000002", TODAY).unwrap().birth_date.year(),
            2000
        );
    }

    #[test]
    fn century_never_in_future() {
        // 23-11-26 is today: 2026 (a baby, warned); 24-11-26 would be tomorrow: 1926.
        let today = parse("1702062311260001", TODAY).unwrap();
        assert_eq!(today.birth_date.year(), 2026);
        assert!(today.warnings.iter().any(|w| w.code == "nik_under_17"));
        assert_eq!(
            parse("1702062411260001", TODAY).unwrap().birth_date.year(),
            1926
        );
        assert_eq!(
            parse("1702060101500001", TODAY).unwrap().birth_date.year(),
            1950
        );
        assert_eq!(
            parse("1702060101090001", TODAY).unwrap().birth_date.year(),
            2009
        );
    }

    #[test]
    fn under_17_is_a_warning_not_an_error() {
        assert_eq!(warn_codes("1702060101120001"), ["nik_under_17"]);
        // 17th birthday today: no warning; tomorrow: warning.
        assert!(warn_codes("1702062311090001").is_empty());
        assert_eq!(warn_codes("1702062411090001"), ["nik_under_17"]);
    }

    #[test]
    fn lengths_letters_serial() {
        assert_eq!(code(""), "nik_missing");
        assert_eq!(code("170205170890000"), "nik_length");
        assert_eq!(code("17020617089000011"), "nik_length");
        assert_eq!(code("17020517089O0001"), "nik_not_digits");
        assert_eq!(code("1702061708900000"), "nik_serial");
        assert_eq!(code("1702061713900001"), "nik_month");
        assert_eq!(code("1702061700900001"), "nik_month");
        // Spaces in a typed NIK are ignored.
        assert!(parse("1702 0517 0890 0001", TODAY).is_ok());
    }

    #[test]
    fn unknown_province_is_an_error() {
        assert_eq!(code("9902051708900001"), "nik_province");
        assert_eq!(code("0002051708900001"), "nik_province");
    }

    #[test]
    fn split_and_unknown_regions_are_warnings() {
        // 9101 Merauke became 9301 in the 2022 Papua split.
        assert_eq!(warn_codes("9101011708900001"), ["nik_regency_legacy"]);
        let w = &parse("9101011708900001", TODAY).unwrap().warnings[0];
        assert!(w.message.contains("9301"));
        // Unknown regency and unknown kecamatan within a known province.
        assert_eq!(warn_codes("1769011708900001"), ["nik_regency_unknown"]);
        assert_eq!(warn_codes("1702011708900001"), ["nik_district_unknown"]);
    }

    #[test]
    fn codes_that_cannot_exist_are_errors() {
        assert_eq!(code("1700001708900001"), "nik_regency");
        assert_eq!(code("1700061708900001"), "nik_regency");
        assert_eq!(code("1702001708900001"), "nik_district");
        let p = parse("1702001708900001", TODAY).unwrap_err();
        assert!(p.message.contains("00"), "{}", p.message);
    }
}
