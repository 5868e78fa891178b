//! Where this laptop is enrolled (the district server's URL, id and key), kept in the field
//! database's meta table, and the last complete sync.
use crate::client::pin::ExpectedServer;
use crate::client::{Client, Failure, refusal_error};
use crate::crypto;
use crate::error::{AppError, Kind};
use crate::field::datadir::DataDir;
use crate::field::store::Store;
use crate::protocol::EnrolRequest;
use crate::{timefmt, tr};

/// Where this device is enrolled, as kept in the field database's meta table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Enrolment {
    pub server_url: String,
    pub server_id: String,
    pub server_public_key: String,
    pub enrolled_at: String,
    /// The office CA (PEM) from the signed enrolment answer, empty when the server has none:
    /// then `https://` to this server is checked against it (and `sync.ca_file`) only.
    #[serde(skip)]
    pub server_ca: String,
}

const M_URL: &str = "sync.server_url";
const M_ID: &str = "sync.server_id";
const M_KEY: &str = "sync.server_public_key";
const M_AT: &str = "sync.enrolled_at";
const M_CA: &str = "sync.server_ca";
/// Last time every pending record got an answer, and its summary line.
pub const M_LAST_OK: &str = "sync.last_ok_at";
pub const M_LAST_SUMMARY: &str = "sync.last_summary";

impl Enrolment {
    pub fn load(store: &Store) -> Result<Option<Enrolment>, AppError> {
        let (Some(server_url), Some(server_id), Some(server_public_key)) =
            (store.meta(M_URL)?, store.meta(M_ID)?, store.meta(M_KEY)?)
        else {
            return Ok(None);
        };
        Ok(Some(Enrolment {
            server_url,
            server_id,
            server_public_key,
            enrolled_at: store.meta(M_AT)?.unwrap_or_default(),
            server_ca: store.meta(M_CA)?.unwrap_or_default(),
        }))
    }

    /// Stores the enrolment and its audit line in one transaction (never half an enrolment).
    pub fn save(&self, store: &Store) -> Result<(), AppError> {
        let dbe = |e| crate::sqlite::db_error(store.path(), e);
        let tx = store.conn().unchecked_transaction().map_err(dbe)?;
        for (k, v) in [
            (M_URL, &self.server_url),
            (M_ID, &self.server_id),
            (M_KEY, &self.server_public_key),
            (M_AT, &self.enrolled_at),
        ] {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [k, v.as_str()],
            )
            .map_err(dbe)?;
        }
        // The office CA: kept only when the server handed one out (a new enrolment elsewhere
        // drops the old one).
        if self.server_ca.trim().is_empty() {
            tx.execute("DELETE FROM meta WHERE key = ?1", [M_CA])
                .map_err(dbe)?;
        } else {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [M_CA, self.server_ca.as_str()],
            )
            .map_err(dbe)?;
        }
        tx.execute(
            "INSERT INTO audit (at, action, detail) VALUES (?1, 'enrol', ?2)",
            [
                self.enrolled_at.as_str(),
                &format!("server {} at {}", self.server_id, self.server_url),
            ],
        )
        .map_err(dbe)?;
        tx.commit().map_err(dbe)
    }

    pub fn key(&self) -> Option<[u8; crypto::PUBLIC_KEY_LEN]> {
        crypto::parse_public_hex(&self.server_public_key)
    }

    /// The office CA to trust for this server, if it handed one out.
    pub fn office_ca(&self) -> Option<&str> {
        let ca = self.server_ca.trim();
        (!ca.is_empty()).then_some(ca)
    }
}

