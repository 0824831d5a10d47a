package stream

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/event"
)

// EventMsg is the message a publisher sends for one raw event: on
// verdict.events.<type> with Nats-Msg-Id its event_id, or, when its type
// cannot be read (routed false), on verdict.events.unknown, where ingest
// dead-letters it rather than it vanishing in the publisher. data is
// copied.
func EventMsg(data []byte) (msg *nats.Msg, routed bool) {
	msg = nats.NewMsg(event.SubjectPrefix + "unknown")
	if typ, id, err := event.Peek(data); err == nil && (typ == "exposure" || typ == "track") {
		msg.Subject, routed = event.SubjectPrefix+typ, true
		if id != "" {
			msg.Header.Set(nats.MsgIdHdr, id)
		}
	}
	msg.Data = bytes.Clone(data)
	return msg, routed
}

// DeadLetter is the message that takes a rejected event to
// verdict.dlq.<reason>: its payload as it came, what was wrong in
// Verdict-Error and where it came from in Verdict-Subject, both made safe
// as header values.
// A payload over event.MaxSize keeps its first event.MaxSize bytes (the
// detail says so): a dead letter must not cost more than an event may.
func DeadLetter(reason event.Reason, detail, from string, payload []byte) *nats.Msg {
	m := nats.NewMsg(DLQPrefix + string(reason))
	if len(payload) > event.MaxSize {
		detail = fmt.Sprintf("%s (the first %d of its %d bytes kept)", detail, event.MaxSize, len(payload))
		payload = payload[:event.MaxSize]
	}
	m.Data = payload
	m.Header.Set(ErrorHeader, headerValue(detail))
	m.Header.Set(SubjectHeader, headerValue(from))
	return m
}

// headerValue makes s safe as a NATS header value: one line, bounded.
func headerValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) > 1024 {
		s = s[:1024]
	}
	return s
}

// PublishAll publishes msgs asynchronously and waits for every
// acknowledgement; it returns the first failure, or ctx's error.
func PublishAll(ctx context.Context, js jetstream.JetStream, msgs []*nats.Msg) error {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			return fmt.Errorf("publish to %s: %w", m.Subject, err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish to %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
