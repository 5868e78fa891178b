//! `verify` (check a slip from its `IKD1:` text or a photo or scan, offline, against a device's
//! key or the district's key list) and `device` (this laptop's id and public key, for that list).
use super::Ctx;
use crate::domain::region;
use crate::error::AppError;
use crate::field::datadir::DataDir;
use crate::slip::check::Verdict;
use crate::slip::keys::KeyRing;
use crate::slip::scan::{self, ScanError};
use crate::slip::{self};
use crate::{output, timefmt, tr};
use serde::Serialize;
use serde_json::json;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Teks IKD1:…, foto/pindaian slip (PNG/JPEG), atau "-" / IKD1: text, a PNG/JPEG photo or scan of a slip, or "-" for standard input
    #[arg(value_name = "INPUT")]
    pub input: String,
    /// Kunci publik perangkat (64 hex) / the device's public key (64 hex digits)
    #[arg(long, value_name = "PUBKEY_HEX", conflicts_with = "keys")]
    pub key: Option<String>,
    /// Berkas kunci dari Dinas: "DEVICE_ID PUBLIC_KEY" per baris / keys file from the district
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,
}

/// The payload texts given: literal `IKD1:` text, standard input, or a file (text or image).
fn gather_payloads(input: &str) -> Result<scan::Scan, AppError> {
    if input.starts_with(slip::payload::PREFIX) {
        return Ok(scan::Scan {
            payloads: vec![input.to_string()],
            unread: 0,
        });
    }
    let bytes = if input == "-" {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .map_err(|e| AppError::other(e.to_string()))?;
        b
    } else {
        let path = Path::new(input);
        if !path.is_file() {
            return Err(AppError::usage(tr!(
                "'{}' bukan teks IKD1:… dan bukan berkas yang ada.",
                "'{}' is neither IKD1:… text nor an existing file.",
                input.chars().take(60).collect::<String>()
            ))
            .hint(tr!(
                "Berikan teks yang diawali IKD1: (dalam tanda kutip), atau foto/pindaian slip (PNG/JPEG).",
                "Give the text starting with IKD1: (in quotes), or a photo/scan of the slip (PNG/JPEG)."
            )));
        }
        std::fs::read(path).map_err(|e| {
            AppError::other(tr!(
                "Berkas {input} tidak bisa dibaca: {e}",
                "Cannot read {input}: {e}"
            ))
        })?
    };
    scan::scan(&bytes).map_err(|e| match e {
        ScanError::NotImage(why) => AppError::other(tr!(
            "Gambar tidak bisa dibaca ({why}).",
            "Cannot read the image ({why})."
        ))
        .hint(if cfg!(feature = "photos") {
            tr!(
                "Pakai foto atau pindaian PNG/JPEG, atau teks IKD1:… dari slip.",
                "Use a PNG/JPEG photo or scan, or the slip's IKD1:… text."
            )
        } else {
            tr!(
                "Berikan teks IKD1:… dari slip (mis. dari aplikasi pemindai QR di ponsel).",
                "Give the slip's IKD1:… text (e.g. from a QR scanner app on a phone)."
            )
        }),
        ScanError::TooLarge => AppError::other(tr!(
            "Gambar terlalu besar untuk dibaca (paling besar {} × {} titik).",
            "The image is too large to read (at most {} × {} pixels).",
            scan::MAX_SIDE,
            scan::MAX_SIDE
        ))
        .hint(tr!(
            "Perkecil gambarnya atau foto hanya bagian QR-nya, lalu coba lagi.",
            "Make the image smaller, or photograph only the QR code, and try again."
        )),
        ScanError::NoQr => AppError::other(tr!(
            "Tidak ada kode QR yang terbaca pada gambar.",
            "No readable QR code in the image."
        ))
        .hint(tr!(
            "Foto ulang: slip datar, cukup cahaya, seluruh QR masuk bingkai dan tajam.",
            "Take the photo again: slip flat, good light, the whole QR in frame and in focus."
        )),
        ScanError::Unreadable(n) => AppError::other(tr!(
            "Ada {n} kode QR pada gambar, tetapi tidak ada yang terbaca.",
            "There are {n} QR codes in the image, but none could be read."
        ))
        .hint(unread_hint()),
        ScanError::NotIkd(texts) => AppError::invalid(tr!(
            "Kode QR pada gambar bukan slip IKD ({}).",
            "The QR code in the image is not an IKD slip ({}).",
            texts.join(", ")
        )),
    })
}

fn unread_hint() -> String {
    tr!(
        "Pindai atau foto ulang: slip datar, cukup cahaya, setiap QR utuh dan tajam (pindaian 300 dpi).",
        "Scan or photograph again: slips flat, good light, every QR whole and sharp (scan at 300 dpi)."
    )
}

