// Package config holds experiment and metric definitions: what an
// experiment compares, on which metrics, and how sure it must be.
//
// Definitions are written in YAML or JSON, in the format of
// schemas/config.schema.json (DESIGN.md, "Experiment and metric
// definitions"). Parse reads a file, refusing unknown fields and values of
// the wrong type, and fills in defaults; Validate checks the definitions as
// a whole (keys, kinds, weights, references between experiments and
// metrics, ...). Both report every problem at once as Problems, each with
// its file, line and column when known, a path such as
// experiments[0].variants[1].weight, and how to fix it.
//
// `verdict apply` stores definitions in the JetStream KV bucket
// verdict_config (Bucket), one key per definition:
//
//	metric.<key>      the Metric's JSON
//	experiment.<key>  the Experiment's JSON
//
// with every default filled in, so a reader (the rules service watches the
// bucket) decodes a value with encoding/json alone. Apply merges new
// definitions over the stored ones by key, validates the merged whole and
// stores nothing when there is any problem.
package config
