//! `config.toml`: every setting has a default, so the file is optional. Read from `--config FILE`,
//! else `IKD_FIELD_CONFIG`, else `config.toml` in the data directory when it exists. Unknown keys
//! are refused (a typo should not be silently ignored) and a broken file is reported with its line.
use crate::error::{AppError, Kind};
use crate::i18n::Lang;
use crate::tr;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Interface language: "id" (default) or "en".
    pub lang: Lang,
    /// Local time zone for display and "today": WIB, WITA, WIT or an offset like "+07:00".
    pub timezone: Timezone,
    pub field: FieldConfig,
    pub slip: SlipConfig,
    pub sync: SyncConfig,
    pub server: ServerConfig,
    pub forward: ForwardConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldConfig {
    /// Officer name used by `init` when `--officer` is not given.
    #[serde(deserialize_with = "text")]
    pub officer: Option<String>,
    /// Team name used by `init` when `--team` is not given.
    #[serde(deserialize_with = "text")]
    pub team: Option<String>,
    /// The district's sealing public key (hex), known before enrolment: records are sealed to
    /// it from the first instead of waiting under the holding key (unset = learn it at enrolment).
    #[serde(deserialize_with = "text")]
    pub district_seal_key: Option<String>,
    /// Days after the server's acknowledgement before a synced record is purged from the laptop.
    pub retention_days: u32,
    /// Purge (with `retention_days`) after every successful sync.
    pub purge_after_sync: bool,
}

