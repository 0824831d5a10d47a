package report

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/testkit"
)

// fixtures are realistic readouts written by package decide
// (decide/testdata/realistic), copied here with real owner addresses so
// these goldens do not move when decide's wording does.
func fixtures(t *testing.T) map[string]readout.Readout {
	t.Helper()
	paths, err := filepath.Glob("testdata/readouts/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("glob fixtures: %v (%d files)", err, len(paths))
	}
	out := map[string]readout.Readout{}
	for _, p := range paths {
		out[strings.TrimSuffix(filepath.Base(p), ".json")] = load(t, p)
	}
	return out
}

func load(t *testing.T, path string) readout.Readout {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r readout.Readout
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return r
}

// parsed is an email taken apart with net/mail and mime/multipart.
type parsed struct {
	header  mail.Header
	subject string
	text    string
	html    string
	png     []byte
	cid     string
	types   []string // the MIME tree, depth-first
}

func parse(t *testing.T, msg []byte) parsed {
	t.Helper()
	for i, line := range bytes.Split(msg, []byte("\r\n")) {
		if len(line) > 998 {
			t.Fatalf("line %d is %d bytes long, RFC 5322 allows 998", i, len(line))
		}
		if bytes.ContainsRune(line, '\n') || bytes.ContainsRune(line, '\r') {
			t.Fatalf("line %d has a bare CR or LF", i)
		}
	}
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	p := parsed{header: m.Header}
	dec := new(mime.WordDecoder)
	if p.subject, err = dec.DecodeHeader(m.Header.Get("Subject")); err != nil {
		t.Fatalf("decode subject: %v", err)
	}
	var walk func(ctype string, r io.Reader, h map[string][]string)
	walk = func(ctype string, r io.Reader, h map[string][]string) {
		mt, params, err := mime.ParseMediaType(ctype)
		if err != nil {
			t.Fatalf("parse media type %q: %v", ctype, err)
		}
		p.types = append(p.types, mt)
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(r, params["boundary"])
			for {
				part, err := mr.NextRawPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatalf("next part of %s: %v", mt, err)
				}
				walk(part.Header.Get("Content-Type"), part, part.Header)
			}
		}
		var body []byte
		switch h["Content-Transfer-Encoding"][0] {
		case "quoted-printable":
			body, err = io.ReadAll(quotedprintable.NewReader(r))
		case "base64":
			var raw []byte
			raw, err = io.ReadAll(r)
			if err == nil {
				body, err = decodeBase64(raw)
			}
		}
		if err != nil {
			t.Fatalf("decode %s: %v", mt, err)
		}
		switch mt {
		case "text/plain":
			p.text = string(body)
		case "text/html":
			p.html = string(body)
		case "image/png":
			p.png = body
			p.cid = strings.Trim(h["Content-Id"][0], "<>")
		}
	}
	walk(m.Header.Get("Content-Type"), m.Body, map[string][]string{"Content-Transfer-Encoding": {"7bit"}})
	return p
}

func decodeBase64(raw []byte) ([]byte, error) {
	return io.ReadAll(base64Decoder(bytes.NewReader(raw)))
}

func TestRenderEmailGolden(t *testing.T) {
	for name, r := range fixtures(t) {
		t.Run(name, func(t *testing.T) {
			msg, err := RenderEmail(r, EmailOptions{From: "verdict <verdict@shop.example>", BaseURL: "http://127.0.0.1:8080"})
			if err != nil {
				t.Fatal(err)
			}
			p := parse(t, msg)
			types := []string{"multipart/related", "multipart/alternative", "text/plain", "text/html", "image/png"}
			if TimeChartSVG(r) != "" {
				// The effects over time, a second image.
				types = append(types, "image/png")
				if !strings.Contains(p.html, `src="cid:over-time.`) {
					t.Errorf("html does not show the effects over time")
				}
			}
			if diff := cmp.Diff(types, p.types); diff != "" {
				t.Errorf("MIME tree (-want +got):\n%s", diff)
			}
			if !strings.Contains(p.html, `src="cid:`+p.cid+`"`) {
				t.Errorf("html does not reference the chart as cid:%s", p.cid)
			}
			if !strings.Contains(p.html, `href="http://127.0.0.1:8080/experiments/`+r.Experiment+`"`) {
				t.Errorf("html has no link to the readout page")
			}
			if got, want := p.header.Get("Message-ID"), MessageID(r.Experiment, r.Version, "verdict@shop.example"); got != want {
				t.Errorf("Message-ID = %q, want %q", got, want)
			}
			if _, err := p.header.Date(); err != nil {
				t.Errorf("Date: %v", err)
			}
			to, err := p.header.AddressList("To")
			if err != nil || len(to) != len(r.Owners) {
				t.Errorf("To = %v (%v), want the %d owners", to, err, len(r.Owners))
			}
			img, err := png.Decode(bytes.NewReader(p.png))
			if err != nil {
				t.Fatalf("decode chart: %v", err)
			}
			if w := img.Bounds().Dx(); w != ChartWidth*PNGScale {
				t.Errorf("chart width = %d, want %d", w, ChartWidth*PNGScale)
			}
			if h := img.Bounds().Dy(); h < 200 || h > 2000 {
				t.Errorf("chart height = %d, want a few hundred pixels", h)
			}
			golden(t, filepath.Join("testdata", "email", name+".txt"), p.subject+"\n\n"+p.text)

			again, err := RenderEmail(r, EmailOptions{From: "verdict <verdict@shop.example>", BaseURL: "http://127.0.0.1:8080"})
			if err != nil || !bytes.Equal(msg, again) {
				t.Errorf("a second rendering differs: the same readout must give the same bytes")
			}
		})
	}
}

