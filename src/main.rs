//! ikd-field command line: argument parsing and dispatch only. The work is in `commands/`.
use clap::{Parser, Subcommand};
use ikd_field::commands::{self, Ctx, GlobalArgs};
use ikd_field::error::AppError;

#[derive(Parser)]
#[command(
    name = "ikd-field",
    version,
    about = "Pencatatan aktivasi IKD di lapangan dan server Dinas Dukcapil / IKD activation field kit and district server",
    after_help = "Data wilayah: idn-area-data oleh Fityan, ODbL 1.0 (Kepmendagri 300.2.2-2138/2025)."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    /// Tanpa perintah: buka desk petugas (seperti `desk`) / no command: open the officer's desk
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Siapkan folder data perangkat ini / set up this device's data directory
    #[command(visible_alias = "siapkan")]
    Init(commands::field::InitArgs),
    /// Buka desk petugas di browser (juga tanpa perintah) / open the officer's desk in the browser
    /// (also with no command)
    Desk(commands::desk::DeskArgs),
    /// Ganti nama petugas (dan tim) untuk catatan berikutnya / change the officer (and team) of
    /// the next records
    #[command(name = "petugas", visible_alias = "officer")]
    Officer(commands::officer::OfficerArgs),
    /// Kunci laptop dengan PIN petugas, atau ganti PIN / lock this laptop's keys with the
    /// officer's PIN, or change it
    Pin(commands::officer::PinArgs),
    /// Catat satu aktivasi IKD / record one IKD activation
    #[command(visible_alias = "catat")]
    Record(commands::record::RecordArgs),
    /// Daftar catatan / list records
    #[command(visible_alias = "daftar")]
    List(commands::field::ListArgs),
    /// Tampilkan satu catatan / show one record
    #[command(visible_alias = "lihat")]
    Show(commands::field::ShowArgs),
    /// Batalkan catatan (catatan baru yang membatalkan) / void a record (a new cancelling record)
    #[command(visible_alias = "batal")]
    Void(commands::void::VoidArgs),
    /// Ringkasan: jumlah per status, hari ini, per desa / summary counts
    #[command(visible_alias = "ringkasan")]
    Status,
    /// Ekspor semua catatan / export every record
    #[command(visible_alias = "ekspor")]
    Export(commands::field::ExportArgs),
    /// Hapus catatan yang sudah diterima server (masa simpan) / purge acknowledged records
    #[command(visible_alias = "bersihkan")]
    Purge(commands::field::PurgeArgs),
    /// Daftarkan perangkat ke server Dinas / enrol this device with the district server
    #[command(visible_alias = "daftarkan")]
    Enrol(commands::sync::EnrolArgs),
    /// Kirim catatan ke server Dinas / send pending records to the district server
    #[command(visible_alias = "kirim")]
    Sync(commands::sync::SyncArgs),
    /// Cetak (ulang) slip bukti aktivasi / print or reprint confirmation slips
    #[command(visible_alias = "cetak")]
    Slip(commands::slip::SlipArgs),
    /// Periksa keaslian slip (teks IKD1: atau foto) / verify a slip (IKD1: text or a photo)
    #[command(visible_alias = "periksa")]
    Verify(commands::verify::VerifyArgs),
    /// Id dan kunci publik perangkat ini / this device's id and public key
    #[command(visible_alias = "perangkat")]
    Device,
    /// Uji printer termal dan simpan jenis QR-nya / test the thermal printer and keep its kind of QR
    Printer(commands::printer::PrinterArgs),
    /// Cari kode wilayah / look up region codes
    Wilayah(commands::wilayah::WilayahArgs),
    /// Jalankan server Dinas / run the district server
    #[cfg(feature = "server")]
    Serve(commands::server::ServeArgs),
    /// Kelola server Dinas: token, perangkat, ekspor… / district server admin
    #[cfg(feature = "server")]
    Server(commands::server::ServerArgs),
    /// Demo lengkap di folder sementara / full demo in a temporary directory
    #[cfg(feature = "server")]
    Demo(commands::demo::DemoArgs),
}

fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|e| commands::usage::exit(e));
    let json = cli.global.json;
    // No command: a double-clicked ikd-field.exe opens the officer's desk.
    let double_clicked = cli.command.is_none();
    let command = cli
        .command
        .unwrap_or(Command::Desk(commands::desk::DeskArgs::default()));
    let result = Ctx::new(&cli.global).and_then(|ctx| match command {
        Command::Desk(a) => commands::desk::run(ctx, a),
        Command::Officer(a) => commands::officer::officer(&ctx, a),
        Command::Pin(a) => commands::officer::pin(&ctx, a),
        Command::Init(a) => commands::field::init(&ctx, a),
        Command::Record(a) => commands::record::record(&ctx, a),
        Command::List(a) => commands::field::list(&ctx, a),
        Command::Show(a) => commands::field::show(&ctx, a),
        Command::Void(a) => commands::void::void(&ctx, a),
        Command::Status => commands::status::status(&ctx),
        Command::Export(a) => commands::field::export(&ctx, a),
        Command::Purge(a) => commands::field::purge(&ctx, a),
        Command::Enrol(a) => commands::sync::enrol(&ctx, a),
        Command::Sync(a) => commands::sync::sync(&ctx, a),
        Command::Slip(a) => commands::slip::run(&ctx, a),
        Command::Verify(a) => commands::verify::verify(&ctx, a),
        Command::Device => commands::verify::device(&ctx),
        Command::Printer(a) => commands::printer::run(&ctx, a, cli.global.config.as_deref()),
        Command::Wilayah(a) => commands::wilayah::run(&ctx, a),
        #[cfg(feature = "server")]
        Command::Demo(a) => commands::demo::run(&ctx, a),
        #[cfg(feature = "server")]
        Command::Serve(a) => commands::server::serve(&ctx, a),
        #[cfg(feature = "server")]
        Command::Server(a) => commands::server::run(&ctx, a),
    });
    if let Err(e) = result {
        report(&e, json);
        commands::desk::hold_window_after_error(double_clicked);
        std::process::exit(e.exit_code());
    }
}

fn report(e: &AppError, json: bool) {
    if json {
        ikd_field::output::json(&ikd_field::output::Failed {
            ok: false,
            error: e,
        });
    } else {
        let label = if ikd_field::i18n::is_en() {
            "Error"
        } else {
            "Gagal"
        };
        eprintln!("{label}: {e}");
    }
}
