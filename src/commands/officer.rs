//! The officer's own settings on the command line: `petugas` (the officer and team new records
//! carry) and `pin` (lock the laptop's keys under the officer's PIN, or change it: issue #17,
//! item 11, `keylock`; the desk asks for the PIN at its start, commands ask on a terminal).
use super::Ctx;
use crate::error::AppError;
use crate::field::datadir::KEY_FILE;
use crate::field::sealing::HOLDING_FILE;
use crate::{keylock, output, tr};

use std::io::BufRead;

#[derive(clap::Args, Debug)]
pub struct PinArgs {
    /// Baca PIN baru dari masukan standar (satu baris), untuk skrip / read the new PIN from
    /// standard input (one line), for scripts
    #[arg(long)]
    pub stdin: bool,
}

fn weak() -> AppError {
    AppError::invalid(tr!(
        "PIN paling sedikit {} karakter dan tidak semuanya sama (mis. bukan 000000); tidak ada yang diubah.",
        "A PIN has at least {} characters, not all the same (e.g. not 000000); nothing was changed.",
        keylock::MIN_PIN
    ))
}

/// Locks the device key (and the holding key, if there is one) under a new PIN, after opening
/// them with the current one. Also used by the desk's first run.
pub fn lock_with(ctx: &Ctx, new: &str) -> Result<(), AppError> {
    if !keylock::acceptable(new) {
        return Err(weak());
    }
    let dd = ctx.open()?;
    let paths: Vec<_> = [KEY_FILE, HOLDING_FILE]
        .iter()
        .map(|f| dd.path.join(f))
        .filter(|p| p.exists())
        .collect();
    let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    crate::crypto::relock_field_secrets(&refs, new).map_err(|e| {
        AppError::other(tr!(
            "Kunci laptop tidak bisa dikunci dengan PIN ({e}); PIN lama tetap berlaku.",
            "The laptop's keys could not be locked with the PIN ({e}); the old PIN still opens them."
        ))
    })?;
    keylock::set_pin(Some(new));
    dd.store.audit("pin", None, "keys locked under a new PIN")?;
    Ok(())
}

pub fn pin(ctx: &Ctx, a: PinArgs) -> Result<(), AppError> {
    // Opened first: a locked laptop asks for the current PIN before a new one.
    ctx.open()?;
    let new = if a.stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).ok();
        line.trim_end_matches(['\r', '\n']).to_string()
    } else if ctx.can_ask() {
        let first = rpassword::prompt_password(tr!("PIN baru: ", "New PIN: ")).unwrap_or_default();
        if !keylock::acceptable(&first) {
            return Err(weak());
        }
        let again = rpassword::prompt_password(tr!("Ulangi PIN baru: ", "New PIN again: "))
            .unwrap_or_default();
        if again != first {
            return Err(AppError::invalid(tr!(
                "Kedua PIN tidak sama; tidak ada yang diubah.",
                "The two PINs differ; nothing was changed."
            )));
        }
        first
    } else {
        return Err(AppError::usage(tr!(
            "PIN baru diketik di terminal, atau diberikan dengan --stdin.",
            "Type the new PIN on a terminal, or give it with --stdin."
        )));
    };
    lock_with(ctx, &new)?;
    if ctx.json {
        output::ok(&serde_json::json!({ "locked": true }));
    } else {
        println!(
            "{}",
            tr!(
                "✓ Kunci laptop ini sekarang dibuka dengan PIN. Ingat PIN-nya: tanpa PIN, catatan yang belum terkirim tidak bisa dikirim. Kirim semua catatan sebelum menyerahkan laptop ke petugas lain.",
                "✓ This laptop's keys now open with the PIN. Remember it: without the PIN, records not yet sent cannot be sent. Send every record before handing the laptop to another officer."
            )
        );
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct OfficerArgs {
    /// Nama petugas / the officer's name
    pub name: String,
    /// Nama tim (tetap bila tidak diisi) / team name (kept when not given)
    #[arg(long, visible_alias = "tim")]
    pub team: Option<String>,
}

/// `petugas "NAMA"`: the officer (and team) new records carry; records already made keep theirs.
pub fn officer(ctx: &Ctx, a: OfficerArgs) -> Result<(), AppError> {
    let dd = ctx.open()?;
    let team = a.team.unwrap_or_else(|| dd.identity.team.clone());
    let (name, team) =
        crate::domain::validate::officer_and_team(&a.name, &team).map_err(|problems| {
            AppError::invalid(tr!(
                "Nama ini tidak bisa dipakai; tidak ada yang diubah.",
                "This name cannot be used; nothing was changed."
            ))
            .problems(problems)
        })?;
    dd.store.set_officer_team(&name, &team)?;
    if ctx.json {
        output::ok(&serde_json::json!({"officer": name, "team": team}));
    } else {
        println!(
            "{}",
            tr!(
                "✓ Catatan berikutnya atas nama petugas {name} (tim {team}).",
                "✓ The next records are in the name of {name} (team {team})."
            )
        );
    }
    Ok(())
}
