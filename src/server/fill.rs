//! Synthetic district data written straight into the server's tables in one transaction, for the
//! dashboard benchmark (a million records in seconds) and the browser test. Citizens come from
//! [`crate::synth`]: made-up names and NIKs, never real people's data.
//!
//! What it writes looks like what ingest leaves behind: enrolled devices in teams; activations
//! spread over the last days; about 1 in 200 a **conflict** (an earlier live activation's NIK,
//! from another device, `state = 'conflict'`, `conflict_with` set); about 1 in 100 activations
//! **voided** by a later void record of the same device (`voided_by` set by an UPDATE, as ingest
//! does). The dashboard's aggregates are brought up to date by [`coverage::fold`] before the
//! commit, as ingest does.
use super::coverage;
use super::db::{self, Db, Mode};
use crate::args;
use crate::synth::{self, Rng};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    /// 4-digit regency code, e.g. "1702" (Rejang Lebong).
    pub regency: String,
    /// Activation records (voids and conflicts come on top of the plain ones, within this count).
    pub records: usize,
    pub devices: usize,
    /// Records are spread over this many days before `now`.
    pub days: u32,
    pub now: time::OffsetDateTime,
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filled {
    pub records: u64,
    pub live: u64,
    pub conflicts: u64,
    pub voids: u64,
}

/// Writes devices and records for `plan` in one transaction.
pub fn fill(conn: &mut Db<'_>, plan: &Plan) -> db::Result<Filled> {
    let mut rng = Rng::new(plan.seed ^ 0x5eed);
    let people = synth::citizens(plan.seed, &plan.regency, plan.records);
    let mut tx = conn.begin(Mode::Write)?;
    let mark = coverage::watermark(&mut tx)?;
    let enrolled = crate::timefmt::stamp(plan.now - time::Duration::days(i64::from(plan.days) + 1));
    let devices: Vec<(String, String, String)> = (0..plan.devices.max(1))
        .map(|i| {
            (
                format!("dev-{:04}-{:08x}", i + 1, plan.seed as u32),
                format!("PETUGAS {}", i + 1),
                format!("TIM {}", i / 2 + 1),
            )
        })
        .collect();
    for (i, (id, officer, team)) in devices.iter().enumerate() {
        // The last device has not synced for two days; the others synced within the last hours.
        let last = plan.now
            - if i + 1 == devices.len() && devices.len() > 1 {
                time::Duration::days(2)
            } else {
                time::Duration::minutes(7 + 13 * i as i64)
            };
        tx.execute(
            "INSERT INTO devices (id, public_key, officer, team, enrolled_at, last_sync_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            args![
                id,
                format!("{:064x}", i as u128 + (plan.seed as u128) * 1_000_003),
                officer,
                team,
                enrolled,
                crate::timefmt::stamp(last)
            ],
        )?;
    }
    let mut seq = vec![0i64; devices.len()];
    let span_secs = i64::from(plan.days.max(1)) * 86_400;
    let start = plan.now - time::Duration::seconds(span_secs);
    let received = crate::timefmt::stamp(plan.now);
    let mut live_ids: Vec<(String, usize, String)> = Vec::new(); // (id, device, nik)
    let mut out = Filled::default();
    let ins =
        "INSERT INTO records (id, device_id, seq, kind, recorded_at, village, district, regency,
                              nik, name, phone, email, officer, team, voids, reason, content_hash,
                              batch_id, received_at, state, conflict_with)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                 ?19, ?20, ?21)";
    let void = "UPDATE records SET voided_by = ?2 WHERE id = ?1";
    let n = people.len().max(1) as i64;
    for (i, p) in people.iter().enumerate() {
        let d = rng.below(devices.len() as u64) as usize;
        seq[d] += 1;
        let at = start + time::Duration::seconds(span_secs * i as i64 / n);
        // Field hours: push the time into 08:00–16:00 WIB (01–09 UTC) of its day.
        let at = at
            .replace_hour((1 + rng.below(8)) as u8)
            .unwrap_or(at)
            .min(plan.now);
        let id = uuid::Uuid::from_u64_pair(plan.seed, i as u64 * 2).to_string();
        let (nik, state, conflict_with) = if !live_ids.is_empty() && rng.below(200) == 0 {
            let (other, od, onik) = &live_ids[rng.below(live_ids.len() as u64) as usize];
            if *od != d {
                (onik.clone(), "conflict", Some(other.clone()))
            } else {
                (p.nik.clone(), "accepted", None)
            }
        } else {
            (p.nik.clone(), "accepted", None)
        };
        let phone = format!("+62{}", &p.phone[1..]);
        let (dev, officer, team) = &devices[d];
        let batch = format!("batch-{d}-{}", seq[d] / 500);
        tx.execute(
            ins,
            args![
                id,
                dev,
                seq[d],
                "activation",
                crate::timefmt::stamp(at),
                p.village,
                &p.village[..6],
                &p.village[..4],
                nik,
                p.name,
                phone,
                (!p.email.is_empty()).then_some(p.email.as_str()),
                officer,
                team,
                None::<String>,
                None::<String>,
                format!("synthetic-{i}"),
                batch,
                received,
                state,
                conflict_with
            ],
        )?;
        out.records += 1;
        if state == "conflict" {
            out.conflicts += 1;
            continue;
        }
        if rng.below(100) == 0 {
            // Voided later by the same device: a void record, then the target marked.
            seq[d] += 1;
            let vid = uuid::Uuid::from_u64_pair(plan.seed, i as u64 * 2 + 1).to_string();
            tx.execute(
                ins,
                args![
                    vid,
                    dev,
                    seq[d],
                    "void",
                    crate::timefmt::stamp(at + time::Duration::minutes(5)),
                    p.village,
                    &p.village[..6],
                    &p.village[..4],
                    nik,
                    p.name,
                    phone,
                    None::<String>,
                    officer,
                    team,
                    Some(id.as_str()),
                    Some("salah ketik"),
                    format!("synthetic-void-{i}"),
                    batch,
                    received,
                    "accepted",
                    None::<String>
                ],
            )?;
            tx.execute(void, args![id, vid])?;
            out.records += 1;
            out.voids += 1;
            continue;
        }
        out.live += 1;
        if live_ids.len() < 10_000 {
            live_ids.push((id, d, nik));
        }
    }
    coverage::fold(&mut tx, mark)?;
    tx.commit()?;
    Ok(out)
}

