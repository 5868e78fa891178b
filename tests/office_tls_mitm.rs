//! A man in the middle against enrolment through the office CA: a TLS proxy written here (rustls,
//! its own CA made with rcgen) sits between the laptop and the real `serve`, relays every request
//! and logs what it saw. Whatever it does — relay the genuine signed health, or swap the CA in it
//! for its own — the laptop enrolling with the server id never sends it the token, spends no
//! token and stores nothing.
mod util;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Arc, Mutex};
use util::{BIN, Kit};

/// How the proxy treats `/v1/health` answers.
#[derive(Clone, Copy)]
enum Health {
    /// Relayed as they are: the genuine server's signed answer and CA.
    Relay,
    /// Its `tls_ca` swapped for the proxy's own CA (the signature no longer verifies).
    SwapCa,
    /// An old signed health (body, signature) kept from before `--new-ca`, answered instead.
    Replay(&'static [u8], &'static str),
}

/// The proxy: its https URL and every request (head and body) it received.
struct Mitm {
    url: String,
    seen: Arc<Mutex<Vec<u8>>>,
    /// The proxy's CA (PEM).
    ca: String,
}

/// The proxy's own CA and a certificate from it for 127.0.0.1.
fn attacker_pki() -> (String, rustls::ServerConfig) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "ikd-field CA Dinas");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], der)
    .unwrap();
    (ca_pem, config)
}

impl Mitm {
    fn start(upstream: &str, health: Health) -> Mitm {
        let (ca_pem, config) = attacker_pki();
        Mitm::start_with(upstream, health, ca_pem, config)
    }

    /// With the given CA and TLS configuration (a certificate from a stolen CA key, say).
    fn start_with(
        upstream: &str,
        health: Health,
        ca_pem: String,
        config: rustls::ServerConfig,
    ) -> Mitm {
        let ca = ca_pem.clone();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, upstream) = (seen.clone(), upstream.to_string());
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                // A handshake the laptop refuses ends here: nothing more comes.
                let _ = relay(&mut tls, &upstream, health, &ca_pem, &log);
            }
        });
        Mitm { url, seen, ca }
    }

    fn saw(&self, needle: &str) -> bool {
        let seen = self.seen.lock().unwrap();
        String::from_utf8_lossy(&seen).contains(needle)
    }

    fn requests(&self) -> usize {
        let seen = self.seen.lock().unwrap();
        String::from_utf8_lossy(&seen)
            .matches(" HTTP/1.1\r\n")
            .count()
    }
}

/// One request read from the laptop, sent on to the real server (its certificate not checked:
/// the proxy does not care), and its answer written back, the health answer treated as told.
fn relay(
    tls: &mut impl ReadWrite,
    upstream: &str,
    health: Health,
    ca_pem: &str,
    log: &Mutex<Vec<u8>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(&mut *tls);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    drop(reader);
    {
        let mut l = log.lock().unwrap();
        l.extend_from_slice(head.as_bytes());
        l.extend_from_slice(&body);
    }
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .provider(ureq::tls::TlsProvider::Rustls)
                .disable_verification(true)
                .build(),
        )
        .http_status_as_error(false)
        .build()
        .into();
    if let (Health::Replay(body, signature), true) = (health, path.starts_with("/v1/health")) {
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Ikd-Signature: {signature}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        tls.write_all(reply.as_bytes())?;
        tls.write_all(body)?;
        return tls.flush();
    }
    let url = format!("{upstream}{path}");
    let answer = if method == "POST" {
        agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(&body[..])
    } else {
        agent.get(&url).call()
    };
    let mut answer = answer.map_err(std::io::Error::other)?;
    let status = answer.status().as_u16();
    let signature = answer
        .headers()
        .get("x-ikd-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut out = answer
        .body_mut()
        .read_to_vec()
        .map_err(std::io::Error::other)?;
    if let (Health::SwapCa, true) = (health, path.starts_with("/v1/health")) {
        let mut h: serde_json::Value = serde_json::from_slice(&out).unwrap();
        h["tls_ca"] = ca_pem.into();
        out = serde_json::to_vec(&h).unwrap();
    }
    let mut reply = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        out.len()
    );
    if let Some(s) = signature {
        reply.push_str(&format!("X-Ikd-Signature: {s}\r\n"));
    }
    reply.push_str("\r\n");
    tls.write_all(reply.as_bytes())?;
    tls.write_all(&out)?;
    tls.flush()
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// The real district server: `server tls init`, `serve` on 127.0.0.1, a token and its id.
struct Office {
    data: PathBuf,
    child: Child,
    url: String,
}

