package report

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	htmltemplate "html/template"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/verdictlabs/verdict/pkg/readout"
)

//go:embed templates
var templateFS embed.FS

var funcs = map[string]any{"join": strings.Join}

var (
	textTmpl = template.Must(template.New("email.txt").Funcs(funcs).ParseFS(templateFS, "templates/email.txt"))
	htmlTmpl = htmltemplate.Must(htmltemplate.New("email.html").Funcs(funcs).ParseFS(templateFS, "templates/email.html"))
)

// DefaultFrom is the sender when none is configured (VERDICT_SMTP_FROM).
const DefaultFrom = "verdict <verdict@localhost>"

// EmailOptions adjust RenderEmail.
type EmailOptions struct {
	// From is the sender, "verdict <[email protected]>" or a bare address;
	// DefaultFrom when empty.
	From string
	// To are the recipients; the readout's owners when nil. Addresses that
	// do not parse are left out (see Recipients).
	To []string
	// BaseURL is where the readout page is served (the email links to it).
	BaseURL string
	// Previous is the readout of the last email about this experiment, if
	// any: the email then says what changed.
	Previous *readout.Readout
	// Date is the Date header; the readout's computed_at when zero, so the
	// same readout always renders to the same bytes.
	Date time.Time
}

// RenderEmail renders the readout email for r as a complete RFC 5322
// message with CRLF line endings:
//
//	multipart/related
//	├── multipart/alternative
//	│   ├── text/plain; charset=utf-8   (quoted-printable)
//	│   └── text/html; charset=utf-8    (quoted-printable, inline CSS, tables)
//	└── image/png                       (the forest plot, Content-ID, inline)
//
// The output depends only on r and o: the Message-ID is derived from the
// experiment and the readout version (see MessageID), and the MIME
// boundaries from the content. A message sent twice is therefore the same
// message twice, which mail clients recognise as a duplicate.
//
// Every header value that carries user data is stripped of control
// characters (no header injection) and RFC 2047-encoded when it is not
// ASCII; the HTML part is escaped by html/template.
func RenderEmail(r readout.Readout, o EmailOptions) ([]byte, error) {
	from, err := mail.ParseAddress(orDefault(o.From, DefaultFrom))
	if err != nil {
		return nil, fmt.Errorf("parse sender %q (VERDICT_SMTP_FROM): %w", o.From, err)
	}
	to := o.To
	if to == nil {
		to = r.Owners
	}
	rcpts, _ := Recipients(to)
	msgID := MessageID(r.Experiment, r.Version, from.Address)
	date := o.Date
	if date.IsZero() {
		date = timeOr(r.ComputedAt, r.DataThrough)
	}

	v := NewView(r, ViewOptions{BaseURL: o.BaseURL, Previous: o.Previous})
	subject := Subject(r)
	var text bytes.Buffer
	if err := textTmpl.Execute(&text, v); err != nil {
		return nil, fmt.Errorf("render text part: %w", err)
	}
	// Each chart is laid out once: its PNG and its alt text come from it.
	forest := layoutChart(r)
	chart, err := paintPNG(forest, PNGScale)
	if err != nil {
		return nil, err
	}
	cid := "chart." + strings.Trim(msgID, "<>")
	timeCID := "over-time." + strings.Trim(msgID, "<>")
	data := emailHTML{
		View:            v,
		Subject:         subject,
		ChartSrc:        htmltemplate.URL("cid:" + cid),
		ChartAlt:        "Chart: " + forest.title,
		ProgressPercent: int(v.Progress.Fraction*100 + 0.5),
	}
	var overTime []byte
	if sc, ok := layoutTimeChart(r); ok {
		if overTime, err = paintPNG(sc, PNGScale); err != nil {
			return nil, err
		}
		data.TimeSrc, data.TimeAlt, data.TimeHeight = htmltemplate.URL("cid:"+timeCID), "Chart: "+sc.title, int(sc.h)
	}
	var html bytes.Buffer
	if err := htmlTmpl.Execute(&html, data); err != nil {
		return nil, fmt.Errorf("render html part: %w", err)
	}

	// Boundaries from a hash of the content cannot occur in the content.
	sum := sha256.New()
	sum.Write(text.Bytes())
	sum.Write(html.Bytes())
	sum.Write(chart)
	sum.Write(overTime)
	h := hex.EncodeToString(sum.Sum(nil))
	relB, altB := "verdict-related-"+h[:24], "verdict-alternative-"+h[24:48]

	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("Date", date.Format(time.RFC1123Z))
	header("From", from.String())
	if len(rcpts) == 0 {
		header("To", "undisclosed-recipients:;")
	} else {
		addrs := make([]string, len(rcpts))
		for i, a := range rcpts {
			addrs[i] = (&mail.Address{Address: a}).String()
		}
		header("To", strings.Join(addrs, ",\r\n "))
	}
	header("Subject", encodeHeader(subject))
	header("Message-ID", msgID)
	header("MIME-Version", "1.0")
	header("Auto-Submitted", "auto-generated")
	header("X-Auto-Response-Suppress", "All")
	header("X-Verdict-Experiment", encodeHeader(oneLine(r.Experiment, 128)))
	header("X-Verdict-Version", strconv.FormatInt(r.Version, 10))
	header("X-Verdict-Verdict", v.Verdict)
	header("Content-Type", `multipart/related; type="multipart/alternative";`+"\r\n"+` boundary="`+relB+`"`)
	b.WriteString("\r\n")

	related := multipart.NewWriter(&b)
	if err := related.SetBoundary(relB); err != nil {
		return nil, err
	}
	altPart, err := related.CreatePart(textproto.MIMEHeader{
		"Content-Type": {`multipart/alternative; boundary="` + altB + `"`},
	})
	if err != nil {
		return nil, err
	}
	alt := multipart.NewWriter(altPart)
	if err := alt.SetBoundary(altB); err != nil {
		return nil, err
	}
	if err := writeAlternative(alt, text.Bytes(), html.Bytes()); err != nil {
		return nil, err
	}
	images := []struct {
		name, cid string
		png       []byte
	}{{"chart.png", cid, chart}, {"over-time.png", timeCID, overTime}}
	for _, im := range images {
		if im.png == nil {
			continue
		}
		img, err := related.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {`image/png; name="` + im.name + `"`},
			"Content-Transfer-Encoding": {"base64"},
			"Content-Id":                {"<" + im.cid + ">"},
			"Content-Disposition":       {`inline; filename="` + im.name + `"`},
		})
		if err != nil {
			return nil, err
		}
		if _, err := img.Write(base64Lines(im.png)); err != nil {
			return nil, err
		}
	}
	if err := related.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeAlternative writes the text and HTML parts of a
