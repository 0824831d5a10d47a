package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/stream"
)

// runDLQ answers what the dead-letter stream VERDICT_DLQ holds: how many
// events per reason (list), which and why (show), and sends them again
// once the cause is fixed (replay), or drops them (purge).
func runDLQ(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verdict dlq", flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := natsURLFlag(fs, getenv)
	reason := fs.String("reason", "", "only the dead letters of this reason (e.g. missing_field)")
	limit := fs.Int("limit", 20, "show: at most this many, the oldest first (0: all)")
	asJSON := fs.Bool("json", false, "show: one JSON object per line, the event whole (for jq, and `verdict publish -` once fixed)")
	dryRun := fs.Bool("dry-run", false, "replay: say what would be sent again, send nothing")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: verdict dlq [list|show|replay|purge] [flags]

  list     dead letters per reason, with the latest of each (the default)
  show     the dead letters, oldest first: when, why, where from, the event
  replay   check each again as ingest does and publish those that now pass;
           they leave the dead-letter stream, the others stay, with why
  purge    drop them (all, or --reason's)

`)
		fs.PrintDefaults()
	}
	sub := "list"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("dlq: unexpected %q", fs.Arg(0))
	}
	if *reason != "" && !slices.Contains(event.Reasons(), event.Reason(*reason)) {
		return fmt.Errorf("dlq: no reason %q; the reasons are %s", *reason, joinReasons())
	}
	nc, err := connectOnce(*natsURL, stream.AuthFromEnv(getenv), "verdict-dlq")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	s, err := js.Stream(ctx, stream.DLQStream)
	if err != nil {
		return fmt.Errorf("stream %s: %w (is verdict up running, or ingest started once?)", stream.DLQStream, err)
	}
	filter := stream.DLQSubjects
	if *reason != "" {
		filter = stream.DLQPrefix + *reason
	}
	switch sub {
	case "list":
		return dlqList(ctx, s, filter, stdout)
	case "show":
		return dlqEach(ctx, s, filter, *limit, func(d deadLetter) error { return d.print(stdout, *asJSON) })
	case "replay":
		return dlqReplay(ctx, js, s, filter, *dryRun, stdout)
	case "purge":
		if err := s.Purge(ctx, jetstream.WithPurgeSubject(filter)); err != nil {
			return fmt.Errorf("purge %s: %w", filter, err)
		}
		fmt.Fprintf(stdout, "purged %s\n", filter)
		return nil
	}
	fs.Usage()
	return fmt.Errorf("dlq: unknown subcommand %q", sub)
}

func joinReasons() string {
	var rs []string
	for _, r := range event.Reasons() {
		rs = append(rs, string(r))
	}
	return strings.Join(rs, ", ")
}

// deadLetter is one message of VERDICT_DLQ.
type deadLetter struct {
	Seq    uint64          `json:"seq"`
	Time   time.Time       `json:"time"`
	Reason string          `json:"reason"`
	Error  string          `json:"error"`
	From   string          `json:"from"`
	Event  json.RawMessage `json:"event,omitempty"` // when the payload is JSON
	Raw    string          `json:"raw,omitempty"`   // when it is not
	data   []byte
}

func newDeadLetter(m *jetstream.RawStreamMsg) deadLetter {
	d := deadLetter{
		Seq: m.Sequence, Time: m.Time.UTC(), Reason: strings.TrimPrefix(m.Subject, stream.DLQPrefix),
		Error: m.Header.Get(stream.ErrorHeader), From: m.Header.Get(stream.SubjectHeader), data: m.Data,
	}
	if json.Valid(m.Data) {
		d.Event = m.Data
	} else {
		d.Raw = string(m.Data)
	}
	return d
}

func (d deadLetter) print(w io.Writer, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(d)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	payload := string(d.data)
	if len(payload) > 240 {
		payload = payload[:240] + fmt.Sprintf("… (%d bytes)", len(d.data))
	}
	_, err := fmt.Fprintf(w, "#%d  %s  %s  from %s\n    why:   %s\n    event: %s\n", d.Seq, d.Time.Format(time.RFC3339), d.Reason, d.From, d.Error, payload)
	return err
}

// dlqEach hands the dead letters of filter, oldest first, to f: at most
// limit of them (0: all).
func dlqEach(ctx context.Context, s jetstream.Stream, filter string, limit int, f func(deadLetter) error) error {
	var seq uint64
	for n := 0; limit == 0 || n < limit; n++ {
		m, err := s.GetMsg(ctx, seq+1, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", stream.DLQStream, err)
		}
		if err := f(newDeadLetter(m)); err != nil {
			return err
		}
		seq = m.Sequence
	}
	return nil
}

// dlqList counts the dead letters per reason and shows the latest of each.
func dlqList(ctx context.Context, s jetstream.Stream, filter string, w io.Writer) error {
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return fmt.Errorf("read %s: %w", stream.DLQStream, err)
	}
	subjects := info.State.Subjects
	if len(subjects) == 0 {
		fmt.Fprintf(w, "no dead letters (%s)\n", filter)
		return nil
	}
	var total uint64
	for _, n := range subjects {
		total += n
	}
	kept := "until removed"
	if info.Config.MaxAge > 0 {
		kept = "for " + config.Duration(info.Config.MaxAge).String()
	}
	fmt.Fprintf(w, "%d dead letters in %s, kept %s:\n", total, stream.DLQStream, kept)
	// Most first; a tie by name.
	names := slices.Sorted(maps.Keys(subjects))
	slices.SortStableFunc(names, func(a, b string) int { return cmp.Compare(subjects[b], subjects[a]) })
	for _, subj := range names {
		m, err := s.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			return fmt.Errorf("read %s: %w", subj, err)
		}
		d := newDeadLetter(m)
		fmt.Fprintf(w, "  %-16s %8d   latest %s: %s\n", d.Reason, subjects[subj], d.Time.Format(time.RFC3339), d.Error)
	}
	fmt.Fprintln(w, "\nverdict dlq show --reason REASON lists them; verdict dlq replay sends again those that now pass.")
	return nil
}

// dlqReplay checks each dead letter again as ingest does and publishes
// those that pass to their type's subject (its event_id is still its
// Nats-Msg-Id, so a copy within the duplicate window counts once), then
// deletes them from VERDICT_DLQ. Those that still fail stay.
func dlqReplay(ctx context.Context, js jetstream.JetStream, s jetstream.Stream, filter string, dryRun bool, w io.Writer) error {
	dec := event.NewDecoder(event.DefaultWindow)
	var sent int
	still := map[event.Reason]int{}
	var firstStill []string
	err := dlqEach(ctx, s, filter, 0, func(d deadLetter) error {
		msg, routed := stream.EventMsg(d.data)
		subject := msg.Subject
		if !routed {
			subject = event.SubjectTrack // to read why: it has no readable type
		}
		_, err := dec.Decode(subject, d.data, time.Now())
		if d.Reason == string(event.ReasonTooLarge) {
			// What is kept of it is cut short: it cannot pass.
			err = &event.Error{Reason: event.ReasonTooLarge, Detail: d.Error}
		}
		if err != nil {
			e := &event.Error{Reason: event.ReasonSchema}
			errors.As(err, &e)
			still[e.Reason]++
			if len(firstStill) < 5 {
				firstStill = append(firstStill, fmt.Sprintf("#%d %v", d.Seq, err))
			}
			return nil
		}
		if dryRun {
			sent++
			return nil
		}
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			return fmt.Errorf("publish #%d to %s: %w", d.Seq, msg.Subject, err)
		}
		if err := s.DeleteMsg(ctx, d.Seq); err != nil {
			return fmt.Errorf("published #%d, but could not delete it from %s: %w", d.Seq, stream.DLQStream, err)
		}
		sent++
		return nil
	})
	verb := "replayed"
	if dryRun {
		verb = "would replay"
	}
	fmt.Fprintf(w, "%s %d dead letters (%s)\n", verb, sent, filter)
	if len(still) > 0 {
		fmt.Fprintf(w, "kept %s, which still fail: fix them (verdict dlq show --json, then verdict publish -) or purge them\n", publishStats{refused: still}.refusedText())
		for _, s := range firstStill {
			fmt.Fprintln(w, "  "+s)
		}
	}
	return err
}