impl Default for FieldConfig {
    fn default() -> Self {
        FieldConfig {
            officer: None,
            team: None,
            district_seal_key: None,
            retention_days: 7,
            purge_after_sync: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlipConfig {
    /// Format of `record --print`: png, svg, pdf, escpos or text.
    pub format: crate::slip::Format,
    /// Thermal paper width in mm: 58 or 80.
    pub paper: u32,
    /// Printer device for escpos output, e.g. "/dev/usb/lp0" (unset = write a file).
    #[serde(deserialize_with = "path")]
    pub printer: Option<PathBuf>,
    /// Directory for slip files, relative to the data directory.
    pub dir: PathBuf,
    /// Title printed at the top of the slip (e.g. the Dinas name).
    pub office: String,
    /// How ESC/POS output prints the QR: "native" (GS ( k) or "raster" (a bit image).
    pub escpos_qr: crate::slip::escpos::QrMode,
    /// ESC/POS characters per line: 0 = the paper's usual (32 on 58 mm, 48 on 80 mm), or 42 for
    /// 80 mm printers of the Epson TM-T88 kind.
    pub columns: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// District server URL; `init --server` stores the enrolled one, this overrides it.
    #[serde(deserialize_with = "text")]
    pub server: Option<String>,
    /// Records in the first batch of a sync (and in each batch of `sync --to-file`); later
    /// batches are sized to the link, up to `max_batch_size`.
    pub batch_size: usize,
    /// Most records a batch grows to on a slow link with a long round trip (never below
    /// `batch_size`; the server's own limit, stated in its answers, bounds it too).
    pub max_batch_size: usize,
    /// Seconds a read or write may make no progress before a request is abandoned (and retried).
    pub timeout_secs: u64,
    /// Seconds to connect (TCP and TLS) before an attempt is abandoned.
    pub connect_timeout_secs: u64,
    /// Seconds to wait for the server's answer once a request is sent.
    pub answer_timeout_secs: u64,
    /// Attempts per batch before `sync` gives up for now.
    pub max_attempts: u32,
    /// Seconds between connectivity checks for `sync --watch`.
    pub watch_interval_secs: u64,
    /// First wait before a retry, milliseconds; doubles per attempt (with jitter).
    pub retry_base_ms: u64,
    /// Longest wait between retries, seconds.
    pub retry_max_secs: u64,
    /// PEM certificates trusted for `https://` instead of the system's certificate store (the district's own
    /// CA or self-signed certificate), relative to the data directory; unset = the system's store.
    #[serde(deserialize_with = "path")]
    pub ca_file: Option<PathBuf>,
    /// Allow plain `http://` to a host that is not loopback (warned on each use).
    pub allow_plain_http: bool,
}

/// `[forward]`: a district server sending its records upward to a province server
/// (`server forward`, docs/protocol.md "Forwarding").
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardConfig {
    /// The province server's URL. When set, `serve` forwards continuously in a background
    /// thread (after `server forward enrol`); unset = no continuous forwarding.
    #[serde(deserialize_with = "text")]
    pub to: Option<String>,
    /// Seconds between forwarding passes of `serve` and `server forward --watch`.
    pub every_secs: u64,
    /// Records per forwarded batch (at most the province's `max_batch_records`).
    pub batch_records: usize,
    /// Seconds before a request to the province is abandoned (and retried).
    pub timeout_secs: u64,
    /// Attempts per batch in one pass before the pass stops for now.
    pub max_attempts: u32,
    /// First wait before a retry, milliseconds; doubles per attempt (with jitter).
    pub retry_base_ms: u64,
    /// Longest wait between retries, seconds.
    pub retry_max_secs: u64,
    /// PEM certificates trusted for the province's `https://` instead of the system's certificate store,
    /// relative to the data directory; unset = the system's store.
    #[serde(deserialize_with = "path")]
    pub ca_file: Option<PathBuf>,
    /// Allow plain `http://` to a province host that is not loopback (warned on each use).
    pub allow_plain_http: bool,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            to: None,
            every_secs: 60,
            batch_records: 1000,
            timeout_secs: 60,
            max_attempts: 6,
            retry_base_ms: 1000,
            retry_max_secs: 60,
            ca_file: None,
            allow_plain_http: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address `serve` listens on.
    pub listen: String,
    /// District database file, relative to the data directory (`--db` overrides it).
    pub db: PathBuf,
    /// PostgreSQL instead of the file `db`: `postgres://user:password@host:port/dbname`; unset =
    /// SQLite (`--db` overrides it).
    #[serde(deserialize_with = "text")]
    pub database_url: Option<String>,
    /// The server's key file, relative to the data directory; unset = `<db>.key` beside a SQLite
    /// database (required with PostgreSQL: every server process of one database uses the same).
    #[serde(deserialize_with = "path")]
    pub key_file: Option<PathBuf>,
    /// Largest accepted request body (compressed), bytes.
    pub max_body_bytes: u64,
    /// Largest accepted batch after decompression, bytes.
    pub max_decompressed_bytes: u64,
    /// Records per batch accepted at most.
    pub max_batch_records: usize,
    /// Hours an enrolment token stays valid.
    pub token_ttl_hours: u64,
    /// Worker threads answering requests.
    pub threads: usize,
    /// Target share of wajib KTP (%) where the targets CSV gives none.
    pub default_target_percent: f64,
    /// Bearer token for the dashboard's record-level views (names, NIKs) and `/v1/admin/`;
    /// unset = off.
    #[serde(deserialize_with = "text")]
    pub admin_token: Option<String>,
    /// TLS certificate chain (PEM) for `serve`, relative to the data directory; with `tls_key`.
    #[serde(deserialize_with = "path")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for `serve`, relative to the data directory.
    #[serde(deserialize_with = "path")]
    pub tls_key: Option<PathBuf>,
    /// Allow `serve` to listen without TLS on an address that is not loopback (behind a TLS
    /// reverse proxy); warned at start.
    pub allow_plain_http: bool,
    /// Batch and activated-list requests per device and minute (token bucket); 0 = no limit.
    pub device_requests_per_minute: u32,
    /// How many such requests a device may send at once before the per-minute rate applies.
    pub device_burst: u32,
    /// Refused enrolments and wrong admin tokens per client address and minute; 0 = no limit.
    pub address_requests_per_minute: u32,
    /// How many such failures an address may have at once.
    pub address_burst: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lang: Lang::Id,
            timezone: Timezone::default(),
            field: FieldConfig::default(),
            slip: SlipConfig::default(),
            sync: SyncConfig::default(),
            server: ServerConfig::default(),
            forward: ForwardConfig::default(),
        }
    }
}

impl Default for SlipConfig {
    fn default() -> Self {
        SlipConfig {
            format: crate::slip::Format::Png,
            paper: 58,
            printer: None,
            dir: "slips".into(),
            office: "DINAS KEPENDUDUKAN DAN PENCATATAN SIPIL".into(),
            escpos_qr: crate::slip::escpos::QrMode::Native,
            columns: 0,
        }
    }
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            server: None,
            batch_size: 500,
            max_batch_size: 2000,
            timeout_secs: 30,
            connect_timeout_secs: 5,
            answer_timeout_secs: 6,
            max_attempts: 4,
            watch_interval_secs: 60,
            retry_base_ms: 500,
            retry_max_secs: 60,
            ca_file: None,
            allow_plain_http: false,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            db: "district.db".into(),
            database_url: None,
            key_file: None,
            max_body_bytes: 8 * 1024 * 1024,
            max_decompressed_bytes: 64 * 1024 * 1024,
            max_batch_records: 5000,
            token_ttl_hours: 72,
            threads: 8,
            default_target_percent: 30.0,
            admin_token: None,
            tls_cert: None,
            tls_key: None,
            allow_plain_http: false,
            device_requests_per_minute: 600,
            device_burst: 600,
            address_requests_per_minute: 20,
            address_burst: 20,
        }
    }
}

