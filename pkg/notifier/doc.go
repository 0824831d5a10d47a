// Package notifier emails an experiment's owners when its readout says
// something they must act on. It reads VERDICT_READOUTS with the durable
// consumer "notifier" and sends an email (package report renders it) when an
// experiment
//
//   - first gets a label (persevere, pivot or salvage),
//   - gets a label other than the one it was last emailed about, or
//   - becomes invalid (sample ratio mismatch, contamination).
//
// "Changes" compare with the last email sent, not with the previous
// readout: an experiment that goes salvage → collecting → salvage is
// emailed once, and collecting readouts never send anything. An invalid
// experiment that later gets a label is emailed again, since its owners were
// last told its data could not be trusted.
//
// # Exactly one email per event
//
// The last notified state of every experiment lives in the JetStream KV
// bucket "verdict_notifier" (key: the experiment), updated with
// compare-and-set so two notifiers cannot both claim an event. Handling one
// readout message:
//
//  1. Readout version ≤ the highest version already handled: a redelivery
//     or a re-publish. Ack, send nothing.
//  2. Nothing to email: record the version as handled, ack.
//  3. Something to email: write an intent (Pending: version, label,
//     Message-ID) to KV, send, then record it as notified and clear the
//     intent, and only then ack (double ack, so the ack is confirmed).
//     While SMTP fails the message stays unacked — kept in progress, retried
//     with backoff — and on shutdown it is nak'd, so the next start picks it
//     up again.
//  4. A permanent SMTP failure (5xx, no valid owner address) is recorded in
//     KV (Failed) and counted, and the message is acked: the failure is kept,
//     not retried forever.
//
// The crash window: if the process dies after the SMTP server accepted the
// message and before KV records it, the readout is redelivered, the intent
// is found, and the email is sent again. We chose that over the opposite
// (skipping intents on restart), which would silently lose an email if the
// crash came before the send. The resent email is byte-identical — same
// Message-ID <verdict.<experiment>.v<version>...@domain>, same Date and
// body — so a duplicate is recognisable and most clients collapse it. The
// window is one KV round trip long. The outbox (no SMTP configured) has no
// such window: its file name is the Message-ID, so a resend rewrites the
// same file.
//
// Messages are processed one at a time (MaxAckPending 1), which keeps the
// readouts of an experiment in order; readouts are rare, one per experiment
// per rules interval, so this is not a bottleneck.
package notifier
