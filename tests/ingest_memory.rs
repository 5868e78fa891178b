//! How much heap one large batch holds at once while the server ingests it (DESIGN §8: the
//! server stays under 30 MB at the largest batch it accepts). `server::ingest::ingest` runs
//! in-process on a SQLite store under a counting allocator; the peak of live heap bytes during
//! the call, above what was live before it, is the batch's own working memory.
use ikd_field::crypto::KeyPair;
use ikd_field::domain::{Kind, Record, validate};
use ikd_field::protocol::{self, EnrolRequest, Outcome, WireRecord};
use ikd_field::server::ingest::{self, Incoming};
use ikd_field::server::store::Store;
use ikd_field::server::{Limits, enrol};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes live now and the most live since the last reset.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is passed to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE.fetch_sub(l.size(), Ordering::Relaxed);
            grew(new);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const RECORDS: usize = 5000;

/// A sealed 5,000-record batch of synthetic activations (about 0.7 MB of gzip, 2.1 MB of
/// JSON) from an enrolled device: (gzip body, signature, batch id).
fn batch(server: &KeyPair, device: &KeyPair, seed: u64) -> (Vec<u8>, String, String) {
    use base64::Engine;
    let today = time::OffsetDateTime::now_utc().date();
    let seal_key = ikd_field::seal::OpenKey::of_server(server).public();
    let records: Vec<WireRecord> = ikd_field::synth::citizens(seed, "1702", RECORDS)
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let v = validate::activation(p, today).unwrap();
            let r = Record {
                id: uuid::Uuid::now_v7().to_string(),
                seq: i as i64 + 1,
                device_id: device.id(),
                officer: "BUDI".into(),
                team: "TIM 1".into(),
                recorded_at: ikd_field::timefmt::now_utc(),
                kind: Kind::Activation,
                village: v.village,
                nik: v.nik.nik,
                name: v.name,
                phone: v.phone,
                email: v.email,
                voids: None,
                reason: None,
                warnings: vec![],
            };
            WireRecord::seal(&r, &seal_key).expect("a validated record seals")
        })
        .collect();
    let id = uuid::Uuid::now_v7().to_string();
    let body = protocol::BatchBody {
        protocol: protocol::VERSION,
        batch_id: id.clone(),
        device_id: device.id(),
        created_at: ikd_field::timefmt::now_utc(),
        records,
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    serde_json::to_writer(&mut gz, &body).unwrap();
    let gz = gz.finish().unwrap();
    let sig = base64::engine::general_purpose::STANDARD
        .encode(device.sign(&protocol::signed_digest(&gz)));
    (gz, sig, id)
}

/// The heap a 5,000-record batch holds at its peak stays under 10 MB (7.6 MB measured). Before
/// 2026-11-23 ingest held 17 MB for it: the JSON text until the answer was sent, the opened
/// records with both their raw and validated fields, the rows to write built all at once, and
/// vectors grown by doubling.
#[test]
fn a_large_batch_is_ingested_within_a_bounded_heap() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("d.db")).unwrap();
    let server = KeyPair::generate().unwrap();
    let device = KeyPair::generate().unwrap();
    let (token, _) = enrol::create_token(&store, "", 1).unwrap();
    let req = EnrolRequest::signed(&device, &token, &server.public_hex(), "BUDI", "TIM 1");
    enrol::enrol(&mut store, &server, &req).unwrap();
    let limits = Limits {
        max_body_bytes: 16 << 20,
        max_decompressed_bytes: 64 << 20,
        max_batch_records: RECORDS,
    };
    ikd_field::server::limit_malloc_arenas();
    let mut peaks = Vec::new();
    // Twice: the second batch runs on a connection whose statements are prepared and whose
    // page cache is warm, as a long-running server's are.
    for seed in [1, 2, 3, 4] {
        let (body, sig, id) = batch(&server, &device, seed);
        let device_id = device.id();
        let inc = Incoming {
            device_id: &device_id,
            batch_id: &id,
            signature: &sig,
            body: &body,
        };
        let before = LIVE.load(Ordering::SeqCst);
        PEAK.store(before, Ordering::SeqCst);
        let answer = ingest::ingest(&mut store, &server, &limits, &inc).unwrap();
        let peak = PEAK.load(Ordering::SeqCst) - before;
        assert_eq!(answer.response.results.len(), RECORDS);
        assert!(
            answer
                .response
                .results
                .iter()
                .all(|r| r.status != Outcome::Rejected),
            "{:?}",
            answer.response.summary
        );
        eprintln!(
            "batch {seed}: {} B of gzip ({} B of JSON), peak heap during ingest {:.1} MB",
            body.len(),
            u32::from_le_bytes(*body.last_chunk::<4>().unwrap()),
            peak as f64 / 1e6
        );
        peaks.push(peak);
    }
    let peak = peaks.into_iter().max().unwrap();
    assert!(
        peak < 10_000_000,
        "ingesting {RECORDS} records held {peak} bytes of heap at once"
    );
}
