package gateway

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/verdictlabs/verdict/pkg/event"
)

// Message is one message of Segment's HTTP Tracking API, as Segment's,
// RudderStack's and compatible libraries send it. Fields verdict does not
// read are ignored.
type Message struct {
	Type              string         `json:"type"`
	Event             string         `json:"event"`
	MessageID         string         `json:"messageId"`
	UserID            any            `json:"userId"`
	AnonymousID       any            `json:"anonymousId"`
	Timestamp         string         `json:"timestamp"`
	OriginalTimestamp string         `json:"originalTimestamp"`
	SentAt            string         `json:"sentAt"`
	Properties        map[string]any `json:"properties"`
	Context           *Context       `json:"context"`
}

// Context is what a message's context says about the device, as far as
// verdict keeps it as attributes.
type Context struct {
	Locale   string                    `json:"locale"`
	OS       *struct{ Name string }    `json:"os"`
	Device   *struct{ Type string }    `json:"device"`
	Location *struct{ Country string } `json:"location"`
}

// Unit chooses the randomisation unit of a message (VERDICT_GATEWAY_UNIT).
type Unit string

const (
	UnitUser      Unit = "user"      // userId, else anonymousId (the default)
	UnitAnonymous Unit = "anonymous" // anonymousId, else userId
)

// mapped are the properties that become an event's own fields, not
// attributes.
var mapped = map[string]bool{"experimentId": true, "experiment_id": true, "variationId": true, "variation_id": true, "variant": true, "revenue": true, "value": true}

// exposureEvents are the track names that mean "a unit saw a variant":
// Segment's and GrowthBook's spelling, PostHog's, and the snake case one.
var exposureEvents = map[string]bool{"Experiment Viewed": true, "$experiment_started": true, "experiment_viewed": true}

// Map turns a Segment track message into a verdict event, received at
// receivedAt (sentAt is the batch's, when the message has none). Page,
// screen, identify, group and alias messages have no verdict event: ok is
// false and err nil. err (an *event.Error, wrapping event.ErrInvalid) says
// why a track cannot become an event; the caller dead-letters it. The
// event is checked again by ingest like any other (keys, window).
func Map(m Message, receivedAt time.Time, batchSentAt string, unit Unit) (e event.Event, ok bool, err error) {
	if m.Type != "track" {
		return event.Event{}, false, nil
	}
	if m.MessageID == "" {
		return e, false, invalid(event.ReasonMissingField, "messageId is required: it is the event's dedup key")
	}
	e.ID = m.MessageID
	user, anon := idString(m.UserID), idString(m.AnonymousID)
	e.Unit = user
	if unit == UnitAnonymous || e.Unit == "" {
		e.Unit = anon
	}
	if e.Unit == "" {
		e.Unit = user
	}
	if e.Unit == "" {
		return e, false, invalid(event.ReasonMissingField, "userId or anonymousId is required: it is the randomisation unit")
	}
	ts, err := timestamp(m, receivedAt, batchSentAt)
	if err != nil {
		return e, false, err
	}
	e.TS = ts

	if exposureEvents[m.Event] {
		e.Type = event.Exposure
		e.Experiment = prop(m.Properties, "experimentId", "experiment_id")
		e.Variant = prop(m.Properties, "variationId", "variation_id", "variant")
		if e.Experiment == "" || e.Variant == "" {
			return e, false, invalid(event.ReasonMissingField, "%q needs properties.experimentId and properties.variationId", m.Event)
		}
	} else {
		e.Type = event.Track
		e.Name = Normalize(m.Event)
		if e.Name == "" {
			return e, false, invalid(event.ReasonBadKey, "event name %q has no letter or digit to make a key of", m.Event)
		}
		e.Value = 1
		for _, k := range []string{"revenue", "value"} {
			if v, ok := number(m.Properties[k]); ok {
				e.Value = v
				break
			}
		}
	}
	e.AttrKeys, e.AttrValues = attributes(m)
	return e, true, nil
}

