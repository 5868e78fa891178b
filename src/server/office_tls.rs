//! `server tls init`: the office's own certificate authority (CA) and the server certificate it
//! signs for the office's LAN names and addresses, made with rcgen (ring), kept in the data
//! directory's `tls/` folder. `serve` uses them when `server.tls_cert` / `tls_key` are unset,
//! and hands the CA certificate to laptops inside the signed enrolment answer (and the signed
//! `/v1/health`), so a laptop that knows the server id trusts exactly this CA for this server
//! (client/pin.rs) with no public CA and no edit on the laptop.
//!
//! Running it again keeps the CA and issues a new server certificate (a new address, a new
//! name, a certificate close to its end); `--new-ca` makes a new CA too, and then every laptop
//! must enrol again.
use crate::error::AppError;
use crate::tr;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The folder under the data directory.
pub const DIR: &str = "tls";
const CA_CERT: &str = "district-ca.pem";
const CA_KEY: &str = "district-ca.key";
const CERT: &str = "server.pem";
const KEY: &str = "server.key";
/// The CA lives long: laptops trust it from enrolment on, and a new one means enrolling again.
const CA_DAYS: i64 = 20 * 365;
/// The server certificate: re-issued by running the command again.
pub const CERT_DAYS: i64 = 3 * 365;

/// Where the office's TLS files are, under `data_dir`.
#[derive(Debug, Clone)]
pub struct Files {
    pub dir: PathBuf,
}

impl Files {
    pub fn new(data_dir: &Path) -> Files {
        Files {
            dir: data_dir.join(DIR),
        }
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join(CA_CERT)
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join(CA_KEY)
    }
    pub fn cert(&self) -> PathBuf {
        self.dir.join(CERT)
    }
    pub fn key(&self) -> PathBuf {
        self.dir.join(KEY)
    }
    /// True when a server certificate and key from `server tls init` are here.
    pub fn present(&self) -> bool {
        self.cert().is_file() && self.key().is_file() && self.ca_cert().is_file()
    }
}

