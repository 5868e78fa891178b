//! Forwarding a district's records to a province server (docs/protocol.md "Forwarding"), with
//! real `serve` processes: two districts of different regencies (synthetic citizens of Kepri),
//! their field devices syncing, each district forwarding to one province through the
//! fault-injecting proxy. Every record arrives upstream exactly once, conflicts and voids keep
//! their meaning, a second forward sends nothing, and the province's report shows both
//! regencies. Also: the relay rule (only a relay may send other devices' records), and `serve`
//! forwarding by itself when `[forward] to` is set.
mod netfault;
#[macro_use]
mod util;
use ikd_field::domain::Record;
use ikd_field::synth;
use netfault::{Fault, Proxy};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use util::server::{Server, TEST_CONFIG, TestDevice};

/// Fast retries for the forwarder, small batches so a pass has many of them.
const FORWARD: &str = "[forward]
timeout_secs = 2
max_attempts = 3
retry_base_ms = 20
retry_max_secs = 1
batch_records = 25
";

fn district_config(extra: &str) -> String {
    format!("{TEST_CONFIG}{FORWARD}{extra}")
}

/// A relay token of the province for a district.
fn relay_token(province: &Server, team: &str) -> String {
    let v = province.admin_json(&["token", "--relay", "--team", team]);
    assert_eq!(v["relay"], true);
    v["token"].as_str().unwrap().to_string()
}

/// What the district's devices did, for the checks upstream.
struct Made {
    /// Every record the district stored (its export), by id.
    stored: BTreeMap<String, Value>,
}

/// Two field devices syncing to `district`: activations of `regency`'s synthetic citizens,
/// the second device activating some of the first's citizens again (conflicts at the
/// district), voids of the first device's records, and `extra` activations of citizens of
/// another regency (accepted here, a conflict at the province when the other district has them).
fn field_work(
    district: &Server,
    seed: u64,
    regency: &str,
    extra: &[ikd_field::domain::validate::Input],
) -> Made {
    let mut a = TestDevice::enrolled(district);
    let mut b = TestDevice::enrolled(district);
    b.team = "TIM DUA".into();
    let people = synth::citizens(seed, regency, 70);
    let first: Vec<Record> = people[..60].iter().map(|p| a.record(p)).collect();
    for chunk in first.chunks(20) {
        a.batch(chunk).send_ok(district);
    }
    let voids: Vec<Record> = first[..4].iter().map(|r| a.void(r, "salah NIK")).collect();
    a.batch(&voids).send_ok(district);
    // Five citizens again on the other device (conflicts), ten new ones, the other regency's.
    let mut second: Vec<Record> = people[10..15].iter().map(|p| b.record(p)).collect();
    second.extend(people[60..70].iter().map(|p| b.record(p)));
    second.extend(extra.iter().map(|p| b.record(p)));
    let ans = b.batch(&second).send_ok(district);
    assert_eq!(ans["summary"]["conflict"], 5, "{ans}");
    let stored = district
        .records()
        .into_iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r))
        .collect();
    Made { stored }
}

