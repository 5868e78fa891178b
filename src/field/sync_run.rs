//! One sync run: resend the open batches of the journal, then cut and send new ones until no
//! pending record is left outside an answered batch. Each answer is stored before the next batch
//! goes, so an interruption at any point (kill -9, a dropped link, Ctrl-C) loses at most the
//! work of one batch — which the next run resends byte for byte. Also `sync --to-file`.
use crate::client::retry::Retrying;
use crate::client::{self as sync_client, Client, Failure, Retry};
use crate::error::AppError;
use crate::field::activated;
use crate::field::datadir::DataDir;
use crate::field::enrolment::{Enrolment, M_LAST_OK, M_LAST_SUMMARY};
use crate::field::link::{Learnt, Sample, ServerLimits, Sizer};
use crate::field::outbox::{self, Batch, Problem};
use crate::field::sync_send::{Exchanged, Msg, send_with_retries};
use crate::protocol::{BatchResponse, Summary};
use crate::tr;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the run reports as it goes (for the progress bar).
pub enum Event<'a> {
    /// Records waiting for an answer when the run starts.
    Start { pending: u64 },
    /// A batch was answered.
    Answered { records: u64, bytes: u64 },
    /// An attempt failed; the next one follows after its wait.
    Retry(Retrying<'a>),
}

/// What a run did. `problems` lists conflicts and rejections (at most [`MAX_PROBLEMS`]).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    pub server: String,
    pub batches: usize,
    pub records: usize,
    /// Records in each answered batch, in order (the sizes the link measured out).
    pub batch_records: Vec<usize>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub summary: Summary,
    pub problems: Vec<Problem>,
    /// Records the server's answers did not mention (they stay pending).
    pub unanswered: usize,
    /// Records still pending after the run.
    pub pending: i64,
    /// Stopped early by Ctrl-C.
    pub stopped: bool,
    /// Already-activated NIK prefixes received from the district: carried by the batch answers,
    /// or fetched after the batches from a server that does not send them (`None` when the list
    /// could not be fetched: only the warnings in `record` miss it).
    pub activated: Option<usize>,
    /// Where the time went, milliseconds: cutting batches (read, gzip, sign, journal), waiting
    /// for the server beyond that (the exchange overlaps the other two), storing answers.
    pub ms: Timing,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Timing {
    pub cut: u64,
    pub exchange: u64,
    pub apply: u64,
}

pub const MAX_PROBLEMS: usize = 50;

impl Report {
    /// "312 terkirim, 2 duplikat, 1 konflik, 0 ditolak".
    pub fn line(&self) -> String {
        let s = &self.summary;
        tr!(
            "{} terkirim, {} duplikat, {} konflik, {} ditolak",
            "{} sent, {} duplicate, {} conflict, {} rejected",
            s.accepted,
            s.duplicate,
            s.conflict,
            s.rejected
        )
    }
}

pub struct Options {
    /// Records in the first batch (`sync.batch_size`); later ones are sized to the link.
    pub batch_size: usize,
    /// Most records a batch grows to (`sync.max_batch_size`; the server's limit bounds it too).
    pub max_batch_size: usize,
    /// Every batch `batch_size` records, not sized to the link (`sync --batch-size`).
    pub fixed: bool,
    pub retry: Retry,
}

impl Options {
    fn sizer(&self) -> Sizer {
        Sizer::new(self.batch_size, self.max_batch_size, self.fixed)
    }
}

/// Field database meta: what the last run learnt of the link ([`Learnt`], JSON).
const M_LINK: &str = "sync.link";

/// The sizer for a run to `server`, starting from what the last run to it learnt.
fn sizer(dd: &DataDir, opts: &Options, server: &str) -> Result<Sizer, AppError> {
    let mut sizer = opts.sizer();
    let learnt = dd.store.meta(M_LINK)?;
    let learnt = learnt.and_then(|j| serde_json::from_str::<Learnt>(&j).ok());
    if let Some(l) = learnt.filter(|l| l.server == server) {
        sizer.recall(l);
    }
    Ok(sizer)
}

/// The JSON size of a gzip body, from its trailer (ISIZE: the input's length mod 2³²).
fn json_len(gz: &[u8]) -> u64 {
    gz.len()
        .checked_sub(4)
        .and_then(|i| gz.get(i..))
        .and_then(|t| <[u8; 4]>::try_from(t).ok())
        .map_or(0, |t| u32::from_le_bytes(t) as u64)
}