impl Office {
    fn start(kit: &Kit) -> Office {
        let data = kit.path("kantor");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("config.toml"), "[server]\nthreads = 2\n").unwrap();
        let run = |args: &[&str]| {
            let out = self::cmd(&data, args).arg("--json").output().unwrap();
            assert!(out.status.success(), "{args:?}: {out:?}");
        };
        run(&["server", "tls", "init"]);
        let (child, url) = util::server::launch(
            cmd(&data, &["serve", "--listen", "127.0.0.1:0"]),
            &data.join("serve.log"),
        )
        .unwrap();
        assert!(url.starts_with("https://"), "{url}");
        Office { data, child, url }
    }

    fn token(&self) -> (String, String) {
        let out = cmd(&self.data, &["server", "token", "--json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            v["token"].as_str().unwrap().to_string(),
            v["server_id"].as_str().unwrap().to_string(),
        )
    }

    fn tokens_used(&self) -> i64 {
        rusqlite::Connection::open(self.data.join("district.db"))
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM tokens WHERE used_at IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap()
    }
}

impl Drop for Office {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cmd(data: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(BIN);
    c.arg("--data-dir")
        .arg(data)
        .arg("--config")
        .arg(data.join("config.toml"))
        .args(args)
        .env_remove("IKD_FIELD_HOME")
        .env_remove("IKD_FIELD_CONFIG")
        .env_remove("IKD_FIELD_LANG");
    c
}

fn enrolled_ca(kit: &Kit) -> i64 {
    rusqlite::Connection::open(kit.dir.join("field.db"))
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM meta WHERE key IN ('sync.server_ca', 'sync.server_id')",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn a_man_in_the_middle_never_gets_the_token() {
    let kit = Kit::new();
    std::fs::write(
        kit.dir.join("config.toml"),
        "[sync]\ntimeout_secs = 5\nmax_attempts = 1\n",
    )
    .unwrap();
    let office = Office::start(&kit);
    let (token, server_id) = office.token();
    for (health, code, words) in [
        // The genuine signed health, relayed: the laptop trusts the real CA, so the proxy's
        // certificate is refused on the next connection, before the token.
        (
            Health::Relay,
            5,
            "does not match that server's office certificate",
        ),
        // Its own CA put in the health: the signature fails, so the laptop does not take it.
        (
            Health::SwapCa,
            5,
            "hands out no office certificate signed by it",
        ),
    ] {
        let mitm = Mitm::start(&office.url, health);
        let a = [
            "enrol",
            "--server",
            &mitm.url,
            "--token",
            &token,
            "--expect-server-id",
            &server_id,
            "--json",
            "--lang",
            "en",
        ];
        let (out, _) = kit.fails(&a, code);
        let e = serde_json::from_str::<serde_json::Value>(&out).unwrap()["error"].clone();
        assert!(e["message"].as_str().unwrap().contains(words), "{e}");
        assert_eq!(e["details"]["token_spent"], false, "{e}");
        assert!(mitm.requests() >= 1, "the proxy relayed the health");
        assert!(mitm.saw("/v1/health"));
        assert!(!mitm.saw(&token), "the token reached the proxy");
        assert!(!mitm.saw("/v1/enrol"));
    }
    assert_eq!(office.tokens_used(), 0);
    assert_eq!(enrolled_ca(&kit), 0, "nothing stored");
    // The same token, straight to the server: enrolled (it was never spent).
    kit.ok(&[
        "enrol",
        "--server",
        &office.url,
        "--token",
        &token,
        "--expect-server-id",
        &server_id,
    ]);
    assert_eq!((office.tokens_used(), enrolled_ca(&kit)), (1, 2));

    // The control: a laptop made to trust the proxy's CA (sync.ca_file) enrols through it, and
    // the proxy sees the token. So the proxy is a working man in the middle, and the checks
    // above are what kept the token from it.
    let fooled = Kit::new();
    let mitm = Mitm::start(&office.url, Health::Relay);
    let ca = fooled.dir.join("proxy-ca.pem");
    std::fs::write(&ca, &mitm.ca).unwrap();
    std::fs::write(
        fooled.dir.join("config.toml"),
        format!("[sync]\nca_file = {:?}\n", ca.display().to_string()),
    )
    .unwrap();
    let (token2, _) = office.token();
    fooled.ok(&["enrol", "--server", &mitm.url, "--token", &token2]);
    assert!(mitm.saw(&token2));
    assert_eq!(office.tokens_used(), 2);
}

/// The signed health of `url` as sent (body, signature), read without checking its certificate.
fn signed_health(url: &str) -> (Vec<u8>, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .provider(ureq::tls::TlsProvider::Rustls)
                .disable_verification(true)
                .build(),
        )
        .build()
        .into();
    let mut r = agent.get(format!("{url}/v1/health")).call().unwrap();
    let sig = r.headers()["x-ikd-signature"].to_str().unwrap().to_string();
    (r.body_mut().read_to_vec().unwrap(), sig)
}

