package tally

import (
	"encoding/binary"
	"math"
	"slices"
	"time"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/warehouse"
)

// tally is one experiment's units as of one look. Its methods are not safe
// for concurrent use: the Book gives one look at a time each tally.
type tally struct {
	shape   string
	exp     config.Experiment
	metrics []config.Metric
	layout  warehouse.Layout

	seq  uint64 // every row that arrived with seq <= seq is counted
	asOf int64  // ms: the time of the last look

	window      int64   // ms
	start, end  int64   // ms: exposures count in [start, end]
	preOf       [][]int // per event of the layout: its lookbacks' positions in layout.Pres
	lookbacks   []int64 // ms, per layout.Pres
	events, pre int     // len(layout.Events), len(layout.Pres)
	dims        int     // len(exp.Segments)

	index     map[uint64]int32 // unit hash → position
	units     []unit
	counts    []uint32  // units × events: in the window
	sums      []float64 // units × events
	preCounts []uint32  // units × pres: in the lookback
	preSums   []float64 // units × pres
	segments  []uint32  // units × dims: into values[d]
	counted   [][]uint64
	// The values of the events of layout.Values counted in the window:
	// units × nvalues; valueOf maps an event of the layout to its
	// position there (-1: its values are not kept).
	vals    [][]float64
	nvalues int
	valueOf []int

	variants dictionary   // the variants units saw
	values   []dictionary // per dimension, its values
	groups   dictionary   // (variant, segment values), packed; see unit.group

	// The uncapped metrics' sums, kept from look to look, and the units a
	// look has changed (see touch).
	kept    *kept
	touched []uint32 // per unit, the kept epoch it was last touched in
	changed []int32

	// Rows that arrived, timed after the last look: they count once a
	// look's asOf passes them.
	laterExposures []warehouse.ExposureRow
	laterEvents    []warehouse.EventRow
}

// unit is one exposed unit's first exposure and variants.
type unit struct {
	first, lastExposure, lastEvent int64 // ms; lastEvent 0 for none
	minVariant, maxVariant         uint32
	// group numbers the units of one variant with the same segment
	// values (-1: more than one variant), whose sums stats adds up
	// together before it spreads them over the cells.
	group int32
}

func newTally(shape string, exp config.Experiment, metrics []config.Metric, layout warehouse.Layout) *tally {
	t := &tally{
		shape:   shape,
		exp:     exp,
		metrics: metrics,
		layout:  layout,
		window:  time.Duration(exp.AttributionWindow).Milliseconds(),
		start:   exp.Start.UnixMilli(),
		end:     math.MaxInt64,
		events:  len(layout.Events),
		pre:     len(layout.Pres),
		dims:    len(exp.Segments),
		index:   map[uint64]int32{},
		values:  make([]dictionary, len(exp.Segments)),
	}
	if exp.End != nil {
		t.end = exp.End.UnixMilli()
	}
	t.nvalues = len(layout.Values)
	t.valueOf = make([]int, t.events)
	for e, name := range layout.Events {
		t.valueOf[e] = slices.Index(layout.Values, name)
	}
	t.preOf = make([][]int, t.events)
	for k, p := range layout.Pres {
		e := slices.Index(layout.Events, p.Event)
		t.preOf[e] = append(t.preOf[e], k)
		t.lookbacks = append(t.lookbacks, p.Lookback.Milliseconds())
	}
	return t
}

// set puts r in place of what the tally has of its unit.
func (t *tally) set(r warehouse.UnitRow) {
	i, ok := t.index[r.Unit]
	if ok {
		t.touch(int(i))
	} else {
		t.touch(len(t.units))
		i = int32(len(t.units))
		t.index[r.Unit] = i
		t.units = append(t.units, unit{})
		t.counts = append(t.counts, make([]uint32, t.events)...)
		t.sums = append(t.sums, make([]float64, t.events)...)
		t.preCounts = append(t.preCounts, make([]uint32, t.pre)...)
		t.preSums = append(t.preSums, make([]float64, t.pre)...)
		t.segments = append(t.segments, make([]uint32, t.dims)...)
		t.counted = append(t.counted, nil)
		t.vals = append(t.vals, make([][]float64, t.nvalues)...)
	}
	t.units[i] = unit{
		first:        int64(r.FirstMS),
		lastExposure: int64(r.LastExposureMS),
		lastEvent:    int64(r.LastEventMS),
		minVariant:   t.variants.id(r.MinVariant),
		maxVariant:   t.variants.id(r.MaxVariant),
	}
	for e := range t.events {
		t.counts[int(i)*t.events+e] = uint32(r.Counts[e])
		t.sums[int(i)*t.events+e] = r.Sums[e]
	}
	for p := range t.pre {
		t.preCounts[int(i)*t.pre+p] = uint32(r.PreCounts[p])
		t.preSums[int(i)*t.pre+p] = r.PreSums[p]
	}
	for d := range t.dims {
		t.segments[int(i)*t.dims+d] = t.values[d].id(r.Segments[d])
	}
	for k := range t.nvalues {
		t.vals[int(i)*t.nvalues+k] = slices.Clone(r.Values[k])
	}
	t.regroup(int(i))
	counted := slices.Clone(r.Counted)
	slices.Sort(counted)
	t.counted[i] = counted
}

