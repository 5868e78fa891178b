//! Decoding a batch body: gunzip within the limits, the JSON, each record's seal opened (on
//! threads for a large batch), one malformed record kept apart to be rejected alone.
use super::record::{Item, Opened};
use crate::protocol::ErrorCode;
use crate::protocol::{self};
use crate::server::{Limits, Refusal};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::io::Read;

pub(super) fn too_large(limits: &Limits) -> Refusal {
    Refusal::new(
        413,
        ErrorCode::BodyTooLarge,
        format!(
            "the body is larger than {} bytes; send smaller batches (sync --batch-size)",
            limits.max_body_bytes
        ),
    )
}

/// Deflate expands at most 1032-fold.
pub(super) const MAX_DEFLATE_RATIO: u64 = 1032;

/// Decompresses with a hard cap: a decompression bomb stops at `max` + 1 bytes.
pub(super) fn gunzip(body: &[u8], max: u64) -> Result<Vec<u8>, Refusal> {
    // Sized by the length the gzip trailer states (ISIZE, RFC 1952; capped, since it is only a
    // hint) instead of growing by doubling, which left up to half the buffer unused.
    let stated = body
        .last_chunk::<4>()
        .map_or(0, |n| u64::from(u32::from_le_bytes(*n)));
    let cap = stated
        .min(max.saturating_add(1))
        .min(body.len() as u64 * MAX_DEFLATE_RATIO);
    let mut out = Vec::with_capacity(cap as usize);
    let mut dec = flate2::read::GzDecoder::new(body).take(max.saturating_add(1));
    dec.read_to_end(&mut out).map_err(|e| {
        Refusal::new(
            400,
            ErrorCode::BadGzip,
            format!("the body is not valid gzip: {e}"),
        )
    })?;
    if out.len() as u64 > max {
        return Err(Refusal::new(
            413,
            ErrorCode::DecompressedTooLarge,
            format!("the batch expands past {max} bytes; send smaller batches"),
        ));
    }
    Ok(out)
}

pub(super) struct Envelope {
    pub(super) protocol: u32,
    pub(super) batch_id: String,
    pub(super) device_id: String,
    /// In order, in the opening threads' parts.
    pub(super) records: Vec<Vec<Item>>,
}

/// Decodes the batch JSON and opens each record's seal (docs/sealing.md) into the plaintext
/// [`Record`] that the per-record checks below work on. Opening happens here, before the write
/// lock, so the X25519 work of a batch never holds up other devices' transactions.
pub(super) fn parse_batch(
    json: &[u8],
    seal: &crate::seal::OpenKey,
    today: time::Date,
    max_records: usize,
) -> Result<Envelope, Refusal> {
    // The record count is checked before any seal is opened: opening is the costly part (an
    // X25519 operation per record), and a batch over the limit is refused whole anyway.
    let too_many = |n: usize| {
        Refusal::new(
            413,
            ErrorCode::TooManyRecords,
            format!("{n} records in one batch; at most {max_records}"),
        )
    };
    // …and while the JSON is read: past the limit the parse stops, so a body of 150,000 tiny
    // records never becomes 150,000 records in memory.
    CAP.with(|c| c.set(max_records));
    let over = |e: &serde_json::Error| e.to_string().contains(OVER_CAP);
    match serde_json::from_slice::<CappedBody<protocol::WireRecord>>(json) {
        Err(e) if over(&e) => return Err(too_many(max_records + 1)),
        Err(_) => {}
        Ok(b) => {
            return Ok(Envelope {
                protocol: b.protocol,
                batch_id: b.batch_id,
                device_id: b.device_id,
                records: open_all(b.records, seal, today),
            });
        }
    }
    let b: CappedBody<serde_json::Value> = serde_json::from_slice(json).map_err(|e| {
        if over(&e) {
            return too_many(max_records + 1);
        }
        Refusal::new(
            400,
            ErrorCode::BadJson,
            format!("the batch is not the JSON expected: {e}"),
        )
    })?;
    if b.records.len() > max_records {
        return Err(too_many(b.records.len()));
    }
    let records = b
        .records
        .into_iter()
        .map(
            |value| match serde_json::from_value::<protocol::WireRecord>(value.clone()) {
                Ok(mut w) => open_one(&mut w, seal, today),
                Err(_) => Item::Raw(value),
            },
        )
        .collect();
    Ok(Envelope {
        protocol: b.protocol,
        batch_id: b.batch_id,
        device_id: b.device_id,
        records: vec![records],
    })
}