impl Config {
    /// Loads `path`; a missing file is an error only when `required` (given explicitly).
    pub fn load(path: &Path, required: bool) -> Result<Config, AppError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Config::default());
            }
            Err(e) => {
                return Err(AppError::usage(tr!(
                    "berkas konfigurasi {} tidak bisa dibaca: {e}",
                    "cannot read the configuration file {}: {e}",
                    path.display()
                )));
            }
        };
        Config::parse(&text, path)
    }

    /// Parses TOML text; errors name the file, line and column and quote the line.
    pub fn parse(text: &str, path: &Path) -> Result<Config, AppError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let (line, col) = e
                .span()
                .map(|s| line_col(text, s.start))
                .unwrap_or((0, 0));
            let what = e.message().trim().to_string();
            let source_line = text.lines().nth(line.saturating_sub(1)).unwrap_or("").trim();
            AppError::new(
                Kind::Usage,
                tr!(
                    "config.toml rusak: {}, baris {line}, kolom {col}: {what}\n  {line} | {source_line}",
                    "broken config.toml: {}, line {line}, column {col}: {what}\n  {line} | {source_line}",
                    path.display()
                ),
            )
            .hint(tr!(
                "Perbaiki baris itu (lihat contoh config.toml di README), atau pindahkan berkasnya untuk memakai pengaturan bawaan.",
                "Fix that line (see the sample config.toml in the README), or move the file away to use the defaults."
            ))
            .details(serde_json::json!({"file": path.display().to_string(), "line": line, "column": col}))
        })?;
        cfg.check(path)?;
        Ok(cfg)
    }

    fn check(&self, path: &Path) -> Result<(), AppError> {
        let bad = |key: &str, msg: String| {
            Err(AppError::usage(tr!(
                "config.toml ({}): nilai {key} salah: {msg}",
                "config.toml ({}): bad value for {key}: {msg}",
                path.display()
            )))
        };
        if !matches!(self.slip.paper, 58 | 80) {
            return bad("slip.paper", "58 / 80".into());
        }
        if !matches!(
            (self.slip.paper, self.slip.columns),
            (_, 0) | (58, 32) | (80, 42 | 48)
        ) {
            return bad("slip.columns", "0; 32 (58 mm); 42 / 48 (80 mm)".into());
        }
        if self.sync.batch_size == 0 || self.sync.batch_size > 5000 {
            return bad("sync.batch_size", "1–5000".into());
        }
        if self.sync.max_batch_size == 0 || self.sync.max_batch_size > 5000 {
            return bad("sync.max_batch_size", "1–5000".into());
        }
        if crate::domain::target::percent_to_bp(self.server.default_target_percent).is_none() {
            return bad("server.default_target_percent", "0 < p ≤ 100".into());
        }
        if let Some(token) = &self.server.admin_token
            && (token.len() < 16 || token.chars().any(|c| c.is_whitespace()))
        {
            return bad(
                "server.admin_token",
                tr!(
                    "paling sedikit 16 karakter tanpa spasi (mis. dari: openssl rand -hex 16)",
                    "at least 16 characters, no spaces (e.g. from: openssl rand -hex 16)"
                ),
            );
        }
        if self.sync.timeout_secs == 0
            || self.sync.connect_timeout_secs == 0
            || self.sync.answer_timeout_secs == 0
            || self.sync.watch_interval_secs == 0
        {
            return bad(
                "sync.timeout_secs / connect_timeout_secs / answer_timeout_secs / watch_interval_secs",
                "≥ 1".into(),
            );
        }
        let srv = &self.server;
        if srv
            .database_url
            .as_deref()
            .is_some_and(|u| !is_postgres_url(u))
        {
            return bad(
                "server.database_url",
                "postgres://user:password@host:port/dbname".into(),
            );
        }
        if srv.threads == 0 || srv.threads > 256 {
            return bad("server.threads", "1–256".into());
        }
        if srv.max_body_bytes < 1024 || srv.max_decompressed_bytes < srv.max_body_bytes {
            return bad(
                "server.max_body_bytes / max_decompressed_bytes",
                "max_body_bytes ≥ 1024 and max_decompressed_bytes ≥ max_body_bytes".into(),
            );
        }
        if srv.max_batch_records == 0 {
            return bad("server.max_batch_records", "≥ 1".into());
        }
        if srv.tls_cert.is_some() != srv.tls_key.is_some() {
            return bad(
                "server.tls_cert / tls_key",
                tr!(
                    "isi keduanya (sertifikat dan kuncinya) atau kosongkan keduanya",
                    "set both (the certificate and its key) or neither"
                ),
            );
        }
        if (srv.device_requests_per_minute > 0 && srv.device_burst == 0)
            || (srv.address_requests_per_minute > 0 && srv.address_burst == 0)
        {
            return bad(
                "server.device_burst / address_burst",
                "≥ 1 (0 only with requests_per_minute = 0)".into(),
            );
        }
        Ok(())
    }

    pub fn offset(&self) -> time::UtcOffset {
        self.timezone.0
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// The local time zone: WIB (+07:00, the default), WITA, WIT or an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timezone(pub time::UtcOffset);

impl Default for Timezone {
    fn default() -> Self {
        Timezone(crate::timefmt::parse_offset("WIB").expect("WIB is +07:00"))
    }
}

impl<'de> Deserialize<'de> for Timezone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Timezone, D::Error> {
        let s = String::deserialize(d)?;
        crate::timefmt::parse_offset(&s)
            .map(Timezone)
            .ok_or_else(|| serde::de::Error::custom("timezone: WIB, WITA, WIT, +07:00"))
    }
}

