//! The district database's schema: numbered migrations, one DDL text per dialect each (the same
//! tables, columns and meaning). `store` runs them; each module that owns tables documents them
//! here, so the list has no import back into the modules that use it.

/// One numbered migration, as DDL for each dialect (the same tables, columns and meaning).
pub struct Migration {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    // 1: devices, enrolment tokens, records, batch journal, refusals.
    Migration {
        sqlite: r#"
    CREATE TABLE devices (
        id           TEXT PRIMARY KEY,
        public_key   TEXT NOT NULL UNIQUE,
        officer      TEXT NOT NULL,
        team         TEXT NOT NULL,
        enrolled_at  TEXT NOT NULL,
        revoked_at   TEXT,
        last_sync_at TEXT
    ) STRICT;
    CREATE TABLE tokens (
        token_hash TEXT PRIMARY KEY,
        team       TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at    TEXT,
        used_by    TEXT
    ) STRICT;
    CREATE TABLE records (
        id            TEXT PRIMARY KEY,
        device_id     TEXT NOT NULL REFERENCES devices(id),
        seq           INTEGER NOT NULL,
        kind          TEXT NOT NULL CHECK (kind IN ('activation', 'void')),
        recorded_at   TEXT NOT NULL,
        village       TEXT NOT NULL,
        district      TEXT NOT NULL,
        regency       TEXT NOT NULL,
        nik           TEXT NOT NULL,
        name          TEXT NOT NULL,
        phone         TEXT NOT NULL,
        email         TEXT,
        officer       TEXT NOT NULL,
        team          TEXT NOT NULL,
        voids         TEXT REFERENCES records(id),
        reason        TEXT,
        warnings      TEXT NOT NULL DEFAULT '[]',
        content_hash  TEXT NOT NULL,
        batch_id      TEXT NOT NULL,
        received_at   TEXT NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('accepted', 'conflict')),
        conflict_with TEXT REFERENCES records(id),
        voided_by     TEXT REFERENCES records(id)
    ) STRICT;
    CREATE INDEX records_nik ON records(nik);
    CREATE INDEX records_village ON records(village);
    CREATE INDEX records_device ON records(device_id, seq);
    -- NULLs never collide in a UNIQUE index: at most one void per record.
    CREATE UNIQUE INDEX records_one_void ON records(voids);
    -- Activations that count: accepted, not voided.
    CREATE VIEW live_activations AS
        SELECT * FROM records
        WHERE kind = 'activation' AND state = 'accepted' AND voided_by IS NULL;
    CREATE TABLE batches (
        id          TEXT PRIMARY KEY,
        device_id   TEXT NOT NULL REFERENCES devices(id),
        body_sha256 TEXT NOT NULL,
        received_at TEXT NOT NULL,
        records     INTEGER NOT NULL,
        response    BLOB NOT NULL,
        signature   TEXT NOT NULL
    ) STRICT;
    CREATE TABLE rejects (
        id        INTEGER PRIMARY KEY,
        at        TEXT NOT NULL,
        device_id TEXT,
        batch_id  TEXT,
        record_id TEXT,
        code      TEXT NOT NULL,
        message   TEXT NOT NULL
    ) STRICT;
    "#,
        // The same; integers are BIGINT, blobs BYTEA, and SQLite's implicit rowid (arrival
        // order) is an identity column of the same name, assigned under the writer lock.
        postgres: r#"
    CREATE TABLE devices (
        id           TEXT PRIMARY KEY,
        public_key   TEXT NOT NULL UNIQUE,
        officer      TEXT NOT NULL,
        team         TEXT NOT NULL,
        enrolled_at  TEXT NOT NULL,
        revoked_at   TEXT,
        last_sync_at TEXT
    );
    CREATE TABLE tokens (
        token_hash TEXT PRIMARY KEY,
        team       TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at    TEXT,
        used_by    TEXT
    );
    CREATE TABLE records (
        id            TEXT PRIMARY KEY,
        device_id     TEXT NOT NULL REFERENCES devices(id),
        seq           BIGINT NOT NULL,
        kind          TEXT NOT NULL CHECK (kind IN ('activation', 'void')),
        recorded_at   TEXT NOT NULL,
        village       TEXT NOT NULL,
        district      TEXT NOT NULL,
        regency       TEXT NOT NULL,
        nik           TEXT NOT NULL,
        name          TEXT NOT NULL,
        phone         TEXT NOT NULL,
        email         TEXT,
        officer       TEXT NOT NULL,
        team          TEXT NOT NULL,
        voids         TEXT REFERENCES records(id),
        reason        TEXT,
        warnings      TEXT NOT NULL DEFAULT '[]',
        content_hash  TEXT NOT NULL,
        batch_id      TEXT NOT NULL,
        received_at   TEXT NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('accepted', 'conflict')),
        conflict_with TEXT REFERENCES records(id),
        voided_by     TEXT REFERENCES records(id),
        rowid         BIGINT GENERATED ALWAYS AS IDENTITY (CACHE 1) UNIQUE
    );
    CREATE INDEX records_nik ON records(nik);
    CREATE INDEX records_village ON records(village);
    CREATE INDEX records_device ON records(device_id, seq);
    CREATE UNIQUE INDEX records_one_void ON records(voids);
    CREATE VIEW live_activations AS
        SELECT * FROM records
        WHERE kind = 'activation' AND state = 'accepted' AND voided_by IS NULL;
    CREATE TABLE batches (
        id          TEXT PRIMARY KEY,
        device_id   TEXT NOT NULL REFERENCES devices(id),
        body_sha256 TEXT NOT NULL,
        received_at TEXT NOT NULL,
        records     BIGINT NOT NULL,
        response    BYTEA NOT NULL,
        signature   TEXT NOT NULL
    );
    CREATE TABLE rejects (
        id        BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        at        TEXT NOT NULL,
        device_id TEXT,
        batch_id  TEXT,
        record_id TEXT,
        code      TEXT NOT NULL,
        message   TEXT NOT NULL
    );
    "#,
    },
    // 2: dashboard: targets, and live-activation counts per village and per device-hour, kept up
    // to date by server::coverage::fold in the transaction of every write of records (ingest).
    Migration {
        sqlite: COVERAGE,
        postgres: COVERAGE_POSTGRES,
    },
    // 3: the batch answer also as gzip with its own signature, for clients that accept gzip
    // (NULL for batches answered before: those are replayed uncompressed).
    Migration {
        sqlite: "ALTER TABLE batches ADD COLUMN response_gzip BLOB;
     ALTER TABLE batches ADD COLUMN signature_gzip TEXT;",
        postgres: "ALTER TABLE batches ADD COLUMN response_gzip BYTEA;
     ALTER TABLE batches ADD COLUMN signature_gzip TEXT;",
    },
    // 4: forwarding to a province (docs/protocol.md "Forwarding"). Province side: relay tokens
    // and devices (a district server), and the field devices a relay brought (`relayed_by`:
    // they exist for `records.device_id` and the dashboard, and cannot send themselves).
    // District side: the province it forwards to with its cursor and lease, and the journal of
    // forwarded batches.
    Migration {
        sqlite: FORWARD,
        postgres: FORWARD_POSTGRES,
    },
    // 5: the batch journal keyed by (device, batch id), not the batch id alone: another device
    // posting under a laptop's batch id (readable from its USB file) no longer blocks that
    // laptop's batch.
    Migration {
        sqlite: r#"
    CREATE TABLE batches_by_device (
        id             TEXT NOT NULL,
        device_id      TEXT NOT NULL REFERENCES devices(id),
        body_sha256    TEXT NOT NULL,
        received_at    TEXT NOT NULL,
        records        INTEGER NOT NULL,
        response       BLOB NOT NULL,
        signature      TEXT NOT NULL,
        response_gzip  BLOB,
        signature_gzip TEXT,
        PRIMARY KEY (device_id, id)
    ) STRICT;
    INSERT INTO batches_by_device
        SELECT id, device_id, body_sha256, received_at, records, response, signature,
               response_gzip, signature_gzip
        FROM batches;
    DROP TABLE batches;
    ALTER TABLE batches_by_device RENAME TO batches;
    "#,
        postgres: r#"
    ALTER TABLE batches DROP CONSTRAINT batches_pkey;
    ALTER TABLE batches ADD PRIMARY KEY (device_id, id);
    "#,
    },
    // 6: the office report: live activations per village and UTC hour (kept up to date by
    // server::coverage::fold like the two counts of migration 2, filled here from the records
    // already there), so a period's activations per region never scan the records; and the
    // voids by time, for the report's voids per team (voids are few: a partial index).
    Migration {
        sqlite: r#"
    CREATE TABLE live_by_village_hour (
        village TEXT NOT NULL,
        hour    TEXT NOT NULL,
        live    INTEGER NOT NULL,
        PRIMARY KEY (village, hour)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX records_voids_by_time ON records(recorded_at) WHERE kind = 'void';
    INSERT INTO live_by_village_hour (village, hour, live)
        SELECT village,
               coalesce(strftime('%Y-%m-%dT%H', recorded_at), substr(recorded_at, 1, 13)) AS h,
               COUNT(*)
        FROM records
        WHERE kind = 'activation' AND state = 'accepted' AND voided_by IS NULL
        GROUP BY village, h;
    "#,
        postgres: r#"
    CREATE TABLE live_by_village_hour (
        village TEXT NOT NULL,
        hour    TEXT NOT NULL,
        live    BIGINT NOT NULL,
        PRIMARY KEY (village, hour)
    );
    CREATE INDEX records_voids_by_time ON records(recorded_at) WHERE kind = 'void';
    INSERT INTO live_by_village_hour (village, hour, live)
        SELECT village, ikd_utc_hour(recorded_at) AS h, COUNT(*)
        FROM records
        WHERE kind = 'activation' AND state = 'accepted' AND voided_by IS NULL
        GROUP BY village, h;
    "#,
    },
    // 7: conflicts the admin marked handled on the dashboard's /konflik, with the admin's note
    // (server::konflik). A conflict is open while neither of its records is voided and it is not
    // marked handled ([`OPEN_CONFLICT`]).
    Migration {
        sqlite: r#"
    CREATE TABLE conflict_handled (
        record_id  TEXT PRIMARY KEY REFERENCES records(id),
        note       TEXT NOT NULL,
        handled_at TEXT NOT NULL
    ) STRICT;
    "#,
        postgres: r#"
    CREATE TABLE conflict_handled (
        record_id  TEXT PRIMARY KEY REFERENCES records(id),
        note       TEXT NOT NULL,
        handled_at TEXT NOT NULL
    );
    "#,
    },
    // 8: a NIK has at most one live activation, kept by the database itself on PostgreSQL, where
    // batches are written side by side (server::db::writers): of two batches activating one NIK
    // at once, the second fails here and is decided again alone (then a conflict). SQLite has
    // one writer at a time, which decides it in order; nothing to add there. `voided_by` is
    // checked at COMMIT, so a batch marks the records it voids before writing the voids. The
    // server looks NIKs up only among live activations (server::known), which the new index
    // serves, so the plain one goes: a record costs no more index work than before.
    Migration {
        sqlite: "-- PostgreSQL only",
        postgres: r#"
    ALTER TABLE records ALTER CONSTRAINT records_voided_by_fkey DEFERRABLE INITIALLY DEFERRED;
    CREATE UNIQUE INDEX records_live_nik ON records (nik)
        WHERE kind = 'activation' AND state = 'accepted' AND voided_by IS NULL;
    DROP INDEX records_nik;
    "#,
    },
    // 9: the report reads the village-hour counts of its period and the 30 days before the day it
    // stands at (server::coverage::trend::daily), not every hour since the first activation.
    Migration {
        sqlite: "CREATE INDEX live_by_village_hour_hour ON live_by_village_hour (hour);",
        postgres: "CREATE INDEX live_by_village_hour_hour ON live_by_village_hour (hour);",
    },
];

