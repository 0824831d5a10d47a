// Package ingest moves events from JetStream into ClickHouse, exactly once in
// effect.
//
// A durable pull consumer ("ingest") on VERDICT_EVENTS is read in batches cut
// by size or time. One goroutine fetches and decodes the next batch while
// another inserts the previous one, column-wise, into ClickHouse; only then
// are its messages acknowledged. An invalid event is published to
// verdict.dlq.<reason> with its payload and a Verdict-Error header, counted,
// and acknowledged with its batch. A ClickHouse error is retried with backoff,
// keeping the batch's messages in progress so JetStream does not hand them to
// anyone else meanwhile.
//
// Messages are acknowledged one by one (AckExplicit), not with AckAll: after
// a crash the dead process's messages are still pending, and an AckAll for a
// newer batch would acknowledge them without their rows ever being inserted.
//
// Redelivered or re-published events are inserted again; the tables are
// ReplacingMergeTree on event_id and every reader deduplicates, so no count
// changes (see package warehouse).
package ingest