// exposureEffect is what an exposure does to the tally: nothing (outside
// the experiment's range), wait (timed after the look), read its unit
// afresh (a new unit, or one whose first exposure it moves), or update a
// unit's variants and last exposure.
type exposureEffect int

const (
	exposureIgnored exposureEffect = iota
	exposureLater
	exposureRefetch
	exposureUpdate
)

func (t *tally) exposureEffect(x warehouse.ExposureRow, asOf int64) exposureEffect {
	ms := int64(x.MS)
	switch i, ok := t.index[x.Unit]; {
	case ms < t.start || ms > t.end:
		return exposureIgnored
	case ms > asOf:
		return exposureLater
	case !ok || ms <= t.units[i].first:
		// As early as the first exposure: a tie is broken by event_id,
		// which the tally does not keep; the unit is read afresh.
		return exposureRefetch
	}
	return exposureUpdate
}

// updateExposure counts an exposure after a unit's first one.
func (t *tally) updateExposure(x warehouse.ExposureRow) {
	t.touch(int(t.index[x.Unit]))
	u := &t.units[t.index[x.Unit]]
	u.lastExposure = max(u.lastExposure, int64(x.MS))
	// min and max by the variants' bytes, as ClickHouse's min(String).
	if v := t.variants.id(x.Variant); x.Variant < t.variants.names[u.minVariant] {
		u.minVariant = v
		t.regroup(int(t.index[x.Unit]))
	} else if x.Variant > t.variants.names[u.maxVariant] {
		u.maxVariant = v
		t.regroup(int(t.index[x.Unit]))
	}
}

// regroup puts unit i in the group of its variant and segment values.
func (t *tally) regroup(i int) {
	u := &t.units[i]
	if u.minVariant != u.maxVariant {
		u.group = -1
		return
	}
	key := make([]byte, 0, 4*(1+t.dims))
	key = binary.LittleEndian.AppendUint32(key, u.minVariant)
	for _, v := range t.segments[i*t.dims : (i+1)*t.dims] {
		key = binary.LittleEndian.AppendUint32(key, v)
	}
	u.group = int32(t.groups.id(string(key)))
}

// groupOf reads a group's variant and segment values back.
func (t *tally) groupOf(g int32) (variant uint32, segments []uint32) {
	key := t.groups.names[g]
	variant = binary.LittleEndian.Uint32([]byte(key))
	for d := range t.dims {
		segments = append(segments, binary.LittleEndian.Uint32([]byte(key[4*(d+1):])))
	}
	return variant, segments
}

// addEvent counts e for its unit, if the unit is exposed, e falls in its
// window (up to asOf) or a lookback, and e is not a copy of an event
// counted already. It reports whether e must wait: timed after asOf, in the
// window of its unit or of a unit that may yet be exposed.
func (t *tally) addEvent(e warehouse.EventRow, asOf int64) (later bool) {
	ms := int64(e.MS)
	i, ok := t.index[e.Unit]
	if !ok {
		return ms > asOf
	}
	counted := t.counted[i]
	at, found := slices.BinarySearch(counted, e.Hash)
	if found {
		return false
	}
	u := &t.units[i]
	switch {
	case ms >= u.first+t.window:
		return false
	case ms >= u.first:
		if ms > asOf {
			return true
		}
		t.touch(int(i))
		t.counts[int(i)*t.events+e.Event]++
		t.sums[int(i)*t.events+e.Event] += e.Value
		if k := t.valueOf[e.Event]; k >= 0 {
			t.vals[int(i)*t.nvalues+k] = append(t.vals[int(i)*t.nvalues+k], e.Value)
		}
		u.lastEvent = max(u.lastEvent, ms)
	default:
		in := false
		for _, p := range t.preOf[e.Event] {
			if ms+t.lookbacks[p] >= u.first {
				t.touch(int(i))
				t.preCounts[int(i)*t.pre+p]++
				t.preSums[int(i)*t.pre+p] += e.Value
				in = true
			}
		}
		if !in {
			return false
		}
	}
	t.counted[i] = slices.Insert(counted, at, e.Hash)
	return false
}

// dictionary numbers strings.
type dictionary struct {
	names []string
	ids   map[string]uint32
}

func (d *dictionary) id(s string) uint32 {
	if id, ok := d.ids[s]; ok {
		return id
	}
	if d.ids == nil {
		d.ids = map[string]uint32{}
	}
	id := uint32(len(d.names))
	d.names = append(d.names, s)
	d.ids[s] = id
	return id
}