func golden(t *testing.T, path, got string) { t.Helper(); testkit.Golden(t, path, []byte(got)) }

func TestSubjects(t *testing.T) {
	fx := fixtures(t)
	want := map[string]string{
		"salvage_dark_mode_android":      "[verdict] dark-mode: SALVAGE — keep it for platform = android",
		"pivot_image_carousel_guardrail": "[verdict] image-carousel: PIVOT — page_load_ms worse beyond its 5% margin",
		"persevere_checkout_redesign":    "[verdict] checkout-redesign: PERSEVERE — ship one-page: purchase_conversion +12.5%",
		"invalid_search_ranking_srm":     "[verdict] search-ranking: INVALID — sample ratio mismatch (p < 0.001)",
	}
	for name, w := range want {
		if got := Subject(fx[name]); got != w {
			t.Errorf("Subject(%s) = %q, want %q", name, got, w)
		}
	}
	if got := Subject(fx["pivot_button_color_flat_at_end"]); !strings.HasPrefix(got, "[verdict] button-color: PIVOT — no lift on purchase_conversion; lifts above +") {
		t.Errorf("Subject(flat pivot) = %q", got)
	}
	if got := Subject(fx["collecting_checkout_day_two"]); !strings.Contains(got, ": COLLECTING — ") {
		t.Errorf("Subject(collecting) = %q", got)
	}
}

