//! Command-line mistakes (a missing argument, a wrong value, an unknown option or command) in
//! Bahasa Indonesia: clap, the argument parser, speaks English only. `--lang en` (or
//! `IKD_FIELD_LANG=en`) keeps clap's own English; help and version pass through as they are.
use crate::error::AppError;
use clap::error::{ContextKind, ContextValue, ErrorKind};

fn values(e: &clap::Error, kind: ContextKind) -> Vec<String> {
    match e.get(kind) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(v)) => v.clone(),
        Some(ContextValue::StyledStr(s)) => vec![s.to_string()],
        Some(ContextValue::StyledStrs(v)) => v.iter().map(|s| s.to_string()).collect(),
        _ => vec![],
    }
}

/// The mistake in Indonesian, or `None` for what clap should print itself (help, version, and
/// kinds this does not know).
pub fn indonesian(e: &clap::Error) -> Option<String> {
    let arg = values(e, ContextKind::InvalidArg).join(", ");
    let suggest = |kind| {
        let s = values(e, kind);
        if s.is_empty() {
            String::new()
        } else {
            format!(" Maksudnya: {}?", s.join(" / "))
        }
    };
    let message = match e.kind() {
        ErrorKind::MissingRequiredArgument => {
            format!("Isian wajib belum diberikan: {arg}.")
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let value = values(e, ContextKind::InvalidValue).join(" ");
            let valid = values(e, ContextKind::ValidValue);
            // Our own value checks explain themselves (in the user's language): keep that.
            let rendered = e.to_string();
            let first = rendered.lines().next().unwrap_or("");
            let own = first
                .split_once("': ")
                .map(|(_, why)| format!(" {why}"))
                .unwrap_or_default();
            let choices = if valid.is_empty() {
                String::new()
            } else {
                format!(" Pilihan: {}.", valid.join(", "))
            };
            format!("Nilai '{value}' tidak bisa dipakai untuk {arg}.{own}{choices}")
        }
        ErrorKind::UnknownArgument => format!(
            "Opsi '{arg}' tidak dikenal.{}",
            suggest(ContextKind::SuggestedArg)
        ),
        ErrorKind::InvalidSubcommand => format!(
            "Perintah '{}' tidak dikenal.{}",
            values(e, ContextKind::InvalidSubcommand).join(" "),
            suggest(ContextKind::SuggestedSubcommand)
        ),
        ErrorKind::ArgumentConflict => {
            let other = values(e, ContextKind::PriorArg).join(", ");
            format!("{arg} tidak bisa dipakai bersama {other}.")
        }
        ErrorKind::TooManyValues => {
            format!("{arg} diberikan terlalu banyak.")
        }
        _ => return None,
    };
    Some(message)
}

/// Whether the user asked for English (`--lang en`, `--lang=en`, or `IKD_FIELD_LANG=en`).
fn english(args: &[String]) -> bool {
    let flag = args
        .windows(2)
        .any(|w| w[0] == "--lang" && w[1].eq_ignore_ascii_case("en"))
        || args.iter().any(|a| a.eq_ignore_ascii_case("--lang=en"));
    flag || std::env::var("IKD_FIELD_LANG").is_ok_and(|l| l.eq_ignore_ascii_case("en"))
}

/// Prints a command-line mistake (in Indonesian unless English was asked for; as JSON with
/// `--json`) and exits 2. Help and version are printed by clap as usual.
pub fn exit(e: clap::Error) -> ! {
    let args: Vec<String> = std::env::args().collect();
    let message = match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        _ if english(&args) => None,
        _ => indonesian(&e),
    };
    let json = args.iter().any(|a| a == "--json");
    let Some(message) = message else {
        if json {
            let err = AppError::usage(e.kind().to_string());
            crate::output::json(&crate::output::Failed {
                ok: false,
                error: &err,
            });
            std::process::exit(2);
        }
        e.exit()
    };
    // "Usage: ikd-field void <ID>" → the command, for the hint.
    let usage = values(&e, ContextKind::Usage).join(" ");
    let command: Vec<&str> = usage
        .split_whitespace()
        .skip_while(|w| *w != "ikd-field")
        .take_while(|w| !w.starts_with(['<', '[', '-']))
        .collect();
    let command = if command.is_empty() {
        "ikd-field".to_string()
    } else {
        command.join(" ")
    };
    let shape = usage.trim().trim_start_matches("Usage:").trim().to_string();
    let err = AppError::usage(if shape.is_empty() {
        message
    } else {
        format!("{message}\nCara pakai: {shape}")
    })
    .hint(format!("Lihat pilihannya: {command} --help"));
    if json {
        crate::output::json(&crate::output::Failed {
            ok: false,
            error: &err,
        });
    } else {
        eprintln!("Gagal: {err}");
    }
    std::process::exit(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct T {
        #[arg(long)]
        reason: String,
        #[arg(long, value_parser = ["58", "80"])]
        paper: Option<String>,
    }

    #[test]
    fn mistakes_are_said_in_indonesian() {
        let e = T::try_parse_from(["t"]).unwrap_err();
        assert!(
            indonesian(&e)
                .unwrap()
                .contains("Isian wajib belum diberikan: --reason")
        );
        let e = T::try_parse_from(["t", "--reason", "x", "--paper", "57"]).unwrap_err();
        let m = indonesian(&e).unwrap();
        assert!(m.contains("'57'") && m.contains("Pilihan: 58, 80"), "{m}");
        let e = T::try_parse_from(["t", "--reason", "x", "--reasn"]).unwrap_err();
        assert!(
            indonesian(&e)
                .unwrap()
                .contains("Opsi '--reasn' tidak dikenal")
        );
        assert!(!english(&["ikd-field".into(), "status".into()]));
        assert!(english(&["ikd-field".into(), "--lang".into(), "en".into()]));
    }
}