/// What `server tls init` made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Issued {
    /// True when the CA was made now (first run, or `--new-ca`).
    pub new_ca: bool,
    pub names: Vec<String>,
    pub ips: Vec<IpAddr>,
    /// The server certificate's last day (UTC, RFC 3339).
    pub valid_until: String,
    /// SHA-256 of the CA certificate (DER), hex: what a laptop trusts after enrolment.
    pub ca_sha256: String,
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Makes (or keeps) the CA and issues the server certificate for `names` and `ips`.
pub fn init(
    files: &Files,
    names: &[String],
    ips: &[IpAddr],
    new_ca: bool,
) -> Result<Issued, AppError> {
    if names.is_empty() && ips.is_empty() {
        return Err(AppError::usage(tr!(
            "Tidak ada nama atau alamat untuk sertifikat server.",
            "No name or address for the server certificate."
        ))
        .hint(tr!(
            "Beri --name NAMA-KOMPUTER atau --ip ALAMAT-LAN.",
            "Give --name COMPUTER-NAME or --ip LAN-ADDRESS."
        )));
    }
    if let Some(bad) = names.iter().find(|n| !is_host_name(n)) {
        return Err(AppError::usage(tr!(
            "'{bad}' bukan nama komputer yang bisa dipakai di sertifikat.",
            "'{bad}' is not a computer name a certificate can hold."
        ))
        .hint(tr!(
            "Nama komputer hanya huruf, angka, titik dan tanda minus, mis. server-dukcapil.",
            "A computer name has only letters, digits, dots and dashes, e.g. server-dukcapil."
        )));
    }
    if let Some(bad) = ips.iter().find(|ip| !is_host_address(ip)) {
        return Err(AppError::usage(tr!(
            "'{bad}' bukan alamat komputer ini di LAN (0.0.0.0 dan :: berarti 'semua alamat' untuk --listen), jadi laptop tidak bisa memakainya.",
            "'{bad}' is not this computer's address on the LAN (0.0.0.0 and :: mean 'every address' for --listen), so laptops cannot use it."
        ))
        .hint(tr!(
            "Beri alamat LAN server, mis. --ip 192.168.1.20 (lihat 'ipconfig' di Windows atau 'ip addr' di Linux), atau jangan beri --ip agar dicari sendiri.",
            "Give the server's LAN address, e.g. --ip 192.168.1.20 (see 'ipconfig' on Windows or 'ip addr' on Linux), or give no --ip to have it found."
        )));
    }
    // Files made by another user than the one owning the data folder (`sudo` without `-u`)
    // would be unreadable to the server: refuse before anything is written.
    for dir in [files.dir.parent(), Some(files.dir.as_path())]
        .into_iter()
        .flatten()
    {
        same_owner(dir)?;
    }
    std::fs::create_dir_all(&files.dir).map_err(|e| io_error(&files.dir, &e))?;
    let now = time::OffsetDateTime::now_utc();
    // The CA certificate without its key (kept offline, as SECURITY.md allows): a new CA here
    // would cut off every enrolled laptop, so only --new-ca makes one.
    if !new_ca && files.ca_cert().is_file() && !files.ca_key().is_file() {
        return Err(AppError::usage(tr!(
            "Kunci CA Dinas ({}) tidak ada di sini, jadi sertifikat server baru tidak bisa ditandatangani dengan CA yang sama. Tidak ada yang diubah.",
            "The district CA's key ({}) is not here, so a new server certificate cannot be signed by the same CA. Nothing was changed.",
            files.ca_key().display()
        ))
        .hint(tr!(
            "Kembalikan berkas district-ca.key dari cadangannya ke folder itu, lalu jalankan perintah ini lagi. Hanya bila kunci itu hilang atau dicuri: --new-ca (lalu semua laptop harus mendaftar ulang).",
            "Put district-ca.key back into that folder from its backup, then run this command again. Only if that key is lost or stolen: --new-ca (then every laptop must enrol again)."
        )));
    }
    let keep = !new_ca && files.ca_cert().is_file() && files.ca_key().is_file();
    let (ca_pem, issuer) = if keep {
        let pem = read(&files.ca_cert())?;
        let key = KeyPair::from_pem(&read(&files.ca_key())?).map_err(|e| damaged(files, &e))?;
        (pem, Issuer::new(ca_params(&key), key))
    } else {
        let key = KeyPair::generate().map_err(|e| AppError::other(e.to_string()))?;
        let mut p = ca_params(&key);
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(CA_DAYS);
        let cert = p
            .self_signed(&key)
            .map_err(|e| AppError::other(e.to_string()))?;
        write_private(&files.ca_key(), &key.serialize_pem())?;
        write_public(&files.ca_cert(), &cert.pem())?;
        (cert.pem(), Issuer::new(p, key))
    };
    let mut sans: Vec<String> = names.to_vec();
    sans.extend(ips.iter().map(IpAddr::to_string));
    let mut p = CertificateParams::new(sans).map_err(|e| AppError::other(e.to_string()))?;
    let cn = names
        .first()
        .cloned()
        .or_else(|| ips.first().map(IpAddr::to_string))
        .unwrap_or_default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    p.not_before = now - time::Duration::hours(1);
    let until = now + time::Duration::days(CERT_DAYS);
    p.not_after = until;
    let key = KeyPair::generate().map_err(|e| AppError::other(e.to_string()))?;
    let cert = p
        .signed_by(&key, &issuer)
        .map_err(|e| AppError::other(e.to_string()))?;
    // The chain the server presents: its certificate, then the CA. Both files are written
    // beside their place first, then renamed: `serve` never reads a key of another certificate.
    let staged_key = stage(&files.key(), &key.serialize_pem(), true)?;
    let staged_cert = stage(&files.cert(), &format!("{}{}", cert.pem(), ca_pem), false)?;
    for (tmp, path) in [(staged_key, files.key()), (staged_cert, files.cert())] {
        std::fs::rename(&tmp, &path).map_err(|e| io_error(&path, &e))?;
    }
    Ok(Issued {
        new_ca: !keep,
        names: names.to_vec(),
        ips: ips.to_vec(),
        valid_until: crate::timefmt::stamp(until),
        ca_sha256: ca_fingerprint(&ca_pem).unwrap_or_default(),
        ca_cert: files.ca_cert(),
        cert: files.cert(),
        key: files.key(),
    })
}

