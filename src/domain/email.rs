//! E-mail is optional; when given it gets a basic shape check (one `@`, a dotted domain, no spaces).
use super::problem::Problem;
use crate::tr;

pub const EXAMPLE: &str = "nama@contoh.id";

pub fn normalize(input: &str) -> Result<Option<String>, Problem> {
    let e = input.trim();
    if e.is_empty() {
        return Ok(None);
    }
    let bad = || {
        Problem::error(
            "email",
            "email_format",
            tr!(
                "alamat e-mail '{e}' tidak benar (boleh dikosongkan)",
                "e-mail address '{e}' is not valid (it may be left empty)"
            ),
            EXAMPLE,
        )
    };
    let Some((local, domain)) = e.split_once('@') else {
        return Err(bad());
    };
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    if local.is_empty() || !domain_ok || e.len() > 254 || e.chars().any(|c| c.is_whitespace()) {
        return Err(bad());
    }
    Ok(Some(format!("{local}@{}", domain.to_lowercase())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_and_basic_shape() {
        assert_eq!(normalize("").unwrap(), None);
        assert_eq!(
            normalize(" Budi@Contoh.ID ").unwrap().unwrap(),
            "Budi@contoh.id"
        );
        for bad in [
            "budi",
            "budi@",
            "@contoh.id",
            "budi@contoh",
            "bu di@contoh.id",
            "a@b..id",
        ] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }
}
