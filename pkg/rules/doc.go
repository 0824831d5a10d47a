// Package rules is the rules service: for every running experiment it reads
// the sufficient statistics from ClickHouse, compares each treatment with the
// control (package stats), applies the decision rules (package decide), and
// publishes the readout.
//
// It evaluates every VERDICT_RULES_INTERVAL, and at once when a definition
// in the KV bucket verdict_config changes. Each readout gets the next version
// of its experiment, is stored in the ClickHouse table readouts, then
// published on verdict.readouts.<experiment> with Nats-Msg-Id
// "<experiment>.<version>", so a retried publish is stored once.
//
// Evaluate, the step from statistics to readout, is pure: no I/O, no clock.
package rules
