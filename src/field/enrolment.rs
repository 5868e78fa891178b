//! Where this laptop is enrolled (the district server's URL, id and key), kept in the field
//! database's meta table, and the last complete sync.
use crate::crypto;
use crate::error::AppError;
use crate::field::store::Store;

/// Where this device is enrolled, as kept in the field database's meta table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Enrolment {
    pub server_url: String,
    pub server_id: String,
    pub server_public_key: String,
    pub enrolled_at: String,
}

const M_URL: &str = "sync.server_url";
const M_ID: &str = "sync.server_id";
const M_KEY: &str = "sync.server_public_key";
const M_AT: &str = "sync.enrolled_at";
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
        }))
    }

    /// Stores the enrolment and its audit line in one transaction (never half an enrolment).
    pub fn save(&self, store: &Store) -> Result<(), AppError> {
        let dbe = |e| crate::field::store::db_error(store.path(), e);
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
}
