-- 0002: readouts, one row per computed readout of an experiment (the JSON
-- document of schemas/readout.schema.json), for GET /v1/experiments/{key}/readout
-- and its history.
--
-- ReplacingMergeTree on (experiment, version): storing a version again (a
-- retry after an unknown outcome) keeps one row, the last inserted, once
-- merged; readers use FINAL, cheap on a table this small. label is '' when
-- the readout has none (no Nullable: simpler to read and to group on).
--
-- No pre-aggregation of events: a materialized view sees every copy of an
-- event as it is inserted, so a SummingMergeTree of per-unit sums would count
-- a redelivered event twice, and the per-unit values depend on each unit's
-- first exposure, known only at query time. See pkg/warehouse/readout.go.

CREATE TABLE IF NOT EXISTS {db:Identifier}.readouts
(
    experiment   String,
    version      UInt64          COMMENT 'rises with every readout of the experiment',
    computed_at  DateTime('UTC'),
    data_through DateTime('UTC') COMMENT 'latest exposure or counted event the readout saw',
    status       String          COMMENT 'collecting, decided or invalid',
    label        String          COMMENT 'persevere, pivot, salvage, or empty for none',
    readout      String          COMMENT 'the readout JSON document',
    inserted_at  DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree()
ORDER BY (experiment, version);
