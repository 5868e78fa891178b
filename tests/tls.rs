//! End to end over TLS: `serve` terminates HTTPS with a certificate made at test time (rcgen;
//! no key is ever committed), the field kit syncs through it when it trusts the district's CA
//! (`sync.ca_file`), and refuses an expired certificate and an untrusted self-signed one with a
//! clear error, keeping every record pending.
mod util;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use util::{BIN, Kit};

/// The district's own CA and certificates for `localhost` / 127.0.0.1, as PEM files in `dir`.
struct Pki {
    ca: PathBuf,
}

fn leaf_params(expired: bool) -> CertificateParams {
    let mut p =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    if expired {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    p
}

/// Writes `name.pem` and `name.key` in `dir`; returns the two paths.
fn write_pair(dir: &Path, name: &str, cert_pem: String, key: &KeyPair) -> (PathBuf, PathBuf) {
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert_pem).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

impl Pki {
    /// A CA, and three server certificates: valid and signed by the CA, expired and signed by
    /// the CA, and self-signed (not from the CA).
    fn make(dir: &Path) -> (Pki, [(PathBuf, PathBuf); 3]) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Dinas Uji CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = dir.join("district-ca.pem");
        std::fs::write(&ca, ca_cert.pem()).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let good_key = KeyPair::generate().unwrap();
        let good = leaf_params(false).signed_by(&good_key, &issuer).unwrap();
        let expired_key = KeyPair::generate().unwrap();
        let expired = leaf_params(true).signed_by(&expired_key, &issuer).unwrap();
        let own_key = KeyPair::generate().unwrap();
        let own = leaf_params(false).self_signed(&own_key).unwrap();
        (
            Pki { ca },
            [
                write_pair(dir, "good", good.pem(), &good_key),
                write_pair(dir, "expired", expired.pem(), &expired_key),
                write_pair(dir, "selfsigned", own.pem(), &own_key),
            ],
        )
    }
}

/// `ikd-field serve` over TLS on a free port of 127.0.0.1.
struct TlsServer {
    child: Child,
    url: String,
    config: PathBuf,
    db: PathBuf,
}

impl TlsServer {
    fn start(dir: &Path, db: &Path, name: &str, (cert, key): &(PathBuf, PathBuf)) -> TlsServer {
        let config = dir.join(format!("server-{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[server]\nthreads = 2\ntls_cert = {:?}\ntls_key = {:?}\n",
                cert.display().to_string(),
                key.display().to_string()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("--data-dir")
            .arg(dir.join("server-data"))
            .arg("--config")
            .arg(&config)
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .env_remove("IKD_FIELD_HOME")
            .env_remove("IKD_FIELD_CONFIG");
        let (child, url) =
            util::server::launch(cmd, &dir.join(format!("server-{name}.log"))).unwrap();
        assert!(url.starts_with("https://"), "serve over TLS: {url}");
        TlsServer {
            child,
            url,
            config,
            db: db.to_path_buf(),
        }
    }

    fn token(&self) -> String {
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .args(["server", "token", "--json", "--db"])
            .arg(&self.db)
            .env_remove("IKD_FIELD_HOME")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["token"].as_str().unwrap().to_string()
    }

    fn records(&self) -> i64 {
        rusqlite::Connection::open(&self.db)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
            .unwrap()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pending(k: &Kit) -> i64 {
    k.json(&["status"])["sync"]["pending"].as_i64().unwrap()
}

fn set_sync_config(k: &Kit, extra: &str) {
    std::fs::write(
        k.dir.join("config.toml"),
        format!(
            "[sync]\ntimeout_secs = 5\nmax_attempts = 3\nretry_base_ms = 20\nretry_max_secs = 1\n{extra}\n"
        ),
    )
    .unwrap();
}

#[test]
fn sync_over_tls_trusts_only_a_valid_certificate_and_loses_nothing() {
    let kit = Kit::new();
    let dir = kit.path("pki");
    std::fs::create_dir_all(&dir).unwrap();
    let (pki, [good, expired, selfsigned]) = Pki::make(&dir);
    let db = kit.path("district.db");
    let server = TlsServer::start(&dir, &db, "good", &good);
    let token = server.token();

    // Public roots only: the district's own CA is not trusted; nothing is spent or sent.
    set_sync_config(&kit, "");
    let (out, _) = kit.fails(
        &[
            "enrol",
            "--server",
            &server.url,
            "--token",
            &token,
            "--json",
            "--lang",
            "en",
        ],
        5,
    );
    let e: serde_json::Value = serde_json::from_str(&out).unwrap();
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("certificate is not trusted"), "{msg}");

    // With the district's CA in sync.ca_file: enrolment and sync work over HTTPS.
    set_sync_config(
        &kit,
        &format!("ca_file = {:?}", pki.ca.display().to_string()),
    );
    kit.ok(&["enrol", "--server", &server.url, "--token", &token]);
    let people = ikd_field::synth::citizens(7, "1702", 4);
    for i in 0..4 {
        kit.record_synthetic(&people, i);
    }
    assert_eq!(pending(&kit), 4);

    // The same district server behind an expired certificate: refused, records stay pending.
    let old = TlsServer::start(&dir, &db, "expired", &expired);
    let (out, _) = kit.fails(&["sync", "--server", &old.url, "--json", "--lang", "en"], 5);
    let e: serde_json::Value = serde_json::from_str(&out).unwrap();
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("has expired"), "{msg}");
    assert!(msg.contains("4 records stay pending"), "{msg}");
    assert!(
        e["error"]["hint"].as_str().unwrap().contains("ca_file"),
        "{e}"
    );
    assert_eq!(e["error"]["details"]["certificate"], true);
    drop(old);

    // A self-signed certificate that is not the district's CA (an interception proxy would
    // present one like it): refused the same way, in Indonesian by default.
    let mitm = TlsServer::start(&dir, &db, "selfsigned", &selfsigned);
    let (_, err) = kit.fails(&["sync", "--server", &mitm.url], 5);
    assert!(err.contains("sertifikat server tidak dikenal"), "{err}");
    assert!(err.contains("Tidak ada yang hilang"), "{err}");
    drop(mitm);
    assert_eq!(pending(&kit), 4);
    assert_eq!(server.records(), 0, "nothing reached the server");

    // The enrolled (valid) route: everything is delivered.
    let r = kit.json(&["sync"]);
    assert_eq!(r["summary"]["accepted"], 4, "{r}");
    assert_eq!(pending(&kit), 0);
    assert_eq!(server.records(), 4);
}

#[test]
fn plain_http_is_refused_off_loopback_on_both_sides() {
    let kit = Kit::new();
    // The field kit will not send records unencrypted to another host…
    let (_, err) = kit.fails(
        &[
            "enrol",
            "--server",
            "http://dukcapil.example.invalid",
            "--token",
            "K7Q2-MX9D-4TRW-H8NB",
            "--lang",
            "en",
        ],
        2,
    );
    assert!(err.contains("Refusing unencrypted HTTP"), "{err}");
    assert!(err.contains("allow_plain_http"), "{err}");
    // …and the server will not listen unencrypted on a network address without the setting.
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(kit.path("srv"))
        .args(["serve", "--listen", "0.0.0.0:0", "--db"])
        .arg(kit.path("district.db"))
        .env_remove("IKD_FIELD_HOME")
        .env_remove("IKD_FIELD_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls_cert"), "{err}");
}