/// The CA's name and constraints, made from its key alone, so the CA kept in `tls/` signs new
/// server certificates under exactly the name in its certificate (no certificate parser needed):
/// "ikd-field CA Dinas" and the first 8 bytes of SHA-256 of its public key, path length 0.
fn ca_params(key: &KeyPair) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let id = hex::encode(&crate::crypto::sha256(key.public_key_raw())[..8]);
    p.distinguished_name
        .push(DnType::CommonName, format!("ikd-field CA Dinas {id}"));
    p.distinguished_name
        .push(DnType::OrganizationName, "ikd-field");
    p
}

/// SHA-256 (hex) of the first certificate in `pem`.
pub fn ca_fingerprint(pem: &str) -> Option<String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()?
        .ok()?;
    Some(crate::crypto::sha256_hex(&der))
}

/// The names `server tls init` uses without `--name`: this computer's name (and its `.local`
/// form, which Windows and most Linux desktops answer on a LAN) and `localhost`.
pub fn default_names() -> Vec<String> {
    let mut out = Vec::new();
    if let Some(h) = hostname() {
        out.push(h.clone());
        if !h.contains('.') {
            out.push(format!("{h}.local"));
        }
    }
    out.push("localhost".to_string());
    out
}

/// The addresses used without `--ip`: the LAN IPv4 address this computer reaches other hosts
/// from (the one its default route uses) and 127.0.0.1.
pub fn default_ips() -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Some(ip) = lan_ipv4() {
        out.push(ip);
    }
    out.push(IpAddr::from([127, 0, 0, 1]));
    out
}

