package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/gateway"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/stream/streamtest"
)

const (
	benchClients = 8
	benchBatch   = 100
)

// BenchmarkGateway measures messages/s through POST /v1/batch (batches of
// 100 Segment tracks, 8 concurrent clients, each waiting for its answer)
// against the baseline measured in the same run: raw JetStream async
// publish of the same verdict events in groups of 100 from 8 goroutines,
// each waiting for its group's acknowledgements. An op is one batch of 100.
// Both report msgs/s and the p99 of a batch's round trip.
func BenchmarkGateway(b *testing.B) {
	s := streamtest.Run(b)
	_, js := streamtest.Connect(b, s)
	if err := stream.EnsureStreams(context.Background(), js, stream.DefaultLimits); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	now := time.Now().UTC()

	b.Run("raw_jetstream", func(b *testing.B) {
		run(b, func() error {
			futures := make([]jetstream.PubAckFuture, 0, benchBatch)
			for range benchBatch {
				n := seq.Add(1)
				e := event.Event{Type: event.Track, ID: fmt.Sprintf("raw-%d", n), TS: now, Unit: fmt.Sprintf("u-%d", n%5000), Name: "order_completed", Value: 10}
				m := nats.NewMsg(event.SubjectTrack)
				m.Data = e.AppendJSON(nil)
				m.Header.Set(nats.MsgIdHdr, e.ID)
				f, err := js.PublishMsgAsync(m)
				if err != nil {
					return err
				}
				futures = append(futures, f)
			}
			for _, f := range futures {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					return err
				}
			}
			return nil
		})
	})

	b.Run("gateway_batch", func(b *testing.B) {
		mux := http.NewServeMux()
		gateway.New(js, gateway.Options{WriteKeys: []string{"wk"}, Rate: 1e9}).Register(mux)
		h := httptest.NewServer(mux)
		defer h.Close()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients}}
		run(b, func() error {
			var body bytes.Buffer
			body.WriteString(`{"batch":[`)
			for i := range benchBatch {
				if i > 0 {
					body.WriteByte(',')
				}
				n := seq.Add(1)
				fmt.Fprintf(&body, `{"type":"track","event":"Order Completed","messageId":"gw-%d","userId":"u-%d","timestamp":%q,"properties":{"revenue":10,"plan":"pro"},"context":{"os":{"name":"iOS"}}}`,
					n, n%5000, now.Format(time.RFC3339Nano))
			}
			body.WriteString(`]}`)
			req, _ := http.NewRequest(http.MethodPost, h.URL+"/v1/batch", &body)
			req.SetBasicAuth("wk", "")
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("POST /v1/batch: %d", resp.StatusCode)
			}
			return nil
		})
	})
}

// run does b.N batches from benchClients goroutines and reports msgs/s and
// the p99 of a batch.
func run(b *testing.B, batch func() error) {
	var mu sync.Mutex
	var took []time.Duration
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range benchClients {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := batch(); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				took = append(took, time.Since(t0))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(took)
	if len(took) > 0 {
		b.ReportMetric(float64(len(took)*benchBatch)/elapsed.Seconds(), "msgs/s")
		b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99_ms")
	}
}