// TestHostile renders a readout whose user-supplied text tries to inject
// HTML, script, header lines and extra recipients.
func TestHostile(t *testing.T) {
	r := fixtures(t)["salvage_dark_mode_android"]
	r.Name = `<script>alert("name")</script> & "quotes" 'single'`
	r.Hypothesis = "<img src=x onerror=alert(1)>\r\nBcc: victim@evil.example"
	r.Owners = []string{"ok@shop.example", "evil@x.example\r\nBcc: victim@evil.example", `"<b>Bold</b>" <bold@shop.example>`}
	r.Salvage[0].Value = "andr\u00f6id\r\nSubject: injected <script>x</script>"
	r.Summary = `</td></tr><script>document.write("x")</script>`
	r.Reasons = append(r.Reasons, `<a href="javascript:alert(1)">click</a>`)

	msg, err := RenderEmail(r, EmailOptions{From: "verdict <verdict@shop.example>", BaseURL: "http://127.0.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, msg)
	for _, k := range []string{"Bcc", "Cc"} {
		if v := p.header.Get(k); v != "" {
			t.Errorf("header %s = %q was injected", k, v)
		}
	}
	if got := p.header["Subject"]; len(got) != 1 {
		t.Fatalf("%d Subject headers, want 1", len(got))
	}
	if strings.ContainsAny(p.subject, "\r\n") {
		t.Errorf("subject %q has a line break", p.subject)
	}
	if want := "[verdict] dark-mode: SALVAGE — keep it for platform = andröid Subject: injected <script>x</script>"; p.subject != want {
		t.Errorf("subject = %q, want %q", p.subject, want)
	}
	to, err := p.header.AddressList("To")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range to {
		got = append(got, a.Address)
	}
	if diff := cmp.Diff([]string{"ok@shop.example", "bold@shop.example"}, got); diff != "" {
		t.Errorf("recipients (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"<script>", "<img src=x", `href="javascript:`, "</td></tr><script>", "<b>Bold</b>"} {
		if strings.Contains(p.html, bad) {
			t.Errorf("html contains %q unescaped", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;"} {
		if !strings.Contains(p.html, want) {
			t.Errorf("html does not contain the escaped %q", want)
		}
	}
	if svg := string(ChartSVG(r)); strings.Contains(svg, "<script>") || !strings.Contains(svg, "&lt;script&gt;") {
		t.Errorf("svg does not escape the segment value")
	}
}

func TestMessageID(t *testing.T) {
	tests := []struct {
		experiment string
		version    int64
		from, want string
	}{
		{"dark-mode", 3, "verdict@shop.example", "<verdict.dark-mode.v3.e6d7d676@shop.example>"},
		{"a.b_c", 1, "bad", "<verdict.a-b_c.v1.5b8f934a@verdict.invalid>"},
		{"x\r\ny>", 1, "v@evil.example>\r\n", "<verdict.x-y-.v1.2871f77f@verdict.invalid>"},
	}
	for _, tt := range tests {
		if got := MessageID(tt.experiment, tt.version, tt.from); got != tt.want {
			t.Errorf("MessageID(%q, %d, %q) = %q, want %q", tt.experiment, tt.version, tt.from, got, tt.want)
		}
	}
}

func TestChartPNG(t *testing.T) { // the email's forest plot
	for name, r := range fixtures(t) {
		b, err := paintPNG(layoutChart(r), PNGScale)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		// 3 metric rows plus 1 salvage row for the salvage fixture.
		want := int(layoutChart(r).h) * PNGScale
		if img.Bounds().Dx() != ChartWidth*PNGScale || img.Bounds().Dy() != want {
			t.Errorf("%s: size = %v, want %dx%d", name, img.Bounds().Size(), ChartWidth*PNGScale, want)
		}
	}
	// A readout with nothing to plot still draws (a note).
	if _, err := paintPNG(layoutChart(readout.Readout{Experiment: "empty", Status: readout.Collecting}), PNGScale); err != nil {
		t.Fatal(err)
	}
}

func base64Decoder(r io.Reader) io.Reader { return base64.NewDecoder(base64.StdEncoding, r) }

func TestLifecycleLine(t *testing.T) {
	at := time.Date(2026, 12, 2, 14, 5, 0, 0, time.UTC)
	tests := []struct {
		name string
		r    readout.Readout
		want string
	}{
		{"nothing yet", readout.Readout{Status: readout.Collecting, CandidateStatus: readout.Collecting}, ""},
		{"holding", readout.Readout{Status: readout.Collecting, Candidate: readout.Salvage, CandidateStatus: readout.Decided, CandidateSince: &at},
			"Candidate SALVAGE since 2 Dec 2026 14:05 UTC, holding before it is the decision."},
		{"invalid holding", readout.Readout{Status: readout.Collecting, CandidateStatus: readout.Invalid, CandidateSince: &at},
			"Candidate INVALID since 2 Dec 2026 14:05 UTC, holding before it is final."},
		{"decided, provisional", readout.Readout{Status: readout.Decided, Label: readout.Pivot, DecidedAt: &at, Provisional: true, Health: readout.Health{Backlog: 12000}},
			"Provisional: ingest has 12,000 events still to land. Decided 2 Dec 2026 14:05 UTC: final unless the evidence reverses."},
	}
	for _, tt := range tests {
		if got := LifecycleLine(tt.r); got != tt.want {
			t.Errorf("%s: LifecycleLine = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestCUPEDLine: a metric adjusted by CUPED says how much variance it
// removed, on the page's view and in the email's text.
func TestCUPEDLine(t *testing.T) {
	r := fixtures(t)["salvage_dark_mode_android"]
	r.Arms[0].Metrics[0].CUPED = &readout.CUPED{Lookback: "14d", Applied: true, Theta: 0.4, VarianceReduction: 0.334}
	const want = "CUPED: 33% less variance (14d before exposure)"
	if got := NewView(r, ViewOptions{}).Metrics[0].CUPED; got != want {
		t.Errorf("view: %q, want %q", got, want)
	}
	msg, err := RenderEmail(r, EmailOptions{From: "verdict <v@example.com>", To: []string{"pm@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := parse(t, msg); !strings.Contains(p.text, want) || !strings.Contains(p.html, want) {
		t.Errorf("the email does not say %q", want)
	}
	r.Arms[0].Metrics[0].CUPED.Applied = false
	if got := NewView(r, ViewOptions{}).Metrics[0].CUPED; got != "" {
		t.Errorf("not applied: %q, want nothing", got)
	}
}

// TestBayesianLine: a metric of the Bayesian engine shows its chance to win
// and the risk of shipping the treatment where a p-value would be.
func TestBayesianLine(t *testing.T) {
	r := fixtures(t)["salvage_dark_mode_android"]
	ctw, risk := 0.9731, [2]float64{0.052, 0.0012}
	r.Arms[0].Metrics[0].ChanceToWin, r.Arms[0].Metrics[0].Risk = &ctw, &risk
	const want = "chance to win 97.3%, risk 0.1%"
	if got := NewView(r, ViewOptions{}).Metrics[0].PValue; got != want {
		t.Errorf("view: %q, want %q", got, want)
	}
	msg, err := RenderEmail(r, EmailOptions{From: "verdict <v@example.com>", To: []string{"pm@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := parse(t, msg); !strings.Contains(p.text, want) || !strings.Contains(p.html, want) {
		t.Errorf("the email does not say %q", want)
	}
}

// TestImbalanceRow: a pre-exposure imbalance is a failed health check that
// names the arm, the metric and both means.
func TestImbalanceRow(t *testing.T) {
	r := fixtures(t)["salvage_dark_mode_android"]
	r.Health.PreExposureImbalance = []readout.Imbalance{{Variant: "dark", Metric: "revenue", ControlMean: 10, TreatmentMean: 16, PValue: 1e-7}}
	rows := NewView(r, ViewOptions{}).Health
	last := rows[len(rows)-1]
	if last.OK || last.Check != "Arms alike before exposure (revenue)" || !strings.Contains(last.Result, "dark averaged 16 before exposure against control's 10 (p < 0.001)") {
		t.Errorf("health row %+v", last)
	}
}
