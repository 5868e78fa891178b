//! The dashboard's conflict page (`/konflik`) and the admin's "handled" mark.
//!
//! A conflict is a record the server stored as `state = 'conflict'`: its NIK was already live
//! through another record (`conflict_with`). Everyone sees the counts per desa; the admin sees
//! each conflict's two sides — team, officer, the record's number `#N` on its laptop, local time,
//! desa — and what each officer must do, and can mark it handled with a note
//! (`POST /konflik/selesai`, table `conflict_handled`). A void from the field of either record
//! closes it by itself (`schema::OPEN_CONFLICT`); the page says who voided it.
use super::coverage::{self, fmt_int};
use super::dashboard::{self, AreaView, Page, Res, Settings, Viewer, render};
use super::db::{self, Db};
use super::schema::OPEN_CONFLICT;
use crate::args;
use crate::domain::region;
use minijinja::context;
use minijinja::value::{Serde, Value};
use serde::Serialize;

/// Most open conflicts listed for the admin.
const OPEN_LIMIT: usize = 500;
/// Most closed ones listed (the latest first).
const CLOSED_LIMIT: usize = 50;
/// Longest note kept.
pub const MAX_NOTE_CHARS: usize = 500;

/// One side of a conflict.
#[derive(Debug, Serialize)]
struct Side {
    team: String,
    officer: String,
    seq: i64,
    at: String,
    village: String,
    /// What this side's officer must do (open conflicts only).
    todo: String,
}

#[derive(Debug, Serialize)]
struct Conflict {
    id: String,
    nik: String,
    name: String,
    first: Side,
    second: Side,
    /// How it was closed (closed conflicts only).
    closed: String,
}

const SELECT: &str = "SELECT r.id, r.nik, r.name,
        o.team, o.officer, o.seq, o.recorded_at, o.village,
        r.team, r.officer, r.seq, r.recorded_at, r.village,
        vo.officer, vo.team, vo.recorded_at, vo.reason,
        vr.officer, vr.team, vr.recorded_at, vr.reason,
        h.note, h.handled_at
    FROM records r
    JOIN records o ON o.id = r.conflict_with
    LEFT JOIN records vo ON vo.id = o.voided_by
    LEFT JOIN records vr ON vr.id = r.voided_by
    LEFT JOIN conflict_handled h ON h.record_id = r.id";

fn village_name(code: String) -> String {
    region::village(&code)
        .map(|v| v.name.clone())
        .unwrap_or(code)
}

fn load(conn: &mut Db<'_>, s: &Settings, open: bool) -> db::Result<Vec<Conflict>> {
    let sql = if open {
        format!("{SELECT} WHERE {OPEN_CONFLICT} ORDER BY r.village, r.recorded_at LIMIT ?1")
    } else {
        format!(
            "{SELECT} WHERE r.state = 'conflict' AND NOT ({OPEN_CONFLICT})
             ORDER BY r.received_at DESC, r.id LIMIT ?1"
        )
    };
    let limit = if open { OPEN_LIMIT } else { CLOSED_LIMIT };
    let local = |t: String| crate::timefmt::local_display(&t, s.offset);
    conn.query_all(&sql, args![limit as i64])?
        .iter()
        .map(|r| {
            let mut first = Side {
                team: r.get(3)?,
                officer: r.get(4)?,
                seq: r.get(5)?,
                at: local(r.get(6)?),
                village: village_name(r.get(7)?),
                todo: String::new(),
            };
            let mut second = Side {
                team: r.get(8)?,
                officer: r.get(9)?,
                seq: r.get(10)?,
                at: local(r.get(11)?),
                village: village_name(r.get(12)?),
                todo: String::new(),
            };
            let voided = |i: usize, seq: i64| -> db::Result<Option<String>> {
                let Some(officer) = r.get::<Option<String>>(i)? else {
                    return Ok(None);
                };
                let team: String = r.get(i + 1)?;
                let at = local(r.get(i + 2)?);
                let reason = r.get::<Option<String>>(i + 3)?.unwrap_or_default();
                let why = if reason.trim().is_empty() {
                    String::new()
                } else {
                    format!(" (alasan: {})", reason.trim())
                };
                Ok(Some(format!(
                    "Ditutup otomatis: dibatalkan oleh {officer} ({team}) pada {at} — catatan #{seq}{why}."
                )))
            };
            let closed = match (voided(13, first.seq)?, voided(17, second.seq)?) {
                (Some(v), _) | (None, Some(v)) => v,
                (None, None) => match r.get::<Option<String>>(21)? {
                    Some(note) => format!(
                        "Ditandai selesai oleh admin pada {}: “{note}”",
                        local(r.get(22)?)
                    ),
                    None => String::new(),
                },
            };
            if open {
                (first.todo, second.todo) = todo(&first, &second);
            }
            Ok(Conflict {
                id: r.get(0)?,
                nik: r.get(1)?,
                name: r.get(2)?,
                first,
                second,
                closed,
            })
        })
        .collect()
}

