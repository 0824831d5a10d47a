package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/stream"
)

// runPublish publishes NDJSON events, one per line, each to the subject of
// its "type" with Nats-Msg-Id set to its event_id. Publishing is
// asynchronous with a bounded number of unacknowledged messages.
func runPublish(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verdict publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := natsURLFlag(fs, getenv)
	pending := fs.Int("max-pending", 4096, "most messages in flight without a JetStream ack")
	quiet := fs.Bool("quiet", false, "no progress bar")
	deadLetter := fs.Bool("dead-letter", false, "publish the events that fail the checks all the same, for ingest to dead-letter and count (see verdict dlq), instead of leaving them out")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: verdict publish [flags] FILE|-

Each line is checked as ingest checks it (the event schema, keys, a ts at
most 30 days old); one that fails is reported with its line number and
reason and not published, and publish exits non-zero; with --dead-letter
it is published all the same, for ingest to dead-letter and count.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("publish needs one FILE, or - for standard input")
	}
	var in io.Reader = stdin
	size := int64(-1)
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		in = f
	}
	if !*quiet && isTerminal(stderr) {
		bar := progressbar.DefaultBytes(size, "publishing")
		defer bar.Finish()
		in = io.TeeReader(in, bar)
	}

	nc, err := connectOnce(*natsURL, stream.AuthFromEnv(getenv), "verdict-publish")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(*pending))
	if err != nil {
		return err
	}
	st, err := publishLines(ctx, js, in, *deadLetter, stderr)
	fmt.Fprintf(stdout, "published %d events (%d duplicates dropped by JetStream)\n", st.published, st.duplicates)
	if n := st.refusedCount(); n > 0 {
		what := "refused"
		if *deadLetter {
			what = "sent for dead-lettering (verdict dlq shows them once ingest has)"
		}
		fmt.Fprintf(stdout, "%s %d events that ingest would refuse: %s\n", what, n, st.refusedText())
		if err == nil && !*deadLetter {
			err = fmt.Errorf("%d of %d events refused, and not published (the lines above say why; --dead-letter keeps them in VERDICT_DLQ)", n, n+st.published)
		}
	}
	return err
}

type publishStats struct {
	published, duplicates int
	refused               map[event.Reason]int
}

func (st publishStats) refusedCount() int {
	n := 0
	for _, c := range st.refused {
		n += c
	}
	return n
}

// refusedText is "missing_field 3, bad_timestamp 1", in the order of
// event.Reasons.
func (st publishStats) refusedText() string {
	var parts []string
	for _, r := range event.Reasons() {
		if n := st.refused[r]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", r, n))
		}
	}
	return strings.Join(parts, ", ")
}

// maxReported is how many refused lines publish names one by one.
const maxReported = 10

// publishLines checks every non-blank line as ingest would and publishes
// those that pass, then waits for every ack. A line that fails is named on
// stderr with its reason (the first maxReported of them) and left out, or
// with deadLetter published all the same, for ingest to dead-letter.
func publishLines(ctx context.Context, js jetstream.JetStream, in io.Reader, deadLetter bool, stderr io.Writer) (publishStats, error) {
	st := publishStats{refused: map[event.Reason]int{}}
	dec := event.NewDecoder(event.DefaultWindow)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	// pending is a publish awaiting its ack, and whether the line was
	// refused (sent anyway with --dead-letter: not counted as published).
	type pending struct {
		jetstream.PubAckFuture
		refused bool
	}
	var futures []pending
	settle := func() error {
		for _, f := range futures {
			select {
			case ack := <-f.Ok():
				if f.refused {
					continue // counted as refused
				}
				st.published++
				if ack.Duplicate {
					st.duplicates++
				}
			case err := <-f.Err():
				return fmt.Errorf("publish to %s: %w", f.Msg().Subject, err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		futures = futures[:0]
		return nil
	}
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		msg, routed := stream.EventMsg(line)
		subject := msg.Subject
		if !routed {
			subject = event.SubjectTrack // its type cannot be read: the decoder says why
		}
		_, err := dec.Decode(subject, line, time.Now())
		refused := err != nil
		if err != nil {
			e := &event.Error{Reason: event.ReasonSchema, Detail: err.Error()}
			errors.As(err, &e)
			st.refused[e.Reason]++
			if n := st.refusedCount(); n <= maxReported {
				fmt.Fprintf(stderr, "line %d: %s: %s\n", lineNo, e.Reason, e.Detail)
			} else if n == maxReported+1 {
				fmt.Fprintf(stderr, "… and more: the counts below\n")
			}
			if !deadLetter {
				continue
			}
			// Sent as it is, ingest dead-letters (and counts) it; one over
			// the stream's limit goes to the dead-letter stream from here,
			// which keeps its first 64 KiB and why.
			if len(line) > event.MaxSize {
				msg = stream.DeadLetter(e.Reason, e.Detail, "verdict publish", line)
			}
		}
		f, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(30*time.Second))
		if err != nil {
			return st, fmt.Errorf("publish to %s: %w", msg.Subject, err)
		}
		futures = append(futures, pending{f, refused})
		if len(futures) >= 8192 {
			if err := settle(); err != nil {
				return st, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return st, fmt.Errorf("read events: %w", err)
	}
	return st, settle()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
