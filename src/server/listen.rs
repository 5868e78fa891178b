//! Opening `serve`'s socket: HTTPS with `server.tls_cert` / `server.tls_key` (rustls 0.23 in the
//! vendored tiny_http), or plain HTTP. Plain HTTP is allowed on a loopback address (tests, the
//! demo, a reverse proxy on the same machine); on any other address only with
//! `server.allow_plain_http = true` (a TLS reverse proxy in front), and then with a warning.
use crate::config::ServerConfig;
use crate::error::{AppError, Kind};
use crate::tr;
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};

/// The open socket and how to reach it.
pub struct Listening {
    pub server: tiny_http::Server,
    /// `https` or `http`.
    pub scheme: &'static str,
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
    let tls = cfg.tls_cert.is_some();
    let server = if tls {
        let (certificate, private_key) = read_pair(cfg, data_dir)?;
        tiny_http::Server::https(
            &addrs[..],
            tiny_http::SslConfig {
                certificate,
                private_key,
            },
        )
        .map_err(|e| {
            if e.is::<std::io::Error>() {
                cannot(&e)
            } else {
                AppError::usage(tr!(
                    "Sertifikat TLS (server.tls_cert / tls_key) tidak bisa dipakai: {e}",
                    "The TLS certificate (server.tls_cert / tls_key) cannot be used: {e}"
                ))
                .hint(tr!(
                    "tls_cert: rantai sertifikat PEM (sertifikat server dulu); tls_key: kunci privatnya dalam PEM, tanpa kata sandi. Keduanya harus pasangan yang sama.",
                    "tls_cert: the PEM certificate chain (server certificate first); tls_key: its private key in PEM, without a passphrase. They must belong together."
                ))
            }
        })?
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
        tiny_http::Server::http(&addrs[..]).map_err(|e| cannot(&e))?
    };
    if !tls && !loopback {
        eprintln!(
            "{}",
            tr!(
                "PERINGATAN: server melayani HTTP tanpa enkripsi di {listen} (server.allow_plain_http = true). Pastikan hanya reverse proxy TLS yang bisa menjangkaunya.",
                "WARNING: serving unencrypted HTTP on {listen} (server.allow_plain_http = true). Make sure only the TLS reverse proxy can reach it."
            )
        );
    }
    let addr = server
        .server_addr()
        .to_ip()
        .map(|a| a.to_string())
        .unwrap_or_else(|| listen.to_string());
    Ok(Listening {
        server,
        scheme: if tls { "https" } else { "http" },
        addr,
    })
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