/// The keys to check against: `--key`, `--keys FILE`, or this device's own key.
fn keyring(ctx: &Ctx, a: &VerifyArgs) -> Result<KeyRing, AppError> {
    if let Some(k) = &a.key {
        let public = crate::crypto::parse_public_hex(k).ok_or_else(|| {
            AppError::usage(tr!(
                "--key harus kunci publik 64 digit hex.",
                "--key must be a public key of 64 hex digits."
            ))
            .hint(tr!(
                "Kunci perangkat terlihat dengan: ikd-field device",
                "A device's key is shown by: ikd-field device"
            ))
        })?;
        return Ok(KeyRing::single(public));
    }
    if let Some(path) = &a.keys {
        let text = std::fs::read_to_string(path).map_err(|e| {
            AppError::usage(tr!(
                "Berkas kunci {} tidak bisa dibaca: {e}",
                "Cannot read the keys file {}: {e}",
                path.display()
            ))
        })?;
        return KeyRing::parse(&text).map_err(|e| {
            AppError::usage(tr!(
                "Berkas kunci {} salah: {e}",
                "Bad keys file {}: {e}",
                path.display()
            ))
        });
    }
    if !DataDir::db_path(&ctx.data_dir).exists() {
        return Err(AppError::usage(tr!(
            "Tidak ada kunci untuk memeriksa: perangkat ini belum disiapkan.",
            "No key to check with: this device has no data directory."
        ))
        .hint(tr!(
            "Berikan --key KUNCI_PUBLIK atau --keys BERKAS (daftar kunci perangkat dari Dinas).",
            "Give --key PUBLIC_KEY or --keys FILE (the district's list of device keys)."
        )));
    }
    Ok(KeyRing::single(ctx.open()?.key.public()))
}

/// Checks one payload against the keys (`slip::check`, as the dashboard's slip check does);
/// the JSON of what it says, or why it fails.
fn check(ring: &KeyRing, text: &str) -> Result<SlipFacts, AppError> {
    let facts = |f: slip::check::Facts| SlipFacts {
        facts: f,
        voided: None,
    };
    match slip::check::check(ring, text) {
        Verdict::Genuine(f) => Ok(facts(f)),
        Verdict::Damaged(why) => Err(AppError::invalid(tr!(
            "Slip TIDAK SAH: isi QR rusak atau telah diubah ({why}).",
            "Slip NOT VALID: the QR content is damaged or was altered ({why})."
        ))),
        Verdict::UnknownDevice(f) => {
            let device = f.device_id.clone();
            let (msg, hint) = match ring.only() {
                Some((id, _)) => (
                    tr!(
                        "Kunci salah: slip ini ditandatangani perangkat {device}, kunci yang dipakai milik perangkat {id}.",
                        "Wrong key: this slip was signed by device {device}; the key given belongs to device {id}."
                    ),
                    tr!(
                        "Periksa dengan kunci perangkat {device} (--key) atau daftar kunci Dinas (--keys).",
                        "Check with device {device}'s key (--key) or the district's key list (--keys)."
                    ),
                ),
                None => (
                    tr!(
                        "Perangkat {device} tidak ada di daftar kunci; keaslian slip tidak bisa dipastikan.",
                        "Device {device} is not in the keys file; the slip cannot be verified."
                    ),
                    tr!(
                        "Minta daftar kunci perangkat terbaru dari Dinas.",
                        "Ask the district for the latest list of device keys."
                    ),
                ),
            };
            Err(AppError::other(msg)
                .hint(hint)
                .details(json!({ "slip": facts(f) })))
        }
        Verdict::WrongKey {
            facts: f,
            key_device,
        } => Err(AppError::other(tr!(
            "Kunci salah: slip dari perangkat {}, kunci milik {key_device}.",
            "Wrong key: the slip is from device {}, the key is {key_device}'s.",
            f.device_id
        ))),
        Verdict::Forged(f) => Err(AppError::invalid(tr!(
            "Slip TIDAK SAH: tanda tangan tidak cocok — isi slip telah diubah atau dipalsukan.",
            "Slip NOT VALID: the signature does not match — the slip was altered or forged."
        ))
        .hint(tr!(
            "Jangan terima slip ini; cocokkan dengan catatan di kantor Dinas (id {}).",
            "Do not accept this slip; check it against the district's records (id {}).",
            f.record_id
        ))
        .details(json!({ "slip": facts(f) }))),
    }
}