/// The condition (on `records` as `r`) of an open conflict: flagged, neither it nor the record
/// it conflicts with voided from the field since, and not marked handled by the admin. The one
/// definition behind the dashboard's counts, `/konflik` and `server stats`.
pub const OPEN_CONFLICT: &str = "r.state = 'conflict' AND r.voided_by IS NULL
    AND NOT EXISTS (SELECT 1 FROM records o WHERE o.id = r.conflict_with AND o.voided_by IS NOT NULL)
    AND NOT EXISTS (SELECT 1 FROM conflict_handled h WHERE h.record_id = r.id)";

/// A conflict closed by a void from the field (of either of its two records).
pub const CONFLICT_CLOSED_BY_VOID: &str = "r.state = 'conflict' AND (r.voided_by IS NOT NULL
    OR EXISTS (SELECT 1 FROM records o WHERE o.id = r.conflict_with AND o.voided_by IS NOT NULL))";

/// The dashboard's schema, a numbered migration of the server store: targets, the live-activation
/// aggregates (filled from the records already there when the migration runs; kept up to date by
/// `coverage::fold` in every transaction that inserts records), and a partial index for the conflicts
/// still to resolve.
pub(crate) const COVERAGE: &str = r#"
    CREATE TABLE targets (
        region_code TEXT PRIMARY KEY,
        wajib_ktp   INTEGER NOT NULL CHECK (wajib_ktp > 0),
        target_count INTEGER CHECK (target_count > 0),
        target_bp   INTEGER CHECK (target_bp BETWEEN 1 AND 10000),
        source      TEXT NOT NULL CHECK (source IN ('file', 'default')),
        line        INTEGER NOT NULL,
        imported_at TEXT NOT NULL,
        CHECK ((target_count IS NULL) <> (target_bp IS NULL))
    ) STRICT;
    CREATE TABLE live_by_village (
        village TEXT PRIMARY KEY,
        live    INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE live_by_device_hour (
        device_id TEXT NOT NULL,
        hour      TEXT NOT NULL,
        live      INTEGER NOT NULL,
        PRIMARY KEY (device_id, hour)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX records_open_conflicts ON records(village)
        WHERE state = 'conflict' AND voided_by IS NULL;

    INSERT INTO live_by_village (village, live)
        SELECT village, COUNT(*) FROM records
        WHERE kind = 'activation' AND state = 'accepted' AND voided_by IS NULL
        GROUP BY village;
    INSERT INTO live_by_device_hour (device_id, hour, live)
        SELECT device_id,
               coalesce(strftime('%Y-%m-%dT%H', recorded_at), substr(recorded_at, 1, 13)) AS h,
               COUNT(*)
        FROM records
        WHERE kind = 'activation' AND state = 'accepted' AND voided_by IS NULL
        GROUP BY device_id, h;
"#;

/// [`COVERAGE`] on PostgreSQL: the same tables (BIGINT for integers), and `ikd_utc_hour`, the
/// hour bucket SQLite gets from `strftime` (a time that does not parse keeps its first 13
/// characters, as `coalesce(strftime(…), substr(…))` does).
pub(crate) const COVERAGE_POSTGRES: &str = r#"
    CREATE TABLE targets (
        region_code TEXT PRIMARY KEY,
        wajib_ktp   BIGINT NOT NULL CHECK (wajib_ktp > 0),
        target_count BIGINT CHECK (target_count > 0),
        target_bp   BIGINT CHECK (target_bp BETWEEN 1 AND 10000),
        source      TEXT NOT NULL CHECK (source IN ('file', 'default')),
        line        BIGINT NOT NULL,
        imported_at TEXT NOT NULL,
        CHECK ((target_count IS NULL) <> (target_bp IS NULL))
    );
    CREATE TABLE live_by_village (
        village TEXT PRIMARY KEY,
        live    BIGINT NOT NULL
    );
    CREATE TABLE live_by_device_hour (
        device_id TEXT NOT NULL,
        hour      TEXT NOT NULL,
        live      BIGINT NOT NULL,
        PRIMARY KEY (device_id, hour)
    );
    CREATE INDEX records_open_conflicts ON records(village)
        WHERE state = 'conflict' AND voided_by IS NULL;
    CREATE FUNCTION ikd_utc_hour(t TEXT) RETURNS TEXT LANGUAGE plpgsql STABLE AS $fn$
    BEGIN
        RETURN to_char(t::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24');
    EXCEPTION WHEN others THEN
        RETURN substr(t, 1, 13);
    END
    $fn$;

    INSERT INTO live_by_village (village, live)
        SELECT village, COUNT(*) FROM records
        WHERE kind = 'activation' AND state = 'accepted' AND voided_by IS NULL
        GROUP BY village;
    INSERT INTO live_by_device_hour (device_id, hour, live)
        SELECT device_id, ikd_utc_hour(recorded_at) AS h, COUNT(*)
        FROM records
        WHERE kind = 'activation' AND state = 'accepted' AND voided_by IS NULL
        GROUP BY device_id, h;
"#;

/// Migration 4 of the server database ([`MIGRATIONS`]), SQLite.
pub(crate) const FORWARD: &str = r#"
    ALTER TABLE tokens ADD COLUMN relay INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE devices ADD COLUMN relay INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE devices ADD COLUMN relayed_by TEXT REFERENCES devices(id);
    CREATE TABLE forward_target (
        id                INTEGER PRIMARY KEY CHECK (id = 1),
        url               TEXT NOT NULL,
        device_id         TEXT NOT NULL,
        server_id         TEXT NOT NULL,
        server_public_key TEXT NOT NULL,
        seal_public_key   TEXT NOT NULL,
        enrolled_at       TEXT NOT NULL,
        cursor            INTEGER NOT NULL DEFAULT 0,
        lease_holder      TEXT,
        lease_until       TEXT,
        last_ok_at        TEXT,
        last_error        TEXT
    ) STRICT;
    CREATE TABLE forward_batches (
        pos         INTEGER PRIMARY KEY,
        id          TEXT NOT NULL UNIQUE,
        server_id   TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        first_rowid INTEGER NOT NULL,
        last_rowid  INTEGER NOT NULL,
        records     INTEGER NOT NULL,
        body        BLOB NOT NULL,
        signature   TEXT NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        last_error  TEXT,
        answered_at TEXT,
        accepted    INTEGER,
        duplicate   INTEGER,
        conflict    INTEGER,
        rejected    INTEGER,
        answer      BLOB
    ) STRICT;
"#;

/// Migration 4, PostgreSQL (the same tables).
pub(crate) const FORWARD_POSTGRES: &str = r#"
    ALTER TABLE tokens ADD COLUMN relay BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE devices ADD COLUMN relay BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE devices ADD COLUMN relayed_by TEXT REFERENCES devices(id);
    CREATE TABLE forward_target (
        id                BIGINT PRIMARY KEY CHECK (id = 1),
        url               TEXT NOT NULL,
        device_id         TEXT NOT NULL,
        server_id         TEXT NOT NULL,
        server_public_key TEXT NOT NULL,
        seal_public_key   TEXT NOT NULL,
        enrolled_at       TEXT NOT NULL,
        cursor            BIGINT NOT NULL DEFAULT 0,
        lease_holder      TEXT,
        lease_until       TEXT,
        last_ok_at        TEXT,
        last_error        TEXT
    );
    CREATE TABLE forward_batches (
        pos         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        id          TEXT NOT NULL UNIQUE,
        server_id   TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        first_rowid BIGINT NOT NULL,
        last_rowid  BIGINT NOT NULL,
        records     BIGINT NOT NULL,
        body        BYTEA NOT NULL,
        signature   TEXT NOT NULL,
        attempts    BIGINT NOT NULL DEFAULT 0,
        last_error  TEXT,
        answered_at TEXT,
        accepted    BIGINT,
        duplicate   BIGINT,
        conflict    BIGINT,
        rejected    BIGINT,
        answer      BYTEA
    );
"#;
