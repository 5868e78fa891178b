//! Checks every field of a new activation at once and gathers all problems, so the officer can
//! fix everything in one go. This is the one place a record is validated before it is stored.
use super::problem::Problem;
use super::{email, nik, phone, region};
use crate::tr;
use time::Date;

/// What the officer typed.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub nik: String,
    pub name: String,
    pub phone: String,
    pub email: String,
    pub village: String,
}

/// A checked activation, with normalised values and the warnings to show and keep.
#[derive(Debug, Clone)]
pub struct Valid {
    pub nik: nik::Nik,
    pub name: String,
    pub phone: String,
    pub email: Option<String>,
    pub village: String,
    pub warnings: Vec<Problem>,
}

pub const NAME_EXAMPLE: &str = "SITI AMINAH";
pub const VILLAGE_EXAMPLE: &str = "1702061004";

/// Names as printed on a KTP: upper-case Latin letters (A–Z and the accented capitals of
/// Latin-1, which every slip format prints: the embedded font, PDF WinAnsi and the printer's
/// code page 1252), single spaces and `.,'-`. What is the same name is normalised (NFC, so `E` +
/// combining accent is `É`; typographic apostrophes and hyphens become `'` and `-`); what a KTP
/// cannot hold is refused with the reason, so no slip ever prints `?`.
pub fn name(input: &str) -> Result<String, Problem> {
    use unicode_normalization::UnicodeNormalization;
    let typed: String = input.nfc().map(same_mark).collect();
    let n = typed
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase();
    if n.is_empty() {
        return Err(Problem::error(
            "name",
            "name_missing",
            tr!("nama belum diisi", "name is missing"),
            NAME_EXAMPLE,
        ));
    }
    if let Some(bad) = n.chars().find(|c| !ktp_name_char(*c)) {
        if !bad.is_alphabetic() && !is_combining(bad) {
            return Err(Problem::error(
                "name",
                "name_chars",
                tr!(
                    "nama hanya boleh berisi huruf, spasi dan tanda . , ' -; ada '{bad}'",
                    "a name may contain only letters, spaces and . , ' -; found '{bad}'"
                ),
                NAME_EXAMPLE,
            ));
        }
        // A letter a KTP does not print (Ş, Arabic, CJK…): suggest the KTP spelling when the
        // letter is a Latin letter with a mark the KTP drops.
        let plain = without_marks(&n);
        let (message, example) = if plain.chars().all(ktp_name_char) {
            (
                tr!(
                    "huruf '{bad}' tidak dipakai di KTP; tulis nama persis seperti di KTP (tanpa tanda pada huruf itu)",
                    "the letter '{bad}' is not used on a KTP; type the name exactly as on the KTP (without the mark on that letter)"
                ),
                plain,
            )
        } else {
            (
                tr!(
                    "huruf '{bad}' tidak ada di KTP: nama di KTP ditulis dengan huruf Latin (A–Z); salin nama persis seperti di KTP",
                    "the letter '{bad}' is not used on a KTP: names on a KTP are in Latin letters (A–Z); copy the name exactly as on the KTP"
                ),
                NAME_EXAMPLE.to_string(),
            )
        };
        return Err(Problem::error("name", "name_letter", message, &example));
    }
    let len = n.chars().count();
    if len > 100 {
        return Err(Problem::error(
            "name",
            "name_length",
            tr!(
                "nama terlalu panjang ({len} huruf, paling banyak 100)",
                "name is too long ({len} characters, at most 100)"
            ),
            NAME_EXAMPLE,
        ));
    }
    Ok(n)
}

/// A character a name on a KTP (and so on a slip) can hold, after upper-casing.
pub fn ktp_name_char(c: char) -> bool {
    matches!(c, 'A'..='Z' | 'À'..='Ö' | 'Ø'..='Ý' | ' ' | '.' | ',' | '\'' | '-')
}

/// Marks that are the same mark as one a KTP uses: apostrophes and hyphens as typed by phones
/// and word processors.
fn same_mark(c: char) -> char {
    match c {
        '\u{2019}' | '\u{2018}' | '\u{02BC}' | '\u{2032}' | '`' | '\u{00B4}' => '\'',
        '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2212}' => '-',
        c => c,
    }
}

fn is_combining(c: char) -> bool {
    unicode_normalization::char::is_combining_mark(c)
}

/// The name with the marks dropped from the letters a KTP does not use (`ŞÜKRÜ` → `SÜKRÜ`).
fn without_marks(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let mut out = String::new();
    for c in name.chars() {
        if ktp_name_char(c) {
            out.push(c);
        } else {
            out.extend(c.to_string().nfd().filter(|m| !is_combining(*m)));
        }
    }
    out
}

/// The longest officer or team name the district server stores.
pub const MAX_LABEL: usize = 100;

