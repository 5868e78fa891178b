//! Opening `serve`'s socket: HTTPS with `server.tls_cert` / `server.tls_key` (rustls with ring, the
//! client's TLS stack too), else with the office certificate of `server tls init` when it is in
//! the data directory (super::office_tls), or plain HTTP. Plain HTTP is allowed on a loopback address (tests, the
//! demo, a reverse proxy on the same machine); on any other address only with
//! `server.allow_plain_http = true` (a TLS reverse proxy in front), and then with a warning.
use crate::config::ServerConfig;
use crate::error::{AppError, Kind};
use crate::tr;
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The open socket and how to reach it.
pub struct Listening {
    pub listener: std::net::TcpListener,
    /// The TLS configuration with `server.tls_cert` / `tls_key`; `None` for plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// `https` or `http`.
    pub scheme: &'static str,
    /// The office CA (PEM) when serving the certificate of `server tls init`: laptops get it
    /// in the signed enrolment answer.
    pub office_ca: Option<String>,
    /// `IP:PORT` actually bound (a port of 0 resolved).
    pub addr: String,
}

/// Binds `listen` as `cfg` says; `data_dir` anchors relative certificate paths.
pub fn open(cfg: &ServerConfig, listen: &str, data_dir: &Path) -> Result<Listening, AppError> {
    let cannot = |e: &dyn std::fmt::Display| {
        AppError::new(
            Kind::Usage,
            tr!(
                "Tidak bisa mendengarkan di {listen}: {e}",
                "Cannot listen on {listen}: {e}"
            ),
        )
        .hint(tr!(
            "Pakai alamat lain, mis. --listen 127.0.0.1:8081, atau hentikan program yang memakai port itu.",
            "Use another address, e.g. --listen 127.0.0.1:8081, or stop the program using that port."
        ))
    };
    let addrs: Vec<_> = listen.to_socket_addrs().map_err(|e| cannot(&e))?.collect();
    let loopback = !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback());
    let office = super::office_tls::Files::new(data_dir);
    let use_office = cfg.tls_cert.is_none() && cfg.tls_key.is_none() && office.present();
    let tls = cfg.tls_cert.is_some() || use_office;
    let mut office_ca = None;
    let tls_config = if tls {
        let (certificate, private_key) = if use_office {
            let read = |p: &Path| std::fs::read(p).map_err(|e| office_unreadable(p, &e));
            office_ca = Some(String::from_utf8_lossy(&read(&office.ca_cert())?).into_owned());
            (read(&office.cert())?, read(&office.key())?)
        } else {
            read_pair(cfg, data_dir)?
        };
        let config = server_tls(&certificate, &private_key).map_err(|e| {
            {
                AppError::usage(tr!(
                    "Sertifikat TLS (server.tls_cert / tls_key) tidak bisa dipakai: {e}",
                    "The TLS certificate (server.tls_cert / tls_key) cannot be used: {e}"
                ))
                .hint(tr!(
                    "tls_cert: rantai sertifikat PEM (sertifikat server dulu); tls_key: kunci privatnya dalam PEM, tanpa kata sandi. Keduanya harus pasangan yang sama.",
                    "tls_cert: the PEM certificate chain (server certificate first); tls_key: its private key in PEM, without a passphrase. They must belong together."
                ))
            }
        })?;
        Some(Arc::new(config))
    } else {
        if !loopback && !cfg.allow_plain_http {
            return Err(AppError::usage(tr!(
                "Menolak HTTP tanpa enkripsi di {listen}: alamat itu terjangkau dari jaringan, dan data pribadi akan terbaca.",
                "Refusing unencrypted HTTP on {listen}: that address is reachable from the network, and personal data would be readable."
            ))
            .hint(tr!(
                "Setel server.tls_cert dan server.tls_key di config.toml (HTTPS). Di belakang reverse proxy TLS kantor, setel server.allow_plain_http = true. Untuk uji coba di mesin ini: --listen 127.0.0.1:8080.",
                "Set server.tls_cert and server.tls_key in config.toml (HTTPS). Behind the office's TLS reverse proxy, set server.allow_plain_http = true. To try it on this machine: --listen 127.0.0.1:8080."
            )));
        }
        None
    };
    let listener = std::net::TcpListener::bind(&addrs[..]).map_err(|e| cannot(&e))?;
    if !tls && !loopback {
        eprintln!(
            "{}",
            tr!(
                "PERINGATAN: server melayani HTTP tanpa enkripsi di {listen} (server.allow_plain_http = true). Pastikan hanya reverse proxy TLS yang bisa menjangkaunya.",
                "WARNING: serving unencrypted HTTP on {listen} (server.allow_plain_http = true). Make sure only the TLS reverse proxy can reach it."
            )
        );
    }
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| listen.to_string());
    Ok(Listening {
        listener,
        tls: tls_config,
        scheme: if tls { "https" } else { "http" },
        office_ca,
        addr,
    })
}

