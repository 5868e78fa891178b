//! `ikd-field demo`: the main job end to end on the embedded default, in a temporary directory.
//! It grows with each capability: today it sets up a field kit and records synthetic citizens.
use super::Ctx;
use crate::domain::validate;
use crate::error::AppError;
use crate::field::datadir::DataDir;
use crate::output;
use crate::{synth, timefmt, tr};
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Jumlah warga sintetis / number of synthetic citizens
    #[arg(long, default_value_t = 36)]
    pub citizens: usize,
    /// Kode kabupaten untuk data sintetis / regency for the synthetic data (Rejang Lebong)
    #[arg(long, default_value = "1702")]
    pub regency: String,
    /// Simpan hasil di folder ini (bukan folder sementara) / keep the output here
    #[arg(long)]
    pub keep: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, a: DemoArgs) -> Result<(), AppError> {
    let tmp;
    let root = match &a.keep {
        Some(p) => p.clone(),
        None => {
            tmp = tempfile::Builder::new()
                .prefix("ikd-demo-")
                .tempdir()
                .map_err(|e| AppError::other(e.to_string()))?;
            tmp.path().to_path_buf()
        }
    };
    let say = |s: String| {
        if !ctx.json {
            println!("{s}");
        }
    };
    let field_dir = root.join("field");
    say(tr!(
        "1. Menyiapkan perangkat lapangan di {}",
        "1. Setting up a field kit in {}",
        field_dir.display()
    ));
    let mut dd = DataDir::init(&field_dir, "PETUGAS DEMO", "TIM KELILING 1")?;
    say(tr!(
        "   perangkat {}",
        "   device {}",
        dd.identity.device_id
    ));

    say(tr!(
        "2. Mencatat {} warga sintetis",
        "2. Recording {} synthetic citizens",
        a.citizens
    ));
    let today = timefmt::today(ctx.offset());
    let mut recorded = Vec::new();
    for input in synth::citizens(42, &a.regency, a.citizens) {
        let v =
            validate::activation(&input, today).map_err(|p| AppError::invalid(format!("{p:?}")))?;
        recorded.push(dd.store.record_activation(&v, &dd.identity)?);
    }
    let first = &recorded[0];
    say(tr!(
        "   {} tercatat, mis. #{} {} di {}",
        "   {} recorded, e.g. #{} {} in {}",
        recorded.len(),
        first.seq,
        first.name,
        super::field::place(&first.village)
    ));
    // A duplicate is refused with the earlier record's id.
    let again = synth::citizens(42, &a.regency, 1).remove(0);
    let v = validate::activation(&again, today).map_err(|p| AppError::invalid(format!("{p:?}")))?;
    let dup = dd.store.record_activation(&v, &dd.identity).unwrap_err();
    say(tr!(
        "3. NIK yang sama dicatat lagi → ditolak: {}",
        "3. The same NIK again → refused: {}",
        dup.message
    ));

    let counts = dd.store.counts_by_status()?;
    let integrity = dd.store.integrity_check()?;
    if ctx.json {
        output::json(&json!({
            "ok": true,
            "dir": root,
            "device": dd.identity.device_id,
            "recorded": recorded.len(),
            "by_status": counts.iter().map(|(s, n)| (s.as_str(), n)).collect::<std::collections::BTreeMap<_, _>>(),
            "integrity": integrity,
        }));
    } else {
        say(tr!(
            "4. Database: integrity_check = {integrity}",
            "4. Database: integrity_check = {integrity}"
        ));
        if a.keep.is_some() {
            say(tr!(
                "Selesai. Lihat datanya: ikd-field --data-dir {} list",
                "Done. See the data: ikd-field --data-dir {} list",
                field_dir.display()
            ));
        } else {
            say(tr!(
                "Selesai (folder sementara dihapus; pakai --keep DIR untuk menyimpannya).",
                "Done (temporary folder removed; use --keep DIR to keep it)."
            ));
        }
    }
    Ok(())
}
