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

	"github.com/nats-io/nats.go"
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
	natsURL := fs.String("nats-url", envOr(getenv, "VERDICT_NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL (VERDICT_NATS_URL)")
	pending := fs.Int("max-pending", 4096, "most messages in flight without a JetStream ack")
	quiet := fs.Bool("quiet", false, "no progress bar")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: verdict publish [flags] FILE|-")
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

	opts, err := stream.AuthFromEnv(getenv).Options()
	if err != nil {
		return err
	}
	nc, err := nats.Connect(*natsURL, append(opts, nats.Name("verdict-publish"))...)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", stream.Redact(*natsURL), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(*pending))
	if err != nil {
		return err
	}
	st, err := publishLines(ctx, js, in)
	fmt.Fprintf(stdout, "published %d events (%d duplicates dropped by JetStream, %d without a readable type sent for dead-lettering)\n",
		st.published, st.duplicates, st.unrouted)
	if st.tooLarge > 0 {
		fmt.Fprintf(stdout, "dead-lettered %d events over %d bytes (verdict.dlq.%s)\n", st.tooLarge, event.MaxSize, event.ReasonTooLarge)
	}
	return err
}

type publishStats struct{ published, duplicates, unrouted, tooLarge int }

// publishLines publishes every non-blank line and waits for every ack. A
// line whose type cannot be read still goes out, on verdict.events.unknown,
// so that ingest dead-letters it with its reason instead of it vanishing here.
func publishLines(ctx context.Context, js jetstream.JetStream, in io.Reader) (publishStats, error) {
	var st publishStats
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var futures []jetstream.PubAckFuture
	settle := func() error {
		for _, f := range futures {
			select {
			case ack := <-f.Ok():
				if strings.HasPrefix(f.Msg().Subject, stream.DLQPrefix) {
					continue // counted as tooLarge
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
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		msg, routed := stream.EventMsg(line)
		switch {
		case len(line) > event.MaxSize:
			// The stream would refuse it; the dead-letter stream keeps its
			// first 64 KiB and why.
			msg = stream.DeadLetter(event.ReasonTooLarge, fmt.Sprintf("the event is %d bytes; the limit is %d", len(line), event.MaxSize), "verdict publish", line)
			st.tooLarge++
		case !routed:
			st.unrouted++
		}
		f, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(30*time.Second))
		if err != nil {
			return st, fmt.Errorf("publish to %s: %w", msg.Subject, err)
		}
		futures = append(futures, f)
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