fn office_unreadable(path: &Path, e: &std::io::Error) -> AppError {
    // Plain words for the admin; the system's own text (with its error number) only otherwise.
    let why = match e.kind() {
        std::io::ErrorKind::PermissionDenied => tr!(
            "berkas itu milik pengguna lain",
            "that file belongs to another user"
        ),
        std::io::ErrorKind::NotFound => tr!("berkas itu tidak ada", "that file is missing"),
        _ => e.to_string(),
    };
    AppError::usage(tr!(
        "Sertifikat kantor {} tidak bisa dibaca: {why}",
        "The office certificate {} cannot be read: {why}",
        path.display()
    ))
    .hint(tr!(
        "Jalankan server sebagai pengguna yang menjalankan 'ikd-field server tls init', atau jalankan perintah itu lagi.",
        "Run the server as the user who ran 'ikd-field server tls init', or run that command again."
    ))
}

/// A rustls server configuration from a PEM certificate chain and its PEM private key
/// (HTTP/1.1 only, the safe default protocol versions, ring).
fn server_tls(cert_pem: &[u8], key_pem: &[u8]) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls_cert: {e:?}"))?;
    if certs.is_empty() {
        return Err("tls_cert: no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("tls_key: {e:?}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Reads the certificate chain and key files named in `cfg`.
fn read_pair(cfg: &ServerConfig, data_dir: &Path) -> Result<(Vec<u8>, Vec<u8>), AppError> {
    let read = |key: &str, value: &Option<PathBuf>| {
        let path = data_dir.join(value.as_deref().unwrap_or(Path::new("")));
        std::fs::read(&path).map_err(|e| {
            AppError::usage(tr!(
                "server.{key} {} tidak bisa dibaca: {e}",
                "server.{key} {} cannot be read: {e}",
                path.display()
            ))
            .hint(tr!(
                "Periksa jalurnya (relatif terhadap folder data) dan izin bacanya.",
                "Check the path (relative to the data folder) and that it is readable."
            ))
        })
    };
    Ok((
        read("tls_cert", &cfg.tls_cert)?,
        read("tls_key", &cfg.tls_key)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An office key another user owns: said in plain words, no error number.
    #[test]
    fn an_unreadable_office_file_is_said_plainly() {
        let e = office_unreadable(
            Path::new("tls/server.key"),
            &std::io::Error::from_raw_os_error(13),
        );
        assert!(!e.message.contains("os error"), "{}", e.message);
        assert!(e.message.contains("tls/server.key"), "{}", e.message);
    }

    fn cfg() -> ServerConfig {
        ServerConfig::default()
    }

    #[test]
    fn plain_http_off_loopback_needs_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let e = match open(&cfg(), "0.0.0.0:0", dir.path()) {
            Err(e) => e,
            Ok(_) => panic!("0.0.0.0 without TLS must be refused"),
        };
        assert_eq!(e.kind, Kind::Usage);
        assert!(e.hint.unwrap_or_default().contains("allow_plain_http"));
        let mut c = cfg();
        c.allow_plain_http = true;
        let l = open(&c, "0.0.0.0:0", dir.path()).unwrap();
        assert_eq!(l.scheme, "http");
        let l = open(&cfg(), "127.0.0.1:0", dir.path()).unwrap();
        assert!(l.addr.starts_with("127.0.0.1:"));
    }

    /// With the files of `server tls init` and no `tls_cert`: HTTPS on a network address, and
    /// the CA to hand to laptops; an explicit `tls_cert` wins over them.
    #[test]
    fn the_office_certificate_is_used_when_none_is_configured() {
        let dir = tempfile::tempdir().unwrap();
        let files = crate::server::office_tls::Files::new(dir.path());
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        crate::server::office_tls::init(&files, &["localhost".into()], &[ip], false).unwrap();
        let l = open(&cfg(), "0.0.0.0:0", dir.path()).unwrap();
        assert_eq!(l.scheme, "https");
        assert!(l.tls.is_some());
        let ca = l.office_ca.unwrap();
        assert_eq!(ca, std::fs::read_to_string(files.ca_cert()).unwrap());
        let mut c = cfg();
        c.tls_cert = Some("missing.pem".into());
        c.tls_key = Some("missing.key".into());
        assert!(open(&c, "127.0.0.1:0", dir.path()).is_err());
    }

    #[test]
    fn unreadable_or_bad_certificates_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg();
        c.tls_cert = Some("missing.pem".into());
        c.tls_key = Some("missing.key".into());
        let e = open(&c, "127.0.0.1:0", dir.path()).err().unwrap();
        assert!(e.message.contains("tls_cert"), "{}", e.message);
        std::fs::write(dir.path().join("missing.pem"), "not a certificate").unwrap();
        std::fs::write(dir.path().join("missing.key"), "not a key").unwrap();
        let e = open(&c, "127.0.0.1:0", dir.path()).err().unwrap();
        assert_eq!(e.kind, Kind::Usage);
        assert!(e.message.contains("TLS"), "{}", e.message);
    }
}
