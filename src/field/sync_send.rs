//! Sending one batch of a sync run, on its own thread: retries with backoff, and the journalled
//! answer asked for by batch id — at once when the connection dropped after the whole body was
//! sent. Reports each failed attempt and the batch's fate to the run (`sync_run.rs`).
use crate::client::retry::{Attempt, Outcome};
use crate::client::{Client, Failure, Retry};
use crate::field::outbox::Batch;
use crate::protocol::BatchResponse;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// An answer and how it came: its bytes as received and the exchange's time.
pub(super) struct Exchanged {
    pub answer: BatchResponse,
    pub received: u64,
    pub secs: f64,
    /// Asked for by batch id (`GET /v1/batches/{id}`), not the answer to the body just sent.
    pub by_id: bool,
}

/// `GET /v1/batches/{id}`: the journalled answer to `batch`, if the server has one.
fn ask(
    client: &Client,
    batch: &Batch,
    device: &str,
    server_key: &[u8; 32],
) -> Result<Option<Exchanged>, Failure> {
    let t = Instant::now();
    let got = client.stored_answer(&batch.id, &batch.signature, device, server_key)?;
    Ok(got.map(|(answer, received)| Exchanged {
        answer,
        received,
        secs: t.elapsed().as_secs_f64(),
        by_id: true,
    }))
}

/// What the sending thread reports to the run.
pub(super) enum Msg {
    /// An attempt failed; the thread waits `wait` and tries again.
    Retry {
        attempt: u32,
        wait: Duration,
        failure: Failure,
    },
    /// The batch's fate: answered, given up (the last failure), or stopped by Ctrl-C.
    Done(Result<Box<Exchanged>, Option<Failure>>),
}

/// Sends one batch with retries (on its own thread), reporting each failed attempt. The
/// answer is asked to carry the district's activated-list delta after `since`. When the whole
/// body was sent and then the connection dropped or the answer did not come, the journalled
/// answer is asked for by batch id at once, with no wait; the body goes again (after the
/// backoff) only when the server has no answer for it. After a failure that may have followed a
/// complete request, and for a batch an earlier run already tried, the next attempt likewise
/// asks first.
#[allow(clippy::too_many_arguments)]
pub(super) fn send_with_retries(
    client: &Client,
    batch: &Batch,
    device: &str,
    server_key: &[u8; 32],
    since: i64,
    upload: Duration,
    retry: &Retry,
    stop: &AtomicBool,
    tx: &mpsc::Sender<Msg>,
) {
    let mut ask_first = batch.attempts > 0;
    let mut attempt = || {
        if ask_first {
            match ask(client, batch, device, server_key) {
                Ok(Some(x)) => return Attempt::Done(x),
                Ok(None) => ask_first = false,
                Err(f) => return Attempt::Failed(f),
            }
        }
        let t = Instant::now();
        let sent = client.send_signed_within(
            (&batch.id, &batch.body, &batch.signature),
            device,
            server_key,
            Some(since),
            upload,
        );
        match sent {
            Ok((answer, received)) => Attempt::Done(Exchanged {
                answer,
                received,
                secs: t.elapsed().as_secs_f64(),
                by_id: false,
            }),
            // All of it was sent: the answer is most likely journalled; ask at once.
            Err(f @ Failure::Unanswered(_)) => match ask(client, batch, device, server_key) {
                Ok(Some(x)) => Attempt::Done(x),
                Ok(None) => {
                    ask_first = false;
                    Attempt::Failed(f)
                }
                Err(g) => {
                    ask_first = true;
                    Attempt::Failed(g)
                }
            },
            Err(f) => {
                ask_first = matches!(f, Failure::Lost(_));
                Attempt::Failed(f)
            }
        }
    };
    let done = match retry.run(
        stop,
        |_| attempt(),
        |attempt, wait, failure| {
            let _ = tx.send(Msg::Retry {
                attempt,
                wait,
                failure: failure.clone(),
            });
        },
    ) {
        Outcome::Answered(x) => Ok(Box::new(x)),
        Outcome::GaveUp(f) => Err(Some(f)),
        Outcome::Stopped => Err(None),
    };
    let _ = tx.send(Msg::Done(done));
}