/// The next batch to send: an open one after journal position `pos`, else a newly cut one.
fn next_batch(
    dd: &mut DataDir,
    batch_size: usize,
    pos: i64,
    after_seq: i64,
) -> Result<Option<Batch>, AppError> {
    if let Some(b) = outbox::next_open(&dd.store, pos)? {
        return Ok(Some(b));
    }
    let device = dd.identity.device_id.clone();
    outbox::cut(&mut dd.store, &dd.key, &device, batch_size, after_seq)
}

/// The next batch, sized by `sizer` (told what was cut).
fn next_sized(
    dd: &mut DataDir,
    sizer: &mut Sizer,
    pos: i64,
    after_seq: i64,
) -> Result<Option<Batch>, AppError> {
    let b = next_batch(dd, sizer.next(), pos, after_seq)?;
    if let Some(b) = &b {
        sizer.cut(b.record_count, b.body.len() as u64, json_len(&b.body));
    }
    Ok(b)
}

/// The activated-list deltas the batch answers carried in a run.
#[derive(Default)]
struct Deltas {
    /// Prefixes stored from them.
    stored: usize,
    /// The last answer stored carried the whole delta up to its time (no `more`): nothing
    /// left to ask `POST /v1/activated`.
    complete: bool,
}

/// Sends batches one at a time, in journal order, and overlaps the laptop's own work with the
/// wait for the server: while batch k is on the wire, the answer to batch k-1 is stored and
/// batch k+1 is cut. At most one batch is in flight, so the server sees batches in order (a
/// void never arrives before the record it cancels).
pub fn run(
    dd: &mut DataDir,
    client: &Client,
    enrolment: &Enrolment,
    opts: &Options,
    stop: &AtomicBool,
    on: &mut dyn FnMut(Event),
) -> Result<Report, AppError> {
    let server_key = enrolment.key().ok_or_else(|| {
        AppError::other(tr!(
            "Kunci server yang tersimpan rusak; daftarkan ulang perangkat (ikd-field enrol).",
            "The stored server key is damaged; enrol the device again (ikd-field enrol)."
        ))
    })?;
    let mut report = Report {
        server: client.base().to_string(),
        ..Report::default()
    };
    let (pending, _) = outbox::backlog(&dd.store)?;
    on(Event::Start {
        pending: pending as u64,
    });
    let device = dd.identity.device_id.clone();
    // The activated-list cursor the next batch asks its delta from (each answer moves it).
    let mut since = activated::cursor(&dd.store)?;
    let mut deltas = Deltas::default();
    let mut sizer = sizer(dd, opts, client.base())?;
    sizer.pending(pending.max(0) as usize);
    let t = Instant::now();
    let mut current = next_sized(dd, &mut sizer, 0, 0)?;
    report.ms.cut += t.elapsed().as_millis() as u64;
    // An answer received but not stored yet (stored while the next batch is on the wire).
    let mut unstored: Option<(Batch, BatchResponse, u64)> = None;
    let outcome = std::thread::scope(|scope| -> Result<(), AppError> {
        while let Some(batch) = current.take() {
            if stop.load(Ordering::Relaxed) {
                report.stopped = true;
                break;
            }
            let batch = std::sync::Arc::new(batch);
            let (tx, rx) = mpsc::channel();
            let sending = std::sync::Arc::clone(&batch);
            let (device, server_key, retry) = (&device, &server_key, &opts.retry);
            // The answer timeout starts once the body is handed over; on a slow link part of
            // it is still on its way then.
            let upload = Duration::from_secs_f64(sizer.upload_secs(batch.body.len() as u64));
            let handle = scope.spawn(move || {
                send_with_retries(
                    client, &sending, device, server_key, since, upload, retry, stop, &tx,
                )
            });
            if let Some((b, answer, received)) = unstored.take() {
                store_answer(dd, &mut report, &mut deltas, &b, &answer, received, on)?;
            }
            // The next batch is cut while this one is on the wire, sized by the exchanges
            // measured so far; the second waits for the first measurement.
            let t = Instant::now();
            let (pos, after) = (batch.pos, batch.last_seq);
            let learning = sizer.learning();
            let mut following = match learning {
                true => None,
                false => next_sized(dd, &mut sizer, pos, after)?,
            };
            report.ms.cut += t.elapsed().as_millis() as u64;
            let t = Instant::now();
            let mut done = None;
            for msg in rx {
                match msg {
                    Msg::Retry {
                        attempt,
                        wait,
                        failure,
                    } => {
                        outbox::note_failure(&dd.store, &batch.id, &failure.to_string())?;
                        if matches!(failure, Failure::Lost(_) | Failure::Unanswered(_)) {
                            sizer.failed(batch.record_count);
                        }
                        on(Event::Retry(Retrying {
                            attempt,
                            max: opts.retry.max_attempts,
                            wait,
                            why: &failure,
                        }));
                    }
                    Msg::Done(d) => done = Some(d),
                }
            }
            let _ = handle.join();
            report.ms.exchange += t.elapsed().as_millis() as u64;
            match done {
                Some(Ok(x)) => {
                    let Exchanged {
                        answer,
                        received,
                        secs,
                        by_id,
                    } = *x;
                    sizer.answered(Sample {
                        records: if by_id { 0 } else { batch.record_count },
                        up: if by_id { 0 } else { batch.body.len() as u64 },
                        down: received,
                        secs,
                    });
                    if let Some(l) = answer.limits {
                        sizer.server_limits(ServerLimits {
                            records: l.max_batch_records,
                            body_bytes: l.max_body_bytes,
                            json_bytes: l.max_decompressed_bytes,
                        });
                    }
                    if let Some(d) = answer.activated.as_ref().filter(|d| d.since <= since) {
                        since = since.max(d.next);
                    }
                    if learning {
                        let t = Instant::now();
                        following = next_sized(dd, &mut sizer, pos, after)?;
                        report.ms.cut += t.elapsed().as_millis() as u64;
                    }
                    let b = std::sync::Arc::try_unwrap(batch).unwrap_or_else(|a| (*a).clone());
                    unstored = Some((b, answer, received));
                }
                Some(Err(None)) | None => {
                    report.stopped = true;
                    break;
                }
                Some(Err(Some(f))) => {
                    outbox::note_failure(&dd.store, &batch.id, &f.to_string())?;
                    let e = match &f {
                        Failure::Refused {
                            status,
                            code,
                            message,
                        } => sync_client::refusal_error(*status, code, message),
                        _ => {
                            let (left, _) = outbox::backlog(&dd.store)?;
                            sync_client::unreachable_error(client.base(), &f, left)
                        }
                    };
                    return Err(e);
                }
            }
            current = following;
        }
        Ok(())
    });
    // Whatever happened, an answer that arrived is stored before the run ends.
    if let Some((b, answer, received)) = unstored.take() {
        store_answer(dd, &mut report, &mut deltas, &b, &answer, received, on)?;
    }
    if let Some(l) = sizer.learnt(client.base()) {
        dd.store
            .set_meta(M_LINK, &serde_json::to_string(&l).expect("serialises"))?;
    }
    if let Err(e) = outcome {
        return Err(with_report(e, dd, &mut report));
    }
    report.pending = outbox::backlog(&dd.store)?.0;
    if !report.stopped {
        // One request less when the last answer carried the delta (a server before it did
        // not: then the list is asked for as before).
        report.activated = if deltas.complete {
            Some(deltas.stored)
        } else {
            pull_activated(dd, client, &server_key).map(|n| n + deltas.stored)
        };
    }
    finish(dd, &report)?;
    Ok(report)
}