/// A rustls configuration presenting a certificate for 127.0.0.1 signed by the office CA whose
/// key is `ca_key` (PEM), named as `server tls init` names it.
fn signed_by_office_ca(ca_key: &str) -> rustls::ServerConfig {
    let key = rcgen::KeyPair::from_pem(ca_key).unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let id = hex::encode(&ikd_field::crypto::sha256(key.public_key_raw())[..8]);
    p.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("ikd-field CA Dinas {id}"),
    );
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, "ikd-field");
    let issuer = rcgen::Issuer::new(p, key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let der = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], der)
        .unwrap()
}

/// SECURITY.md's case: the office CA key was stolen, so the admin made a new CA. The thief kept
/// a signed health from before (it carries the old CA) and a certificate from the old CA: a
/// laptop enrolling by server id must see that the health is not a fresh answer (the server
/// signs the laptop's challenge into it) and send the thief nothing.
#[test]
fn an_old_signed_health_and_a_stolen_ca_key_get_no_token() {
    let kit = Kit::new();
    std::fs::write(
        kit.dir.join("config.toml"),
        "[sync]\ntimeout_secs = 5\nmax_attempts = 1\n",
    )
    .unwrap();
    let mut office = Office::start(&kit);
    let (old_body, old_sig) = signed_health(&office.url);
    let stolen = std::fs::read_to_string(office.data.join("tls/district-ca.key")).unwrap();
    let out = cmd(
        &office.data,
        &["server", "tls", "init", "--new-ca", "--json"],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let _ = office.child.kill();
    let _ = office.child.wait();
    let (child, url) = util::server::launch(
        cmd(&office.data, &["serve", "--listen", "127.0.0.1:0"]),
        &office.data.join("serve.log"),
    )
    .unwrap();
    (office.child, office.url) = (child, url);

    let (token, server_id) = office.token();
    let old_ca = serde_json::from_slice::<serde_json::Value>(&old_body).unwrap()["tls_ca"]
        .as_str()
        .unwrap()
        .to_string();
    let mitm = Mitm::start_with(
        &office.url,
        Health::Replay(old_body.leak(), old_sig.leak()),
        old_ca,
        signed_by_office_ca(&stolen),
    );
    let (out, _) = kit.fails(
        &[
            "enrol",
            "--server",
            &mitm.url,
            "--token",
            &token,
            "--expect-server-id",
            &server_id,
            "--json",
            "--lang",
            "en",
        ],
        1,
    );
    let e = serde_json::from_str::<serde_json::Value>(&out).unwrap()["error"].clone();
    assert!(e["message"].as_str().unwrap().contains("old copy"), "{e}");
    assert_eq!(e["details"]["token_spent"], false, "{e}");
    assert!(!mitm.saw(&token), "the token reached the thief");
    assert_eq!(office.tokens_used(), 0);
    assert_eq!(enrolled_ca(&kit), 0);
    // The real server answers the challenge: enrolled with the new CA.
    kit.ok(&[
        "enrol",
        "--server",
        &office.url,
        "--token",
        &token,
        "--expect-server-id",
        &server_id,
    ]);
}
