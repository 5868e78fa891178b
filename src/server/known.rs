//! What one batch's per-record checks need from the `records` table — the record stored under an
//! id, the live activations of a NIK — read for the whole batch in two statements at the start
//! of its write transaction, instead of two or three statements per record (a round trip each on
//! PostgreSQL). As the batch's records are answered, what each one adds (a new record, a void)
//! is kept here too, so a record sees the records before it in its batch exactly as if they had
//! been written already: a repeated id, a second activation of a NIK, a void of a record earlier
//! in the same batch. A key not read at the start is read from the database on first use, so
//! the answers never depend on the up-front read being complete.
use super::db::{self, Db, args};
use std::collections::HashMap;

fn by_ids_sql(db: &Db<'_>) -> String {
    format!(
        "SELECT id, content_hash, kind, device_id, nik, voided_by FROM records WHERE {}",
        db.any_of("id", "?1")
    )
}

/// Sorted by the caller rather than with ORDER BY: that made SQLite re-prepare the statement on
/// every call inside a write transaction.
fn live_sql(db: &Db<'_>) -> String {
    format!(
        "SELECT rowid, id, nik FROM records WHERE {} AND kind = 'activation' \
         AND state = 'accepted' AND voided_by IS NULL",
        db.any_of("nik", "?1")
    )
}

/// The statements [`Known`] runs on this database (for tests of statement preparation).
pub fn statements(db: &Db<'_>) -> [String; 2] {
    [by_ids_sql(db), live_sql(db)]
}

/// What the checks need of a stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub content_hash: String,
    pub kind: String,
    pub device_id: String,
    pub nik: String,
    pub voided_by: Option<String>,
}

/// The `records` table as this batch sees it so far.
#[derive(Debug, Default)]
pub struct Known {
    /// Every id looked up: its record, or `None` when there is none.
    ids: HashMap<String, Option<Stored>>,
    /// Every NIK looked up: the ids of its live activations (accepted, not voided), earliest
    /// first. At most one in practice; the earliest is the one a conflict names.
    live: HashMap<String, Vec<String>>,
}

impl Known {
    /// Reads the records under `ids` and the live activations of `niks` (each list in one
    /// statement, whatever its length).
    pub fn load(db: &mut Db<'_>, ids: &[&str], niks: &[&str]) -> db::Result<Known> {
        let mut known = Known::default();
        known.read_ids(db, ids)?;
        known.read_niks(db, niks)?;
        Ok(known)
    }

    fn read_ids(&mut self, db: &mut Db<'_>, ids: &[&str]) -> db::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = by_ids_sql(db);
        for row in db.query_all(&sql, args![ids])? {
            let stored = Stored {
                content_hash: row.get(1)?,
                kind: row.get(2)?,
                device_id: row.get(3)?,
                nik: row.get(4)?,
                voided_by: row.get(5)?,
            };
            self.ids.insert(row.get(0)?, Some(stored));
        }
        for id in ids {
            self.ids.entry(id.to_string()).or_insert(None);
        }
        Ok(())
    }

    fn read_niks(&mut self, db: &mut Db<'_>, niks: &[&str]) -> db::Result<()> {
        if niks.is_empty() {
            return Ok(());
        }
        let sql = live_sql(db);
        let mut rows: Vec<(i64, String, String)> = Vec::new();
        for row in db.query_all(&sql, args![niks])? {
            rows.push((row.get(0)?, row.get(1)?, row.get(2)?));
        }
        rows.sort_unstable();
        for nik in niks {
            self.live.entry(nik.to_string()).or_default();
        }
        for (_, id, nik) in rows {
            self.live.entry(nik).or_default().push(id);
        }
        Ok(())
    }

    /// The record under `id`: stored before this batch, or added earlier in it.
    pub fn record(&mut self, db: &mut Db<'_>, id: &str) -> db::Result<Option<&Stored>> {
        if !self.ids.contains_key(id) {
            self.read_ids(db, &[id])?;
        }
        Ok(self.ids.get(id).and_then(Option::as_ref))
    }

    /// The earliest live activation of `nik`.
    pub fn first_live(&mut self, db: &mut Db<'_>, nik: &str) -> db::Result<Option<String>> {
        Ok(self.live_of(db, nik)?.first().cloned())
    }

    fn live_of(&mut self, db: &mut Db<'_>, nik: &str) -> db::Result<&mut Vec<String>> {
        if !self.live.contains_key(nik) {
            self.read_niks(db, &[nik])?;
        }
        Ok(self.live.entry(nik.to_string()).or_default())
    }

    /// The batch adds record `id`; `live` when it is an accepted activation.
    pub fn add(&mut self, db: &mut Db<'_>, id: &str, stored: Stored, live: bool) -> db::Result<()> {
        if live {
            self.live_of(db, &stored.nik)?.push(id.to_string());
        }
        self.ids.insert(id.to_string(), Some(stored));
        Ok(())
    }

    /// The batch voids record `target` (already looked up) with the void `by`.
    pub fn void(&mut self, db: &mut Db<'_>, target: &str, by: &str) -> db::Result<()> {
        let Some(Some(t)) = self.ids.get_mut(target) else {
            return Ok(());
        };
        t.voided_by = Some(by.to_string());
        let nik = t.nik.clone();
        self.live_of(db, &nik)?.retain(|id| id != target);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store::Store;

    fn stored(nik: &str) -> Stored {
        Stored {
            content_hash: "h".into(),
            kind: "activation".into(),
            device_id: "d".into(),
            nik: nik.into(),
            voided_by: None,
        }
    }

    /// Keys not read up front are read on first use; what the batch adds is seen after.
    #[test]
    fn keys_missed_up_front_are_read_on_use_and_additions_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("d.db")).unwrap();
        let mut db = store.db().unwrap();
        let mut k = Known::load(&mut db, &[], &[]).unwrap();
        assert_eq!(k.record(&mut db, "a").unwrap(), None);
        assert_eq!(k.first_live(&mut db, "1702").unwrap(), None);
        k.add(&mut db, "a", stored("1702"), true).unwrap();
        k.add(&mut db, "b", stored("1702"), true).unwrap();
        assert_eq!(k.first_live(&mut db, "1702").unwrap().as_deref(), Some("a"));
        k.void(&mut db, "a", "v").unwrap();
        assert_eq!(
            k.record(&mut db, "a")
                .unwrap()
                .unwrap()
                .voided_by
                .as_deref(),
            Some("v")
        );
        assert_eq!(k.first_live(&mut db, "1702").unwrap().as_deref(), Some("b"));
        // An id looked up in a list of several, on the statement of any length.
        let k2 = Known::load(&mut db, &["x", "y"], &["1", "2"]).unwrap();
        assert_eq!(k2.ids.len(), 2);
        assert!(k2.live.values().all(Vec::is_empty));
    }
}
