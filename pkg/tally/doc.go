// Package tally keeps, between looks, what an experiment's readout is made
// of, so that a look reads from ClickHouse only what arrived since the last
// one and still gives the numbers of a full recompute.
//
// A Book holds one tally per experiment: a record per exposed unit — its
// first exposure, the variants it saw, the segment values of its first
// exposure, and per event the count and sum inside its attribution window
// and its CUPED lookbacks, with the hashes of the events it counted — and
// the look it is as of: the acknowledgement floor of the ingest consumer
// (every row that arrived with seq at or below it is in ClickHouse; see
// schemas/clickhouse/0003_seq.sql) and the time asOf.
//
// A look as of (floor F', asOf') reads the exposures and events that arrived
// with seq in (F, F'], whatever their time: late events count like any
// other. An event is added to its unit unless its hash is counted already
// (a copy: redelivered, or published again); an exposure earlier than (or
// as early as) a unit's first one, or of a unit not seen before, makes the
// look read that unit afresh (warehouse.UnitRows for those units), since
// its window and lookback move. Rows timed after asOf (clocks ahead, up to
// the five minutes ingest accepts) wait in memory until asOf passes them.
// A look with nothing new reads nothing.
//
// The sums are then made from the units in memory, as the readout SQL makes
// them: caps (quantiles of the units' values, which move as data arrives)
// and segments included. The tests check every look against
// warehouse.ExperimentStatsThrough at the same floor and time, to 1e-9.
//
// A tally is built by one query per unit row (warehouse.UnitRows) at an
// experiment's first look, and again in the background when what it holds
// changes shape (start, end, window, segments, the metrics' events and
// lookbacks); meanwhile looks return ErrBuilding and the last readout
// stands.
package tally
