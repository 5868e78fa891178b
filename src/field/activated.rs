//! The district's already-activated NIKs, as the short hash prefixes `POST /v1/activated` lists
//! (never the NIKs themselves), kept on the laptop so `record` can warn that a person was
//! probably activated already by another team. Carried by the batch answers of each sync (or
//! pulled after it from an older server); a warning only.
use crate::error::AppError;
use crate::field::store::Store;
use crate::protocol::{self, ActivatedResponse, NIK_PREFIX_BYTES};
use crate::sqlite::db_error;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rusqlite::{OptionalExtension, params};

/// Cursor (`next`) of the last page stored, and the server time of that page.
const M_NEXT: &str = "sync.activated_next";
const M_AS_OF: &str = "sync.activated_as_of";

/// Where to ask from next time (0 for everything).
pub fn cursor(store: &Store) -> Result<i64, AppError> {
    Ok(store
        .meta(M_NEXT)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// Stores the delta a batch answer carried (`BatchResponse::activated`), when it starts at or
/// before the stored cursor (a replayed answer may carry an older one: its prefixes are kept,
/// the cursor never moves back). Returns the prefixes stored, `None` for a delta that starts
/// after the cursor (not stored: it would leave a gap).
pub fn store_delta(store: &Store, page: &ActivatedResponse) -> Result<Option<usize>, AppError> {
    let at = cursor(store)?;
    if page.since > at {
        return Ok(None);
    }
    let moved = ActivatedResponse {
        next: page.next.max(at),
        ..page.clone()
    };
    store_page(store, &moved).map(Some)
}

/// Stores one verified page and its cursor in one transaction; returns the prefixes in it.
pub fn store_page(store: &Store, page: &ActivatedResponse) -> Result<usize, AppError> {
    let dbe = |e| db_error(store.path(), e);
    let bytes = B64.decode(page.prefixes.trim()).unwrap_or_default();
    if page.prefix_bytes != NIK_PREFIX_BYTES || bytes.len() != page.count * NIK_PREFIX_BYTES {
        return Err(AppError::other(format!(
            "/v1/activated: {} prefixes of {} bytes do not match {} bytes",
            page.count,
            page.prefix_bytes,
            bytes.len()
        )));
    }
    let tx = store.conn().unchecked_transaction().map_err(dbe)?;
    {
        let mut ins = tx
            .prepare("INSERT OR IGNORE INTO district_activated (prefix) VALUES (?1)")
            .map_err(dbe)?;
        for p in bytes.chunks(NIK_PREFIX_BYTES) {
            ins.execute([p]).map_err(dbe)?;
        }
    }
    for (k, v) in [
        (M_NEXT, page.next.to_string()),
        (M_AS_OF, page.as_of.clone()),
    ] {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![k, v],
        )
        .map_err(dbe)?;
    }
    tx.commit().map_err(dbe)?;
    Ok(page.count)
}

/// When the district probably has this NIK activated already: the time of the list it is in.
pub fn listed(store: &Store, nik: &str) -> Result<Option<String>, AppError> {
    let hit = store
        .conn()
        .query_row(
            "SELECT 1 FROM district_activated WHERE prefix = ?1",
            [&protocol::nik_prefix(nik)[..]],
            |_| Ok(()),
        )
        .optional()
        .map_err(|e| db_error(store.path(), e))?;
    match hit {
        Some(()) => Ok(Some(store.meta(M_AS_OF)?.unwrap_or_default())),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_stored_and_matched_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("f.db")).unwrap();
        let niks = ["1702064107950003", "1702061708900001"];
        let bytes: Vec<u8> = niks.iter().flat_map(|n| protocol::nik_prefix(n)).collect();
        let page = ActivatedResponse {
            protocol: 1,
            server_id: "s".into(),
            since: 0,
            next: 2,
            more: false,
            prefix_bytes: NIK_PREFIX_BYTES,
            count: 2,
            prefixes: B64.encode(&bytes),
            as_of: "2026-11-23T05:00:00.000Z".into(),
        };
        assert_eq!(store_page(&store, &page).unwrap(), 2);
        // The same page again is harmless.
        store_page(&store, &page).unwrap();
        assert_eq!(cursor(&store).unwrap(), 2);
        assert_eq!(
            listed(&store, niks[0]).unwrap().as_deref(),
            Some("2026-11-23T05:00:00.000Z")
        );
        assert!(listed(&store, "1702060101900001").unwrap().is_none());
        let bad = ActivatedResponse {
            count: 3,
            ..page.clone()
        };
        assert!(store_page(&store, &bad).is_err());
        // A batch answer's delta: an older one (a replay) keeps the cursor; one that would
        // leave a gap is not stored.
        let old = ActivatedResponse {
            next: 1,
            count: 1,
            prefixes: B64.encode(&bytes[..3]),
            ..page.clone()
        };
        assert_eq!(store_delta(&store, &old).unwrap(), Some(1));
        assert_eq!(cursor(&store).unwrap(), 2);
        let gap = ActivatedResponse {
            since: 5,
            next: 9,
            ..page
        };
        assert_eq!(store_delta(&store, &gap).unwrap(), None);
        assert_eq!(cursor(&store).unwrap(), 2);
    }
}