// multipart/alternative, quoted-printable, and closes it.
func writeAlternative(alt *multipart.Writer, text, html []byte) error {
	for _, p := range []struct {
		ctype string
		body  []byte
	}{{"text/plain; charset=utf-8", text}, {"text/html; charset=utf-8", html}} {
		w, err := alt.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {p.ctype},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write(p.body); err != nil {
			return err
		}
		if err := qp.Close(); err != nil {
			return err
		}
	}
	return alt.Close()
}

// base64Lines is b in base64, in lines of 76 characters (RFC 2045).
func base64Lines(b []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(b)
	out := make([]byte, 0, len(enc)+len(enc)/76*2+2)
	for len(enc) > 76 {
		out = append(out, enc[:76]...)
		out = append(out, '\r', '\n')
		enc = enc[76:]
	}
	out = append(out, enc...)
	return append(out, '\r', '\n')
}

type emailHTML struct {
	View
	Subject  string
	ChartSrc htmltemplate.URL
	ChartAlt string
	// The effects over time, when any metric has a series.
	TimeSrc         htmltemplate.URL
	TimeAlt         string
	TimeHeight      int
	ProgressPercent int
}

// Recipients splits addresses into those that parse as one RFC 5322
// address each (returned bare, "[email protected]") and those that do not.
// Owners come from experiment definitions: a value with a CR or LF, or a
// list smuggled into one entry, is refused here rather than reaching a
// header or an SMTP RCPT command.
func Recipients(addrs []string) (ok, bad []string) {
	seen := map[string]bool{}
	for _, a := range addrs {
		p, err := mail.ParseAddress(a)
		if err != nil || strings.ContainsAny(a, "\r\n") || strings.ContainsAny(p.Address, "\r\n<>,; ") {
			bad = append(bad, a)
			continue
		}
		if !seen[strings.ToLower(p.Address)] {
			seen[strings.ToLower(p.Address)] = true
			ok = append(ok, p.Address)
		}
	}
	return ok, bad
}

// MessageID is the Message-ID of the email about one readout version of an
// experiment, in the sender's domain: the same on every attempt and every
// restart, so a duplicate delivery is recognisable.
func MessageID(experiment string, version int64, from string) string {
	domain := "verdict.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && validDomain(from[i+1:]) {
		domain = from[i+1:]
	}
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, oneLine(experiment, 64))
	h := sha256.Sum256([]byte(experiment))
	return fmt.Sprintf("<verdict.%s.v%d.%s@%s>", safe, version, hex.EncodeToString(h[:4]), domain)
}

func validDomain(d string) bool {
	if d == "" || len(d) > 253 || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return false
	}
	for _, r := range d {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// encodeHeader encodes a one-line value for a header (RFC 5322, RFC 2047):
// words of printable ASCII stay readable, and each run of words that are not
// (non-ASCII, or something a decoder would take for an encoded-word) becomes
// one encoded-word. The result is folded at spaces so lines stay short.
func encodeHeader(s string) string {
	words := strings.Split(oneLine(s, 200), " ")
	var out []string
	var run []string
	flush := func() {
		if len(run) > 0 {
			out = append(out, mime.QEncoding.Encode("utf-8", strings.Join(run, " ")))
			run = nil
		}
	}
	for _, w := range words {
		if needsEncoding(w) {
			run = append(run, w)
			continue
		}
		flush()
		out = append(out, w)
	}
	flush()
	// Fold: a line of the header is "Subject: " plus words up to 78 columns.
	var b strings.Builder
	col := len("Subject: ")
	for i, w := range out {
		if i > 0 {
			if col+1+len(w) > 78 {
				b.WriteString("\r\n")
				col = 0
			}
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	return b.String()
}

func needsEncoding(w string) bool {
	if strings.Contains(w, "=?") {
		return true
	}
	for i := 0; i < len(w); i++ {
		if w[i] < 0x21 || w[i] > 0x7e {
			return true
		}
	}
	return false
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}