/// What each officer must do, in plain words: the second one checks the NIK and voids a wrong
/// record; the first does nothing unless theirs was the mistyped one.
fn todo(first: &Side, second: &Side) -> (String, String) {
    (
        format!(
            "{}: bila aktivasi #{} memang untuk warga ini, tidak perlu berbuat apa-apa. Bila NIK-nya \
             salah ketik, batalkan #{} di laptop (menu Batal) lalu catat ulang dengan NIK yang benar.",
            first.officer, first.seq, first.seq
        ),
        format!(
            "{}: temui atau hubungi warga ini dan cocokkan NIK-nya dengan KTP. Bila warga ini memang \
             sudah diaktivasi (dobel) atau NIK salah ketik, batalkan #{} di laptop (menu Batal); \
             bila salah ketik, catat ulang dengan NIK yang benar.",
            second.officer, second.seq
        ),
    )
}

/// `/konflik`: counts for everyone; both sides and the "handled" form for the admin. `done`
/// is a line to show on top (after a mark).
pub fn page(conn: &mut Db<'_>, s: &Settings, v: &Viewer, done: Option<&str>) -> Res {
    let cov = coverage::coverage(conn)?;
    let villages: Vec<AreaView> = cov
        .villages
        .iter()
        .filter(|a| a.figures.conflicts > 0)
        .map(dashboard::view)
        .collect();
    let total: u64 = cov.villages.iter().map(|a| a.figures.conflicts).sum();
    let (open, closed) = if v.admin {
        (Some(load(conn, s, true)?), load(conn, s, false)?)
    } else {
        (None, vec![])
    };
    let body = render(
        "konflik.html",
        s.offset,
        v,
        context! {
            title => "Konflik",
            total => fmt_int(total),
            villages => Value::from(Serde(&villages)),
            open => Value::from(Serde(&open)),
            closed => Value::from(Serde(&closed)),
            done => done,
        },
    )?;
    Ok(Page::html(200, body))
}

/// Why a mark was not made.
#[derive(Debug, PartialEq, Eq)]
pub enum MarkError {
    /// No such conflict.
    Unknown,
    /// The note is empty or too long.
    Note,
}

