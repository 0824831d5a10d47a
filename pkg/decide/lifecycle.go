package decide

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/verdictlabs/verdict/pkg/readout"
)

// DefaultHold is how long a candidate must hold, on every look, before it
// becomes the experiment's decision (VERDICT_DECISION_HOLD).
const DefaultHold = 10 * time.Minute

// Lifecycle is an experiment's decision between looks: what it has decided
// (Status, Label, DecidedAt and the Decision's text) and the candidate that
// is holding. The rules service keeps it across restarts; Latch is pure.
// The zero value is an experiment that has decided nothing.
type Lifecycle struct {
	// Status is collecting until a decision: then decided or invalid.
	Status    readout.Status `json:"status,omitempty"`
	Label     readout.Label  `json:"label"`
	DecidedAt *time.Time     `json:"decided_at,omitempty"`
	// Decision is the readout's text when the decision was made, shown
	// while later looks say something else.
	Decision *Decision `json:"decision,omitempty"`

	// The candidate of the last look that counted (not provisional), and
	// since when the looks have agreed on it.
	Candidate       readout.Label  `json:"candidate"`
	CandidateStatus readout.Status `json:"candidate_status,omitempty"`
	CandidateSince  *time.Time     `json:"candidate_since,omitempty"`
}

// Decision is the text of the readout that made a decision.
type Decision struct {
	Summary string                `json:"summary"`
	Reasons []string              `json:"reasons"`
	Salvage []readout.SalvageItem `json:"salvage,omitempty"`
	Arms    []ArmDecision         `json:"arms,omitempty"`
}

// ArmDecision is one arm's label and reasons in a Decision.
type ArmDecision struct {
	Variant string        `json:"variant"`
	Label   readout.Label `json:"label"`
	Reasons []string      `json:"reasons"`
}

// Look is one evaluation of an experiment, for Latch.
type Look struct {
	// Readout is Verdict's readout of this look alone.
	Readout readout.Readout
	// Provisional: ingest had a backlog (Readout.Health.Backlog), so the
	// data may be incomplete. Such a look is published, but it neither
	// counts towards a candidate's hold nor interrupts it.
	Provisional bool
	Now         time.Time
	// Hold is how long a candidate must hold on every counted look before
	// it becomes the decision; 0 decides at the first look.
	Hold time.Duration
}

// Latch applies the decision lifecycle to one look: it returns the readout
// to publish and the lifecycle to keep for the next look.
//
//   - A look's candidate is Verdict's status and label. It becomes the
//     decision once it has been the candidate of every counted look for
//     Hold. Provisional looks do not count.
//   - Once decided, the decision is latched: it changes only to invalid
//     (once that has held), or to another label that has held and rests
//     on reversed evidence (see reversed) — never back to collecting, and
//     never on a mere loss of significance or a re-derived planned sample.
//   - Invalid is final.
//
// The readout keeps the look's numbers (health, progress, metrics) and
// gains the lifecycle fields. When the decision and the look agree, its
// text is the look's, with today's numbers; when they differ, the summary,
// reasons, arm labels and salvage list are the decision's, and a reason
// says what this look alone would say.
func Latch(prev Lifecycle, look Look) (readout.Readout, Lifecycle) {
	r := look.Readout
	r.Arms = slices.Clone(r.Arms) // edited below; the caller's stay as they are
	now := look.Now.UTC()
	candStatus, cand := r.Status, r.Label
	next := prev
	if next.Status == "" {
		next.Status = readout.Collecting
	}
	same := prev.CandidateSince != nil && prev.Candidate == cand && prev.CandidateStatus == candStatus
	if !look.Provisional {
		if !same {
			next.CandidateSince = &now
		}
		next.Candidate, next.CandidateStatus = cand, candStatus
		if !now.Before(next.CandidateSince.Add(look.Hold)) && changes(next, r) {
			next.Status, next.Label = candStatus, cand
			next.DecidedAt = &now
			next.Decision = decisionOf(r)
		}
	}

	r.Provisional = look.Provisional
	r.Candidate, r.CandidateStatus = cand, candStatus
	r.CandidateSince = nil
	if !look.Provisional || same {
		r.CandidateSince = next.CandidateSince
	}
	r.Status, r.Label, r.DecidedAt = next.Status, next.Label, next.DecidedAt

	agrees := candStatus == next.Status && cand == next.Label
	switch {
	case next.Status == readout.Collecting && !agrees:
		// A candidate decision (or invalid) still holding, or a look
		// that cannot count.
		r.Summary = holding(r, look, next)
		r.Reasons = slices.Concat([]string{"This look alone says: " + look.Readout.Summary}, r.Reasons)
		r.Salvage = []readout.SalvageItem{}
		for i := range r.Arms {
			r.Arms[i].Label = readout.NoLabel
		}
		r.Progress.ETA = nil
	case !agrees && next.Decision != nil:
		d := next.Decision
		r.Summary = d.Summary
		r.Reasons = slices.Concat(d.Reasons, []string{"Decided " + decidedText(next) + "; the latest look alone would say " + candidateText(cand, candStatus) + ": " + look.Readout.Summary})
		r.Salvage = slices.Clone(d.Salvage)
		for i := range r.Arms {
			r.Arms[i].Label, r.Arms[i].Reasons = readout.NoLabel, nil
			for _, a := range d.Arms {
				if a.Variant == r.Arms[i].Variant {
					r.Arms[i].Label, r.Arms[i].Reasons = a.Label, slices.Clone(a.Reasons)
				}
			}
		}
	}
	if r.Salvage == nil {
		r.Salvage = []readout.SalvageItem{}
	}
	if look.Provisional {
		r.Reasons = slices.Concat([]string{fmt.Sprintf("Provisional: ingest has %s events still to land, so this look may miss data; it cannot start or change a decision.", readout.Count(r.Health.Backlog))}, r.Reasons)
	}
	return r, next
}

