//! The enrolled laptops (and relays) as the district database keeps them, and the enrolment
//! tokens the admin hands out.
use super::Refusal;
use super::db;
use super::store::Store;
use crate::args;
use crate::error::AppError;
use crate::protocol::ErrorCode;
use serde::Serialize;

/// An enrolled laptop, a relay (a district server forwarding here), or a device known only
/// through a relay.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Device {
    pub id: String,
    /// The device's key (hex); `None` for a device known only through a relay, which has no
    /// key here (server/relay.rs).
    pub public_key: Option<String>,
    /// The relay (district server) that brought this device's records, if it did.
    pub relayed_by: Option<String>,
    /// That relay's name (its officer field: the district's name at enrolment).
    pub relayed_by_name: Option<String>,
    /// True for a relay itself (enrolled with a relay token).
    pub relay: bool,
    pub officer: String,
    pub team: String,
    pub enrolled_at: String,
    pub revoked_at: Option<String>,
    pub last_sync_at: Option<String>,
    pub records: i64,
}

impl Store {
    /// Stores a new enrolment token (only its hash).
    pub fn add_token(
        &self,
        token_hash: &str,
        team: &str,
        created_at: &str,
        expires_at: &str,
        relay: bool,
    ) -> Result<(), AppError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO tokens (token_hash, team, created_at, expires_at, relay)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                args![token_hash, team, created_at, expires_at, i64::from(relay)],
            )
            .map(|_| ())
        })
    }

    pub fn device(&self, id: &str) -> Result<Option<Device>, AppError> {
        self.with(|db| {
            db.query_opt(&format!("{DEVICE_SELECT} WHERE d.id = ?1"), args![id])?
                .map(|r| row_to_device(&r))
                .transpose()
        })
    }

    /// A device's public key (hex) and when it was revoked, if it was: all that ingest needs.
    pub fn device_key(&self, id: &str) -> Result<Option<(String, Option<String>)>, AppError> {
        self.with(|db| {
            // A device known only through a relay (`relayed_by`) has no key here and cannot
            // send by itself: it is unknown to every signed request.
            db.query_opt(
                "SELECT public_key, revoked_at FROM devices WHERE id = ?1 AND relayed_by IS NULL",
                args![id],
            )?
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .transpose()
        })
    }

    /// The Ed25519 key of an enrolled, unrevoked device that signs its own requests, or the
    /// refusal every signed request gets: unknown here (401, also a device known only through a
    /// relay), revoked (403), a stored key that does not parse (500).
    pub fn enrolled_key(&self, id: &str) -> Result<[u8; crate::crypto::PUBLIC_KEY_LEN], Refusal> {
        let (public_hex, revoked_at) = self.device_key(id).map_err(Refusal::internal)?.ok_or_else(|| {
            Refusal::new(
                401,
                ErrorCode::DeviceUnknown,
                "this device is not enrolled here; enrol it with a token from the district admin",
            )
        })?;
        if let Some(at) = revoked_at {
            return Err(Refusal::new(
                403,
                ErrorCode::DeviceRevoked,
                format!("this device was revoked by the district admin at {at}"),
            ));
        }
        crate::crypto::parse_public_hex(&public_hex)
            .ok_or_else(|| Refusal::internal("stored device key is damaged"))
    }

    pub fn devices(&self) -> Result<Vec<Device>, AppError> {
        self.with(|db| {
            db.query_all(
                &format!("{DEVICE_SELECT} ORDER BY d.enrolled_at, d.id"),
                args![],
            )?
            .iter()
            .map(row_to_device)
            .collect()
        })
    }

    /// Marks a device revoked; false when it was already revoked.
    pub fn revoke(&self, id: &str, at: &str) -> Result<bool, AppError> {
        self.with(|db| {
            db.execute(
                "UPDATE devices SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                args![id, at],
            )
            .map(|n| n > 0)
        })
    }
}

const DEVICE_SELECT: &str = "SELECT d.id, d.public_key, d.officer, d.team, d.enrolled_at, \
     d.revoked_at, d.last_sync_at, (SELECT COUNT(*) FROM records r WHERE r.device_id = d.id), \
     d.relayed_by, (SELECT v.officer FROM devices v WHERE v.id = d.relayed_by), d.relay \
     FROM devices d";

fn row_to_device(r: &db::Row) -> db::Result<Device> {
    let relayed_by: Option<String> = r.get(8)?;
    let public_key: String = r.get(1)?;
    Ok(Device {
        id: r.get(0)?,
        // A relayed device's placeholder (`relayed:…`) is not a key: not shown as one.
        public_key: relayed_by.is_none().then_some(public_key),
        relayed_by,
        relayed_by_name: r.get(9)?,
        relay: r.get::<i64>(10)? != 0,
        officer: r.get(2)?,
        team: r.get(3)?,
        enrolled_at: r.get(4)?,
        revoked_at: r.get(5)?,
        last_sync_at: r.get(6)?,
        records: r.get(7)?,
    })
}
