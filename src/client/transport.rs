//! How the client connects. `https://` is checked against the certificate store of the operating system, or only
//! against the certificates of `ca_file` when set (a district's own CA or self-signed
//! certificate), plus the office CA the laptop received at enrolment (`server tls init` on the
//! server; then only against those). Plain `http://` is allowed to a loopback address; to any other host only with
//! `allow_plain_http = true`, with a warning each time.
use crate::config::SyncConfig;
use crate::error::AppError;
use crate::tr;
use std::path::Path;
use std::time::Duration;

/// Checks and normalises a server URL (`http://` or `https://`, no trailing slash).
pub fn normalise_url(url: &str) -> Result<String, AppError> {
    let u = url.trim().trim_end_matches('/');
    let ok = (u.starts_with("http://") || u.starts_with("https://")) && u.len() > 8;
    if !ok {
        return Err(AppError::usage(tr!(
            "Alamat server '{url}' tidak dikenali.",
            "Server address '{url}' is not understood."
        ))
        .hint(tr!(
            "Tulis lengkap dengan http:// atau https://, mis. https://dukcapil.example.go.id",
            "Write it in full with http:// or https://, e.g. https://dukcapil.example.go.id"
        )));
    }
    Ok(u.to_string())
}

/// The host of a normalised URL, without port or IPv6 brackets.
pub(crate) fn url_host(url: &str) -> Option<String> {
    let uri: ureq::http::Uri = url.parse().ok()?;
    let host = uri.host()?;
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
}

/// True for `localhost` and loopback addresses (127.0.0.0/8, ::1): traffic that never leaves
/// the machine.
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// How the client connects: from `[sync]` in config.toml.
#[derive(Debug, Clone)]
pub struct Transport {
    /// Bounds each read and write that makes no progress (a stalled link).
    pub timeout: Duration,
    /// Bounds connecting (TCP and TLS): a dead link is known in seconds.
    pub connect_timeout: Duration,
    /// Bounds the wait for the answer once the request is sent: a server that takes the
    /// request and never answers is given up on (the next attempt asks for the answer by batch
    /// id before sending the batch again).
    pub answer_timeout: Duration,
    /// PEM certificates to trust instead of the certificate store of the operating system (`sync.ca_file`).
    pub ca_file: Option<std::path::PathBuf>,
    /// `sync.allow_plain_http`: plain `http://` to a host that is not loopback.
    pub allow_plain_http: bool,
    /// The office CA (PEM) received in the signed enrolment answer: when set, `https://` is
    /// checked against it (and `ca_file`) only.
    pub office_ca: Option<String>,
}

impl Transport {
    /// From `[sync]`; a relative `ca_file` is relative to the data directory.
    pub fn from_config(c: &SyncConfig, data_dir: &Path) -> Transport {
        Transport {
            timeout: Duration::from_secs(c.timeout_secs.max(1)),
            connect_timeout: Duration::from_secs(c.connect_timeout_secs.max(1)),
            answer_timeout: Duration::from_secs(c.answer_timeout_secs.max(1)),
            ca_file: c.ca_file.as_ref().map(|ca| data_dir.join(ca)),
            allow_plain_http: c.allow_plain_http,
            office_ca: None,
        }
    }

    /// The roots `https://` is checked against: the office CA and `ca_file` when either is
    /// set, else the operating system's store.
    pub(crate) fn roots(&self) -> Result<ureq::tls::RootCerts, AppError> {
        let mut certs = match &self.ca_file {
            Some(path) => load_ca_file(path)?,
            None => Vec::new(),
        };
        if let Some(pem) = &self.office_ca {
            certs.extend(office_ca_certs(pem).ok_or_else(bad_office_ca)?);
        }
        Ok(if certs.is_empty() {
            ureq::tls::RootCerts::PlatformVerifier
        } else {
            ureq::tls::RootCerts::new_with_certs(&certs)
        })
    }
}

/// The certificates of an office CA (PEM); `None` when it holds none or is not PEM.
pub(crate) fn office_ca_certs(pem: &str) -> Option<Vec<ureq::tls::Certificate<'static>>> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem.as_bytes()) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    (!certs.is_empty()).then_some(certs)
}

/// The same office CA: the same certificates, whatever the PEM line breaks.
pub(crate) fn same_office_ca(a: &str, b: &str) -> bool {
    let der =
        |pem| office_ca_certs(pem).map(|c| c.iter().map(|c| c.der().to_vec()).collect::<Vec<_>>());
    matches!((der(a), der(b)), (Some(x), Some(y)) if x == y)
}

fn bad_office_ca() -> AppError {
    AppError::other(tr!(
        "Sertifikat kantor yang disimpan saat pendaftaran rusak.",
        "The office certificate stored at enrolment is damaged."
    ))
    .hint(tr!(
        "Minta token baru ke admin Dinas dan daftarkan laptop lagi; catatan tetap aman di laptop ini.",
        "Ask the district admin for a new token and enrol the laptop again; the records stay safe on this laptop."
    ))
}