fn describe(ctx: &Ctx, f: &SlipFacts) {
    let village = f.facts.village.clone();
    let place = region::village(&village)
        .map(|_| region::place(&village))
        .unwrap_or_else(|| region::dotted(&village));
    match &f.voided {
        Some(v) => println!(
            "{}",
            tr!(
                "✗ SLIP DIBATALKAN — tanda tangannya asli, tetapi catatan #{} sudah dibatalkan di laptop ini ({}). Aktivasi ini tidak berlaku; ambil kembali slipnya.",
                "✗ SLIP VOIDED — the signature is genuine, but record #{} was voided on this laptop ({}). This activation does not stand; take the slip back.",
                v.seq,
                v.reason
            )
        ),
        None => println!(
            "{}",
            tr!(
                "✓ SLIP SAH — tanda tangan perangkat {} cocok.",
                "✓ VALID SLIP — signed by device {}.",
                f.facts.device_id
            )
        ),
    }
    let rows = [
        (tr!("Nama", "Name"), f.facts.name.clone()),
        ("NIK".to_string(), f.facts.nik_masked.clone()),
        (tr!("Desa", "Village"), place),
        (
            tr!("Waktu", "Time"),
            timefmt::local_display(&f.facts.recorded_at, ctx.offset()),
        ),
        (
            tr!("Catatan", "Record"),
            // This laptop's own record by its number; anyone else's by the id on the slip.
            match &f.voided {
                Some(v) => format!("#{}", v.seq),
                None => f.facts.record_id.clone(),
            },
        ),
    ];
    for (k, v) in rows {
        println!("  {k:<8} {v}");
    }
}

pub fn verify(ctx: &Ctx, a: VerifyArgs) -> Result<(), AppError> {
    let found = gather_payloads(&a.input)?;
    let ring = keyring(ctx, &a)?;
    let mut good = Vec::new();
    for t in &found.payloads {
        let mut facts = check(&ring, t)?;
        facts.voided = voided_here(ctx, &facts.facts.record_id);
        good.push(facts);
    }
    let (n, unread) = (good.len(), found.unread);
    if unread > 0 {
        // Some slips are valid, but a QR-like region could not be read: a sheet must not pass
        // with slips missing.
        if !ctx.json {
            for f in &good {
                describe(ctx, f);
            }
        }
        return Err(AppError::other(tr!(
            "{n} slip terbaca dan sah, tetapi {unread} kode QR lain pada gambar TIDAK terbaca — slip itu belum diperiksa.",
            "{n} slips read and valid, but {unread} other QR codes in the image could NOT be read — those slips are not checked."
        ))
        .hint(unread_hint())
        .details(json!(Verified {
            valid: false,
            found: n,
            checked: n,
            unread,
            slips: &good,
        })));
    }
    if ctx.json {
        output::ok(&Verified {
            valid: true,
            found: n,
            checked: n,
            unread: 0,
            slips: &good,
        });
    } else {
        for f in &good {
            describe(ctx, f);
        }
        if n > 1 {
            println!(
                "{}",
                tr!(
                    "{n} slip ditemukan pada gambar; semuanya diperiksa dan sah.",
                    "{n} slips found in the image; all checked and valid."
                )
            );
        }
    }
    Ok(())
}

pub fn device(ctx: &Ctx) -> Result<(), AppError> {
    let dd = ctx.open()?;
    let id = &dd.identity;
    if ctx.json {
        output::ok(&DeviceAnswer { device: id });
        return Ok(());
    }
    let rows = [
        (tr!("Perangkat", "Device"), id.device_id.clone()),
        (tr!("Kunci publik", "Public key"), id.public_key.clone()),
        (tr!("Petugas", "Officer"), id.officer.clone()),
        (tr!("Tim", "Team"), id.team.clone()),
    ];
    for (k, v) in rows {
        println!("{k:<13} {v}");
    }
    println!(
        "{}\n  {} {}",
        tr!(
            "Baris untuk daftar kunci (verify --keys):",
            "Line for a keys file (verify --keys):"
        ),
        id.device_id,
        id.public_key
    );
    Ok(())
}

/// What a valid slip says (the `--json` answer lists them; an error's details carry one).
#[derive(Debug, Clone, Serialize)]
pub struct SlipFacts {
    #[serde(flatten)]
    pub facts: slip::check::Facts,
    /// This laptop's own knowledge that the record was voided: the void's number and reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voided: Option<Voided>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Voided {
    pub seq: i64,
    pub void_seq: Option<i64>,
    pub reason: String,
}

/// When this laptop holds the slip's record and it was voided since (a slip taken back, or one
/// that should have been): the void. Nothing when the laptop knows nothing of it.
fn voided_here(ctx: &Ctx, record_id: &str) -> Option<Voided> {
    if !crate::field::datadir::DataDir::db_path(&ctx.data_dir).exists() {
        return None;
    }
    let dd = ctx.open().ok()?;
    let s = dd.store.find(record_id).ok()?;
    let by = s.voided_by.as_deref()?;
    let void = dd.store.find(by).ok();
    Some(Voided {
        seq: s.record.seq,
        void_seq: void.as_ref().map(|v| v.record.seq),
        reason: void.and_then(|v| v.record.reason).unwrap_or_default(),
    })
}

/// `verify --json`: how many QR codes were found, checked and left unread.
#[derive(Serialize)]
struct Verified<'a> {
    valid: bool,
    found: usize,
    checked: usize,
    unread: usize,
    slips: &'a [SlipFacts],
}

/// `device --json`.
#[derive(Serialize)]
struct DeviceAnswer<'a> {
    device: &'a crate::field::store::Identity,
}