/// Opens every record's seal (and hashes and validates the record), on as many threads as there
/// are cores for a large batch (an X25519 operation per record is most of the server's work on a
/// batch). Returns each thread's part in order; the wire records' strings move into the
/// opened records (nothing is copied), their sealed boxes are freed as they are opened.
pub(super) fn open_all(
    mut records: Vec<protocol::WireRecord>,
    seal: &crate::seal::OpenKey,
    today: time::Date,
) -> Vec<Vec<Item>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    if threads < 2 || records.len() < 64 {
        return vec![
            records
                .iter_mut()
                .map(|w| open_one(w, seal, today))
                .collect(),
        ];
    }
    let chunk = records.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = records
            .chunks_mut(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter_mut()
                        .map(|w| open_one(w, seal, today))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("opening seals does not panic"))
            .collect()
    })
}

/// Opens `w`, taking its strings (it is left empty).
pub(super) fn open_one(
    w: &mut protocol::WireRecord,
    seal: &crate::seal::OpenKey,
    today: time::Date,
) -> Item {
    let secrets = B64
        .decode(std::mem::take(&mut w.sealed).trim())
        .ok()
        .and_then(|bytes| seal.open(&bytes));
    match secrets {
        Some(s) => Item::Typed(Opened::new(w.take_record(s), today)),
        None => Item::Unopened {
            id: w.id.chars().take(64).collect(),
        },
    }
}

/// [`protocol::BatchBody`] with its records read one by one and counted: the read stops past
/// [`CAP`] (records as [`protocol::WireRecord`], or left as JSON values for a batch with a
/// malformed record).
#[derive(serde::Deserialize)]
#[serde(bound = "T: serde::Deserialize<'de>")]
pub(super) struct CappedBody<T> {
    pub(super) protocol: u32,
    pub(super) batch_id: String,
    pub(super) device_id: String,
    #[allow(dead_code)]
    pub(super) created_at: String,
    #[serde(deserialize_with = "capped")]
    pub(super) records: Vec<T>,
}

thread_local! {
    /// The most records a batch may hold, for the parse on this thread.
    static CAP: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// The error text that says the cap was passed (serde errors carry text only).
const OVER_CAP: &str = "ikd: over the record cap";

fn capped<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    struct Seq<T>(std::marker::PhantomData<T>);
    impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Seq<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of records")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let cap = CAP.with(|c| c.get());
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(cap).min(1024));
            while let Some(item) = seq.next_element()? {
                if out.len() == cap {
                    return Err(serde::de::Error::custom(OVER_CAP));
                }
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Seq(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch over the record limit is refused by the parse, before `open_all` opens a
    /// single seal (the X25519 work a hostile batch of 150,000 records would cost), whether
    /// its records are well-formed or not.
    #[test]
    fn too_many_records_are_refused_before_any_seal_is_opened() {
        let server = crate::crypto::KeyPair::from_seed([5; 32]);
        let key = crate::seal::OpenKey::of_server(&server);
        let today = time::macros::date!(2026 - 12 - 01);
        let body = |records: &str| {
            format!(
                r#"{{"protocol":1,"batch_id":"b","device_id":"d","created_at":"x","records":[{records}]}}"#
            )
        };
        let junk = body("1,2,3");
        let Err(e) = parse_batch(junk.as_bytes(), &key, today, 2) else {
            panic!("a batch over the limit was parsed");
        };
        assert_eq!((e.status, e.code.as_str()), (413, "too_many_records"));
        // Within the limit the same body parses, each malformed record kept apart.
        let Ok(ok) = parse_batch(junk.as_bytes(), &key, today, 3) else {
            panic!("a batch within the limit was refused");
        };
        assert_eq!(ok.records.iter().map(Vec::len).sum::<usize>(), 3);
        // The read stops at the cap: what follows (here not even JSON) is never read.
        let endless =
            r#"{"protocol":1,"batch_id":"b","device_id":"d","created_at":"x","records":[1,2,3,4,"#;
        let Err(e) = parse_batch(format!("{endless}@@@").as_bytes(), &key, today, 2) else {
            panic!("parsed");
        };
        assert_eq!((e.status, e.code.as_str()), (413, "too_many_records"));
    }
}
