-- 0001: the raw events, one row per event as it arrived, in two tables:
-- exposures (a unit saw a variant) and events (track events).
--
-- {db:Identifier} stands for the database (VERDICT_CLICKHOUSE_DB, default
-- verdict); warehouse.Migrate checks the name and puts it in. Statements end
-- with ";" at the end of a line. They are idempotent (IF NOT EXISTS) because
-- ClickHouse DDL is not transactional: a migration interrupted before it was
-- recorded runs again.
--
-- The SQL runs on Debian's ClickHouse 18.16 and on current ClickHouse, so:
-- DateTime plus a milliseconds column (no DateTime64 on 18.16), no TTL, no
-- LowCardinality (it needs a setting on 18.16).
--
-- Exactly once in effect. NATS delivers at least once and publishers may
-- re-publish, so the same event_id can be inserted more than once. Both tables
-- are ReplacingMergeTree with event_id as the last column of the sort key:
-- background merges keep one row per key, and every query that counts must
-- dedupe the rows not merged yet, with FINAL
--     SELECT count() FROM verdict.exposures FINAL WHERE experiment = 'x'
-- or by grouping on event_id
--     SELECT uniqExact(event_id) FROM verdict.exposures WHERE experiment = 'x'
-- A retried insert is therefore harmless, and ClickHouse's own insert
-- deduplication (Replicated tables only, or insert_deduplication_token, absent
-- on 18.16) is not relied on. The key holds event_id plus columns that are
-- functions of the event (experiment; event and day of ts), so copies of one
-- event share a key and a partition.
--
-- Sort keys: the readout first reads one experiment's exposures, then the
-- track events of a few names over the experiment's dates, so experiment and
-- (event, day) lead the keys and prune reads. unit_id, what the readout joins
-- and groups on, is deliberately not in the keys: a long string unit_id at the
-- front of a sort key costs about 40% of insert CPU (PERF.md), and the hash
-- join on unit_id does not use the sort order on 18.16 anyway.

CREATE TABLE IF NOT EXISTS {db:Identifier}.exposures
(
    event_id    String          COMMENT 'dedup key: copies of an event have the same event_id',
    ts          DateTime('UTC') COMMENT 'event time, whole seconds',
    ts_ms       UInt16          COMMENT 'milliseconds of ts (0-999): time in ms is toUInt64(ts) * 1000 + ts_ms',
    unit_id     String          COMMENT 'randomisation unit: user, device or account id',
    experiment  String,
    variant     String,
    attr_keys   Array(String)   COMMENT 'attribute names, sorted; the value of k is attr_values[indexOf(attr_keys, k)]',
    attr_values Array(String)   COMMENT 'attribute values, parallel to attr_keys',
    inserted_at DateTime('UTC') DEFAULT now() COMMENT 'when the row was written (of the last copy, after merges)'
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (experiment, event_id);

CREATE TABLE IF NOT EXISTS {db:Identifier}.events
(
    event_id    String          COMMENT 'dedup key: copies of an event have the same event_id',
    ts          DateTime('UTC') COMMENT 'event time, whole seconds',
    ts_ms       UInt16          COMMENT 'milliseconds of ts (0-999): time in ms is toUInt64(ts) * 1000 + ts_ms',
    unit_id     String          COMMENT 'randomisation unit: user, device or account id',
    event       String          COMMENT 'track event name, e.g. purchase',
    value       Float64         COMMENT 'the event value, 1 when the event had none',
    attr_keys   Array(String)   COMMENT 'attribute names, sorted; the value of k is attr_values[indexOf(attr_keys, k)]',
    attr_values Array(String)   COMMENT 'attribute values, parallel to attr_keys',
    inserted_at DateTime('UTC') DEFAULT now() COMMENT 'when the row was written (of the last copy, after merges)'
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (event, toDate(ts), event_id);
