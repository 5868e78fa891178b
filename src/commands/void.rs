//! `void`: a new record that cancels an activation, with its reason (asked on a terminal from
//! the desk's short list, and confirmed with the citizen's name).
use super::Ctx;
use crate::domain::region;
use crate::error::{AppError, Kind};
use crate::field::records::Stored;
use crate::output;
use crate::tr;
use serde::Serialize;

#[derive(clap::Args, Debug)]
pub struct VoidArgs {
    /// Nomor urut (#) atau id catatan yang dibatalkan / record to void
    pub id: String,
    /// Alasan pembatalan (di terminal boleh kosong: ditanyakan) / why (asked on a terminal)
    #[arg(long)]
    pub reason: Option<String>,
}

/// The usual reasons, offered by number on a terminal (the desk offers the same).
const REASONS: [&str; 3] = ["salah ketik NIK", "salah desa", "dobel"];

/// On a terminal: the reason from the short list (or typed), then a yes/no naming the citizen.
/// `None` when the officer says no.
fn ask_reason(target: &Stored) -> Option<String> {
    let r = &target.record;
    eprintln!(
        "{}",
        tr!(
            "Batalkan catatan #{} — {} (NIK {}, {})?",
            "Void record #{} — {} (NIK {}, {})?",
            r.seq,
            r.name,
            r.nik,
            region::place(&r.village)
        )
    );
    for (i, why) in REASONS.iter().enumerate() {
        eprintln!("  {}. {why}", i + 1);
    }
    eprintln!("  4. {}", tr!("lainnya (tulis sendiri)", "other (type it)"));
    let reason = loop {
        let pick = super::record::ask(&tr!("Alasan (1-4)", "Reason (1-4)"))?;
        match pick.trim() {
            "1" | "2" | "3" => break REASONS[pick.trim().parse::<usize>().ok()? - 1].to_string(),
            "4" => {
                let own = super::record::ask(&tr!("Alasannya", "The reason"))?;
                if !own.trim().is_empty() {
                    break own.trim().to_string();
                }
            }
            other if other.chars().count() > 3 => break other.to_string(),
            _ => {}
        }
    };
    let yes = super::record::ask(&tr!(
        "Yakin batalkan #{} {}? Ambil kembali slipnya dari warga. (y/t)",
        "Really void #{} {}? Take its slip back from the citizen. (y/n)",
        r.seq,
        r.name
    ))?;
    matches!(yes.trim().to_lowercase().as_str(), "y" | "ya" | "yes").then_some(reason)
}

pub fn void(ctx: &Ctx, a: VoidArgs) -> Result<(), AppError> {
    let mut dd = ctx.open()?;
    let target = dd.store.find(&a.id)?;
    if target.record.kind != crate::domain::Kind::Activation {
        return Err(AppError::invalid(tr!(
            "Catatan #{} adalah pembatalan; yang bisa dibatalkan hanya aktivasi.",
            "Record #{} is a void; only activations can be voided.",
            target.record.seq
        )));
    }
    if let Some(by) = &target.voided_by {
        let by = dd
            .store
            .find(by)
            .map(|v| format!("#{}", v.record.seq))
            .unwrap_or_else(|_| tr!("catatan lain", "another record"));
        return Err(AppError::new(
            Kind::Duplicate,
            tr!(
                "Catatan #{} sudah dibatalkan oleh {by}.",
                "Record #{} was already voided by {by}.",
                target.record.seq
            ),
        ));
    }
    let interactive = !ctx.json && std::io::IsTerminal::is_terminal(&std::io::stdin());
    let reason = match a.reason.as_deref().map(str::trim) {
        Some(r) if !r.is_empty() => r.to_string(),
        _ if interactive => match ask_reason(&target) {
            Some(r) => r,
            None => {
                println!(
                    "{}",
                    tr!(
                        "Tidak jadi; tidak ada yang diubah.",
                        "Not voided; nothing changed."
                    )
                );
                return Ok(());
            }
        },
        _ => {
            return Err(AppError::invalid(tr!(
                "Alasan pembatalan wajib diisi (--reason \"...\").",
                "A reason is required (--reason \"...\")."
            )));
        }
    };
    let v = dd.store.record_void(&target, &reason, &dd.identity)?;
    if ctx.json {
        output::ok(&OneRecord {
            record: &Stored::new_pending(
                v,
                crate::field::sealing::new_records_sealed_to(&dd.store)?,
            ),
        });
    } else {
        println!(
            "{}",
            tr!(
                "✓ Catatan #{} ({}) dibatalkan oleh catatan baru #{}. Catatan lama tidak diubah; ambil kembali slipnya.",
                "✓ Record #{} ({}) voided by the new record #{}. The old record is unchanged; take its slip back.",
                target.record.seq,
                target.record.name,
                v.seq
            )
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct OneRecord<'a> {
    record: &'a Stored,
}
