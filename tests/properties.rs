//! Property tests (proptest) over the three parsers that take untrusted input: the NIK parser,
//! the slip decoder, and the district server's batch decoder (through `ingest::ingest`, the
//! path every HTTP batch and `server import` line takes, with a real database). Case counts are
//! modest so `cargo test` (and CI) stays short; raise them with PROPTEST_CASES to search longer.
mod util;
use flate2::Compression;
use flate2::write::GzEncoder;
use ikd_field::crypto::KeyPair;
use ikd_field::domain::nik;
use ikd_field::protocol::{self, EnrolRequest};
use ikd_field::server::ingest::{self, Incoming};
use ikd_field::server::store::Store;
use ikd_field::server::{Limits, enrol};
use ikd_field::slip::payload::{Payload, Signed};
use proptest::prelude::*;
use serde_json::Value;
use std::io::Write;
use time::macros::date;
use util::server::TestDevice;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

const TODAY: time::Date = date!(2026 - 11 - 23);

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- NIK ---------------------------------------------------------------------------------

/// Existing kecamatan codes (6 digits) of a few provinces, for NIKs that must parse.
fn districts() -> Vec<String> {
    ["11", "17", "31", "35", "51", "94"]
        .iter()
        .flat_map(|p| ikd_field::domain::region::children(p))
        .flat_map(|r| ikd_field::domain::region::children(&r.code))
        .map(|d| d.code.clone())
        .collect()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn nik_parse_never_panics(s in "\\PC{0,40}", digits in "[0-9 ]{0,20}") {
        let _ = nik::parse(&s, TODAY);
        let _ = nik::parse(&digits, TODAY);
    }

    #[test]
    fn a_valid_nik_parses_back_to_its_parts(
        pick in any::<prop::sample::Index>(),
        year in 1930i32..=2025,
        ordinal in 1u16..=365,
        female in any::<bool>(),
        serial in 1u16..=9999,
    ) {
        let all = districts();
        let district = &all[pick.index(all.len())];
        let birth = time::Date::from_ordinal_date(year, ordinal).unwrap();
        let day = birth.day() + if female { 40 } else { 0 };
        let text = format!(
            "{district}{day:02}{:02}{:02}{serial:04}",
            u8::from(birth.month()),
            year % 100
        );
        let n = nik::parse(&text, TODAY).unwrap();
        prop_assert_eq!(&n.nik, &text);
        prop_assert_eq!(&n.district, district);
        prop_assert_eq!(&n.province, &district[..2]);
        prop_assert_eq!(n.birth_date, birth);
        prop_assert_eq!(n.sex == nik::Sex::Female, female);
        prop_assert_eq!(n.serial, serial);
        // Spaces typed between groups do not matter.
        let spaced = format!("{} {} {}", &text[..6], &text[6..12], &text[12..]);
        prop_assert_eq!(nik::parse(&spaced, TODAY).unwrap().nik, text);
    }

    #[test]
    fn impossible_dates_and_regions_are_refused(
        pick in any::<prop::sample::Index>(),
        day in prop_oneof![0u32..=0, 32u32..=40, 72u32..=99],
        month in prop_oneof![0u32..=0, 13u32..=99],
        good_day in 1u32..=28,
        good_month in 1u32..=12,
        province in "(0[0-9]|[2-9][0-9])",
    ) {
        let all = districts();
        let district = &all[pick.index(all.len())];
        let bad_day = format!("{district}{day:02}{good_month:02}800001");
        prop_assert!(nik::parse(&bad_day, TODAY).is_err(), "{}", bad_day);
        let bad_month = format!("{district}{good_day:02}{month:02}800001");
        prop_assert!(nik::parse(&bad_month, TODAY).is_err(), "{}", bad_month);
        let zero_serial = format!("{district}{good_day:02}{good_month:02}800000");
        prop_assert_eq!(nik::parse(&zero_serial, TODAY).unwrap_err().code, "nik_serial");
        let other = format!("{province}{}{good_day:02}{good_month:02}800001", &district[2..]);
        if ikd_field::domain::region::province(&province).is_none() {
            prop_assert_eq!(nik::parse(&other, TODAY).unwrap_err().code, "nik_province");
        }
    }
}