/// Registers the device with the server behind `client` using a one-time token; stores the
/// server's URL, id and key in the field database, then seals what waited under the holding key
/// to the district. With `expect`, the server must prove to be that one before the token is
/// spent; a district key set beforehand must be the server's.
pub fn enrol(
    dd: &DataDir,
    client: &Client,
    token: &str,
    expect: Option<&ExpectedServer>,
) -> Result<Enrolment, AppError> {
    // An https server whose certificate this laptop does not trust: its office CA, taken from
    // its signed health answer once the server proves to be the expected one (office_ca.rs);
    // from here on the connection is checked against that CA, before the token is sent.
    let pinned;
    let (client, office_ca) = match crate::field::office_ca::route(client, expect, &|f| {
        not_enrolled(client.base(), f)
    })? {
        Some((c, ca)) => {
            pinned = c;
            (&pinned, Some(ca))
        }
        None => (client, None),
    };
    // Once the office CA is trusted, a refused certificate is not fixed by a ca_file: it is the
    // wrong address for this server, an interception, or a certificate past its end.
    let unreached = |f: &Failure| match (f, &office_ca) {
        (Failure::Certificate(why), Some(_)) => {
            crate::field::office_ca::certificate_refused(client.base(), why)
        }
        _ => not_enrolled(client.base(), f),
    };
    // A server id given beforehand: the server must prove to be that one before the token is
    // spent (field/pin.rs); its enrolment answer is checked again below.
    if let Some(want) = expect {
        let h = client.health().map_err(|f| unreached(&f))?;
        want.check_health(client.base(), &h)?;
    }
    // A district key set beforehand must be this server's, or the records sealed to it could
    // not be opened there: check before the token is spent.
    if let Some(have) = crate::field::sealing::district_key(&dd.store)?
        && let Ok(h) = client.health()
        && !h.seal_public_key.is_empty()
        && h.seal_public_key != hex::encode(have)
    {
        return Err(crate::field::sealing::key_mismatch(
            &hex::encode(have),
            &h.seal_public_key,
        ));
    }
    // The request proves it holds the device key, for this server's key (from its health).
    let server_public = client
        .health()
        .map(|h| h.server_public_key)
        .map_err(|f| unreached(&f))?;
    let req = EnrolRequest::signed(
        &dd.key,
        token,
        &server_public,
        &dd.identity.officer,
        &dd.identity.team,
    );
    let (ans, signed) = client.enrol(&req).map_err(|f| match f {
        Failure::Refused {
            status,
            code,
            message,
        } => refusal_error(status, &code, &message),
        other => unreached(&other),
    })?;
    if let Some(want) = expect {
        want.check_answer(client.base(), &ans, signed)?;
    }
    let server_ca = crate::field::office_ca::from_answer(client.base(), &ans, office_ca)?;
    // The health check above is skipped when /v1/health fails or names no key: check the
    // answer's key too, before anything is stored (records sealed to another key could not be
    // opened there, and would come back `seal_unopened`).
    if let Some(have) = crate::field::sealing::district_key(&dd.store)?
        && crate::seal::parse_public_hex(&ans.seal_public_key) != Some(have)
    {
        return Err(crate::field::sealing::key_mismatch(
            &hex::encode(have),
            ans.seal_public_key.trim(),
        ));
    }
    if ans.device_id != dd.identity.device_id {
        return Err(AppError::other(tr!(
            "Server mendaftarkan perangkat {} padahal perangkat ini {}.",
            "The server enrolled device {} but this device is {}.",
            ans.device_id,
            dd.identity.device_id
        )));
    }
    let e = Enrolment {
        server_url: client.base().to_string(),
        server_id: ans.server_id.clone(),
        server_public_key: ans.server_public_key.clone(),
        enrolled_at: timefmt::now_utc(),
        server_ca,
    };
    e.save(&dd.store)?;
    // The team named on the token is the one the district knows this laptop by: new records
    // carry it (one set up with another or no team name takes it).
    let team = ans.team.trim();
    if !team.is_empty()
        && team != dd.identity.team
        && crate::domain::validate::label("team", team).is_ok()
    {
        dd.store.set_officer_team(&dd.identity.officer, team)?;
    }
    // From now on records are sealed to the district; what the holding key held is re-sealed
    // and the holding key destroyed (field/sealing.rs).
    crate::field::sealing::adopt(&dd.store, &dd.path, &ans.seal_public_key, "enrol").map_err(
        |e| AppError {
            message: tr!(
                "Perangkat terdaftar, tetapi kunci segel Dinas tidak bisa dipasang: {}",
                "The device is enrolled, but the district sealing key could not be set: {}",
                e.message
            ),
            ..e
        },
    )?;
    Ok(e)
}

/// The sync part of `ikd-field status`: where this laptop is enrolled, the last complete sync
/// and what still waits.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncState {
    pub enrolment: Option<Enrolment>,
    pub last_sync: Option<String>,
    pub last_summary: Option<String>,
    pub pending: i64,
    pub open_batches: i64,
}

impl SyncState {
    pub fn load(store: &Store) -> Result<SyncState, AppError> {
        let (pending, open_batches) = crate::field::outbox::backlog(store)?;
        Ok(SyncState {
            enrolment: Enrolment::load(store)?,
            last_sync: store.meta(M_LAST_OK)?,
            last_summary: store.meta(M_LAST_SUMMARY)?,
            pending,
            open_batches,
        })
    }

    /// One line for people, times in `offset`.
    pub fn line(&self, offset: time::UtcOffset) -> String {
        let pending = self.pending;
        let last = self
            .last_sync
            .as_deref()
            .map(|t| timefmt::local_display(t, offset))
            .unwrap_or_else(|| tr!("belum pernah", "never"));
        match &self.enrolment {
            Some(e) => tr!(
                "Server: {} · sinkron terakhir: {last} · menunggu: {pending}",
                "Server: {} · last sync: {last} · pending: {pending}",
                e.server_url
            ),
            None => tr!(
                "Server: belum terdaftar (ikd-field enrol --server URL --token TOKEN) · menunggu: {pending}",
                "Server: not enrolled (ikd-field enrol --server URL --token TOKEN) · pending: {pending}"
            ),
        }
    }
}

/// Why an enrolment did not happen, for a person: the certificate problem when that is it, a
/// hotspot that wants a login, or no connection; the token is not spent. The precise reason is
/// in the details (`--json`).
fn not_enrolled(base: &str, f: &Failure) -> AppError {
    let why = match f {
        Failure::Certificate(why) => why.clone(),
        other => other.plain(),
    };
    let hint = match f {
        Failure::Certificate(_) => tr!(
            "Periksa jam laptop. Jika Dinas memakai sertifikat sendiri, setel sync.ca_file ke berkas sertifikat dari admin Dinas.",
            "Check the laptop's clock. If the district uses its own certificate, set sync.ca_file to the certificate file from the district admin."
        ),
        Failure::Unsigned(_) => tr!(
            "Buka browser dan login WiFi hotspot dulu, lalu ulangi perintahnya.",
            "Open the browser and log in to the WiFi hotspot first, then run the command again."
        ),
        _ => tr!(
            "Periksa alamat server dan sinyal, lalu ulangi perintahnya.",
            "Check the server address and the signal, then run the command again."
        ),
    };
    AppError::new(
        Kind::Unreachable,
        tr!(
            "Pendaftaran ke {base} belum terjadi: {why}. Token belum terpakai; perangkat belum terdaftar; tidak ada yang hilang.",
            "Enrolment with {base} did not happen: {why}. The token is not spent; the device is not enrolled; nothing is lost."
        ),
    )
    .hint(hint)
    .details(serde_json::json!({ "reason": f.to_string(), "certificate": matches!(f, Failure::Certificate(_)) }))
}
