//! One forwarding pass over HTTP (docs/protocol.md "Forwarding"): enrol at the province, and
//! send the journalled batches of [`super::forward`] one at a time with the field kit's client
//! ([`crate::client`]: TLS with `forward.ca_file`, the plain-HTTP rule, `429
//! Retry-After`, answers accepted only when signed by the enrolled province key) until none is
//! left, retrying each with backoff.
use super::forward::{self, Journalled, Report, Target};
use super::store::Store;
use crate::client::pin::ExpectedServer;
use crate::client::retry::{Attempt, Outcome, Retrying};
use crate::client::{Client, Failure, Retry, Transport};
use crate::config::ForwardConfig;
use crate::crypto::{self, KeyPair};
use crate::error::{AppError, Kind};
use crate::protocol::ErrorCode;
use crate::protocol::{BatchResponse, EnrolRequest, Summary};
use crate::tr;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Settings of a pass, from `[forward]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub transport: Transport,
    pub retry: Retry,
    pub batch_records: usize,
}

impl Settings {
    /// From `[forward]`; a relative `ca_file` is relative to the data directory.
    pub fn from_config(c: &ForwardConfig, data_dir: &Path) -> Settings {
        Settings {
            transport: Transport {
                timeout: Duration::from_secs(c.timeout_secs.max(1)),
                // A province is a server room away: one timeout for everything, as before.
                connect_timeout: Duration::from_secs(c.timeout_secs.max(1)),
                answer_timeout: Duration::from_secs(c.timeout_secs.max(1)),
                ca_file: c.ca_file.as_ref().map(|ca| data_dir.join(ca)),
                allow_plain_http: c.allow_plain_http,
                // A province is reached through ca_file or the system store (not through a
                // province's office CA: forwarding enrolment does not carry it yet).
                office_ca: None,
            },
            retry: Retry {
                max_attempts: c.max_attempts.max(1),
                base: Duration::from_millis(c.retry_base_ms.max(1)),
                max: Duration::from_secs(c.retry_max_secs.max(1)),
            },
            batch_records: c.batch_records.clamp(1, 100_000),
        }
    }

    /// How long a lease lasts: one batch's worst case of attempts and waits, and a minute more.
    fn lease_secs(&self) -> u64 {
        let per_attempt = self.transport.timeout.as_secs() * 3 + self.retry.max.as_secs();
        per_attempt * u64::from(self.retry.max_attempts) + 60
    }
}

/// Progress of a pass, for the command line and `serve`'s log.
pub enum Event<'a> {
    /// A batch was answered by the province.
    Answered {
        batch: &'a Journalled,
        summary: &'a Summary,
    },
    /// An attempt failed; the next follows after its wait.
    Retry {
        batch: &'a Journalled,
        retry: Retrying<'a>,
    },
}

/// Enrols this district at the province with a relay token and stores the enrolment.
pub fn enrol(
    store: &Store,
    server_key: &KeyPair,
    url: &str,
    token: &str,
    name: &str,
    expect: Option<&ExpectedServer>,
    settings: &Settings,
) -> Result<Target, AppError> {
    let client = Client::with_transport(url, &settings.transport)?;
    let me = forward::identity(server_key);
    let health = client
        .health()
        .map_err(|f| unreachable(client.base(), &f, None))?;
    // A province id given beforehand is checked before the token is spent, and again on the
    // answer (field/pin.rs).
    if let Some(want) = expect {
        want.check_health(client.base(), &health)?;
    }
    let (ans, signed) = client
        .enrol(&EnrolRequest::signed(
            &me,
            token,
            &health.server_public_key,
            name,
            name,
        ))
        .map_err(|f| failure_error(client.base(), &f, None))?;
    if let Some(want) = expect {
        want.check_answer(client.base(), &ans, signed)?;
    }
    if ans.device_id != me.id() || ans.server_id != health.server_id {
        return Err(AppError::other(tr!(
            "Jawaban pendaftaran provinsi tidak cocok dengan server di {} ({}).",
            "The province's enrolment answer does not match the server at {} ({}).",
            client.base(),
            ans.server_id
        )));
    }
    if !ans.relay {
        return Err(AppError::usage(tr!(
            "Token ini bukan token relay: provinsi akan menolak catatan dari perangkat lapangan Dinas ini.",
            "This token is not a relay token: the province would refuse the records of this district's field devices."
        ))
        .hint(tr!(
            "Minta admin provinsi membuat token dengan: ikd-field server token --relay --team \"NAMA KABUPATEN\"",
            "Ask the province admin for a token made with: ikd-field server token --relay --team \"REGENCY NAME\""
        )));
    }
    let seal = if ans.seal_public_key.is_empty() {
        health.seal_public_key.clone()
    } else {
        ans.seal_public_key.clone()
    };
    if crate::seal::parse_public_hex(&seal).is_none() || seal != health.seal_public_key {
        return Err(AppError::other(tr!(
            "Server provinsi tidak memberi kunci segel yang sah.",
            "The province server gave no valid sealing key."
        )));
    }
    let t = Target {
        url: client.base().to_string(),
        device_id: ans.device_id,
        server_id: ans.server_id,
        server_public_key: ans.server_public_key,
        seal_public_key: seal,
        enrolled_at: crate::timefmt::now_utc(),
        cursor: 0,
        last_ok_at: None,
        last_error: None,
    };
    forward::save_target(store, &t)?;
    forward::target(store)?.ok_or_else(|| AppError::other("enrolment not stored"))
}

/// The error when this district is not enrolled at a province.
pub fn not_enrolled() -> AppError {
    AppError::usage(tr!(
        "Server Dinas ini belum terdaftar di server provinsi.",
        "This district server is not enrolled with a province server."
    ))
    .hint(tr!(
        "Minta token relay ke admin provinsi (ikd-field server token --relay), lalu: ikd-field server forward enrol --to URL --token TOKEN",
        "Ask the province admin for a relay token (ikd-field server token --relay), then: ikd-field server forward enrol --to URL --token TOKEN"
    ))
}

/// Sends every record not yet answered by the province, batch by batch, until none is left;
/// `to` overrides the enrolled URL (the same province, checked by its key on every answer).
/// Stops early (with what was done) when `stop` is set. Errors: not enrolled (exit 2), the
/// province refused a batch (exit 1), unreachable after the retries (exit 5; nothing is lost,
/// the open batch is resent next time).
pub fn pass(
    store: &Store,
    server_key: &KeyPair,
    to: Option<&str>,
    settings: &Settings,
    stop: &AtomicBool,
    on: &mut dyn FnMut(Event<'_>),
) -> Result<Report, AppError> {
    let t = forward::target(store)?.ok_or_else(not_enrolled)?;
    let me = forward::identity(server_key);
    if me.id() != t.device_id {
        return Err(AppError::other(tr!(
            "Kunci server berubah sejak pendaftaran ke provinsi (perangkat {} tercatat, kunci ini {}).",
            "The server key changed since the province enrolment ({} is enrolled, this key is {}).",
            t.device_id,
            me.id()
        ))
        .hint(tr!(
            "Pakai server.key_file yang sama dengan saat mendaftar, atau daftar lagi dengan token relay baru.",
            "Use the same server.key_file as at enrolment, or enrol again with a new relay token."
        )));
    }
    let province_key = crypto::parse_public_hex(&t.server_public_key)
        .ok_or_else(|| AppError::other("stored province key is damaged"))?;
    let client = Client::with_transport(to.unwrap_or(&t.url), &settings.transport)?;
    let holder = uuid::Uuid::now_v7().to_string();
    let mut report = Report::default();
    if !forward::take_lease(store, &holder, settings.lease_secs())? {
        report.lease_held_elsewhere = true;
        report.backlog = forward::backlog(store)?;
        return Ok(report);
    }
    let mut send = |b: &Journalled| {
        client
            .send_signed(
                &b.id,
                &b.body,
                &b.signature,
                &t.device_id,
                &province_key,
                None,
            )
            .map(|(answer, _bytes)| answer)
    };
    let result = send_all(
        store,
        &me,
        &t,
        client.base(),
        &mut send,
        settings,
        &holder,
        stop,
        &mut report,
        on,
    );
    forward::release_lease(store, &holder);
    result?;
    report.backlog = forward::backlog(store)?;
    Ok(report)
}

/// Sends batch after batch with `send` (one exchange with the province at `base`) until none is
/// left. Each answered batch must move the cursor past its records, and the next batch must lie
/// strictly after that cursor: otherwise (a bug, or a database changed under the pass) the pass
/// stops with an error instead of cutting the same records again forever.
#[allow(clippy::too_many_arguments)]
fn send_all(
    store: &Store,
    me: &KeyPair,
    t: &Target,
    base: &str,
    send: &mut dyn FnMut(&Journalled) -> Result<BatchResponse, Failure>,
    settings: &Settings,
    holder: &str,
    stop: &AtomicBool,
    report: &mut Report,
    on: &mut dyn FnMut(Event<'_>),
) -> Result<(), AppError> {
    // The batch answered last in this pass and the cursor after it.
    let mut answered: Option<(String, i64)> = None;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let Some(batch) = forward::next_batch(store, me, t, settings.batch_records)? else {
            return Ok(());
        };
        if let Some((id, cursor)) = &answered
            && (batch.id == *id || batch.first_rowid <= *cursor)
        {
            return Err(no_progress(&batch, *cursor));
        }
        // An error of this side (the lease's database) ends the pass with that error.
        let mut own_error: Option<AppError> = None;
        let outcome = settings.retry.run(
            stop,
            |_| {
                match forward::take_lease(store, holder, settings.lease_secs()) {
                    Ok(true) => {}
                    Ok(false) => {
                        // Another process took over after our lease ran out: it resends the
                        // same batch.
                        report.lease_held_elsewhere = true;
                        return Attempt::Abandon;
                    }
                    Err(e) => {
                        own_error = Some(e);
                        return Attempt::Abandon;
                    }
                }
                match send(&batch) {
                    Ok(ans) => Attempt::Done(ans),
                    Err(f) => {
                        forward::note_failure(store, &batch.id, &f.to_string());
                        Attempt::Failed(f)
                    }
                }
            },
            |attempt, wait, why| {
                on(Event::Retry {
                    batch: &batch,
                    retry: Retrying {
                        attempt,
                        max: settings.retry.max_attempts,
                        wait,
                        why,
                    },
                })
            },
        );
        if let Some(e) = own_error {
            return Err(e);
        }
        let answer = match outcome {
            Outcome::Answered(ans) => ans,
            Outcome::Stopped => return Ok(()),
            Outcome::GaveUp(f) => {
                let backlog = forward::backlog(store).ok();
                return Err(failure_error(base, &f, backlog));
            }
        };
        forward::apply_answer(store, &batch, &answer)?;
        let cursor = forward::target(store)?.map_or(0, |t| t.cursor);
        if cursor < batch.last_rowid {
            return Err(no_progress(&batch, cursor));
        }
        answered = Some((batch.id.clone(), cursor));
        report.add(&batch, &answer.summary);
        on(Event::Answered {
            batch: &batch,
            summary: &answer.summary,
        });
    }
    Ok(())
}

/// The error when a pass makes no progress: `batch` is not strictly after `cursor`, or its
/// answer did not move the cursor past it. Sending on would resend the same records forever.
fn no_progress(batch: &Journalled, cursor: i64) -> AppError {
    AppError::other(tr!(
        "Penerusan dihentikan: kursor tidak maju (kursor {cursor}, batch {} berisi catatan {}–{}). Mengirim terus akan mengulang catatan yang sama tanpa henti.",
        "Forwarding stopped: the cursor does not advance (cursor {cursor}, batch {} holds records {}–{}). Going on would resend the same records forever.",
        batch.id,
        batch.first_rowid,
        batch.last_rowid
    ))
    .hint(tr!(
        "Tidak ada yang hilang. Periksa apakah database diubah atau dipulihkan selama penerusan (ikd-field server forward status), lalu jalankan lagi; bila berulang, laporkan ke pengelola ikd-field.",
        "Nothing is lost. Check whether the database was changed or restored during forwarding (ikd-field server forward status), then run again; if it happens again, report it to the ikd-field maintainers."
    ))
    .details(serde_json::json!({
        "batch": batch.id,
        "first_rowid": batch.first_rowid,
        "last_rowid": batch.last_rowid,
        "cursor": cursor,
    }))
}

/// The user-facing error for a failed exchange with the province.
fn failure_error(url: &str, f: &Failure, backlog: Option<i64>) -> AppError {
    match f {
        Failure::Refused {
            status,
            code,
            message,
        } => AppError::new(
            if *code == ErrorCode::BatchReused {
                Kind::Duplicate
            } else {
                Kind::Other
            },
            tr!(
                "Server provinsi {url} menolak: {status} {code}: {message}",
                "The province server {url} refused: {status} {code}: {message}"
            ),
        )
        .hint(match code {
            ErrorCode::TokenUnknown | ErrorCode::TokenUsed | ErrorCode::TokenExpired => tr!(
                "Minta token relay baru ke admin provinsi (ikd-field server token --relay).",
                "Ask the province admin for a new relay token (ikd-field server token --relay)."
            ),
            ErrorCode::DeviceUnknown | ErrorCode::DeviceRevoked => tr!(
                "Server Dinas ini tidak (lagi) terdaftar di provinsi: minta token relay baru lalu ikd-field server forward enrol.",
                "This district server is not (or no longer) enrolled at the province: ask for a new relay token, then ikd-field server forward enrol."
            ),
            _ => tr!(
                "Catatan tetap aman di server Dinas; batch yang sama dikirim lagi nanti. Sampaikan pesan ini ke admin provinsi.",
                "The records are safe on the district server; the same batch is sent again later. Show this message to the province admin."
            ),
        })
        .details(serde_json::json!({"status": status, "code": code, "message": message})),
        _ => unreachable(url, f, backlog),
    }
}

fn unreachable(url: &str, f: &Failure, backlog: Option<i64>) -> AppError {
    let waiting = backlog
        .map(|n| {
            tr!(
                " Tidak ada yang hilang: {n} catatan menunggu di server Dinas.",
                " Nothing lost: {n} records wait on the district server."
            )
        })
        .unwrap_or_default();
    AppError::new(
        Kind::Unreachable,
        tr!(
            "Server provinsi {url} tidak terjangkau atau jawabannya tidak sah ({f}).{waiting}",
            "The province server {url} is unreachable or its answer is not valid ({f}).{waiting}"
        ),
    )
    .hint(tr!(
        "Coba lagi nanti (ikd-field server forward), atau biarkan serve meneruskan sendiri ([forward] to di config.toml). Periksa forward.ca_file bila sertifikat ditolak.",
        "Try again later (ikd-field server forward), or let serve forward by itself ([forward] to in config.toml). Check forward.ca_file if the certificate was refused."
    ))
    .details(serde_json::json!({"server": url, "reason": f.to_string(), "backlog": backlog}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{BatchBody, Outcome, RecordResult};
    use crate::server::db::Mode;

    /// A district database with `n` synthetic records, enrolled at a province (keys only: the
    /// exchange is the closure given to [`send_all`]).
    fn district(dir: &Path, n: usize) -> (Store, KeyPair, KeyPair, Target) {
        forward::test_district(dir, 4, n)
    }

    fn settings() -> Settings {
        Settings {
            transport: Transport {
                timeout: Duration::from_secs(1),
                connect_timeout: Duration::from_secs(1),
                answer_timeout: Duration::from_secs(1),
                ca_file: None,
                allow_plain_http: false,
                office_ca: None,
            },
            retry: Retry {
                max_attempts: 1,
                base: Duration::from_millis(1),
                max: Duration::from_millis(1),
            },
            batch_records: 10,
        }
    }

    /// The province's answer to `b`: every record accepted.
    fn accept_all(province: &KeyPair, b: &Journalled) -> BatchResponse {
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&b.body[..]), &mut body)
            .unwrap();
        let parsed: BatchBody = serde_json::from_slice(&body).unwrap();
        BatchResponse {
            protocol: 1,
            batch_id: b.id.clone(),
            server_id: province.id(),
            received_at: crate::timefmt::now_utc(),
            results: parsed
                .records
                .iter()
                .map(|r| RecordResult {
                    id: r.id.clone(),
                    status: Outcome::Accepted,
                    reason: None,
                    conflict_with: None,
                    conflict: None,
                })
                .collect(),
            summary: Summary {
                accepted: parsed.records.len(),
                ..Summary::default()
            },
            activated: None,
            limits: None,
        }
    }

    /// Runs [`send_all`] with a province that accepts everything; panics (fails fast instead of
    /// hanging) if the pass sends more than `max_sends` batches. `meddle` runs on each send.
    fn run(
        store: &Store,
        me: &KeyPair,
        province: &KeyPair,
        t: &Target,
        max_sends: usize,
        meddle: &mut dyn FnMut(usize, &Journalled),
    ) -> (Result<(), AppError>, usize) {
        let mut sends = 0usize;
        let mut send = |b: &Journalled| {
            sends += 1;
            assert!(sends <= max_sends, "the pass keeps sending: it loops");
            meddle(sends, b);
            Ok(accept_all(province, b))
        };
        let stop = AtomicBool::new(false);
        assert!(forward::take_lease(store, "test", 60).unwrap());
        let result = send_all(
            store,
            me,
            t,
            "http://province.test",
            &mut send,
            &settings(),
            "test",
            &stop,
            &mut Report::default(),
            &mut |_| {},
        );
        (result, sends)
    }

    #[test]
    fn a_pass_sends_every_batch_once_and_ends() {
        let dir = tempfile::tempdir().unwrap();
        let (store, me, province, t) = district(dir.path(), 25);
        let (result, sends) = run(&store, &me, &province, &t, 3, &mut |_, _| {});
        result.unwrap();
        assert_eq!((sends, forward::backlog(&store).unwrap()), (3, 0));
    }

    /// A database that undoes the cursor (here a trigger, as a bug or another tool could): the
    /// same records would be cut again forever; the pass stops after the first batch instead.
    #[test]
    fn a_cursor_that_does_not_advance_stops_the_pass() {
        let dir = tempfile::tempdir().unwrap();
        let (store, me, province, t) = district(dir.path(), 25);
        let mut db = store.db().unwrap();
        db.execute(
            "CREATE TRIGGER stuck AFTER UPDATE OF cursor ON forward_target
             BEGIN UPDATE forward_target SET cursor = 0 WHERE id = 1; END",
            crate::args![],
        )
        .unwrap();
        drop(db);
        let (result, sends) = run(&store, &me, &province, &t, 5, &mut |_, _| {});
        let e = result.unwrap_err();
        assert_eq!((sends, e.exit_code()), (1, 1), "{e}");
        assert_eq!(e.details["cursor"], 0);
        assert!(
            e.message.contains("kursor") || e.message.contains("cursor"),
            "{e}"
        );
    }

    /// A batch that is not strictly after the cursor (here a journalled copy of the first batch
    /// appears while it is on its way) stops the pass before it is sent.
    #[test]
    fn a_batch_not_after_the_cursor_stops_the_pass() {
        let dir = tempfile::tempdir().unwrap();
        let (store, me, province, t) = district(dir.path(), 25);
        let mut copy = |n: usize, b: &Journalled| {
            if n == 1 {
                let mut db = store.db().unwrap();
                let mut tx = db.begin(Mode::Write).unwrap();
                tx.execute(
                    "INSERT INTO forward_batches (id, server_id, created_at, first_rowid,
                                                  last_rowid, records, body, signature)
                     SELECT 'copy', server_id, created_at, first_rowid, last_rowid, records,
                            body, signature FROM forward_batches WHERE id = ?1",
                    crate::args![b.id],
                )
                .unwrap();
                tx.commit().unwrap();
            }
        };
        let (result, sends) = run(&store, &me, &province, &t, 5, &mut copy);
        let e = result.unwrap_err();
        assert_eq!(
            (sends, e.details["batch"].as_str()),
            (1, Some("copy")),
            "{e}"
        );
    }
}
