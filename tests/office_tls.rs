//! Office setup end to end: `server tls init` makes the district CA and the server certificate,
//! `serve` uses them on its own (HTTPS, no `tls_cert` in config.toml), and a laptop with no
//! `ca_file` enrols by the server id the admin hands over: it learns the CA from the signed
//! answers and from then on trusts exactly it. A certificate from another CA is refused with
//! nothing lost; a wrong server id is refused before the token is spent; the old way (an
//! explicit `sync.ca_file`) still works.
mod util;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use util::{BIN, Kit};

/// A district server's data directory, config and database.
struct Office {
    data: PathBuf,
    config: PathBuf,
    db: PathBuf,
}

impl Office {
    fn new(root: &Path, name: &str) -> Office {
        let data = root.join(name);
        std::fs::create_dir_all(&data).unwrap();
        let config = data.join("config.toml");
        std::fs::write(&config, "[server]\nthreads = 2\n").unwrap();
        Office {
            db: data.join("district.db"),
            data,
            config,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--data-dir")
            .arg(&self.data)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("IKD_FIELD_HOME")
            .env_remove("IKD_FIELD_CONFIG")
            .env_remove("IKD_FIELD_LANG");
        c
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.cmd(args).arg("--json").output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `server tls init` with its default names and addresses.
    fn tls_init(&self) -> serde_json::Value {
        self.json(&["server", "tls", "init", "--db", self.db.to_str().unwrap()])
    }

    /// `serve` on a free port of 127.0.0.1; must come up on https.
    fn serve(&self) -> Served {
        self.serve_on("127.0.0.1")
    }

    /// `serve` on a free port of `ip`; must come up on https.
    fn serve_on(&self, ip: &str) -> Served {
        let mut cmd = self.cmd(&["serve", "--listen", &format!("{ip}:0"), "--db"]);
        cmd.arg(&self.db);
        let (child, url) = util::server::launch(cmd, &self.data.join("serve.log")).unwrap();
        assert!(url.starts_with(&format!("https://{ip}:")), "{url}");
        Served { child, url }
    }

    /// A token and the server id printed with it.
    fn token(&self) -> (String, String) {
        let v = self.json(&["server", "token", "--db", self.db.to_str().unwrap()]);
        (
            v["token"].as_str().unwrap().to_string(),
            v["server_id"].as_str().unwrap().to_string(),
        )
    }

    fn tokens_used(&self) -> i64 {
        self.query("SELECT COUNT(*) FROM tokens WHERE used_at IS NOT NULL")
    }

    fn records(&self) -> i64 {
        self.query("SELECT COUNT(*) FROM records")
    }

    fn query(&self, sql: &str) -> i64 {
        rusqlite::Connection::open(&self.db)
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    }
}

struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn set_sync_config(k: &Kit, extra: &str) {
    std::fs::write(
        k.dir.join("config.toml"),
        format!(
            "[sync]\ntimeout_secs = 5\nmax_attempts = 2\nretry_base_ms = 20\nretry_max_secs = 1\n{extra}\n"
        ),
    )
    .unwrap();
}

fn pending(k: &Kit) -> i64 {
    k.json(&["status"])["sync"]["pending"].as_i64().unwrap()
}

/// The office CA the laptop stored at enrolment.
fn stored_ca(k: &Kit) -> String {
    rusqlite::Connection::open(k.dir.join("field.db"))
        .unwrap()
        .query_row(
            "SELECT COALESCE((SELECT value FROM meta WHERE key = 'sync.server_ca'), '')",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn error_of(out: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(out).unwrap()["error"].clone()
}

#[test]
fn office_setup_enrols_by_server_id_and_refuses_another_certificate() {
    let kit = Kit::new();
    let root = kit.path("offices");
    let office = Office::new(&root, "kantor");
    let made = office.tls_init();
    assert_eq!(made["new_ca"], true, "{made}");
    assert_eq!(made["restart_server"], false, "{made}");
    assert!(
        made["ips"]
            .as_array()
            .unwrap()
            .contains(&"127.0.0.1".into())
    );
    let served = office.serve();
    let (token, server_id) = office.token();
    set_sync_config(&kit, "");
    let enrol = |extra: &[&str]| {
        let mut a = vec!["enrol", "--server", &served.url, "--token", &token];
        a.extend_from_slice(extra);
        a.extend(["--json", "--lang", "en"]);
        a.into_iter().map(str::to_string).collect::<Vec<_>>()
    };

    // No server id: the office certificate is unknown to this laptop, so it is refused, in
    // plain words that say what to ask for; the token is not spent.
    let no_id = enrol(&[]);
    let (out, _) = kit.fails(&args(&no_id), 2);
    let e = error_of(&out);
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("needs the server id"), "{msg}");
    assert!(e["hint"].as_str().unwrap().contains("--expect-server-id"));
    assert_eq!(e["details"]["token_spent"], false);

    // A wrong server id: refused before the token is spent.
    let wrong = enrol(&["--expect-server-id", "0123456789abcdef"]);
    let (out, _) = kit.fails(&args(&wrong), 1);
    assert!(
        error_of(&out)["message"]
            .as_str()
            .unwrap()
            .contains("not the expected one"),
        "{out}"
    );
    assert_eq!(office.tokens_used(), 0);
    assert_eq!(stored_ca(&kit), "");

    // The right server id, no ca_file: enrolled, and the CA of `server tls init` is stored.
    let right = enrol(&["--expect-server-id", &server_id]);
    kit.ok(&args(&right));
    let ca = std::fs::read_to_string(office.data.join("tls/district-ca.pem")).unwrap();
    assert_eq!(stored_ca(&kit).trim(), ca.trim());

    // Records go over HTTPS with no config edit.
    let people = ikd_field::synth::citizens(11, "1702", 5);
    for i in 0..3 {
        kit.record_synthetic(&people, i);
    }
    let r = kit.json(&["sync"]);
    assert_eq!(r["summary"]["accepted"], 3, "{r}");
    assert_eq!(office.records(), 3);
    drop(served);

    // The same server behind a certificate from another CA (an interception proxy, or a server
    // set up again elsewhere): refused in plain words, nothing lost.
    let other = Office::new(&root, "lain");
    other.tls_init();
    for f in ["server.pem", "server.key"] {
        std::fs::copy(
            other.data.join("tls").join(f),
            office.data.join("tls").join(f),
        )
        .unwrap();
    }
    let foreign = office.serve();
    for i in 3..5 {
        kit.record_synthetic(&people, i);
    }
    let (_, err) = kit.fails(&["sync", "--server", &foreign.url], 5);
    assert!(err.contains("sertifikat server tidak dikenal"), "{err}");
    assert!(err.contains("Tidak ada yang hilang"), "{err}");
    assert!(err.contains("daftarkan laptop lagi"), "{err}");
    assert_eq!(pending(&kit), 2);
    assert_eq!(office.records(), 3);
    // Enrolling through it: the signed health names the right server and its CA, but the
    // certificate presented is not from that CA, so the token is never sent.
    let newcomer = Kit::new();
    set_sync_config(&newcomer, "");
    let (token2, _) = office.token();
    let (out, _) = newcomer.fails(
        &[
            "enrol",
            "--server",
            &foreign.url,
            "--token",
            &token2,
            "--expect-server-id",
            &server_id,
            "--json",
            "--lang",
            "en",
        ],
        5,
    );
    let e = error_of(&out);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("token is not spent"),
        "{e}"
    );
    assert_eq!(e["details"]["certificate"], true, "{e}");
    assert_eq!(office.tokens_used(), 1, "only the first laptop's token");
    assert_eq!(stored_ca(&newcomer), "");
    drop(foreign);

    // `server tls init` again (a new address, say): the CA is kept, so the laptop syncs on.
    let again = office.tls_init();
    assert_eq!(
        (&again["new_ca"], &again["restart_server"]),
        (&false.into(), &true.into())
    );
    assert_eq!(again["ca_sha256"], made["ca_sha256"]);
    let reissued = office.serve();
    let r = kit.json(&["sync", "--server", &reissued.url]);
    assert_eq!(r["summary"]["accepted"], 2, "{r}");
    assert_eq!((pending(&kit), office.records()), (0, 5));
}

/// The way before `server tls init` trusted enrolment: the CA file given to the laptop in
/// `sync.ca_file`, no server id. It still works against the office certificate, and stores no
/// office CA (the laptop keeps trusting its ca_file).
#[test]
fn an_explicit_ca_file_still_works_with_the_office_certificate() {
    let kit = Kit::new();
    let office = Office::new(&kit.path("offices"), "kantor");
    office.tls_init();
    let served = office.serve();
    let (token, _) = office.token();
    let ca = office.data.join("tls/district-ca.pem");
    set_sync_config(&kit, &format!("ca_file = {:?}", ca.display().to_string()));
    kit.ok(&["enrol", "--server", &served.url, "--token", &token]);
    assert_eq!(stored_ca(&kit), "");
    let people = ikd_field::synth::citizens(12, "1702", 2);
    for i in 0..2 {
        kit.record_synthetic(&people, i);
    }
    let r = kit.json(&["sync"]);
    assert_eq!(r["summary"]["accepted"], 2, "{r}");
    assert_eq!(office.records(), 2);
}

/// The office CA of `office`, rebuilt from its key as `server tls init` names it, to sign a
/// certificate of the test's own (an expired one).
fn office_issuer(office: &Office) -> rcgen::Issuer<'static, rcgen::KeyPair> {
    let key = std::fs::read_to_string(office.data.join("tls/district-ca.key")).unwrap();
    let key = rcgen::KeyPair::from_pem(&key).unwrap();
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
    rcgen::Issuer::new(p, key)
}

/// Enrolling by server id, once the office CA is taken from the signed health, a certificate
/// refused under it is not fixed by `sync.ca_file` (the generic advice): the laptop used an
/// address the office certificate is not for, or the certificate is past its end. The words
/// say so and what the admin does; the token is never sent.
#[test]
fn a_refused_office_certificate_says_what_to_do_and_spends_no_token() {
    let kit = Kit::new();
    let office = Office::new(&kit.path("offices"), "kantor");
    office.tls_init();
    set_sync_config(&kit, "");
    let (token, server_id) = office.token();
    let enrol = |url: &str| {
        let a = [
            "enrol",
            "--server",
            url,
            "--token",
            &token,
            "--expect-server-id",
            &server_id,
            "--json",
            "--lang",
            "en",
        ];
        let (out, _) = kit.fails(&a, 5);
        error_of(&out)
    };
    let check = |e: &serde_json::Value, why: &str| {
        let msg = e["message"].as_str().unwrap();
        assert!(msg.contains(why), "{e}");
        assert!(msg.contains("office certificate"), "{e}");
        let hint = e["hint"].as_str().unwrap();
        assert!(hint.contains("server tls init"), "{e}");
        assert!(!hint.contains("ca_file"), "{e}");
        assert_eq!(e["details"]["token_spent"], false, "{e}");
    };

    // 127.0.0.2 is this machine too, but not an address the certificate is for.
    let other_address = office.serve_on("127.0.0.2");
    check(&enrol(&other_address.url), "for another name");
    drop(other_address);

    // A certificate from the right CA, for the right address, past its end.
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let leaf = p.signed_by(&leaf_key, &office_issuer(&office)).unwrap();
    let tls = office.data.join("tls");
    std::fs::write(tls.join("server.pem"), leaf.pem()).unwrap();
    std::fs::write(tls.join("server.key"), leaf_key.serialize_pem()).unwrap();
    let expired = office.serve();
    check(&enrol(&expired.url), "expired");
    assert_eq!(office.tokens_used(), 0);
    assert_eq!(stored_ca(&kit), "");
}

/// `server tls init --new-ca` after laptops enrolled (a stolen CA key, say): the admin is told
/// to restart the server and enrol every laptop again; a laptop's sync is then refused in plain
/// words with its records kept, and enrolling again with a new token and the server id moves it
/// to the new CA.
#[test]
fn a_new_ca_asks_every_laptop_to_enrol_again_and_loses_nothing() {
    let kit = Kit::new();
    let office = Office::new(&kit.path("offices"), "kantor");
    let first = office.tls_init();
    set_sync_config(&kit, "");
    let (token, server_id) = office.token();
    let served = office.serve();
    let enrol = |token: &str| {
        kit.ok(&[
            "enrol",
            "--server",
            &served.url,
            "--token",
            token,
            "--expect-server-id",
            &server_id,
        ])
    };
    enrol(&token);
    drop(served);

    let out = office
        .cmd(&["server", "tls", "init", "--new-ca", "--lang", "en", "--db"])
        .arg(&office.db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("until it is restarted"), "{text}");
    assert!(text.contains("must enrol again with a new token"), "{text}");
    let ca = std::fs::read_to_string(office.data.join("tls/district-ca.pem")).unwrap();
    assert_ne!(stored_ca(&kit).trim(), ca.trim());

    let served = office.serve();
    let people = ikd_field::synth::citizens(13, "1702", 2);
    kit.record_synthetic(&people, 0);
    let (_, err) = kit.fails(&["sync", "--server", &served.url], 5);
    assert!(err.contains("sertifikat server tidak dikenal"), "{err}");
    assert!(err.contains("daftarkan laptop lagi"), "{err}");
    assert_eq!((pending(&kit), office.records()), (1, 0));

    let (token2, _) = office.token();
    kit.ok(&[
        "enrol",
        "--server",
        &served.url,
        "--token",
        &token2,
        "--expect-server-id",
        &server_id,
    ]);
    assert_eq!(stored_ca(&kit).trim(), ca.trim());
    assert_ne!(first["ca_sha256"], office.tls_init()["ca_sha256"]);
    let r = kit.json(&["sync", "--server", &served.url]);
    assert_eq!(r["summary"]["accepted"], 1, "{r}");
    assert_eq!((pending(&kit), office.records()), (0, 1));
}
