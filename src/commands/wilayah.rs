//! `ikd-field wilayah CODE` and `ikd-field wilayah cari TEXT`: the embedded kode wilayah tables.
use super::Ctx;
use crate::domain::region::{self, Level};
use crate::error::AppError;
use crate::output::{self, Table};
use crate::tr;
use serde_json::json;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WilayahArgs {
    #[command(subcommand)]
    pub command: Option<WilayahCommand>,
    /// Kode wilayah (2, 4, 6 atau 10 digit; titik boleh) / region code
    pub code: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
pub enum WilayahCommand {
    /// Cari wilayah menurut nama / find regions by name
    Cari {
        /// Nama atau sebagian nama / (part of) a name
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
        /// Paling banyak / at most N results
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

fn level_label(l: Level) -> String {
    match l {
        Level::Provinsi => tr!("provinsi", "province"),
        Level::Kabupaten => tr!("kabupaten/kota", "regency/city"),
        Level::Kecamatan => tr!("kecamatan", "district"),
        Level::Desa => tr!("desa/kelurahan", "village"),
    }
}

fn path_names(code: &str) -> String {
    region::path(code)
        .iter()
        .rev()
        .skip(1)
        .map(|r| r.name.clone())
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run(ctx: &Ctx, a: WilayahArgs) -> Result<(), AppError> {
    match (a.command, a.code) {
        (Some(WilayahCommand::Cari { text, limit }), _) => search(ctx, &text.join(" "), limit),
        (None, Some(code)) => show(ctx, &code),
        (None, None) => show(ctx, ""),
    }
}

fn search(ctx: &Ctx, text: &str, limit: usize) -> Result<(), AppError> {
    let hits = region::search(text, limit);
    if ctx.json {
        output::ok(&Found {
            query: text,
            results: hits
                .iter()
                .map(|h| Hit {
                    code: &h.region.code,
                    level: h.level,
                    name: &h.region.name,
                    within: path_names(&h.region.code),
                })
                .collect(),
        });
        return Ok(());
    }
    if hits.is_empty() {
        println!(
            "{}",
            tr!(
                "Tidak ada wilayah bernama '{text}'. Coba sebagian nama saja.",
                "No region named '{text}'. Try part of the name."
            )
        );
        return Ok(());
    }
    let mut t = Table::new([
        tr!("KODE", "CODE"),
        tr!("TINGKAT", "LEVEL"),
        tr!("NAMA", "NAME"),
        tr!("DI", "IN"),
    ]);
    for h in &hits {
        t.row([
            h.region.code.clone(),
            level_label(h.level),
            h.region.name.clone(),
            path_names(&h.region.code),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

fn show(ctx: &Ctx, input: &str) -> Result<(), AppError> {
    let code = region::normalize_code(input);
    let region = if code.is_empty() {
        None
    } else {
        region::lookup(&code)
    };
    if !code.is_empty() && region.is_none() {
        let legacy = region::legacy_regency(&code).or_else(|| region::legacy_district(&code));
        let msg = match legacy {
            Some(l) => tr!(
                "Kode {code} ({}) sudah tidak dipakai sejak pemekaran; kode sekarang: {}",
                "Code {code} ({}) was retired by a split; its current code is {}",
                l.name,
                l.successor
            ),
            None => tr!(
                "Kode wilayah {code} tidak ada. Cari dengan: ikd-field wilayah cari NAMA",
                "Region code {code} does not exist. Search with: ikd-field wilayah cari NAME"
            ),
        };
        return Err(
            AppError::invalid(msg).details(json!({"successor": legacy.map(|l| &l.successor)}))
        );
    }
    let children = region::children(&code);
    if ctx.json {
        fn named(r: &region::Region) -> Named<'_> {
            Named {
                code: &r.code,
                name: &r.name,
            }
        }
        output::ok(&Shown {
            code: &code,
            name: region.map(|r| r.name.as_str()),
            level: Level::of_code(&code),
            path: region::path(&code).into_iter().map(named).collect(),
            children: children.iter().map(named).collect(),
        });
        return Ok(());
    }
    if let Some(r) = region {
        println!(
            "{} {} — {}",
            region::dotted(&r.code),
            r.name,
            level_label(Level::of_code(&code).unwrap())
        );
        let up = path_names(&code);
        if !up.is_empty() {
            println!("  {}", up);
        }
    }
    if !children.is_empty() {
        let mut t = Table::new([tr!("KODE", "CODE"), tr!("NAMA", "NAME")]);
        for c in children {
            t.row([c.code.clone(), c.name.clone()]);
        }
        print!("{}", t.render());
    }
    Ok(())
}

// The `--json` answers of these commands (each printed as `{"ok": true, …}`).

#[derive(serde::Serialize)]
struct Hit<'a> {
    code: &'a str,
    level: Level,
    name: &'a str,
    /// The names of the regions it lies in.
    #[serde(rename = "in")]
    within: String,
}

#[derive(serde::Serialize)]
struct Found<'a> {
    query: &'a str,
    results: Vec<Hit<'a>>,
}

#[derive(serde::Serialize)]
struct Named<'a> {
    code: &'a str,
    name: &'a str,
}

#[derive(serde::Serialize)]
struct Shown<'a> {
    code: &'a str,
    name: Option<&'a str>,
    level: Option<Level>,
    path: Vec<Named<'a>>,
    children: Vec<Named<'a>>,
}
