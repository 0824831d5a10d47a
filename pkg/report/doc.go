// Package report turns a readout into things people read: the readout email
// (RenderEmail: a complete RFC 5322 message with a text part, an HTML part
// and its charts as inline PNGs), the charts for the page (ChartSVG, the
// forest plot, and TimeChartSVG, the effects over time), and View, the
// formatted readout that the email's templates and the readout page
// (package page) share, so every place says the same thing in the same
// words.
//
// Everything here is a pure function of the readout: no clock, no I/O, the
// same bytes for the same input. That makes the notifier's resends after a
// crash byte-identical (same Message-ID), and the golden tests exact.
//
// Subject lines read "[verdict] <experiment>: <VERDICT> — <why>", where the
// verdict is PERSEVERE, PIVOT, SALVAGE, INVALID or COLLECTING and the why is
// built from the readout's numbers (see Why).
package report
