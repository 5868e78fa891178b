//! `server devices` (the enrolled laptops; `--keys-file` for checking slips at the office) and
//! `server revoke`.
use super::Ctx;
use crate::error::AppError;
use crate::output::{self, Table};
use crate::server;
use crate::{timefmt, tr};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct RevokeArgs {
    /// ID perangkat / device id (see: ikd-field server devices)
    pub device: String,
}

#[derive(clap::Args, Debug)]
pub struct DevicesArgs {
    /// Tulis berkas kunci perangkat untuk `ikd-field verify --keys` (memeriksa slip di kantor) /
    /// write the devices' keys file that `ikd-field verify --keys` reads (checking slips at the
    /// office)
    #[arg(long, value_name = "FILE")]
    pub keys_file: Option<PathBuf>,
}

/// The keys file `verify --keys` reads: one `DEVICE_ID PUBLIC_KEY` line a device with a key
/// here (revoked ones too: their slips were signed while they were enrolled), each after a
/// comment naming its officer and team.
fn write_keys_file(
    list: &[server::devices::Device],
    path: &std::path::Path,
) -> Result<usize, AppError> {
    let mut text =
        String::from("# ikd-field: kunci perangkat Dinas untuk `ikd-field verify --keys BERKAS`\n");
    let mut n = 0;
    for d in list {
        let Some(key) = &d.public_key else { continue };
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if crate::domain::validate::is_hidden_control(c) {
                        '?'
                    } else {
                        c
                    }
                })
                .collect()
        };
        text.push_str(&format!(
            "# {} / {}\n{} {key}\n",
            clean(&d.officer),
            clean(&d.team),
            d.id
        ));
        n += 1;
    }
    std::fs::write(path, text).map_err(|e| {
        AppError::other(tr!(
            "Berkas kunci {} tidak bisa ditulis: {e}",
            "Cannot write the keys file {}: {e}",
            path.display()
        ))
    })?;
    Ok(n)
}

pub fn devices(ctx: &Ctx, db: Option<PathBuf>, a: DevicesArgs) -> Result<(), AppError> {
    let (_, store) = ctx.existing_server_db(db)?;
    let list = store.devices()?;
    if let Some(path) = &a.keys_file {
        let n = write_keys_file(&list, path)?;
        if ctx.json {
            output::ok(&serde_json::json!({ "keys_file": path, "devices": n }));
        } else {
            println!(
                "{}",
                tr!(
                    "✓ Kunci {n} perangkat ditulis ke {}. Periksa slip dengan: ikd-field verify --keys {} FOTO-ATAU-TEKS",
                    "✓ Keys of {n} devices written to {}. Check slips with: ikd-field verify --keys {} PHOTO-OR-TEXT",
                    path.display(),
                    path.display()
                )
            );
        }
        return Ok(());
    }
    if ctx.json {
        output::ok(&server::admin::DevicesBody { devices: list });
        return Ok(());
    }
    if list.is_empty() {
        println!(
            "{}",
            tr!(
                "Belum ada perangkat terdaftar. Buat token: ikd-field server token --team NAMA",
                "No devices enrolled yet. Make a token: ikd-field server token --team NAME"
            )
        );
        return Ok(());
    }
    let off = ctx.offset();
    let mut t = Table::new([
        "ID".to_string(),
        tr!("PETUGAS", "OFFICER"),
        tr!("TIM", "TEAM"),
        tr!("TERDAFTAR", "ENROLLED"),
        tr!("SINKRON TERAKHIR", "LAST SYNC"),
        tr!("CATATAN", "RECORDS"),
        tr!("LEWAT", "VIA"),
        "STATUS".to_string(),
    ]);
    for d in list {
        // Which relay (district server) brought a device known only through it.
        let via = match (&d.relayed_by, &d.relayed_by_name) {
            (Some(id), Some(name)) => format!("{name} ({id})"),
            (Some(id), None) => id.clone(),
            (None, _) if d.relay => tr!("(relay)", "(relay)"),
            (None, _) => "-".into(),
        };
        t.row([
            d.id,
            d.officer,
            d.team,
            timefmt::local_display(&d.enrolled_at, off),
            d.last_sync_at
                .map(|s| timefmt::local_display(&s, off))
                .unwrap_or_else(|| "-".into()),
            d.records.to_string(),
            via,
            match d.revoked_at {
                Some(_) => tr!("dicabut", "revoked"),
                None => tr!("aktif", "active"),
            },
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

pub fn revoke(ctx: &Ctx, db: Option<PathBuf>, a: RevokeArgs) -> Result<(), AppError> {
    let (_, store) = ctx.existing_server_db(db)?;
    let id = a.device.trim();
    if store.device(id)?.is_none() {
        return Err(AppError::invalid(tr!(
            "Perangkat {id} tidak dikenal.",
            "Unknown device {id}."
        ))
        .hint(tr!(
            "Lihat daftarnya: ikd-field server devices",
            "See the list: ikd-field server devices"
        )));
    }
    let changed = store.revoke(id, &timefmt::now_utc())?;
    if ctx.json {
        output::ok(&Revoked {
            device: id,
            revoked: true,
            already: !changed,
        });
    } else if changed {
        println!(
            "{}",
            tr!(
                "Perangkat {id} dicabut: kiriman berikutnya ditolak (403).",
                "Device {id} revoked: its next batches are refused (403)."
            )
        );
    } else {
        println!(
            "{}",
            tr!(
                "Perangkat {id} sudah dicabut.",
                "Device {id} was already revoked."
            )
        );
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct Revoked<'a> {
    device: &'a str,
    revoked: bool,
    already: bool,
}
