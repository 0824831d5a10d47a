// Package schemas embeds verdict's contract files so that Go code validates
// against exactly what is published: the JSON Schemas of the events
// (events/*.json) and the numbered ClickHouse migrations (clickhouse/*.sql).
package schemas

import "embed"

// Events holds events/exposure.schema.json and events/track.schema.json.
//
//go:embed events/*.json
var Events embed.FS

// ClickHouse holds the numbered DDL migrations, applied in name order.
//
//go:embed clickhouse/*.sql
var ClickHouse embed.FS
