//! The field database's schema: numbered migrations; `PRAGMA user_version` records how many have
//! run. The tables of every field module are declared here, so this list imports none of them.

/// Numbered migrations; `PRAGMA user_version` records how many have run.
pub const MIGRATIONS: &[&str] = &[
    // 1: records, audit log, identity.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
    CREATE TABLE records (
        id            TEXT PRIMARY KEY,
        seq           INTEGER NOT NULL UNIQUE,
        device_id     TEXT NOT NULL,
        officer       TEXT NOT NULL,
        team          TEXT NOT NULL,
        recorded_at   TEXT NOT NULL,
        kind          TEXT NOT NULL CHECK (kind IN ('activation', 'void')),
        village       TEXT NOT NULL,
        nik           TEXT NOT NULL,
        name          TEXT NOT NULL,
        phone         TEXT NOT NULL,
        email         TEXT,
        voids         TEXT REFERENCES records(id),
        reason        TEXT,
        warnings      TEXT NOT NULL DEFAULT '[]',
        status        TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'synced', 'conflict', 'rejected')),
        status_reason TEXT,
        status_at     TEXT
    ) STRICT;
    CREATE INDEX records_nik ON records(nik);
    CREATE INDEX records_status ON records(status, seq);
    CREATE INDEX records_village ON records(village);
    CREATE UNIQUE INDEX records_one_void ON records(voids) WHERE voids IS NOT NULL;
    CREATE TRIGGER records_immutable
        BEFORE UPDATE OF id, seq, device_id, officer, team, recorded_at, kind, village, nik, name,
                         phone, email, voids, reason, warnings ON records
    BEGIN SELECT RAISE(ABORT, 'records are immutable: record a void instead'); END;
    CREATE TABLE audit (
        id        INTEGER PRIMARY KEY,
        at        TEXT NOT NULL,
        action    TEXT NOT NULL,
        record_id TEXT,
        detail    TEXT
    ) STRICT;
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    "#,
    // 2: the sync outbox (batch journal), see field/outbox.rs.
    OUTBOX,
    // 3: the district's already-activated NIK hash prefixes, see field/activated.rs.
    ACTIVATED,
    // 4: sealed identifiers, keyed NIK hash, purge (see field/sealing.rs, field/retention.rs).
    MIGRATION_SEAL,
];

