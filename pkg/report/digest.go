package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	htmltemplate "html/template"
	"mime/multipart"
	"net/mail"
	"net/url"
	"strings"
	"text/template"
	"time"

	"github.com/verdictlabs/verdict/pkg/readout"
)

// Digest is one owner's digest of a period: the experiments they own that
// are still running, those decided in the period, and what was learned
// from the pivots and salvages among them.
type Digest struct {
	Owner    string
	From, To time.Time // the period, [From, To)
	Running  []readout.Readout
	Decided  []readout.Readout // decided or invalid in the period
	BaseURL  string
}

// DigestMessageID is the Message-ID of owner's digest for the period
// ending at to: the same on every attempt, so a resend is recognisable.
func DigestMessageID(owner string, to time.Time, from string) string {
	domain := "verdict.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && validDomain(from[i+1:]) {
		domain = from[i+1:]
	}
	h := sha256.Sum256([]byte(strings.ToLower(owner)))
	return fmt.Sprintf("<verdict.digest.%s.%s@%s>", to.UTC().Format("20060102T1504"), hex.EncodeToString(h[:6]), domain)
}

// DigestSubject is the digest's subject line.
func DigestSubject(d Digest) string {
	return fmt.Sprintf("verdict digest to %s: %d decided, %d running", d.To.UTC().Format("2 Jan 2006"), len(d.Decided), len(d.Running))
}

// digestLine is one experiment as the digest shows it.
type digestLine struct {
	Verdict, Name, Key, Summary, Link string
	Reasons                           []string
	Color                             string
}

type digestView struct {
	Subject, Owner, From, To  string
	Decided, Learned, Running []digestLine
}

func newDigestView(d Digest) digestView {
	v := digestView{Subject: DigestSubject(d), Owner: d.Owner, From: d.From.UTC().Format("Mon 2 Jan 2006 15:04"), To: d.To.UTC().Format("Mon 2 Jan 2006 15:04 MST")}
	line := func(r readout.Readout) digestLine {
		name := r.Name
		if name == "" {
			name = r.Experiment
		}
		l := digestLine{Verdict: Verdict(r), Name: oneLine(name, 200), Key: r.Experiment, Summary: r.Summary, Reasons: r.Reasons, Color: tones[Verdict(r)].Accent}
		if d.BaseURL != "" {
			l.Link = strings.TrimRight(d.BaseURL, "/") + "/experiments/" + url.PathEscape(r.Experiment)
		}
		return l
	}
	for _, r := range d.Decided {
		v.Decided = append(v.Decided, line(r))
		if r.Status == readout.Decided && (r.Label == readout.Pivot || r.Label == readout.Salvage) {
			v.Learned = append(v.Learned, line(r))
		}
	}
	for _, r := range d.Running {
		v.Running = append(v.Running, line(r))
	}
	return v
}

var digestText = template.Must(template.New("digest.txt").Parse(`{{.Subject}}
For {{.Owner}}, from {{.From}} to {{.To}}.

Decided in this period ({{len .Decided}}):
{{- range .Decided}}
  - {{.Verdict}} · {{.Name}} ({{.Key}}): {{.Summary}}{{if .Link}}
    {{.Link}}{{end}}
{{- else}}
  nothing
{{- end}}

What was learned, from the pivots and salvages:
{{- range .Learned}}
  - {{.Name}}: {{.Summary}}
{{- range .Reasons}}
      {{.}}
{{- end}}
{{- else}}
  nothing this time
{{- end}}

Still running ({{len .Running}}):
{{- range .Running}}
  - {{.Name}} ({{.Key}}): {{.Summary}}
{{- else}}
  none
{{- end}}
`))