// changes reports whether a candidate that has held may replace the
// decision in l.
func changes(l Lifecycle, look readout.Readout) bool {
	switch {
	case look.Status == readout.Collecting:
		return false // a decision never goes back to collecting
	case l.Status == readout.Invalid:
		return false // invalid is final
	case look.Status == readout.Invalid:
		return true
	case l.Status == readout.Collecting:
		return true
	case look.Label == l.Label:
		return false
	}
	return reversed(l, look)
}

// reversed reports whether the look contradicts the evidence the decided
// label rests on, significantly: a primary or a guardrail now on the other
// side. A persevere rests on primaries better and guardrails non-inferior;
// pivot and salvage on a primary that is not a win (and, for pivot by rule
// 2, a guardrail beyond its margin). So:
//
//   - to persevere: the look's best arm has every primary significantly
//     better and every guardrail non-inferior, which is the other side of
//     both "not a win" and "harm";
//   - from persevere or salvage: an arm that carried the decision now has a
//     guardrail beyond its margin, or (persevere) a primary significantly
//     worse.
//
// Pivot to salvage is never a reversal: a segment or secondary metric that
// becomes significant later leaves the primary where it was.
func reversed(l Lifecycle, look readout.Readout) bool {
	if look.Label == readout.Persevere {
		return true
	}
	if l.Decision == nil {
		return false
	}
	for _, d := range l.Decision.Arms {
		if d.Label != readout.Persevere && d.Label != readout.Salvage {
			continue
		}
		for _, a := range look.Arms {
			if a.Variant != d.Variant {
				continue
			}
			for _, m := range a.Metrics {
				switch {
				case m.Role == readout.Guardrail && m.BeyondMargin != nil && *m.BeyondMargin:
					return true
				case d.Label == readout.Persevere && m.Role == readout.Primary && m.Outcome == readout.Worse:
					return true
				}
			}
		}
	}
	return false
}

func decisionOf(r readout.Readout) *Decision {
	d := &Decision{Summary: r.Summary, Reasons: slices.Clone(r.Reasons), Salvage: slices.Clone(r.Salvage)}
	for _, a := range r.Arms {
		d.Arms = append(d.Arms, ArmDecision{Variant: a.Variant, Label: a.Label, Reasons: slices.Clone(a.Reasons)})
	}
	return d
}

// holding is the summary of an experiment with nothing decided whose look
// says something else.
func holding(r readout.Readout, look Look, l Lifecycle) string {
	what := candidateText(r.Candidate, r.CandidateStatus)
	switch {
	case look.Provisional:
		return fmt.Sprintf("Still collecting: ingest is catching up (%s events to land), so nothing is decided yet; this look alone would say %s.", readout.Count(r.Health.Backlog), what)
	case l.CandidateSince != nil:
		at := l.CandidateSince.Add(look.Hold)
		return fmt.Sprintf("Still collecting: the readouts have said %s since %s; it becomes the decision if they still do at %s.", what, clock(*l.CandidateSince), clock(at))
	}
	return "Still collecting: this look alone would say " + what + "."
}

func candidateText(l readout.Label, s readout.Status) string {
	if s == readout.Invalid {
		return "INVALID"
	}
	if l == readout.NoLabel {
		return "still collecting"
	}
	return strings.ToUpper(string(l))
}

func decidedText(l Lifecycle) string {
	s := candidateText(l.Label, l.Status)
	if l.DecidedAt != nil {
		s += " on " + clock(*l.DecidedAt)
	}
	return s
}

// clock formats a time for the reasons: "2 Dec 2026 14:05:09 UTC".
func clock(t time.Time) string { return readout.Clock(t) }