func invalid(r event.Reason, format string, args ...any) *event.Error {
	return &event.Error{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// idString reads userId or anonymousId, which clients send as strings or
// numbers.
func idString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return ""
}

// timestamp is Segment's: timestamp when the message has one, else the
// receive time corrected for the client's clock, receivedAt − (sentAt −
// originalTimestamp), else the receive time.
func timestamp(m Message, receivedAt time.Time, batchSentAt string) (time.Time, error) {
	if m.Timestamp != "" {
		t, err := parseTime(m.Timestamp)
		if err != nil {
			return t, invalid(event.ReasonBadTimestamp, "timestamp %q is not an ISO 8601 date-time", m.Timestamp)
		}
		return t, nil
	}
	sentAt := m.SentAt
	if sentAt == "" {
		sentAt = batchSentAt
	}
	if m.OriginalTimestamp != "" && sentAt != "" {
		orig, err1 := parseTime(m.OriginalTimestamp)
		sent, err2 := parseTime(sentAt)
		if err1 != nil || err2 != nil {
			return time.Time{}, invalid(event.ReasonBadTimestamp, "originalTimestamp %q or sentAt %q is not an ISO 8601 date-time", m.OriginalTimestamp, sentAt)
		}
		return receivedAt.Add(-sent.Sub(orig)).UTC(), nil
	}
	return receivedAt.UTC(), nil
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	return t.UTC(), err
}

// prop is the first of the properties given as a string (or a number,
// which GrowthBook uses for variation ids).
func prop(p map[string]any, names ...string) string {
	for _, n := range names {
		switch v := p[n].(type) {
		case string:
			if v != "" {
				return v
			}
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
	}
	return ""
}

// number reads a numeric property; numbers sent as strings count.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	return 0, false
}

// Normalize makes a key of a name: lower case, every run of characters
// outside [a-z0-9_.-] one '_', no leading or trailing '_', '.' or '-', at
// most 128 characters. "Order Completed" → "order_completed".
func Normalize(name string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			b.WriteRune(r)
			under = r == '_'
		default:
			if !under {
				b.WriteByte('_')
				under = true
			}
		}
	}
	s := strings.Trim(b.String(), "_.-")
	if len(s) > 128 {
		s = strings.TrimRight(s[:128], "_.-")
	}
	return s
}

// attributes are the segment dimensions of a message: its string
// properties (names normalised to keys) and, from its context, os, device
// type, locale and country; at most event.MaxAttributes, in name order,
// properties first. Values longer than an attribute may be are cut.
func attributes(m Message) (keys, values []string) {
	attrs := map[string]string{}
	var order []string
	add := func(k, v string) {
		k = Normalize(k)
		if k == "" || v == "" {
			return
		}
		if _, dup := attrs[k]; dup {
			return
		}
		if r := []rune(v); len(r) > event.MaxAttrValue {
			v = string(r[:event.MaxAttrValue])
		}
		attrs[k] = v
		order = append(order, k)
	}
	names := make([]string, 0, len(m.Properties))
	for k := range m.Properties {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if mapped[k] {
			continue
		}
		if s, ok := m.Properties[k].(string); ok {
			add(k, s)
		}
	}
	if c := m.Context; c != nil {
		if c.OS != nil {
			add("os", c.OS.Name)
		}
		if c.Device != nil {
			add("device_type", c.Device.Type)
		}
		add("locale", c.Locale)
		if c.Location != nil {
			add("country", c.Location.Country)
		}
	}
	if len(order) > event.MaxAttributes {
		order = order[:event.MaxAttributes]
	}
	sort.Strings(order)
	for _, k := range order {
		keys, values = append(keys, k), append(values, attrs[k])
	}
	return keys, values
}

// decodeMessage reads one message of a request body.
func decodeMessage(raw json.RawMessage) (Message, error) {
	var m Message
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, invalid(event.ReasonMalformedJSON, "not a Segment message: %v", err)
	}
	return m, nil
}
