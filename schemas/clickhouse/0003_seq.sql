-- 0003: seq, where each row arrived: the sequence number in the JetStream
-- stream VERDICT_EVENTS of the message it came in (0 for rows written
-- otherwise, and for the rows of before this migration).
--
-- It lets a readout read only what arrived since the last one. Ingest
-- acknowledges a message only after its row is in ClickHouse, so every row
-- whose seq is at or below the ingest consumer's acknowledgement floor is
-- visible: a readout as of floor F reads seq <= F, and the next one, as of
-- F', reads seq in (F, F'] besides what it kept (pkg/tally). Copies of an
-- event keep their own seq: a redelivered message the same one, an event
-- published again a new one.
--
-- ALTER TABLE ... ADD COLUMN has no IF NOT EXISTS on 18.16: Migrate takes
-- "already exists" for done.

ALTER TABLE {db:Identifier}.exposures ADD COLUMN seq UInt64 DEFAULT 0 COMMENT 'sequence number in VERDICT_EVENTS of the message the row came in; 0 when not from the stream';

ALTER TABLE {db:Identifier}.events ADD COLUMN seq UInt64 DEFAULT 0 COMMENT 'sequence number in VERDICT_EVENTS of the message the row came in; 0 when not from the stream';
