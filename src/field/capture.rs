//! Writing records: an activation or a void is validated, sealed (to the district's key, or the
//! holding key before enrolment) and committed durably in one transaction, refused when the same
//! NIK is already live on this laptop.
use super::records::{Stored, live_activation_sql, local, row_to_stored};
use super::store::{Identity, M_DISTRICT_SEAL, Sealing, Store};
use crate::domain::validate::Valid;
use crate::domain::{Kind, Record};
use crate::error::{AppError, Kind as ErrKind};
use crate::sqlite::db_error;
use crate::tr;
use rusqlite::{OptionalExtension, params};
use std::path::Path;

impl Store {
    /// Stores a validated activation durably; refuses a NIK already activated on this device.
    pub fn record_activation(&mut self, v: &Valid, who: &Identity) -> Result<Record, AppError> {
        let mut out = self.record_activations(std::slice::from_ref(v), who)?;
        out.pop().expect("one result per input")
    }

    /// Stores many activations in one transaction (a paper list typed in later, the demo, the
    /// benchmark). Each gets its own answer: a duplicate NIK refuses that one and not the rest.
    /// A database failure refuses them all (nothing is half-written).
    pub fn record_activations(
        &mut self,
        valid: &[Valid],
        who: &Identity,
    ) -> Result<Vec<Result<Record, AppError>>, AppError> {
        super::clock::check(self, crate::timefmt::now())?;
        let sealing = self.sealing.clone().ok_or_else(no_sealing)?;
        self.in_transaction(|tx, path| {
            let (to, label) = seal_target(tx, &sealing).map_err(|e| db_error(path, e))??;
            // Sealed up front, on every core for a long list; a box whose record turns out a
            // duplicate is dropped unused.
            let secrets: Vec<_> = valid
                .iter()
                .map(|v| crate::seal::Secrets {
                    nik: v.nik.nik.clone(),
                    phone: v.phone.clone(),
                    email: v.email.clone(),
                })
                .collect();
            let boxes = crate::seal::seal_many(&to, &secrets);
            drop(secrets);
            valid
                .iter()
                .zip(boxes)
                .map(|(v, sealed)| {
                    // Validated input always fits the sealed format; refuse this one if not.
                    let sealed = match sealed {
                        Ok(sealed) => sealed,
                        Err(why) => return Ok(Err(AppError::invalid(why.to_string()))),
                    };
                    let tag = crate::seal::nik_tag(&sealing.tag_key, &v.nik.nik);
                    insert(tx, path, Some(&tag), |seq| {
                        let r = Record::activation(v, seq, &who.device_id, &who.officer, &who.team);
                        debug_assert_eq!((&r.nik, &r.phone), (&v.nik.nik, &v.phone));
                        let seal = Seal {
                            sealed,
                            sealed_to: label.clone(),
                            nik_tag: tag.to_vec(),
                        };
                        (r, seal)
                    })
                })
                .collect()
        })
    }

    /// Records a void of `target` (which must be a live activation), as a new record. It carries
    /// the target's sealed box and keyed hash (the laptop cannot open the box to seal anew).
    pub fn record_void(
        &mut self,
        target: &Stored,
        reason: &str,
        who: &Identity,
    ) -> Result<Record, AppError> {
        super::clock::check(self, crate::timefmt::now())?;
        let t = &target.record;
        self.in_transaction(|tx, path| {
            let seal = tx
                .query_row(
                    "SELECT sealed, sealed_to, nik_tag FROM records WHERE id = ?1",
                    [&t.id],
                    |r| {
                        Ok((
                            r.get::<_, Option<Vec<u8>>>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, Option<Vec<u8>>>(2)?,
                        ))
                    },
                )
                .map_err(|e| db_error(path, e))?;
            let (Some(sealed), Some(sealed_to), Some(nik_tag)) = seal else {
                return Err(no_sealing());
            };
            insert(tx, path, None, |seq| {
                let r = Record {
                    id: uuid::Uuid::now_v7().to_string(),
                    seq,
                    device_id: who.device_id.clone(),
                    officer: who.officer.clone(),
                    team: who.team.clone(),
                    recorded_at: crate::timefmt::now_utc(),
                    kind: Kind::Void,
                    village: t.village.clone(),
                    nik: t.nik.clone(),
                    name: t.name.clone(),
                    phone: String::new(),
                    email: None,
                    voids: Some(t.id.clone()),
                    reason: Some(reason.to_string()),
                    warnings: vec![],
                };
                let seal = Seal {
                    sealed,
                    sealed_to,
                    nik_tag,
                };
                (r, seal)
            })
        })?
    }

    /// The live activation of `nik` on this device, if there is one (found by its keyed hash:
    /// the laptop keeps no NIK in clear). The desk shows it before the officer types further.
    pub fn live_activation_of(&self, nik: &str) -> Result<Option<Stored>, AppError> {
        let Some(sealing) = &self.sealing else {
            return Ok(None);
        };
        let tag = crate::seal::nik_tag(&sealing.tag_key, nik);
        self.conn
            .prepare_cached(&live_activation_sql())
            .and_then(|mut st| st.query_row([&tag[..]], row_to_stored).optional())
            .map_err(|e| db_error(&self.path, e))
    }

