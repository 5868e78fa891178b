//! Folding a write transaction's new records into the dashboard's aggregates (see the module
//! above): one statement per aggregate per batch.
use crate::args;
use crate::server::db::{self, Db, Dialect};

/// The UTC hour bucket of a stored time (SQL): `2026-11-23T05`.
const HOUR: &str = "coalesce(strftime('%Y-%m-%dT%H', {t}), substr({t}, 1, 13))";

/// The last record's rowid. Take it inside a write transaction ([`db::Mode::Write`] or
/// [`db::Mode::Ingest`]) before inserting records, and pass it to [`fold`] before committing.
/// (Records are never deleted; this transaction's rows all come after it. On SQLite, with one
/// writer at a time, the rows after it are exactly this transaction's; PostgreSQL tells them
/// apart by transaction.)
pub fn watermark(conn: &mut Db<'_>) -> db::Result<i64> {
    conn.query_one("SELECT coalesce(max(rowid), 0) FROM records", args![])?
        .get(0)
}

/// Brings the dashboard's aggregates up to date with the records inserted after `watermark` (in
/// the caller's transaction): each live activation among them counts once for its village and
/// its (device, UTC hour) and its (village, UTC hour); each void among them takes its target out again when the target was
/// counted — an accepted activation stored before this transaction (one stored in it is
/// voided by the time of the fold, never counted). One statement per aggregate per batch instead of work per record:
/// cheap for ingest. Every writer of `records` must call it (ingest does; so does `fill`).
pub fn fold(conn: &mut Db<'_>, watermark: i64) -> db::Result<()> {
    match conn.dialect() {
        Dialect::Sqlite => {
            for sql in fold_sql() {
                conn.execute(&sql, args![watermark])?;
            }
            Ok(())
        }
        // One round trip, with the mark written in (an integer from the database itself) so the
        // planner sees it and takes the rowid index for the batch's rows.
        Dialect::Postgres => conn.batch(
            &fold_sql_postgres()
                .join(";\n")
                .replace("?1", &watermark.to_string()),
        ),
    }
}

/// [`fold_sql`] for PostgreSQL, where batches write side by side ([`db::Mode::Ingest`]): the rows
/// after the mark include other batches' that committed meanwhile (each folded its own), so a
/// transaction's own rows are those it wrote (`xmin`, its transaction id). A void's target was
/// counted before unless it came in the void's own batch (then it was written voided); an
/// earlier target this transaction marked voided carries its `xmin` too, hence the batch test.
/// The own rows are read first, on their own (`MATERIALIZED`), by the rowid range: given the
/// whole condition the planner may walk a partial index over every live activation instead
/// (`records_live_nik`, whose predicate the live test matches), a cost that grows with the table
/// and is paid while the aggregates' rows are locked. The range is closed (below the largest
/// BIGINT) because a table not yet analysed — a new district's first busy hours, before
/// autovacuum comes round — gets a third of its rows guessed for an open range, and a seq scan,
/// but a small share for a closed one. One statement per table, the additions and
/// the removals together, rows in key order: two batches lock the aggregates' rows in the same
/// order and do not deadlock on them.
pub(super) fn fold_sql_postgres() -> [String; 3] {
    let own = "WITH own AS MATERIALIZED (
                 SELECT village, device_id, recorded_at, kind, state, voided_by, voids, batch_id
                 FROM records
                 WHERE rowid > ?1 AND rowid < 9223372036854775807
                   AND xmin = pg_current_xact_id()::xid
               )";
    let live = "kind = 'activation' AND state = 'accepted' AND voided_by IS NULL";
    let gone = "FROM own AS v JOIN records AS t ON t.id = v.voids
                WHERE v.kind = 'void' AND NOT (t.rowid > ?1 AND t.batch_id = v.batch_id)
                  AND t.kind = 'activation' AND t.state = 'accepted'";
    // (table, its key columns, the key from a record `r.`)
    let tables = [
        ("live_by_village", "village", "{r}village"),
        (
            "live_by_device_hour",
            "device_id, hour",
            "{r}device_id, ikd_utc_hour({r}recorded_at)",
        ),
        (
            "live_by_village_hour",
            "village, hour",
            "{r}village, ikd_utc_hour({r}recorded_at)",
        ),
    ];
    tables.map(|(table, key, of)| {
        let (added, removed) = (of.replace("{r}", ""), of.replace("{r}", "t."));
        let n = key.split(", ").count();
        let cols: Vec<String> = (1..=n).map(|i| format!("k{i}")).collect();
        let cols = cols.join(", ");
        format!(
            "{own}
             INSERT INTO {table} ({key}, live)
             SELECT {cols}, SUM(d) FROM (
                 SELECT {added}, 1 FROM own WHERE {live}
                 UNION ALL
                 SELECT {removed}, -1 {gone}
             ) AS x ({cols}, d)
             GROUP BY {cols} ORDER BY {cols}
             ON CONFLICT ({key}) DO UPDATE SET live = {table}.live + excluded.live"
        )
    })
}