/// True for characters that must never reach a terminal or a page as they are: control
/// characters (escape sequences start with one) and the bidirectional controls that reorder what
/// follows them (a right-to-left override shows "1 MIT" for "TIM 1").
pub fn is_hidden_control(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// An officer's or team's name as stored with every record: trimmed, at most [`MAX_LABEL`]
/// characters, no control or bidirectional characters. The laptop checks it at `init` (a record
/// made under a name the server refuses could never be delivered); the server at enrolment.
/// `field` is `officer` or `team`.
pub fn label(field: &'static str, input: &str) -> Result<String, Problem> {
    let s = input.trim();
    let example = if field == "officer" {
        "BUDI SANTOSO"
    } else {
        "TIM KELILING 1"
    };
    if s.chars().count() > MAX_LABEL {
        return Err(Problem::error(
            field,
            "label_too_long",
            tr!(
                "paling banyak {MAX_LABEL} huruf",
                "at most {MAX_LABEL} characters"
            ),
            example,
        ));
    }
    if s.chars().any(is_hidden_control) {
        return Err(Problem::error(
            field,
            "label_control",
            tr!(
                "berisi karakter tersembunyi (kontrol atau arah teks); ketik ulang dengan huruf biasa",
                "holds hidden characters (control or text direction); type it again in plain letters"
            ),
            example,
        ));
    }
    Ok(s.to_string())
}

/// A desa/kelurahan code that exists (dots allowed: `17.02.06.1004`).
pub fn village(input: &str) -> Result<String, Problem> {
    let code = region::normalize_code(input);
    let err = |code_: &'static str, message: String| {
        Problem::error("village", code_, message, VILLAGE_EXAMPLE)
    };
    if code.is_empty() {
        return Err(err(
            "village_missing",
            tr!(
                "kode desa/kelurahan belum diisi; cari dengan: ikd-field wilayah cari NAMA",
                "village code is missing; find it with: ikd-field wilayah cari NAME"
            ),
        ));
    }
    if code.len() != 10 || !code.chars().all(|c| c.is_ascii_digit()) {
        return Err(err(
            "village_format",
            tr!(
                "kode desa/kelurahan harus 10 digit; '{input}' bukan kode — cari dengan: ikd-field wilayah cari NAMA",
                "a village code has 10 digits; '{input}' is not one — find it with: ikd-field wilayah cari NAME"
            ),
        ));
    }
    if region::village(&code).is_none() {
        return Err(err(
            "village_unknown",
            tr!(
                "kode desa/kelurahan {code} tidak ada di tabel wilayah; cari dengan: ikd-field wilayah cari NAMA",
                "village code {code} is not in the region table; find it with: ikd-field wilayah cari NAME"
            ),
        ));
    }
    Ok(code)
}