/// The root certificates of `sync.ca_file`.
pub(crate) fn load_ca_file(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, AppError> {
    let bad = |why: String| {
        AppError::usage(tr!(
            "sync.ca_file {} tidak bisa dipakai: {why}",
            "sync.ca_file {} cannot be used: {why}",
            path.display()
        ))
        .hint(tr!(
            "Isinya harus sertifikat PEM (-----BEGIN CERTIFICATE-----) dari CA atau server Dinas; minta ke admin Dinas, atau kosongkan sync.ca_file untuk memakai sertifikat yang dipercaya sistem.",
            "It must hold PEM certificates (-----BEGIN CERTIFICATE-----) of the district's CA or server; ask the district admin, or leave sync.ca_file empty to use the certificates the system trusts."
        ))
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(bad(e.to_string())),
        }
    }
    if certs.is_empty() {
        return Err(bad(tr!(
            "tidak ada sertifikat di dalamnya",
            "it holds no certificate"
        )));
    }
    Ok(certs)
}

/// Refuses plain `http://` to a host that is not loopback unless it is allowed; warns when it
/// is allowed.
pub(crate) fn check_plain_http(base: &str, allowed: bool) -> Result<(), AppError> {
    if !base.starts_with("http://") {
        return Ok(());
    }
    let host = url_host(base).unwrap_or_default();
    if is_loopback_host(&host) {
        return Ok(());
    }
    if !allowed {
        return Err(AppError::usage(tr!(
            "Menolak HTTP tanpa enkripsi ke {base}: data pribadi akan terbaca di jaringan.",
            "Refusing unencrypted HTTP to {base}: personal data would be readable on the network."
        ))
        .hint(tr!(
            "Pakai alamat https:// server Dinas. Hanya jika jaringannya memang tertutup dan aman, setel sync.allow_plain_http = true di config.toml.",
            "Use the district server's https:// address. Only if the network really is closed and safe, set sync.allow_plain_http = true in config.toml."
        )));
    }
    eprintln!(
        "{}",
        tr!(
            "PERINGATAN: sinkron ke {base} tanpa enkripsi (sync.allow_plain_http = true); siapa pun di jaringan bisa membaca data yang dikirim.",
            "WARNING: syncing with {base} unencrypted (sync.allow_plain_http = true); anyone on the network can read what is sent."
        )
    );
    Ok(())
}

/// Why the server's certificate was refused, when that is why the connection failed.
pub(crate) fn certificate_problem(e: &ureq::Error) -> Option<String> {
    use rustls::CertificateError as C;
    let rustls_error = match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        _ => None,
    }?;
    let rustls::Error::InvalidCertificate(c) = rustls_error else {
        return None;
    };
    let why = match c {
        C::Expired | C::ExpiredContext { .. } => tr!(
            "sertifikat server sudah kedaluwarsa (atau jam laptop salah)",
            "the server's certificate has expired (or the laptop's clock is wrong)"
        ),
        C::NotValidYet | C::NotValidYetContext { .. } => tr!(
            "sertifikat server belum berlaku (periksa jam laptop)",
            "the server's certificate is not valid yet (check the laptop's clock)"
        ),
        C::UnknownIssuer => tr!(
            "sertifikat server tidak dikenal (dibuat sendiri, atau jaringan ini menyadap HTTPS)",
            "the server's certificate is not trusted (self-made, or this network intercepts HTTPS)"
        ),
        C::NotValidForName | C::NotValidForNameContext { .. } => tr!(
            "sertifikat server untuk nama lain",
            "the server's certificate is for another name"
        ),
        other => tr!(
            "sertifikat server ditolak: {other:?}",
            "the server's certificate was refused: {other:?}"
        ),
    };
    Some(why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    /// The office CA is the same whatever its PEM line breaks; garbage is no CA; with an office
    /// CA the roots are exactly it, not the system store.
    #[test]
    fn an_office_ca_is_compared_by_its_certificates() {
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = rcgen::CertificateParams::new(vec!["ca".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .pem();
        let crlf = pem.replace('\n', "\r\n");
        assert!(same_office_ca(&pem, &crlf));
        let other_key = rcgen::KeyPair::generate().unwrap();
        let other = rcgen::CertificateParams::new(vec!["ca".to_string()])
            .unwrap()
            .self_signed(&other_key)
            .unwrap()
            .pem();
        assert!(!same_office_ca(&pem, &other));
        assert!(!same_office_ca(&pem, ""));
        assert!(office_ca_certs("not a certificate").is_none());
        let mut t = Transport {
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            answer_timeout: Duration::from_secs(1),
            ca_file: None,
            allow_plain_http: false,
            office_ca: None,
        };
        assert!(matches!(
            t.roots().unwrap(),
            ureq::tls::RootCerts::PlatformVerifier
        ));
        t.office_ca = Some(pem);
        assert!(matches!(
            t.roots().unwrap(),
            ureq::tls::RootCerts::Specific(ref c) if c.len() == 1
        ));
        t.office_ca = Some("damaged".into());
        assert!(t.roots().is_err());
    }

    #[test]
    fn urls_need_a_scheme() {
        assert_eq!(
            normalise_url(" http://127.0.0.1:8080/ ").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(normalise_url("dukcapil.example").is_err());
    }

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:8080",
            "http://127.9.9.9",
            "https://dukcapil.example.go.id",
            "https://10.0.0.5:8443",
        ] {
            assert!(check_plain_http(ok, false).is_ok(), "{ok}");
        }
        for refused in [
            "http://dukcapil.example.go.id",
            "http://10.0.0.5:8080",
            "http://[fe80::1]:8080",
            "http://localhost.example.com",
        ] {
            let e = check_plain_http(refused, false).unwrap_err();
            assert_eq!(e.kind, Kind::Usage, "{refused}");
            assert!(check_plain_http(refused, true).is_ok(), "{refused}");
        }
    }
}