/// A DNS name: labels of letters, digits and dashes, not starting or ending with a dash.
fn is_host_name(n: &str) -> bool {
    n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// An address a laptop can connect to: not "every address", multicast or broadcast.
fn is_host_address(ip: &IpAddr) -> bool {
    !ip.is_unspecified() && !ip.is_multicast() && !matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

/// The computer's name, lower case, when it is a usable DNS label.
fn hostname() -> Option<String> {
    #[cfg(windows)]
    let raw = std::env::var("COMPUTERNAME").ok();
    #[cfg(not(windows))]
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok());
    let h = raw?.trim().to_ascii_lowercase();
    (h != "localhost" && is_host_name(&h)).then_some(h)
}

/// The source address of the default route: a UDP socket "connected" to a documentation
/// address (TEST-NET-1) picks its local address from the routing table; nothing is sent.
fn lan_ipv4() -> Option<IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Refuses when `dir` exists and belongs to another user than this process (a file made here
/// now would be its owner's alone, with the keys at mode 0600: the server could not read them).
#[cfg(unix)]
fn same_owner(dir: &Path) -> Result<(), AppError> {
    use std::os::unix::fs::MetadataExt;
    let Ok(owner) = std::fs::metadata(dir).map(|m| m.uid()) else {
        return Ok(());
    };
    let probe = dir.join(".ikd-field-owner-probe");
    let me = std::fs::File::create(&probe).and_then(|f| f.metadata().map(|m| m.uid()));
    let _ = std::fs::remove_file(&probe);
    match me {
        Ok(me) if me != owner => Err(AppError::usage(tr!(
            "Folder {} milik pengguna lain, bukan pengguna yang menjalankan perintah ini: sertifikat yang dibuat sekarang tidak akan bisa dibaca server. Tidak ada yang diubah.",
            "The folder {} belongs to another user than the one running this command: a certificate made now could not be read by the server. Nothing was changed.",
            dir.display()
        ))
        .hint(tr!(
            "Jalankan sebagai pengguna server, mis. di Linux: sudo -u ikd ikd-field --data-dir /var/lib/ikd-field server tls init",
            "Run it as the server's user, e.g. on Linux: sudo -u ikd ikd-field --data-dir /var/lib/ikd-field server tls init"
        ))),
        // Not writable: said with the file's name when the first file is written.
        _ => Ok(()),
    }
}

#[cfg(not(unix))]
fn same_owner(_dir: &Path) -> Result<(), AppError> {
    Ok(())
}

fn read(path: &Path) -> Result<String, AppError> {
    std::fs::read_to_string(path).map_err(|e| io_error(path, &e))
}

fn io_error(path: &Path, e: &std::io::Error) -> AppError {
    AppError::other(tr!(
        "Berkas {} tidak bisa dibaca atau ditulis: {e}",
        "The file {} cannot be read or written: {e}",
        path.display()
    ))
    .hint(tr!(
        "Jalankan perintah sebagai pengguna yang menjalankan server, di folder data yang sama.",
        "Run the command as the user who runs the server, on the same data folder."
    ))
}

fn damaged(files: &Files, e: &dyn std::fmt::Display) -> AppError {
    AppError::other(tr!(
        "CA Dinas di {} rusak: {e}",
        "The district CA in {} is damaged: {e}",
        files.dir.display()
    ))
    .hint(tr!(
        "Pulihkan folder itu dari cadangan, atau buat CA baru dengan --new-ca (lalu semua laptop harus mendaftar ulang).",
        "Restore that folder from a backup, or make a new CA with --new-ca (then every laptop must enrol again)."
    ))
}

/// Writes `text` beside `path` and renames it over `path`: a reader sees the old file or the new.
fn replace(path: &Path, text: &str, private: bool) -> Result<(), AppError> {
    crate::output::replace_file(path, text, private).map_err(|e| io_error(path, &e))
}

/// Writes `text` to `path` + `.new` (owner-only when `private`), synced.
fn stage(path: &Path, text: &str, private: bool) -> Result<PathBuf, AppError> {
    crate::output::stage_file(path, text, private).map_err(|e| io_error(path, &e))
}

fn write_private(path: &Path, text: &str) -> Result<(), AppError> {
    replace(path, text, true)
}

fn write_public(path: &Path, text: &str) -> Result<(), AppError> {
    replace(path, text, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    /// The chain in `server.pem` verifies against the CA for each name and address, and not
    /// for another name.
    fn verifies(files: &Files, name: &str) -> bool {
        let ca = std::fs::read(files.ca_cert()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&ca) {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let v = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider,
        )
        .build()
        .unwrap();
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&std::fs::read(files.cert()).unwrap())
                .map(Result::unwrap)
                .collect();
        v.verify_server_cert(
            &chain[0],
            &chain[1..],
            &ServerName::try_from(name.to_string()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .is_ok()
    }

    #[test]
    fn the_ca_is_kept_and_the_server_certificate_reissued() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path());
        let names = vec!["kantor-dukcapil".to_string(), "localhost".to_string()];
        let ips = vec![
            IpAddr::from([192, 168, 1, 20]),
            IpAddr::from([127, 0, 0, 1]),
        ];
        let first = init(&files, &names, &ips, false).unwrap();
        assert!(first.new_ca && files.present());
        for ok in ["kantor-dukcapil", "localhost", "192.168.1.20", "127.0.0.1"] {
            assert!(verifies(&files, ok), "{ok}");
        }
        assert!(!verifies(&files, "192.168.1.21"));
        assert!(!verifies(&files, "other.example"));
        #[cfg(unix)]
        for key in [files.key(), files.ca_key()] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }
        // A new address: the same CA, a new certificate for it.
        let ips2 = vec![IpAddr::from([192, 168, 1, 21])];
        let again = init(&files, &names, &ips2, false).unwrap();
        assert!(!again.new_ca);
        assert_eq!(again.ca_sha256, first.ca_sha256);
        assert!(verifies(&files, "192.168.1.21"));
        assert!(!verifies(&files, "192.168.1.20"));
        // --new-ca: another CA.
        let fresh = init(&files, &names, &ips2, true).unwrap();
        assert!(fresh.new_ca);
        assert_ne!(fresh.ca_sha256, first.ca_sha256);
        assert!(verifies(&files, "kantor-dukcapil"));
    }

    #[test]
    fn nothing_to_certify_or_a_bad_name_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path());
        let e = init(&files, &[], &[], false).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = init(&files, &["bad name!".to_string()], &[], false).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        // The listen address copied by mistake, or no host's address at all.
        let name = ["kantor".to_string()];
        for bad in ["0.0.0.0", "::", "224.0.0.1", "255.255.255.255", "ff02::1"] {
            let e = init(&files, &name, &[bad.parse().unwrap()], false).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
        assert!(!files.dir.exists(), "nothing made");
    }

    /// `sudo` without `-u ikd` over the service's data folder: refused, nothing written. Only
    /// root can give a folder to another user, so elsewhere there is nothing to try.
    #[cfg(unix)]
    #[test]
    fn another_users_data_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        if std::os::unix::fs::chown(&data, Some(65534), Some(65534)).is_err() {
            return;
        }
        let files = Files::new(&data);
        let e = init(&files, &["kantor".to_string()], &[], false).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.hint.unwrap().contains("sudo -u"));
        assert!(!files.dir.exists());
        assert_eq!(
            std::fs::read_dir(&data).unwrap().count(),
            0,
            "no probe left"
        );
        // The folder given back to this user: made.
        let me = std::fs::metadata(dir.path()).unwrap();
        use std::os::unix::fs::MetadataExt;
        std::os::unix::fs::chown(&data, Some(me.uid()), Some(me.gid())).unwrap();
        assert!(init(&files, &["kantor".to_string()], &[], false).is_ok());
    }

    /// The CA key kept offline: a re-run without it is refused and changes nothing (it made a
    /// new CA, cutting off every laptop); with the key back, the same CA signs again.
    #[test]
    fn a_missing_ca_key_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path());
        let names = ["kantor".to_string()];
        let first = init(&files, &names, &[], false).unwrap();
        let offline = dir.path().join("offline.key");
        std::fs::rename(files.ca_key(), &offline).unwrap();
        let cert = std::fs::read(files.cert()).unwrap();
        let e = init(&files, &names, &[], false).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.hint.unwrap().contains("--new-ca"));
        assert_eq!(
            std::fs::read(files.cert()).unwrap(),
            cert,
            "nothing changed"
        );
        assert_eq!(
            ca_fingerprint(&std::fs::read_to_string(files.ca_cert()).unwrap()).unwrap(),
            first.ca_sha256
        );
        std::fs::rename(&offline, files.ca_key()).unwrap();
        let again = init(&files, &names, &[], false).unwrap();
        assert!(!again.new_ca);
        assert_eq!(again.ca_sha256, first.ca_sha256);
        // Lost for good: --new-ca is the way, and says so.
        std::fs::remove_file(files.ca_key()).unwrap();
        assert!(init(&files, &names, &[], true).unwrap().new_ca);
    }

    #[test]
    fn defaults_hold_localhost_and_loopback() {
        assert!(default_names().contains(&"localhost".to_string()));
        assert!(default_ips().contains(&IpAddr::from([127, 0, 0, 1])));
    }
}