    /// Records whose NIK, phone and e-mail are not sealed to the district yet (held under the
    /// holding key, or rows of an older version not sealed at all).
    pub fn pending_seal(&self) -> Result<i64, AppError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM records WHERE sealed_to IS NULL OR sealed_to NOT LIKE 'district:%'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }
}

/// A record's sealed part as stored: the box, whom it is sealed to, the keyed NIK hash.
struct Seal {
    sealed: Vec<u8>,
    sealed_to: String,
    nik_tag: Vec<u8>,
}

fn no_sealing() -> AppError {
    AppError::other(tr!(
        "Kunci segel belum siap; catatan TIDAK disimpan.",
        "The sealing key is not ready; the record was NOT saved."
    ))
    .hint(tr!(
        "Buka folder data dengan perintah ikd-field biasa (record, status); jika masih gagal, hubungi admin Dinas.",
        "Open the data directory with an ordinary ikd-field command (record, status); if it still fails, call the district admin."
    ))
}

/// Inside a transaction: the key new records are sealed to, and its label (`district:<id>` or
/// `holding:<id>`). Read in the transaction, so a record written while another process enrols
/// goes to the district key as soon as it is known.
#[allow(clippy::type_complexity)]
pub(crate) fn seal_target(
    tx: &rusqlite::Transaction<'_>,
    sealing: &Sealing,
) -> rusqlite::Result<Result<([u8; 32], String), AppError>> {
    let district: Option<String> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [M_DISTRICT_SEAL],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(k) = district.as_deref().and_then(crate::seal::parse_public_hex) {
        return Ok(Ok((k, format!("district:{}", crate::seal::key_id(&k)))));
    }
    Ok(match sealing.holding {
        Some(h) => Ok((h, format!("holding:{}", crate::seal::key_id(&h)))),
        None => Err(no_sealing()),
    })
}

/// Inside a transaction: duplicate check (by keyed NIK hash), next sequence number, insert,
/// audit. `make` gives the record in full and its seal; only the seal, the masked NIK and what
/// the slip shows are written, and the record is returned as the laptop keeps it ([`local`]).
/// The outer error is a database failure (abort everything); the inner one refuses this record.
fn insert(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    unique_tag: Option<&[u8; 32]>,
    make: impl FnOnce(i64) -> (Record, Seal),
) -> Result<Result<Record, AppError>, AppError> {
    if let Some(tag) = unique_tag {
        let earlier = tx
            .prepare_cached(&live_activation_sql())
            .and_then(|mut st| st.query_row([&tag[..]], row_to_stored).optional())
            .map_err(|e| db_error(path, e))?;
        if let Some(e) = earlier {
            return Ok(Err(duplicate_error(&e)));
        }
    }
    let seq: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM records")
        .and_then(|mut st| st.query_row([], |r| r.get(0)))
        .map_err(|e| db_error(path, e))?;
    let (r, seal) = make(seq);
    let r = local(r);
    let warnings = serde_json::to_string(&r.warnings).unwrap_or_else(|_| "[]".into());
    let detail = match &r.voids {
        Some(t) => format!("void of {t}: {}", r.reason.as_deref().unwrap_or("")),
        None => format!("seq {} village {}", r.seq, r.village),
    };
    let action = if r.voids.is_some() { "void" } else { "record" };
    let run =
        || -> rusqlite::Result<()> {
            tx.prepare_cached(
            "INSERT INTO records (id, seq, device_id, officer, team, recorded_at, kind, village,
                                  nik_masked, nik_tag, name, sealed, sealed_to, voids, reason,
                                  warnings)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?
        .execute(params![
            r.id, r.seq, r.device_id, r.officer, r.team, r.recorded_at, r.kind.as_str(),
            r.village, r.nik, seal.nik_tag, r.name, seal.sealed, seal.sealed_to, r.voids,
            r.reason, warnings
        ])?;
            tx.prepare_cached(
                "INSERT INTO audit (at, action, record_id, detail) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![r.recorded_at, action, r.id, detail])?;
            Ok(())
        };
    run().map_err(|e| db_error(path, e))?;
    Ok(Ok(r))
}

fn duplicate_error(earlier: &Stored) -> AppError {
    let r = &earlier.record;
    // Named by its number on this laptop and the citizen's name; the id and the time stay in
    // the details (`--json`).
    AppError::new(
        ErrKind::Duplicate,
        tr!(
            "NIK ini sudah diaktivasi di laptop ini: catatan #{} atas nama {}. Aktivasi hanya sekali per orang.",
            "This NIK was already activated on this laptop: record #{} for {}. Activation is once per person.",
            r.seq,
            r.name
        ),
    )
    .hint(tr!(
        "Jika catatan lama salah, batalkan dulu: ikd-field void {} --reason \"ALASAN\"",
        "If the earlier record is wrong, void it first: ikd-field void {} --reason \"REASON\"",
        r.seq
    ))
    .details(serde_json::json!({"earlier_id": r.id, "earlier_seq": r.seq, "earlier_recorded_at": r.recorded_at}))
}