/// The statements of [`fold`]. `NOT INDEXED` keeps SQLite on the rowid range (the batch's own
/// rows) instead of walking a whole index in GROUP BY order, and `CROSS JOIN` keeps the voids of
/// the batch as the outer loop: without them a fold on a million records takes seconds.
pub(super) fn fold_sql() -> [String; 6] {
    let hour = |t: &str| HOUR.replace("{t}", t);
    let live = "kind = 'activation' AND state = 'accepted' AND voided_by IS NULL";
    let gone = "FROM records AS v NOT INDEXED CROSS JOIN records AS t ON t.id = v.voids
                WHERE v.rowid > ?1 AND v.kind = 'void' AND t.rowid <= ?1
                  AND t.kind = 'activation' AND t.state = 'accepted'";
    [
        format!(
            "INSERT INTO live_by_village (village, live)
             SELECT village, COUNT(*) FROM records NOT INDEXED WHERE rowid > ?1 AND {live}
             GROUP BY village
             ON CONFLICT (village) DO UPDATE SET live = live + excluded.live"
        ),
        format!(
            "INSERT INTO live_by_device_hour (device_id, hour, live)
             SELECT device_id, {h} AS h, COUNT(*) FROM records NOT INDEXED
             WHERE rowid > ?1 AND {live}
             GROUP BY device_id, h
             ON CONFLICT (device_id, hour) DO UPDATE SET live = live + excluded.live",
            h = hour("recorded_at")
        ),
        format!(
            "INSERT INTO live_by_village (village, live)
             SELECT t.village, -COUNT(*) {gone} GROUP BY t.village
             ON CONFLICT (village) DO UPDATE SET live = live + excluded.live"
        ),
        format!(
            "INSERT INTO live_by_device_hour (device_id, hour, live)
             SELECT t.device_id, {h} AS h, -COUNT(*) {gone} GROUP BY t.device_id, h
             ON CONFLICT (device_id, hour) DO UPDATE SET live = live + excluded.live",
            h = hour("t.recorded_at")
        ),
        format!(
            "INSERT INTO live_by_village_hour (village, hour, live)
             SELECT village, {h} AS h, COUNT(*) FROM records NOT INDEXED
             WHERE rowid > ?1 AND {live}
             GROUP BY village, h
             ON CONFLICT (village, hour) DO UPDATE SET live = live + excluded.live",
            h = hour("recorded_at")
        ),
        format!(
            "INSERT INTO live_by_village_hour (village, hour, live)
             SELECT t.village, {h} AS h, -COUNT(*) {gone} GROUP BY t.village, h
             ON CONFLICT (village, hour) DO UPDATE SET live = live + excluded.live",
            h = hour("t.recorded_at")
        ),
    ]
}