/// A text setting where an empty (or blank) value means unset, trimmed.
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    let t = s.trim();
    Ok((!t.is_empty()).then(|| t.to_string()))
}

/// A path setting where an empty value means unset.
fn path<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    Ok(text(d)?.map(PathBuf::from))
}

/// Whether a database setting names a PostgreSQL server rather than a SQLite file.
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// Where the configuration comes from: `--config`, `IKD_FIELD_CONFIG`, or the data directory.
pub fn locate(explicit: Option<&Path>, data_dir: &Path) -> (PathBuf, bool) {
    if let Some(p) = explicit {
        return (p.to_path_buf(), true);
    }
    if let Some(p) = std::env::var_os("IKD_FIELD_CONFIG").filter(|v| !v.is_empty()) {
        return (PathBuf::from(p), true);
    }
    (data_dir.join("config.toml"), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that takes each request and never answers costs every attempt its whole answer
    /// timeout, plus the longest backoff between attempts: with the defaults (and the sample
    /// config.toml) that must stay within 30 s. Arithmetic on the settings, not a timing.
    #[test]
    fn the_default_sync_settings_give_up_on_a_dead_link_within_30_s() {
        let sample =
            Config::parse(include_str!("../config.toml"), Path::new("config.toml")).unwrap();
        for c in [SyncConfig::default(), sample.sync] {
            let n = c.max_attempts.max(1) as u64;
            let waits_ms: u64 = (1..n)
                .map(|a| (c.retry_base_ms << (a - 1)).min(c.retry_max_secs * 1000))
                .sum();
            let worst_ms = n * c.answer_timeout_secs * 1000 + waits_ms;
            assert!(worst_ms <= 30_000, "{worst_ms} ms: {c:?}");
            assert!(c.connect_timeout_secs <= 5, "{c:?}");
        }
    }

    #[test]
    fn the_sample_in_the_repo_parses() {
        let text = include_str!("../config.toml");
        let cfg = Config::parse(text, Path::new("config.toml")).unwrap();
        assert_eq!(cfg.sync.batch_size, 500);
        assert_eq!(
            cfg.sync.max_batch_size,
            SyncConfig::default().max_batch_size
        );
        for bad in ["max_batch_size = 0", "max_batch_size = 5001"] {
            let text = format!("[sync]\n{bad}\n");
            assert!(Config::parse(&text, Path::new("c.toml")).is_err(), "{bad}");
        }
        // Below batch_size is allowed: the first batch's size is then the most.
        let text = "[sync]\nbatch_size = 800\nmax_batch_size = 100\n";
        assert!(Config::parse(text, Path::new("c.toml")).is_ok());
        assert_eq!(cfg.slip.escpos_qr.name(), "native");
        assert_eq!(cfg.server.default_target_percent, 30.0);
        assert_eq!(cfg.server.admin_token, None);
        assert!(!cfg.server.allow_plain_http && !cfg.sync.allow_plain_http);
        assert_eq!(cfg.server.tls_cert, None);
        assert_eq!(cfg.sync.ca_file, None);
        assert_eq!(cfg.server.device_requests_per_minute, 600);
        assert_eq!(cfg.server.address_burst, 20);
        let d = Config::default();
        assert_eq!(d.server.device_burst, cfg.server.device_burst);
        assert_eq!(
            d.server.address_requests_per_minute,
            cfg.server.address_requests_per_minute
        );
    }

    #[test]
    fn tls_needs_both_files() {
        let p = Path::new("c.toml");
        assert!(Config::parse("[server]\ntls_cert = \"c.pem\"\n", p).is_err());
        assert!(Config::parse("[server]\ntls_key = \"k.pem\"\n", p).is_err());
        assert!(Config::parse("[server]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n", p).is_ok());
        assert!(Config::parse("[server]\ndevice_burst = 0\n", p).is_err());
        assert!(
            Config::parse(
                "[server]\ndevice_burst = 0\ndevice_requests_per_minute = 0\n",
                p
            )
            .is_ok()
        );
    }

    #[test]
    fn broken_file_names_the_line() {
        let text = "lang = \"id\"\n\n[sync]\nbatch_size = \"lots\"\n";
        let e = Config::parse(text, Path::new("c.toml")).unwrap_err();
        assert!(e.message.contains("4"), "{}", e.message);
        assert_eq!(e.details["line"], 4);
        let e =
            Config::parse("lang = \"id\"\ntimezon = \"WIB\"\n", Path::new("c.toml")).unwrap_err();
        assert_eq!(e.details["line"], 2);
        let e = Config::parse("[slip\n", Path::new("c.toml")).unwrap_err();
        assert_eq!(e.details["line"], 1);
        assert!(Config::parse("[slip]\npaper = 57\n", Path::new("c.toml")).is_err());
        assert!(Config::parse("[server]\nthreads = 0\n", Path::new("c.toml")).is_err());
        assert!(Config::parse("[server]\nmax_body_bytes = 10\n", Path::new("c.toml")).is_err());
    }
}
