// Package stats is verdict's statistics engine: it turns per-arm sufficient
// statistics into effects, confidence intervals and p-values, checks sample
// ratio mismatch, adjusts p-values for families of comparisons and plans
// sample sizes.
//
// It sits between the warehouse and the decision rules: ClickHouse computes,
// in one pass, the sufficient statistics of every arm, metric and segment
// (an [Arm]: n, Σx, Σx², and for ratio metrics Σy, Σy², Σxy); [Compare]
// turns a control and a treatment arm into a [Result]; package decide reads
// the results and labels the experiment. Everything here is a pure function
// over values: no I/O, no clock, no globals, so every number can be checked
// against an independent implementation. The tests do exactly that against
// golden files produced with SciPy and statsmodels by
// scripts/oracle/stats_oracle.py.
//
// The formulas are the contract in DESIGN.md ("Statistics") and follow
// GrowthBook's gbstats for the per-arm estimates and their variances
// (the delta method for ratio metrics), Welch's t test with the
// Welch–Satterthwaite degrees of freedom for fixed-horizon analysis, and for
// sequential analysis (the default) the asymptotic confidence sequence of
//
//	Waudby-Smith, Arnold, Wu, Howard, Ramdas and others,
//	"Time-uniform central limit theory and asymptotic confidence sequences",
//	Annals of Statistics, 2023 (arXiv:2103.06476),
//
// as Eppo and GrowthBook implement it: intervals and p-values that stay valid
// however often anyone looks at them. [Intersect] keeps the running
// intersection of such intervals across looks, still valid and monotone.
//
// Sample ratio mismatch: [SRM] is Pearson's chi-square test, valid at one
// look; readouts use [SequentialSRM], the Dirichlet-multinomial Bayes factor
// test of Lindon & Malek (2022), as Optimizely's ssrm and GrowthBook do,
// which is valid at every look.
//
// Decisions are made on the absolute effect (Result.Significant). The
// relative effect is reported for people and is undefined when the control
// mean is 0 (Result.RelDefined says so).
//
// Errors: inputs that are not valid sufficient statistics or options wrap
// [ErrInvalid]; arms without any variation wrap [ErrNoVariance]. No function
// panics or returns NaN on bad input.
package stats