/// Marks conflict record `id` handled with the admin's `note` (again: the note is replaced).
pub fn mark_handled(
    conn: &mut Db<'_>,
    id: &str,
    note: &str,
    now: &str,
) -> db::Result<Result<(), MarkError>> {
    let note = note.trim();
    if note.is_empty() || note.chars().count() > MAX_NOTE_CHARS || note.contains('\0') {
        return Ok(Err(MarkError::Note));
    }
    if id.len() != 36 || id.contains('\0') {
        return Ok(Err(MarkError::Unknown));
    }
    let found = conn.query_opt(
        "SELECT 1 FROM records WHERE id = ?1 AND state = 'conflict'",
        args![id],
    )?;
    if found.is_none() {
        return Ok(Err(MarkError::Unknown));
    }
    conn.execute(
        "INSERT INTO conflict_handled (record_id, note, handled_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (record_id) DO UPDATE SET note = excluded.note, handled_at = excluded.handled_at",
        args![id, note, now],
    )?;
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled() -> rusqlite::Connection {
        crate::server::fill::test_filled()
    }

    fn text(p: &Page) -> String {
        String::from_utf8(p.body.clone()).unwrap()
    }

    fn settings() -> Settings {
        Settings {
            offset: time::UtcOffset::from_hms(8, 0, 0).unwrap(),
            admin_token: "token-admin-uji".into(),
        }
    }

    #[test]
    fn both_sides_for_the_admin_counts_for_everyone() {
        let conn = filled();
        let s = settings();
        let (id, nik, name, seq, other_officer, other_seq): (String, String, String, i64, String, i64) = conn
            .query_row(
                "SELECT r.id, r.nik, r.name, r.seq, o.officer, o.seq FROM records r
                 JOIN records o ON o.id = r.conflict_with
                 WHERE r.state = 'conflict' AND r.voided_by IS NULL AND o.voided_by IS NULL LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .unwrap();
        let open = text(&page(&mut Db::sqlite(&conn), &s, &Viewer::default(), None).unwrap());
        assert!(!open.contains(&nik) && !open.contains(&name));
        assert!(open.contains("href=\"/masuk?lanjut=/konflik\""));
        let admin = Viewer {
            admin: true,
            csrf: Some("tok".into()),
        };
        let html = text(&page(&mut Db::sqlite(&conn), &s, &admin, None).unwrap());
        assert!(html.contains(&nik) && html.contains(&name));
        let card = &html[html.find(&format!("id=\"k-{id}\"")).unwrap()..];
        let card = &card[..card.find("</article>").unwrap()];
        assert!(
            card.contains(&format!("catatan #{seq} di laptopnya")),
            "{card}"
        );
        assert!(
            card.contains(&format!("catatan #{other_seq} di laptopnya")),
            "{card}"
        );
        assert!(card.contains(&format!("{other_officer}: bila aktivasi #{other_seq}")));
        assert!(card.contains(" WITA"), "{card}");
        assert!(card.contains("name=\"csrf\" value=\"tok\""));

        // Handled with a note: closed, the note shown, the count one less.
        let open_before = open_count(&conn);
        let mut db = Db::sqlite(&conn);
        assert_eq!(
            mark_handled(
                &mut db,
                &id,
                "  sudah dicek: dobel, tim 2 membatalkan  ",
                "2026-12-01T01:00:00Z"
            )
            .unwrap(),
            Ok(())
        );
        assert_eq!(open_count(&conn), open_before - 1);
        let html = text(&page(&mut Db::sqlite(&conn), &s, &admin, None).unwrap());
        assert!(html.contains(
            "Ditandai selesai oleh admin pada 01-12-2026 09:00 WITA: “sudah dicek: dobel, tim 2 membatalkan”"
        ), "{html}");
        assert_eq!(
            mark_handled(&mut db, &id, " ", "t").unwrap(),
            Err(MarkError::Note)
        );
        assert_eq!(
            mark_handled(&mut db, &"x".repeat(36), "ok", "t").unwrap(),
            Err(MarkError::Unknown)
        );
        let live: String = conn
            .query_row(
                "SELECT id FROM records WHERE state = 'accepted' LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            mark_handled(&mut db, &live, "ok", "t").unwrap(),
            Err(MarkError::Unknown)
        );
    }

    fn open_count(conn: &rusqlite::Connection) -> i64 {
        conn.query_row(
            &format!("SELECT COUNT(*) FROM records r WHERE {OPEN_CONFLICT}"),
            [],
            |r| r.get(0),
        )
        .unwrap()
    }
}