var digestHTML = htmltemplate.Must(htmltemplate.New("digest.html").Parse(`<!DOCTYPE html>
<html><body style="font-family:Arial,Helvetica,sans-serif;color:#202124;max-width:640px;">
<h2 style="margin-bottom:4px;">{{.Subject}}</h2>
<p style="color:#5f6368;margin-top:0;">For {{.Owner}}, from {{.From}} to {{.To}}.</p>
<h3>Decided in this period ({{len .Decided}})</h3>
{{range .Decided}}<p><span style="color:{{.Color}};font-weight:bold;">{{.Verdict}}</span> · {{if .Link}}<a href="{{.Link}}">{{.Name}}</a>{{else}}{{.Name}}{{end}} <span style="color:#5f6368;">({{.Key}})</span><br>{{.Summary}}</p>
{{else}}<p>Nothing.</p>
{{end}}<h3>What was learned</h3>
{{range .Learned}}<p><b>{{.Name}}</b>: {{.Summary}}</p>{{if .Reasons}}<ul>{{range .Reasons}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{else}}<p>Nothing this time.</p>
{{end}}<h3>Still running ({{len .Running}})</h3>
{{range .Running}}<p>{{if .Link}}<a href="{{.Link}}">{{.Name}}</a>{{else}}{{.Name}}{{end}}: {{.Summary}}</p>
{{else}}<p>None.</p>
{{end}}</body></html>
`))

// RenderDigest writes d as an email (text and HTML) from o.From to d.Owner.
func RenderDigest(d Digest, o EmailOptions) ([]byte, error) {
	from, err := mail.ParseAddress(orDefault(o.From, DefaultFrom))
	if err != nil {
		return nil, fmt.Errorf("parse sender %q (VERDICT_SMTP_FROM): %w", o.From, err)
	}
	rcpts, _ := Recipients([]string{d.Owner})
	if len(rcpts) == 0 {
		return nil, fmt.Errorf("owner %q is not an address", d.Owner)
	}
	v := newDigestView(d)
	var text, html bytes.Buffer
	if err := digestText.Execute(&text, v); err != nil {
		return nil, err
	}
	if err := digestHTML.Execute(&html, v); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append(text.Bytes(), html.Bytes()...))
	boundary := "verdict-digest-" + hex.EncodeToString(sum[:12])
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("Date", d.To.Format(time.RFC1123Z))
	header("From", from.String())
	header("To", (&mail.Address{Address: rcpts[0]}).String())
	header("Subject", encodeHeader(v.Subject))
	header("Message-ID", DigestMessageID(d.Owner, d.To, from.Address))
	header("MIME-Version", "1.0")
	header("Auto-Submitted", "auto-generated")
	header("X-Auto-Response-Suppress", "All")
	header("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	b.WriteString("\r\n")
	alt := multipart.NewWriter(&b)
	if err := alt.SetBoundary(boundary); err != nil {
		return nil, err
	}
	if err := writeAlternative(alt, text.Bytes(), html.Bytes()); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// DigestSlack is the digest as one Slack message for a team channel.
func DigestSlack(d Digest) string {
	v := newDigestView(d)
	var b strings.Builder
	fmt.Fprintf(&b, "*%s*", SlackEscape(v.Subject))
	for _, l := range v.Decided {
		fmt.Fprintf(&b, "\n• *%s* · %s (`%s`): %s", l.Verdict, SlackEscape(l.Name), SlackEscape(l.Key), SlackEscape(l.Summary))
	}
	if len(v.Running) > 0 {
		names := make([]string, len(v.Running))
		for i, l := range v.Running {
			names[i] = SlackEscape(l.Name)
		}
		fmt.Fprintf(&b, "\nStill running: %s", strings.Join(names, ", "))
	}
	return b.String()
}

// slackEscaper escapes what Slack's mrkdwn reads as markup: "<" opens a
// link or a mention (<!channel>, <@U123>, <https://…|text>).
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// SlackEscape makes text (names, summaries, segment values from events)
// read literally in a Slack message, as Slack's documentation asks.
func SlackEscape(text string) string { return slackEscaper.Replace(text) }
