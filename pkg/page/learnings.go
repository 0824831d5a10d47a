package page

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/report"
)

// filter is what the index page is asked to show: ?label= (persevere,
// pivot, salvage, invalid, collecting, or decided for any decision),
// ?owner= (an owner's address) and ?from= and ?to= (dates, YYYY-MM-DD,
// inclusive: experiments decided in that period).
type filter struct {
	Label, Owner, From, To string
	from, to               time.Time // to is the day after To
}

var labels = []string{"persevere", "pivot", "salvage", "invalid", "collecting", "decided"}

func parseFilter(q url.Values) (filter, error) {
	f := filter{Label: q.Get("label"), Owner: strings.ToLower(strings.TrimSpace(q.Get("owner"))), From: q.Get("from"), To: q.Get("to")}
	var problems []string
	if f.Label != "" && !slices.Contains(labels, f.Label) {
		problems = append(problems, fmt.Sprintf("label %q: want one of %s", f.Label, strings.Join(labels, ", ")))
	}
	for _, d := range []struct {
		name, s string
		into    *time.Time
		add     int
	}{{"from", f.From, &f.from, 0}, {"to", f.To, &f.to, 1}} {
		if d.s == "" {
			continue
		}
		t, err := time.Parse("2006-01-02", d.s)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s %q: want a date such as 2026-11-30", d.name, d.s))
			continue
		}
		*d.into = t.AddDate(0, 0, d.add)
	}
	if len(problems) > 0 {
		return f, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return f, nil
}

// periodSet reports whether the filter has a period, which only decided
// experiments can fall in.
func (f filter) periodSet() bool { return !f.from.IsZero() || !f.to.IsZero() }

// keep reports whether r passes the filter.
func (f filter) keep(r readout.Readout) bool {
	state := string(r.Status)
	if r.Status == readout.Decided {
		state = string(r.Label)
	}
	switch f.Label {
	case "":
	case "decided":
		if r.Status == readout.Collecting {
			return false
		}
	default:
		if state != f.Label {
			return false
		}
	}
	if f.Owner != "" && !slices.ContainsFunc(r.Owners, func(o string) bool { return strings.EqualFold(o, f.Owner) }) {
		return false
	}
	if f.periodSet() {
		if r.Status == readout.Collecting || r.DecidedAt == nil {
			return false
		}
		if (!f.from.IsZero() && r.DecidedAt.Before(f.from)) || (!f.to.IsZero() && !r.DecidedAt.Before(f.to)) {
			return false
		}
	}
	return true
}

// record is the team's record over the experiments shown: how its bets
// went.
type record struct {
	Decided, Persevere, Pivot, Salvage, Invalid, Running int
	WinRate                                              string // persevere over labelled decisions, "—" with none
}

func recordOf(rs []readout.Readout) record {
	var r record
	for _, ro := range rs {
		switch {
		case ro.Status == readout.Collecting:
			r.Running++
		case ro.Status == readout.Invalid:
			r.Invalid++
		case ro.Label == readout.Persevere:
			r.Persevere++
		case ro.Label == readout.Pivot:
			r.Pivot++
		case ro.Label == readout.Salvage:
			r.Salvage++
		}
	}
	r.Decided = r.Persevere + r.Pivot + r.Salvage
	r.WinRate = "—"
	if r.Decided > 0 {
		r.WinRate = fmt.Sprintf("%.0f%%", 100*float64(r.Persevere)/float64(r.Decided))
	}
	return r
}

// learning is what one decided experiment taught.
type learning struct {
	report.View
	URL       string
	DecidedOn string
	Reasons   []string
	Keep      []string // salvage: what to keep
	at        time.Time
}

// learningsOf are the decided experiments' lessons, newest decision first.
func learningsOf(rs []readout.Readout) []learning {
	var out []learning
	for _, ro := range rs {
		if ro.Status == readout.Collecting || ro.DecidedAt == nil {
			continue
		}
		l := learning{View: report.NewView(ro, report.ViewOptions{}), URL: "/experiments/" + url.PathEscape(ro.Experiment),
			DecidedOn: ro.DecidedAt.UTC().Format("2 Jan 2006"), Reasons: ro.Reasons, at: *ro.DecidedAt}
		for _, s := range l.View.Salvage {
			l.Keep = append(l.Keep, strings.TrimSpace(s.Where+" "+s.Effect))
		}
		out = append(out, l)
	}
	slices.SortStableFunc(out, func(a, b learning) int { return b.at.Compare(a.at) })
	return out
}

// ownersOf are every owner of rs, sorted, for the filter's choices.
func ownersOf(rs []readout.Readout) []string {
	var out []string
	for _, r := range rs {
		for _, o := range r.Owners {
			if o = strings.ToLower(o); !slices.Contains(out, o) {
				out = append(out, o)
			}
		}
	}
	slices.Sort(out)
	return out
}
