// Package decide labels an experiment persevere, pivot or salvage — or says
// it is still collecting, or invalid — by the decision rules of DESIGN.md,
// and explains the label in plain language.
//
// It sits between the stats engine and the readouts: the rules service
// queries ClickHouse, compares every treatment arm with the control on every
// metric (and every segment value) with stats.Compare, hands the results to
// Verdict in an Input, and publishes the readout.Readout it returns. Like
// package stats it is pure: no I/O, no clock (Input.Now), no globals.
//
// # The rules, as implemented
//
// Notation, per treatment arm against the control and per metric: CI =
// [lo, hi] is the interval of the absolute effect d = treatment − control
// (Result.AbsCI; decisions never use the relative interval, which the
// reasons only quote), c is the
// control mean, "good direction" is up for direction increase (the default)
// and down for decrease. A metric is better when the whole CI is on the good
// side of 0 (lo > 0, or hi < 0 for decrease), worse when it is wholly on the
// bad side; an interval that touches 0 is neither. A guardrail's relative
// margin m becomes the absolute margin A = m·|c| (as Spotify's Confidence
// does). The bound is −A for an increase metric and +A for a decrease one:
//
//   - non-inferior: the whole CI on the good side of the bound
//     (lo > −A; for decrease hi < +A);
//   - beyond the margin ("significantly worse than its margin allows"): the
//     whole CI on the bad side of it (hi < −A; for decrease lo > +A).
//
// Both are strict: a CI ending exactly on the bound is neither, so it blocks
// persevere but does not force pivot.
//
// The rules are applied to each treatment arm in this order; the first that
// applies labels it:
//
//  1. Invalid (experiment-wide): the SRM p-value (the sequential test of
//     Lindon & Malek, stats.SequentialSRM, of units per variant against the
//     weights, once every variant of weight > 0 has 8 units) is below
//     0.001, or more than 1% of exposed units saw more than one variant
//     (MultiExposed / (MultiExposed + UnknownVariant + Σ Units) > 0.01), or
//     more than 1% were exposed to a variant the definition does not list
//     (UnknownVariant over the same total). Status invalid, no label on the
//     experiment or any arm.
//
//     No decision without data: otherwise, while a variant of weight > 0
//     has fewer than min_units units (default 100), or a primary metric has
//     no result in a treatment arm of weight > 0 (no events, no variance, a
//     failed comparison), every arm is collecting (rule 6) and the reasons
//     name what is missing.
//
//  2. A guardrail is beyond its margin: pivot.
//
//  3. Every primary metric is better and every guardrail non-inferior:
//     persevere. An unavailable guardrail (no result) is not non-inferior;
//     an experiment without primary metrics never perseveres.
//
//  4. The primary is established not to be a win, and something is worth
//     keeping: salvage. Established not to be a win: the primaries are not
//     all better, and either rule 5's stopping condition holds for the arm
//     (planned sample, end date or futility, below) or a primary metric is
//     worse (significantly, in its good direction; such a primary is also
//     futile, its CI ending below 0 ≤ MDE·|c|). Before that the arm stays
//     collecting (rule 6), whatever its segments and secondaries show: a
//     salvage declared early would flip to persevere if the primary went on
//     to win. Two families of tests are searched, each adjusted with Holm
//     across every arm of the experiment:
//     - segments: every (arm, segment value, primary metric) with a result;
//     a segment wins when its Holm-adjusted p-value is below alpha, its
//     effect is in the good direction, and no guardrail is beyond its
//     margin in that segment;
//     - secondary metrics: every (arm, secondary metric) with a result; one
//     wins when its Holm-adjusted p-value is below alpha and its effect is in
//     the good direction (the arm's guardrails are not harmed, else rule 2).
//     The winners are the readout's salvage list; the reasons name the
//     stopping condition that held.
//
//  5. Otherwise, pivot once any of these holds for the arm (the stopping
//     condition, also used by rule 4):
//     - planned sample: the control and the arm each have at least the
//     planned units per variant: the largest, over the primary metrics, of
//     stats.SampleSize for the experiment's MDE, power, alpha and analysis
//     (sequential or not), with the control's observed mean and unit
//     variance;
//     - end date: Now is at or after the experiment's End;
//     - futility: a primary metric that is not better has its whole CI short
//     of the MDE in the good direction: hi < MDE·|c| (for decrease
//     lo > −MDE·|c|). The effect the test was designed to detect is ruled
//     out. With no MDE this is "significantly worse". Futility waits while
//     a segment or secondary result of the arm is promising but not a win:
//     significant in the good direction before Holm's correction, or with
//     a point estimate at least MDE·|c| in the good direction — even when
//     the primary is significantly worse: a pivot is final once decided,
//     and could not become the salvage more data may show.
//     The reasons say what the data rules out: effects beyond the edge of
//     the interval in the good direction, as the readout's rel_ci quotes it
//     ("lifts above +0.8% in purchase_conversion are ruled out"). A primary
//     win whose guardrails never proved non-inferior also ends here: do not
//     ship it.
//
//  6. Otherwise: collecting, no label; the readout's progress has the units,
//     target, fraction, power reached and the expected decision date (when
//     the target is reached at the traffic since the start, or the end date
//     if sooner). When the arm's primary is not a win but a segment or a
//     secondary metric would already qualify for rule 4, the reasons mention
//     it as an early sign, not yet a decision.
//
// So once the stopping condition holds, an arm that did not win is salvage
// when rule 4's candidates exist, else pivot; before it, an arm can only
// persevere (rule 3) or pivot for guardrail harm (rule 2), and otherwise
// collects: salvage is declared only once the primary is no longer
// expected to win, not on an early secondary or segment result. Decisions before the planned sample are safe with
// sequential analysis (the default); for a fixed-horizon experiment the
// reasons warn that an early result may change.
//
// # Decisions that hold
//
// Verdict labels one look. Latch turns looks into decisions: a look's
// label is its candidate, which becomes the experiment's label only after
// it has held on every look for the decision hold with ingest caught up
// (provisional looks do not count), and is then latched; see Latch.
//
// # Numbers in the reasons
//
// Relative effects and intervals in the text are the readout's rel_effect
// and rel_ci (the same stats.Result fields), rounded as pct does ("+4.2%",
// "-0.83%"); never recomputed from the absolute interval. When rel_effect is
// null (control mean 0), or the control mean is negative (rel_effect's sign
// is then opposite to the change), the text quotes abs_effect and ci in the
// metric's units instead.
//
// # The experiment's label
//
// The experiment's label is the best arm's, ranking persevere > salvage >
// still collecting > pivot: an arm still collecting may yet win, so the
// experiment is pivot only when every arm is, and collecting while any arm
// is and none has persevered or been salvaged. Status is decided when the
// experiment has a label. Ties between arms of the same rank go to the
// larger effect on the first primary metric in its good direction (arms
// share the control, so absolute effects compare), then to the earlier arm
// in Input.Arms; the summary names the winner and the tied arms, and the
// reasons cover every arm, best first, each line prefixed with its variant
// when there is more than one.
//
// # Inputs it does not trust
//
// A metric of the definition without a comparison, or whose comparison
// failed (Comparison.Err, e.g. stats.ErrNoVariance before anyone converts)
// or holds non-finite numbers, is listed as unavailable: it is never better,
// worse, non-inferior or beyond its margin. Negative counts count as 0;
// alpha, power, MDE and tuning outside their ranges fall back to 0.05, 0.8,
// none and 5000. Verdict never panics and never puts NaN or an infinity in
// the readout.
package decide
