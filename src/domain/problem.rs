//! A problem with one input field: what is wrong, in the user's language, and a right example.
use serde::Serialize;

/// Errors refuse a record; warnings are shown and stored with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The field: `nik`, `phone`, `email`, `name`, `village`.
    pub field: &'static str,
    /// Stable machine code, e.g. `nik_length`, for scripts (`--json`).
    pub code: &'static str,
    /// What is wrong, in the user's language.
    pub message: String,
    /// An example of a right value (errors only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
}

impl Problem {
    pub fn error(field: &'static str, code: &'static str, message: String, example: &str) -> Self {
        Problem {
            field,
            code,
            message,
            example: Some(example.to_string()),
        }
    }
    pub fn warning(field: &'static str, code: &'static str, message: String) -> Self {
        Problem {
            field,
            code,
            message,
            example: None,
        }
    }
}

/// The field's name as the officer knows it.
pub fn field_label(field: &str) -> String {
    use crate::tr;
    match field {
        "nik" => "NIK".into(),
        "name" => tr!("Nama", "Name"),
        "phone" => tr!("Nomor HP", "Phone"),
        "email" => "E-mail".into(),
        "village" => tr!("Desa/kelurahan", "Village"),
        "officer" => tr!("Nama petugas", "Officer"),
        "team" => tr!("Tim", "Team"),
        other => other.into(),
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", field_label(self.field), self.message)?;
        if let Some(ex) = &self.example {
            let label = if crate::i18n::is_en() {
                "example"
            } else {
                "contoh"
            };
            write!(f, " ({label}: {ex})")?;
        }
        Ok(())
    }
}