// ---- Slip payload ------------------------------------------------------------------------

fn slip_key() -> &'static KeyPair {
    static KEY: std::sync::OnceLock<KeyPair> = std::sync::OnceLock::new();
    KEY.get_or_init(|| KeyPair::generate().unwrap())
}

prop_compose! {
    fn payloads()(
        id in any::<[u8; 16]>(),
        secs in 1_600_000_000i64..2_000_000_000,
        village in "[1-9][0-9]{9}",
        nik in "[1-9][0-9]{15}",
        name in "[A-Z][A-Z .,'-]{0,60}",
    ) -> Payload {
        let at = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
        Payload::new(
            &uuid::Uuid::from_bytes(id).to_string(),
            &slip_key().id(),
            &ikd_field::timefmt::stamp(at),
            &village,
            &nik,
            &name,
        )
        .unwrap()
    }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn slip_decode_never_panics(
        text in "\\PC{0,120}",
        b45 in "[0-9A-Z $%*+./:-]{0,200}",
        bytes in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let _ = Signed::decode(&text);
        let _ = Signed::decode(&format!("IKD1:{b45}"));
        let _ = Signed::decode(&format!("IKD1:{}", base45::encode(&bytes)));
    }

    #[test]
    fn a_signed_slip_decodes_to_what_was_signed(p in payloads()) {
        let text = p.sign(slip_key());
        let s = Signed::decode(&text).unwrap();
        prop_assert_eq!(&s.payload, &p);
        prop_assert!(s.verify(&slip_key().public()).is_ok());
        let other = KeyPair::generate().unwrap();
        prop_assert!(s.verify(&other.public()).is_err());
    }

    #[test]
    fn any_changed_byte_fails(
        p in payloads(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let text = p.sign(slip_key());
        let mut bytes = base45::decode(&text["IKD1:".len()..]).unwrap();
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        let changed = format!("IKD1:{}", base45::encode(&bytes));
        if let Ok(s) = Signed::decode(&changed) {
            prop_assert!(s.verify(&slip_key().public()).is_err(), "byte {} changed", i);
        }
    }
}

// ---- The server's batch decoder ----------------------------------------------------------

/// A district database with one enrolled device, and the limits the properties aim at.
struct District {
    _dir: tempfile::TempDir,
    store: Store,
    key: KeyPair,
    device: TestDevice,
    limits: Limits,
}

impl District {
    fn new() -> District {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("district.db")).unwrap();
        let key = KeyPair::generate().unwrap();
        let device = TestDevice::new();
        let (token, _) = enrol::create_token(&store, "TIM UJI", 1).unwrap();
        let answer = enrol::enrol(
            &mut store,
            &key,
            &EnrolRequest::signed(
                &device.key,
                &token,
                &key.public_hex(),
                &device.officer,
                &device.team,
            ),
        )
        .unwrap();
        // Records travel sealed to the district's key, as the enrolment answer gives it.
        let seal = ikd_field::seal::parse_public_hex(&answer.seal_public_key).expect("seal key");
        device.seal_key.set(seal).unwrap();
        District {
            _dir: dir,
            store,
            key,
            device,
            limits: Limits {
                max_body_bytes: 256 * 1024,
                max_decompressed_bytes: 64 * 1024,
                max_batch_records: 50,
            },
        }
    }

    /// Ingests `body` as a batch signed by the enrolled device; a refusal must be a 4xx.
    fn ingest(&mut self, batch_id: &str, body: &[u8]) -> Result<ingest::Answer, u16> {
        let signature = B64.encode(self.device.key.sign(&protocol::signed_digest(body)));
        let inc = Incoming {
            device_id: &self.device.id,
            batch_id,
            signature: &signature,
            body,
        };
        match ingest::ingest(&mut self.store, &self.key, &self.limits, &inc) {
            Ok(a) => Ok(a),
            Err(r) => {
                assert!(
                    (400..500).contains(&r.status),
                    "refusals are the client's fault, never the server's: {r}"
                );
                Err(r.status)
            }
        }
    }

    /// A record of this synthetic citizen as a batch carries it (sealed), as JSON.
    fn wire_value(&mut self, p: &ikd_field::domain::validate::Input) -> Value {
        let r = self.device.record(p);
        serde_json::to_value(&self.device.wire(&[r])[0]).unwrap()
    }

    /// The JSON envelope of a batch around `records`.
    fn envelope(&self, batch_id: &str, records: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "protocol": 1, "batch_id": batch_id, "device_id": self.device.id,
            "created_at": ikd_field::timefmt::now_utc(), "records": records,
        }))
        .unwrap()
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn arbitrary_bytes_are_refused(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        gzipped in any::<bool>(),
    ) {
        let mut d = District::new();
        let body = if gzipped { gzip(&bytes) } else { bytes };
        let id = uuid::Uuid::now_v7().to_string();
        prop_assert!(d.ingest(&id, &body).is_err());
    }

    #[test]
    fn random_json_is_refused_or_answered_never_a_crash(v in json_value()) {
        let mut d = District::new();
        let id = uuid::Uuid::now_v7().to_string();
        // As the whole body, and as the records of a well-formed envelope.
        let whole = gzip(&serde_json::to_vec(&v).unwrap());
        prop_assert!(d.ingest(&id, &whole).is_err());
        let records = match v {
            Value::Array(a) => a,
            other => vec![other],
        };
        let n = records.len();
        let body = gzip(&d.envelope(&id, records));
        match d.ingest(&id, &body) {
            // One answer per record, each refused alone (none of these is a record).
            Ok(a) => {
                prop_assert_eq!(a.response.results.len(), n);
                prop_assert_eq!(a.response.summary.rejected, n);
            }
            Err(status) => prop_assert!(status == 400 || status == 413),
        }
    }

    #[test]
    fn a_damaged_real_record_is_rejected_alone(
        seed in 0u64..1_000_000,
        field in any::<prop::sample::Index>(),
        value in json_value(),
    ) {
        let mut d = District::new();
        let people = ikd_field::synth::citizens(seed, "1702", 2);
        let good = d.wire_value(&people[0]);
        let mut bad = d.wire_value(&people[1]);
        // Whatever fields a record has today: one of them gets a random value.
        let obj = bad.as_object_mut().unwrap();
        let key = obj.keys().nth(field.index(obj.len())).unwrap().clone();
        obj.insert(key, value);
        let id = uuid::Uuid::now_v7().to_string();
        let body = gzip(&d.envelope(&id, vec![good, bad]));
        let a = d.ingest(&id, &body).expect("a batch with one damaged record is answered");
        prop_assert_eq!(a.response.results.len(), 2);
        prop_assert_eq!(a.response.results[0].status, protocol::Outcome::Accepted);
    }

    #[test]
    fn truncated_gzip_is_refused(seed in 0u64..1_000_000, cut in any::<prop::sample::Index>()) {
        let mut d = District::new();
        let people = ikd_field::synth::citizens(seed, "1702", 3);
        let records = people
            .iter()
            .map(|p| d.wire_value(p))
            .collect();
        let id = uuid::Uuid::now_v7().to_string();
        let body = gzip(&d.envelope(&id, records));
        let short = &body[..cut.index(body.len())];
        prop_assert_eq!(d.ingest(&id, short).unwrap_err(), 400);
    }

    #[test]
    fn gzip_bombs_stop_at_the_limit(extra in 1usize..(192 * 1024), byte in any::<u8>()) {
        let mut d = District::new();
        let size = d.limits.max_decompressed_bytes as usize + extra;
        let bomb = gzip(&vec![byte; size]);
        prop_assert!(bomb.len() < size);
        let id = uuid::Uuid::now_v7().to_string();
        prop_assert_eq!(d.ingest(&id, &bomb).unwrap_err(), 413);
    }
}