/// Migration 4: the records table without the full NIK, phone and e-mail. Rows of an older
/// database keep their masked NIK; their full values wait in `seal_legacy` until
/// `sealing::prepare` (which holds the keys) seals them, drops that table and rewrites the file
/// (VACUUM, WAL truncated). Batch bodies cut before (plaintext JSON) are cleared; batches still
/// open are closed unanswered, so their records are cut again in the sealed form (the server
/// answers `duplicate` for any it already had).
const MIGRATION_SEAL: &str = r#"
    DROP TRIGGER records_immutable;
    DROP INDEX records_nik;
    DROP INDEX records_status;
    DROP INDEX records_village;
    DROP INDEX records_one_void;
    ALTER TABLE records RENAME TO records_v3;
    CREATE TABLE records (
        id            TEXT PRIMARY KEY,
        seq           INTEGER NOT NULL UNIQUE,
        device_id     TEXT NOT NULL,
        officer       TEXT NOT NULL,
        team          TEXT NOT NULL,
        recorded_at   TEXT NOT NULL,
        kind          TEXT NOT NULL CHECK (kind IN ('activation', 'void')),
        village       TEXT NOT NULL,
        nik_masked    TEXT NOT NULL,
        nik_tag       BLOB,
        name          TEXT NOT NULL,
        sealed        BLOB,
        sealed_to     TEXT,
        voids         TEXT REFERENCES records(id),
        reason        TEXT,
        warnings      TEXT NOT NULL DEFAULT '[]',
        status        TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'synced', 'conflict', 'rejected')),
        status_reason TEXT,
        status_at     TEXT
    ) STRICT;
    INSERT INTO records (id, seq, device_id, officer, team, recorded_at, kind, village, nik_masked,
                         name, voids, reason, warnings, status, status_reason, status_at)
    SELECT id, seq, device_id, officer, team, recorded_at, kind, village,
           CASE WHEN length(nik) = 16 THEN substr(nik, 1, 6) || '******' || substr(nik, 13)
                ELSE '****************' END,
           name, voids, reason, warnings, status, status_reason, status_at
    FROM records_v3 ORDER BY seq;
    CREATE TABLE seal_legacy (
        id    TEXT PRIMARY KEY,
        nik   TEXT NOT NULL,
        phone TEXT NOT NULL,
        email TEXT
    ) STRICT;
    INSERT INTO seal_legacy (id, nik, phone, email) SELECT id, nik, phone, email FROM records_v3;
    DROP TABLE records_v3;
    CREATE INDEX records_nik_tag ON records(nik_tag);
    CREATE INDEX records_status ON records(status, seq);
    CREATE INDEX records_village ON records(village);
    CREATE UNIQUE INDEX records_one_void ON records(voids) WHERE voids IS NOT NULL;
    CREATE TRIGGER records_immutable
        BEFORE UPDATE OF id, seq, device_id, officer, team, recorded_at, kind, village, nik_masked,
                         name, voids, reason, warnings ON records
    BEGIN SELECT RAISE(ABORT, 'records are immutable: record a void instead'); END;
    -- The seal is written once, and moves once from the holding key to the district key.
    CREATE TRIGGER records_sealed_once
        BEFORE UPDATE OF sealed, sealed_to, nik_tag ON records
        WHEN NOT ((OLD.nik_tag IS NULL OR NEW.nik_tag IS OLD.nik_tag) AND (
                  (NEW.sealed IS OLD.sealed AND NEW.sealed_to IS OLD.sealed_to)
               OR (OLD.sealed IS NULL AND NEW.sealed IS NOT NULL AND NEW.sealed_to IS NOT NULL)
               OR (OLD.sealed_to LIKE 'holding:%' AND NEW.sealed IS NOT NULL
                   AND NEW.sealed_to LIKE 'district:%')))
    BEGIN SELECT RAISE(ABORT, 'a record is sealed once: only the holding key''s seal is replaced, by the district''s'); END;
    -- Only what the server acknowledged may leave the laptop (retention purge).
    CREATE TRIGGER records_purge_synced_only BEFORE DELETE ON records WHEN OLD.status <> 'synced'
    BEGIN SELECT RAISE(ABORT, 'only records the server acknowledged can be purged'); END;
    -- What purges leave behind: counts per UTC day of recording and village.
    CREATE TABLE purged (
        day         TEXT NOT NULL,
        village     TEXT NOT NULL,
        activations INTEGER NOT NULL DEFAULT 0,
        voided      INTEGER NOT NULL DEFAULT 0,
        voids       INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (day, village)
    ) STRICT, WITHOUT ROWID;
    UPDATE outbox_batches SET state = 'answered', answered_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
           summary = '{"superseded":"field database 4: records cut again, sealed"}'
    WHERE state = 'open';
    DROP TRIGGER outbox_sealed;
    UPDATE outbox_batches SET body = x'' WHERE length(body) > 0;
    CREATE TRIGGER outbox_sealed
        BEFORE UPDATE OF id, created_at, record_count, first_seq, last_seq, body_sha256,
                         signature ON outbox_batches
    BEGIN SELECT RAISE(ABORT, 'a cut batch is sealed: its bytes never change'); END;
    -- An answered batch's body may be emptied once all its records are purged; nothing else.
    CREATE TRIGGER outbox_body_fixed BEFORE UPDATE OF body ON outbox_batches
        WHEN NOT (NEW.body IS OLD.body
                  OR (OLD.state = 'answered' AND NEW.state = 'answered' AND length(NEW.body) = 0))
    BEGIN SELECT RAISE(ABORT, 'a cut batch is sealed: its bytes never change'); END;
    INSERT INTO audit (at, action, detail)
    SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'migrate_seal',
           'field database 4: ' || COUNT(*) || ' records of an older version to seal; journalled batch bodies cleared'
    FROM seal_legacy HAVING COUNT(*) > 0;
    "#;

/// Migration 2 of the field database (the sync outbox, see field/outbox.rs).
const OUTBOX: &str = r#"
    CREATE TABLE outbox_batches (
        id           TEXT PRIMARY KEY,
        created_at   TEXT NOT NULL,
        record_count INTEGER NOT NULL,
        first_seq    INTEGER NOT NULL,
        last_seq     INTEGER NOT NULL,
        body         BLOB NOT NULL,
        body_sha256  TEXT NOT NULL,
        signature    TEXT NOT NULL,
        state        TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'answered')),
        attempts     INTEGER NOT NULL DEFAULT 0,
        answered_at  TEXT,
        summary      TEXT
    ) STRICT;
    CREATE INDEX outbox_batches_state ON outbox_batches(state);
    CREATE TABLE outbox_members (
        batch_id  TEXT NOT NULL REFERENCES outbox_batches(id),
        record_id TEXT NOT NULL,
        PRIMARY KEY (batch_id, record_id)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX outbox_members_record ON outbox_members(record_id);
    CREATE TRIGGER outbox_sealed
        BEFORE UPDATE OF id, created_at, record_count, first_seq, last_seq, body, body_sha256,
                         signature ON outbox_batches
    BEGIN SELECT RAISE(ABORT, 'a cut batch is sealed: its bytes never change'); END;
    CREATE TRIGGER outbox_no_delete BEFORE DELETE ON outbox_batches
    BEGIN SELECT RAISE(ABORT, 'outbox batches are never deleted'); END;
    CREATE TRIGGER outbox_members_fixed BEFORE DELETE ON outbox_members
    BEGIN SELECT RAISE(ABORT, 'outbox batches are never deleted'); END;
    "#;

/// Migration 3 of the field database (see field/activated.rs).
const ACTIVATED: &str = r#"
    CREATE TABLE district_activated (prefix BLOB PRIMARY KEY) STRICT, WITHOUT ROWID;
    "#;