/// Runs `server forward --json` on `district` until it exits 0; each run must exit 0 or 5
/// (province unreachable: nothing lost, run again). Returns the reports of the runs that finished.
fn forward_until_done(district: &Server, max_runs: usize) -> Value {
    for _ in 0..max_runs {
        let out = district.admin(&["forward", "--json"]);
        match out.status.code() {
            Some(0) => return serde_json::from_slice(&out.stdout).unwrap(),
            Some(5) => continue,
            other => panic!(
                "forward exited {other:?}:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
    panic!("forward did not finish in {max_runs} runs");
}

both_stores! {
fn two_districts_forward_through_faults_every_record_once() {
    let province = Server::start();
    // Targets for both regencies, so the province report has a row for each.
    let mut csv = synth_targets("2101", 10);
    csv.push_str(synth_targets("2171", 11).split_once('\n').unwrap().1);
    let csv_path = province.tmp.path().join("targets.csv");
    std::fs::write(&csv_path, csv).unwrap();
    province.admin_ok(&["targets", "import", csv_path.to_str().unwrap()]);

    let karimun = Server::start_with_config(&district_config(""));
    let batam = Server::start_with_config(&district_config(""));
    // Two Batam citizens are activated in Karimun too: the province keeps the first it gets.
    let batam_people = synth::citizens(31, "2171", 70);
    let k = field_work(&karimun, 21, "2101", &batam_people[20..22]);
    let b = field_work(&batam, 31, "2171", &[]);

    let proxy = Proxy::start(province.addr.parse().unwrap());
    // Pinned enrolment: another province's id is refused before the token is spent (exit 1,
    // nothing stored); the right id (Karimun) or full key (Batam) enrols with that same token.
    for (d, team, expect) in [
        (&karimun, "KAB KARIMUN", province.server_id.clone()),
        (&batam, "KOTA BATAM", province.server_public_key.clone()),
    ] {
        let token = relay_token(&province, team);
        let wrong = d.admin(&["forward", "enrol", "--to", &proxy.url, "--token", &token, "--expect-server-id", "0123456789abcdef"]);
        let err = String::from_utf8_lossy(&wrong.stderr);
        assert_eq!(wrong.status.code(), Some(1), "{err}");
        assert!(err.contains(&province.server_id) && err.contains("0123456789abcdef"), "{err}");
        assert_eq!(d.admin(&["forward", "status"]).status.code(), Some(2), "nothing stored");
        let enrolled = d.admin_json(&["forward", "enrol", "--to", &proxy.url, "--token", &token, "--expect-server-id", &expect]);
        assert_eq!(enrolled["province"]["server_id"], province.server_id.as_str());
    }
    use Fault::*;
    proxy.plan([
        DropRequest, Pass, DropAnswer, CutAnswer, ForgeSignature, Portal, Pass, DropAnswer,
        FlipAnswerByte, DropRequest, DropRequest, DropRequest, CutAnswer, Pass, ForgeSignature,
    ]);
    forward_until_done(&karimun, 20);
    forward_until_done(&batam, 20);
    assert_eq!(proxy.left(), 0, "every planned fault was met");

    // Every record upstream exactly once, with its own device, kind and state.
    let upstream = province.records();
    let ids: Vec<String> = upstream.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    let unique: BTreeSet<_> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), unique.len(), "a record is at the province twice");
    let mut expected: BTreeSet<String> = k.stored.keys().cloned().collect();
    expected.extend(b.stored.keys().cloned());
    assert_eq!(unique, expected);
    assert_eq!(ids.len(), k.stored.len() + b.stored.len());
    let by_id: BTreeMap<&str, &Value> = upstream.iter().map(|r| (r["id"].as_str().unwrap(), r)).collect();
    let mut cross_conflicts = 0;
    for made in [&k, &b] {
        for (id, at_district) in &made.stored {
            let up = by_id[id.as_str()];
            for field in ["device_id", "kind", "nik", "name", "phone", "village", "voids", "team"] {
                assert_eq!(up[field], at_district[field], "{field} of {id}");
            }
            if at_district["state"] == "conflict" {
                assert_eq!(up["state"], "conflict", "{id}: a district conflict stays one");
            } else if up["state"] == "conflict" {
                cross_conflicts += 1;
            }
            // Voids cancel the same targets upstream.
            assert_eq!(up["voided_by"], at_district["voided_by"], "voided_by of {id}");
        }
    }
    // The two Batam citizens activated in Karimun first: Batam's own activations conflict
    // (the province decides on its own), or Karimun's when Batam was forwarded first.
    assert_eq!(cross_conflicts, 2);
    // The origin devices are registered upstream as relayed (4 field devices), besides the relays.
    assert_eq!(province.count("SELECT COUNT(*) FROM devices WHERE relayed_by IS NOT NULL"), 4);
    assert_eq!(province.count("SELECT COUNT(*) FROM devices WHERE relay = 1"), 2);
    // `server devices` names the relay that brought each of them, not a placeholder key.
    let devices = province.admin_json(&["devices"])["devices"].as_array().unwrap().clone();
    let relays: BTreeMap<String, String> = devices.iter().filter(|d| d["relay"] == true)
        .map(|d| (d["id"].as_str().unwrap().to_string(), d["officer"].as_str().unwrap().to_string())).collect();
    assert_eq!(relays.len(), 2);
    let relayed: Vec<&Value> = devices.iter().filter(|d| !d["relayed_by"].is_null()).collect();
    assert_eq!(relayed.len(), 4);
    let table = province.admin_ok(&["devices"]);
    for d in relayed {
        let via = d["relayed_by"].as_str().unwrap();
        assert!(d["public_key"].is_null(), "{d}");
        assert_eq!(d["relayed_by_name"].as_str(), Some(relays[via].as_str()), "{d}");
        let line = table.lines().find(|l| l.starts_with(d["id"].as_str().unwrap())).unwrap();
        assert!(line.contains(via) && line.contains(&relays[via]), "{line}");
    }
    assert!(!table.contains("relayed:"), "{table}");

    // A second forward sends nothing.
    for d in [&karimun, &batam] {
        let again = forward_until_done(d, 3);
        assert_eq!(again["report"]["batches"], 0, "{again}");
        assert_eq!(again["report"]["backlog"], 0, "{again}");
    }
    assert_eq!(province.records().len(), ids.len());

    // The province's report shows both regencies, with what each forwarded.
    let out = province.admin_ok(&["report", "--level", "kabupaten", "--format", "json"]);
    let report: Value = serde_json::from_str(&out).unwrap();
    let rows: BTreeMap<String, Value> = report["rows"].as_array().unwrap().iter()
        .map(|r| (r["code"].as_str().unwrap().to_string(), r.clone())).collect();
    let live_upstream = |regency: &str| upstream.iter().filter(|r| {
        r["regency"] == regency && r["kind"] == "activation" && r["state"] == "accepted" && r["voided_by"].is_null()
    }).count() as u64;
    for regency in ["2101", "2171"] {
        let row = &rows[regency];
        assert!(row["live"].as_u64().unwrap() > 40, "{row}");
        assert_eq!(row["live"].as_u64().unwrap(), live_upstream(regency), "{row}");
        assert!(row["target"].as_u64().is_some(), "{row}");
    }
}
}

/// The targets CSV of a regency (its villages), with a header row.
fn synth_targets(regency: &str, seed: u64) -> String {
    ikd_field::server::fill::targets_csv(seed, regency, Some(("100000", "30%")))
}

#[test]
fn only_a_relay_may_send_other_devices_records() {
    let province = Server::start();
    let people = synth::citizens(5, "2171", 6);
    // An ordinary device sending another device's record: device_mismatch, as before.
    let mut field = TestDevice::enrolled(&province);
    let mut other = TestDevice::new();
    let foreign = other.record(&people[0]);
    let ans = field
        .batch(std::slice::from_ref(&foreign))
        .send_ok(&province);
    assert_eq!(ans["results"][0]["reason"], "device_mismatch", "{ans}");
    let own = field.record(&people[1]);
    assert_eq!(
        field.batch(&[own]).send_ok(&province)["summary"]["accepted"],
        1
    );

    // A relay may: the origin device is registered as relayed.
    let relay = TestDevice::new();
    let r = relay.enrol(&province.url, &relay_token(&province, "KOTA BATAM"));
    assert_eq!(
        (r.status, r.json()["relay"].clone()),
        (200, Value::Bool(true))
    );
    let ans = relay
        .batch(std::slice::from_ref(&foreign))
        .send_ok(&province);
    assert_eq!(ans["summary"]["accepted"], 1, "{ans}");
    let void = other.void(&foreign, "salah");
    let ans = relay.batch(&[void]).send_ok(&province);
    assert_eq!(
        ans["summary"]["accepted"], 1,
        "a relayed void of a relayed record: {ans}"
    );
    // The relay cannot pass an enrolled device's records off as its own, nor void them.
    let fake = field.record(&people[2]);
    let ans = relay.batch(&[fake]).send_ok(&province);
    assert_eq!(ans["results"][0]["reason"], "device_mismatch", "{ans}");

    // The relayed device cannot send by itself, nor enrol here.
    let mut other_direct = other;
    let own = other_direct.record(&people[3]);
    let r = other_direct.batch(&[own]).send(&province.url).unwrap();
    assert_eq!((r.status, r.code()), (401, "device_unknown".to_string()));
    let r = other_direct.enrol(&province.url, &province.token("TIM"));
    assert_eq!((r.status, r.code()), (403, "device_relayed".to_string()));

    // Another relay cannot claim the first relay's device.
    let relay2 = TestDevice::new();
    assert_eq!(
        relay2
            .enrol(&province.url, &relay_token(&province, "KAB KARIMUN"))
            .status,
        200
    );
    let mut again = TestDevice::new();
    again.id = other_direct.id.clone();
    let theirs = again.record(&people[4]);
    let ans = relay2.batch(&[theirs]).send_ok(&province);
    assert_eq!(ans["results"][0]["reason"], "device_mismatch", "{ans}");

    // A district without a relay token is told so at enrolment, and nothing is stored.
    let district = Server::start_with_config(&district_config(""));
    let out = district.admin(&[
        "forward",
        "enrol",
        "--to",
        &province.url,
        "--token",
        &province.token("KAB"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = district.admin(&["forward", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "not enrolled: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

both_stores! {
fn serve_forwards_by_itself_when_forward_to_is_set() {
    let province = Server::start();
    let district = Server::start_with_config(&district_config(&format!(
        "to = {:?}\nevery_secs = 1\n",
        province.url
    )));
    // Enrolled while serve runs: its forwarder picks it up on its next pass.
    district.admin_ok(&["forward", "enrol", "--to", &province.url, "--token", &relay_token(&province, "KOTA BATAM")]);
    let mut dev = TestDevice::enrolled(&district);
    let people = synth::citizens(77, "2171", 60);
    let recs: Vec<Record> = people.iter().map(|p| dev.record(p)).collect();
    for chunk in recs.chunks(30) {
        dev.batch(chunk).send_ok(&district);
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if province.stats()["records"] == 60 {
            break;
        }
        assert!(Instant::now() < deadline, "not forwarded:\n{}", district.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let up: BTreeSet<String> = province.records().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(up, recs.iter().map(|r| r.id.clone()).collect());
    let status = district.admin_json(&["forward", "status"]);
    assert_eq!(status["backlog"], 0, "{status}");
    assert!(district.log().contains("forward"), "{}", district.log());
}
}

/// A province that refuses a district's records (here: the district's relay downgraded at the
/// province, so every other device's record is `device_mismatch`) stops forwarding with exit 1
/// and says so; the cursor does not move past them. Once the relay is restored, the next forward
/// delivers every record: none was skipped.
#[test]
fn records_the_province_refuses_are_never_skipped() {
    let province = Server::start();
    let district = Server::start_with_config(&district_config(""));
    let made = field_work(&district, 47, "2171", &[]);
    let out = district.admin(&[
        "forward",
        "enrol",
        "--to",
        &province.url,
        "--token",
        &relay_token(&province, "KOTA BATAM"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let relay = |on: bool| {
        let db = rusqlite::Connection::open(&province.db).unwrap();
        let n = db
            .execute(
                "UPDATE devices SET relay = ?1 WHERE relay != ?1 AND relayed_by IS NULL
                 AND id IN (SELECT used_by FROM tokens WHERE relay = 1)",
                [i64::from(on)],
            )
            .unwrap();
        assert_eq!(n, 1, "one relay device");
    };
    relay(false);
    let out = district.admin(&["forward", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("device_mismatch") && said.contains("no record was skipped")
            || said.contains("tidak ada catatan yang dilewati"),
        "{said}"
    );
    assert_eq!(province.records().len(), 0);
    let status = district.admin_json(&["forward", "status"]);
    assert!(
        status["backlog"].as_i64().unwrap() >= made.stored.len() as i64,
        "{status}"
    );

    relay(true);
    forward_until_done(&district, 3);
    let upstream: BTreeSet<String> = province
        .records()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let stored: BTreeSet<String> = made.stored.keys().cloned().collect();
    assert_eq!(upstream, stored);
}

/// `server forward enrol` reaches an HTTPS province through the same trust as `server forward`:
/// `forward.ca_file`. The province serves a certificate of its own CA (made here with rcgen);
/// without `ca_file` the district's enrolment is refused on the certificate and nothing is
/// stored, with it the district enrols and forwards its records over HTTPS.
#[test]
fn enrol_and_forward_trust_an_https_province_through_forward_ca_file() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    // The province's database and key (its admin commands), served over HTTPS by a second
    // `serve` on the same database.
    let province = Server::start();
    let dir = province.tmp.path();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = dir.join("province-ca.pem");
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &Issuer::new(ca_params, ca_key))
        .unwrap();
    let (cert, key) = (dir.join("province.pem"), dir.join("province.key.pem"));
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    let tls_config = dir.join("province-tls.toml");
    std::fs::write(
        &tls_config,
        format!("[server]\nthreads = 2\ntls_cert = {cert:?}\ntls_key = {key:?}\n"),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(util::BIN);
    cmd.arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--config")
        .arg(&tls_config)
        .args(["serve", "--listen", "127.0.0.1:0", "--db", &province.db_arg])
        .env_remove("IKD_FIELD_HOME")
        .env_remove("IKD_FIELD_CONFIG");
    let (child, https) = util::server::launch(cmd, &dir.join("province-tls.log")).unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _tls = Kill(child);
    assert!(https.starts_with("https://"), "{https}");

    let token = relay_token(&province, "KAB KARIMUN");
    let untrusting = Server::start_with_config(&district_config(""));
    let refused = untrusting.admin(&["forward", "enrol", "--to", &https, "--token", &token]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{err}");
    assert!(
        err.to_lowercase().contains("sertifikat") || err.to_lowercase().contains("certificate"),
        "{err}"
    );
    assert_eq!(
        untrusting.admin(&["forward", "status"]).status.code(),
        Some(2),
        "nothing stored"
    );

    let district = Server::start_with_config(&district_config(&format!("ca_file = {ca:?}\n")));
    let enrolled = district.admin_json(&["forward", "enrol", "--to", &https, "--token", &token]);
    assert_eq!(
        enrolled["province"]["server_id"],
        province.server_id.as_str()
    );
    let mut laptop = TestDevice::enrolled(&district);
    let records: Vec<Record> = synth::citizens(41, "2101", 5)
        .iter()
        .map(|p| laptop.record(p))
        .collect();
    assert_eq!(
        laptop.batch(&records).send_ok(&district)["summary"]["accepted"],
        5
    );
    forward_until_done(&district, 5);
    assert_eq!(province.count("SELECT COUNT(*) FROM records"), 5);
}