/// Fetches the district's new already-activated NIK prefixes (all pages), one attempt each;
/// `None` if that failed (the pages stored so far stay).
fn pull_activated(dd: &DataDir, client: &Client, server_key: &[u8; 32]) -> Option<usize> {
    let mut total = 0;
    for _ in 0..1000 {
        let since = activated::cursor(&dd.store).ok()?;
        let page = client
            .activated(&dd.key, &dd.identity.device_id, server_key, since)
            .ok()?;
        total += activated::store_page(&dd.store, &page).ok()?;
        if !page.more || page.next <= since {
            break;
        }
    }
    Some(total)
}

/// Stores one verified answer and adds it to the report.
fn store_answer(
    dd: &mut DataDir,
    report: &mut Report,
    deltas: &mut Deltas,
    batch: &Batch,
    answer: &BatchResponse,
    received: u64,
    on: &mut dyn FnMut(Event),
) -> Result<(), AppError> {
    let t = Instant::now();
    let applied = outbox::apply_answer(&mut dd.store, batch, answer)?;
    // The delta is a warning list: one that cannot be stored is asked for again at the end.
    let delta = answer.activated.as_ref().and_then(|d| {
        let n = activated::store_delta(&dd.store, d).ok().flatten()?;
        Some((n, !d.more))
    });
    deltas.stored += delta.map_or(0, |(n, _)| n);
    deltas.complete = delta.is_some_and(|(_, complete)| complete);
    report.ms.apply += t.elapsed().as_millis() as u64;
    report.batches += 1;
    report.records += batch.record_count;
    report.batch_records.push(batch.record_count);
    report.bytes_sent += batch.body.len() as u64;
    report.bytes_received += received;
    let s = &mut report.summary;
    s.accepted += applied.summary.accepted;
    s.duplicate += applied.summary.duplicate;
    s.conflict += applied.summary.conflict;
    s.rejected += applied.summary.rejected;
    report.unanswered += applied.unanswered;
    let room = MAX_PROBLEMS.saturating_sub(report.problems.len());
    report
        .problems
        .extend(applied.problems.into_iter().take(room));
    on(Event::Answered {
        records: batch.record_count as u64,
        bytes: batch.body.len() as u64,
    });
    Ok(())
}

