//! The batch journal: each answer is stored (as JSON and as gzip, each with its signature)
//! under its batch id in the batch's own transaction, so a replay gets the same bytes back and
//! a batch id reused with other bytes is refused.
use crate::args;
use crate::protocol::BatchResponse;
use crate::protocol::ErrorCode;
use crate::server::Refusal;
use crate::server::db::Db;

/// The server's answer: the JSON bytes and their signature (base64), as sent.
#[derive(Debug, Clone)]
pub struct Answer {
    pub body: Vec<u8>,
    pub signature: String,
    /// The same answer as gzip bytes and their own signature, for a client that accepts gzip
    /// (`None` for a batch journalled before answers were compressed).
    pub gzip: Option<(Vec<u8>, String)>,
    pub response: BatchResponse,
    /// True when this was a replay answered from the journal.
    pub replayed: bool,
}

/// The answer as gzip (default level, no name, mtime 0).
pub(super) fn gzip(json: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 4),
        flate2::Compression::default(),
    );
    std::io::Write::write_all(&mut gz, json)?;
    gz.finish()
}

/// `GET /v1/batches/{id}`: the journalled answer to `device_id`'s batch `batch_id`, with the
/// hex SHA-256 of the body it answered (the caller checks the device's batch signature over
/// it). Read outside any write transaction: an answer is journalled in its batch's commit.
pub fn stored(
    db: &mut Db<'_>,
    device_id: &str,
    batch_id: &str,
) -> Result<Option<(String, Answer)>, Refusal> {
    let row = read(db, device_id, batch_id)?;
    let Some((sha, body, signature, gz, gz_signature)) = row else {
        return Ok(None);
    };
    let response = serde_json::from_slice(&body).map_err(Refusal::internal)?;
    let answer = Answer {
        body,
        signature,
        gzip: gz.zip(gz_signature),
        response,
        replayed: true,
    };
    Ok(Some((sha, answer)))
}

type Row = (String, Vec<u8>, String, Option<Vec<u8>>, Option<String>);

fn read(db: &mut Db<'_>, device_id: &str, batch_id: &str) -> Result<Option<Row>, Refusal> {
    db.query_opt(
        "SELECT body_sha256, response, signature, response_gzip, signature_gzip
         FROM batches WHERE device_id = ?1 AND id = ?2",
        args![device_id, batch_id],
    )
    .and_then(|r| {
        r.map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .transpose()
    })
    .map_err(Refusal::internal)
}

/// A replay: the same device and batch id with the same bytes gets the stored answer; different
/// bytes are refused. Another device's batch of the same id is another batch.
pub(super) fn journalled(
    tx: &mut Db<'_>,
    device_id: &str,
    batch_id: &str,
    body_sha: &str,
) -> Result<Option<Answer>, Refusal> {
    let row = read(tx, device_id, batch_id)?;
    let Some((sha, body, signature, gz, gz_signature)) = row else {
        return Ok(None);
    };
    if sha != body_sha {
        return Err(Refusal::new(
            409,
            ErrorCode::BatchReused,
            "this batch id was already used with a different body; a batch is cut once and resent byte for byte",
        ));
    }
    let response = serde_json::from_slice(&body).map_err(Refusal::internal)?;
    Ok(Some(Answer {
        body,
        signature,
        gzip: gz.zip(gz_signature),
        response,
        replayed: true,
    }))
}