/// A targets file for every village of `regency`: wajib KTP between 300 and 2,500, the target
/// mostly left empty (the default share), some as a count, some as another share; plus the
/// regency's own row when given (e.g. `("202820", "30%")`).
pub fn targets_csv(seed: u64, regency: &str, own: Option<(&str, &str)>) -> String {
    let mut rng = Rng::new(seed ^ 0x7a5);
    let mut out = String::from("region_code,wajib_ktp,target\n");
    if let Some((w, t)) = own {
        out.push_str(&format!("{regency},{w},{t}\n"));
    }
    for d in crate::domain::region::children(regency) {
        for v in crate::domain::region::children(&d.code) {
            let w = 300 + rng.below(2_201);
            let t = match rng.below(10) {
                0 => format!("{}", w / 4),
                1 => "35%".to_string(),
                _ => String::new(),
            };
            out.push_str(&format!("{},{w},{t}\n", v.code));
        }
    }
    out
}

/// `coverage::test_db` filled with 2,000 synthetic records of Rejang Lebong (4 devices, 10
/// days, seed 3), for the pages' unit tests.
#[cfg(test)]
pub(crate) fn test_filled() -> rusqlite::Connection {
    let conn = crate::server::coverage::test_db();
    let plan = Plan {
        seed: 3,
        regency: "1702".into(),
        records: 2_000,
        devices: 4,
        days: 10,
        now: time::OffsetDateTime::now_utc(),
    };
    fill(&mut crate::server::db::Db::sqlite(&conn), &plan).unwrap();
    conn
}