/// Audit line for the run; the "last sync" stamp when nothing is left waiting.
fn finish(dd: &DataDir, report: &Report) -> Result<(), AppError> {
    let line = format!(
        "{} · {} batch · {} B → {}",
        report.line(),
        report.batches,
        report.bytes_sent,
        report.server
    );
    dd.store.audit("sync", None, &line)?;
    if report.pending == 0 && !report.stopped {
        dd.store.set_meta(M_LAST_OK, &crate::timefmt::now_utc())?;
        dd.store.set_meta(M_LAST_SUMMARY, &report.line())?;
    }
    Ok(())
}

/// Adds what was done before the failure to the error (and to the audit log).
fn with_report(e: AppError, dd: &DataDir, report: &mut Report) -> AppError {
    report.pending = outbox::backlog(&dd.store).map(|b| b.0).unwrap_or(-1);
    let _ = finish(dd, report);
    let mut details = e.details.clone();
    if let Some(m) = details.as_object_mut() {
        m.insert("report".into(), serde_json::json!(report));
    }
    let msg = if report.batches > 0 {
        format!(
            "{}\n{}",
            e.message,
            tr!(
                "Sebelum berhenti: {}.",
                "Before stopping: {}.",
                report.line()
            )
        )
    } else {
        e.message.clone()
    };
    AppError { message: msg, ..e }.details(details)
}

/// What `sync --to-file` wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FileReport {
    pub file: String,
    pub batches: usize,
    pub records: usize,
    /// Records in each answered batch, in order (the sizes the link measured out).
    pub batch_records: Vec<usize>,
    pub bytes: u64,
}

/// Writes every open batch and newly cut ones, one `FileBatch` JSON per line, to `path`
/// (through a temporary file renamed into place once synced to disk). Records stay pending.
pub fn to_file(dd: &mut DataDir, path: &Path, batch_size: usize) -> Result<FileReport, AppError> {
    let io = |e: std::io::Error| {
        AppError::other(tr!(
            "Berkas {} tidak bisa ditulis: {e}",
            "Cannot write {}: {e}",
            path.display()
        ))
        .hint(tr!(
            "Periksa flashdisk (terpasang, tidak penuh, tidak terkunci). Catatan tetap aman di laptop.",
            "Check the USB stick (mounted, not full, not write-protected). The records are safe on the laptop."
        ))
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "batches".into());
    let tmp = path.with_file_name(format!(".{name}.part"));
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let mut w = std::io::BufWriter::new(file);
    let mut report = FileReport {
        file: path.display().to_string(),
        ..FileReport::default()
    };
    let device = dd.identity.device_id.clone();
    let (mut pos, mut after_seq) = (0i64, 0i64);
    while let Some(batch) = next_batch(dd, batch_size, pos, after_seq)? {
        pos = batch.pos;
        after_seq = after_seq.max(batch.last_seq);
        let line = serde_json::to_string(&batch.file_line(&device)).expect("serialises");
        writeln!(w, "{line}").map_err(io)?;
        report.batches += 1;
        report.records += batch.record_count;
        report.bytes += batch.body.len() as u64;
    }
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)?;
    dd.store.audit(
        "sync_to_file",
        None,
        &format!(
            "{} batches, {} records, {} B → {}",
            report.batches,
            report.records,
            report.bytes,
            path.display()
        ),
    )?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_json_size_comes_from_the_gzip_trailer() {
        let json = vec![b'{'; 123_456];
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, &json).unwrap();
        let gz = e.finish().unwrap();
        assert_eq!(super::json_len(&gz), 123_456);
        assert_eq!(super::json_len(b"ab"), 0);
    }
}
