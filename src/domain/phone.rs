//! Indonesian mobile numbers: `+62 8[1-35-9]` followed by 7–10 digits (`08…`, 10–13 digits in all).
//! Accepts `0812…`, `62812…`, `+62 812-…` with spaces, dashes, dots or brackets; stores E.164.
use super::problem::Problem;
use crate::tr;

pub const EXAMPLE: &str = "0812-3456-7890";

fn err(code: &'static str, message: String) -> Problem {
    Problem::error("phone", code, message, EXAMPLE)
}

/// Returns the number in E.164 (`+6281234567890`).
pub fn normalize(input: &str) -> Result<String, Problem> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(err(
            "phone_missing",
            tr!("nomor HP belum diisi", "phone number is missing"),
        ));
    }
    let mut digits = String::new();
    for (i, c) in trimmed.chars().enumerate() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => {}
            ' ' | '-' | '.' | '(' | ')' => {}
            other => {
                return Err(err(
                    "phone_chars",
                    tr!(
                        "nomor HP hanya boleh berisi angka (dan + di depan), ada '{other}'",
                        "a phone number may contain only digits (and a leading +), found '{other}'"
                    ),
                ));
            }
        }
    }
    let national = if let Some(rest) = digits.strip_prefix("62") {
        rest
    } else if let Some(rest) = digits.strip_prefix('0') {
        rest
    } else {
        return Err(err(
            "phone_prefix",
            tr!(
                "nomor HP harus diawali 08, 628 atau +628",
                "a phone number must start with 08, 628 or +628"
            ),
        ));
    };
    let national = national.strip_prefix('0').unwrap_or(national); // "+62 0812…" is common too
    if !national.starts_with('8') {
        return Err(err(
            "phone_landline",
            tr!(
                "ini bukan nomor HP (nomor HP diawali 08); isi nomor HP warga",
                "this is not a mobile number (mobiles start with 08); give the citizen's mobile number"
            ),
        ));
    }
    if national.as_bytes().get(1) == Some(&b'4') {
        return Err(err(
            "phone_not_mobile",
            tr!(
                "nomor 084x bukan nomor HP; isi nomor HP warga",
                "084x numbers are not mobile numbers; give the citizen's mobile number"
            ),
        ));
    }
    let n = national.len() + 1; // as written with the leading 0
    if !(10..=13).contains(&n) || national.as_bytes().get(1) == Some(&b'0') {
        return Err(err(
            "phone_length",
            tr!(
                "nomor HP harus 10–13 digit diawali 08, yang diisi {n} digit",
                "a mobile number has 10–13 digits starting with 08, this one has {n}"
            ),
        ));
    }
    Ok(format!("+62{national}"))
}

/// `+6281234567890` → `0812-3456-7890`, as people write it.
pub fn display(e164: &str) -> String {
    let Some(national) = e164.strip_prefix("+62") else {
        return e164.to_string();
    };
    let local = format!("0{national}");
    let mut out = String::new();
    for (i, c) in local.chars().enumerate() {
        if i == 4 || i == 8 {
            out.push('-');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_common_form() {
        for input in [
            "081234567890",
            "0812-3456-7890",
            "0812 3456 7890",
            "62812 3456 7890",
            "6281234567890",
            "+6281234567890",
            "+62 812-3456-7890",
            "+62 (0)812 3456 7890",
            "(0812) 3456.7890",
        ] {
            assert_eq!(normalize(input).unwrap(), "+6281234567890", "{input}");
        }
    }

    #[test]
    fn operator_prefixes_and_lengths() {
        for ok in [
            "0811234567",
            "0831234567890",
            "0851234567",
            "0895123456789",
            "0877-1234-567",
        ] {
            assert!(normalize(ok).is_ok(), "{ok}");
        }
        assert_eq!(normalize("081234567").unwrap_err().code, "phone_length"); // 9 digits
        assert_eq!(
            normalize("08123456789012").unwrap_err().code,
            "phone_length"
        ); // 14
        assert_eq!(normalize("0801234567").unwrap_err().code, "phone_length"); // 080 is not an operator
    }

    #[test]
    fn landlines_and_084_refused() {
        assert_eq!(normalize("021-5551234").unwrap_err().code, "phone_landline");
        assert_eq!(
            normalize("+62 21 5551234").unwrap_err().code,
            "phone_landline"
        );
        assert_eq!(
            normalize("0841234567").unwrap_err().code,
            "phone_not_mobile"
        );
        assert_eq!(normalize("1234567890").unwrap_err().code, "phone_prefix");
        assert_eq!(normalize("0812abc4567").unwrap_err().code, "phone_chars");
        assert_eq!(normalize("  ").unwrap_err().code, "phone_missing");
    }

    #[test]
    fn display_form() {
        assert_eq!(display("+6281234567890"), "0812-3456-7890");
    }
}
