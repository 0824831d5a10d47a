// Package stream is verdict's adapter to NATS JetStream: it runs an embedded
// nats-server when no external one answers, and declares the streams and
// consumers that the services share.
//
// Streams (file storage, created or updated idempotently):
//
//	VERDICT_EVENTS    verdict.events.>    exposures and tracks from producers
//	VERDICT_DLQ       verdict.dlq.>       rejected events, payload kept, reason in Verdict-Error
//	VERDICT_READOUTS  verdict.readouts.>  readouts, published by rules (Nats-Msg-Id experiment.version)
//
// Producers set Nats-Msg-Id to the event_id, so JetStream drops a re-publish
// inside the duplicate window; ClickHouse drops the rest (see package
// warehouse).
package stream