/// An officer and a team as the server will take them (trimmed): the officer's name required,
/// each [`label`]; every problem at once.
pub fn officer_and_team(officer: &str, team: &str) -> Result<(String, String), Vec<Problem>> {
    let o = label("officer", officer);
    let t = label("team", team);
    let mut problems: Vec<Problem> = [o.clone().err(), t.clone().err()]
        .into_iter()
        .flatten()
        .collect();
    if officer.trim().is_empty() {
        problems.push(Problem::error(
            "officer",
            "officer_missing",
            tr!("nama petugas belum diisi", "the officer's name is missing"),
            "RATNA DEWI",
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok((
        o.unwrap_or_default().trim().to_string(),
        t.unwrap_or_default().trim().to_string(),
    ))
}

/// Validates a whole activation; `today` is the local date (century and age of the NIK).
pub fn activation(input: &Input, today: Date) -> Result<Valid, Vec<Problem>> {
    let nik = nik::parse(&input.nik, today);
    let name = name(&input.name);
    let phone = phone::normalize(&input.phone);
    let email = email::normalize(&input.email);
    let village = village(&input.village);
    match (nik, name, phone, email, village) {
        (Ok(nik), Ok(name), Ok(phone), Ok(email), Ok(village)) => {
            let mut warnings = nik.warnings.clone();
            if !village.starts_with(&nik.district) {
                let home = region::district(&nik.district)
                    .map(|d| d.name.clone())
                    .unwrap_or_else(|| nik.district.clone());
                warnings.push(Problem::warning(
                    "village",
                    "village_outside_nik",
                    tr!(
                        "desa ini di luar kecamatan asal NIK ({home}); boleh, warga bisa sudah pindah",
                        "this village is outside the NIK's kecamatan of origin ({home}); allowed, people move"
                    ),
                ));
            }
            Ok(Valid {
                nik,
                name,
                phone,
                email,
                village,
                warnings,
            })
        }
        (nik, name, phone, email, village) => Err([
            nik.err(),
            name.err(),
            phone.err(),
            email.err(),
            village.err(),
        ]
        .into_iter()
        .flatten()
        .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn input(nik: &str, village: &str) -> Input {
        Input {
            nik: nik.into(),
            name: "  siti   aminah ".into(),
            phone: "0812 3456 7890".into(),
            email: String::new(),
            village: village.into(),
        }
    }

    #[test]
    fn valid_activation_is_normalised() {
        let v = activation(
            &input("1702064107950003", "17.02.06.1004"),
            date!(2026 - 11 - 23),
        )
        .unwrap();
        assert_eq!(v.name, "SITI AMINAH");
        assert_eq!(v.phone, "+6281234567890");
        assert_eq!(v.village, "1702061004");
        assert!(v.warnings.is_empty());
    }

    #[test]
    fn village_outside_nik_is_noted() {
        let v = activation(
            &input("1702064107950003", "2171011002"),
            date!(2026 - 11 - 23),
        )
        .unwrap();
        assert_eq!(v.warnings[0].code, "village_outside_nik");
    }

    #[test]
    fn all_problems_at_once() {
        let mut i = input("123", "PEMPING");
        i.phone = "021 555 1234".into();
        i.name = "B4DI".into();
        let errs = activation(&i, date!(2026 - 11 - 23)).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|p| p.field).collect();
        assert_eq!(fields, ["nik", "name", "phone", "village"]);
        assert!(errs.iter().all(|p| p.example.is_some()));
    }

    #[test]
    fn village_codes() {
        assert_eq!(village("2171011002").unwrap(), "2171011002");
        assert_eq!(village("2171019999").unwrap_err().code, "village_unknown");
        assert_eq!(village("217101").unwrap_err().code, "village_format");
        assert_eq!(village("").unwrap_err().code, "village_missing");
    }

    #[test]
    fn names() {
        assert_eq!(name("Ni Luh Putu Ayu").unwrap(), "NI LUH PUTU AYU");
        assert_eq!(name("M. Yusuf-Al'Anshari").unwrap(), "M. YUSUF-AL'ANSHARI");
        assert_eq!(name("").unwrap_err().code, "name_missing");
        assert_eq!(name(&"A".repeat(101)).unwrap_err().code, "name_length");
    }

    /// The same name typed differently is one name; what a KTP cannot hold is refused with the
    /// reason (and, for a Latin letter with a foreign mark, the KTP spelling as the example).
    #[test]
    fn names_are_normalised_or_refused() {
        let ok = [
            // NFC and NFD of the same name.
            ("Jos\u{E9}", "JOSÉ"),
            ("Jose\u{301}", "JOSÉ"),
            ("E\u{301}MILE", "ÉMILE"),
            // Typographic apostrophes and hyphens.
            ("Nur\u{2019}aini", "NUR'AINI"),
            ("NUR\u{2018}AINI", "NUR'AINI"),
            ("nur'aini", "NUR'AINI"),
            ("Al\u{2010}Fatih", "AL-FATIH"),
            ("  siti \t aminah ", "SITI AMINAH"),
        ];
        for (typed, want) in ok {
            assert_eq!(name(typed).unwrap(), want, "{typed:?}");
        }
        let refused = [
            (
                "\u{15E}\u{DC}KR\u{DC}",
                "name_letter",
                Some("S\u{DC}KR\u{DC}"),
            ),
            ("S\u{327}UKRU", "name_letter", Some("SUKRU")),
            ("\u{645}\u{62D}\u{645}\u{62F}", "name_letter", None),
            ("\u{738B}\u{5C0F}\u{660E}", "name_letter", None),
            ("DEWI \u{10C}", "name_letter", Some("DEWI C")),
            ("Q\u{301}", "name_letter", Some("Q")),
            ("B4DI", "name_chars", None),
            ("BUDI \u{2603}", "name_chars", None),
        ];
        for (typed, code, example) in refused {
            let p = name(typed).unwrap_err();
            assert_eq!(p.code, code, "{typed:?}");
            if let Some(ex) = example {
                assert_eq!(p.example.as_deref(), Some(ex), "{typed:?}");
            }
            assert!(!p.message.contains('?'), "{}", p.message);
        }
        // Every character a name may hold is one the slip's font and code pages print.
        use ab_glyph::Font;
        let fonts = crate::slip::font::Fonts::get();
        for c in (' '..='\u{FF}').filter(|c| ktp_name_char(*c)) {
            assert_ne!(fonts.regular.font.glyph_id(c).0, 0, "{c}");
            assert_ne!(fonts.bold.font.glyph_id(c).0, 0, "{c}");
            assert_eq!(
                name(&c.to_string()).map(|_| ()).is_ok(),
                !matches!(c, ' '),
                "{c}"
            );
        }
    }
}
