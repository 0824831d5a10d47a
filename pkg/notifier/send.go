package notifier

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Email is a rendered message and its envelope.
type Email struct {
	From      string   // envelope sender, a bare address
	To        []string // envelope recipients, bare addresses
	MessageID string
	Data      []byte // the RFC 5322 message
}

// Sender delivers an email. An error wrapping ErrPermanent will not get
// better by retrying (the notifier records it and moves on); any other is
// retried.
type Sender interface {
	Send(ctx context.Context, e Email) error
}

// ErrPermanent marks a delivery failure that retrying cannot fix.
var ErrPermanent = errors.New("permanent delivery failure")

// StartTLS says whether the SMTP connection is upgraded with STARTTLS.
type StartTLS string

// The STARTTLS policies.
const (
	// Opportunistic upgrades when the server offers STARTTLS (the default).
	Opportunistic StartTLS = "opportunistic"
	// Mandatory refuses to send unless the server offers STARTTLS.
	Mandatory StartTLS = "mandatory"
	// NoTLS never upgrades; for a relay on localhost.
	NoTLS StartTLS = "none"
)

// SMTPConfig is where and how emails are sent.
type SMTPConfig struct {
	Addr     string   // host:port (VERDICT_SMTP_ADDR); empty: write to the outbox instead
	From     string   // sender (VERDICT_SMTP_FROM), "verdict <[email protected]>"
	Username string   // AUTH PLAIN user (VERDICT_SMTP_USERNAME); empty: no AUTH
	Password string   // (VERDICT_SMTP_PASSWORD), never logged
	StartTLS StartTLS // (VERDICT_SMTP_STARTTLS) opportunistic (default), mandatory or none
	// TLS is the TLS configuration for STARTTLS; ServerName defaults to the
	// host of Addr. Tests set RootCAs here.
	TLS *tls.Config
	// Timeout bounds one delivery attempt, default 60s.
	Timeout time.Duration
	// HelloName is the name sent in EHLO, default localhost.
	HelloName string
}

// LogValue logs the configuration without the password.
func (c SMTPConfig) LogValue() slog.Value {
	pw := ""
	if c.Password != "" {
		pw = "REDACTED"
	}
	return slog.GroupValue(
		slog.String("addr", c.Addr), slog.String("from", c.From), slog.String("username", c.Username),
		slog.String("password", pw), slog.String("starttls", string(c.StartTLS)))
}

// smtpSender delivers over SMTP with net/smtp.
type smtpSender struct {
	cfg SMTPConfig
	log *slog.Logger
}

func (s *smtpSender) Send(ctx context.Context, e Email) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	host, _, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("VERDICT_SMTP_ADDR %q: %w", s.cfg.Addr, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("dial smtp %s: %w", s.cfg.Addr, err)
	}
	// net/smtp has no context: a deadline, and closing the connection when
	// ctx ends, bound every step.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return classify("greeting", err)
	}
	defer c.Close()
	if err := c.Hello(s.cfg.HelloName); err != nil {
		return classify("EHLO", err)
	}
	if s.cfg.StartTLS != NoTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
			if s.cfg.TLS != nil {
				tc = s.cfg.TLS.Clone()
				if tc.ServerName == "" {
					tc.ServerName = host
				}
			}
			if err := c.StartTLS(tc); err != nil {
				return classify("STARTTLS", err)
			}
		} else if s.cfg.StartTLS == Mandatory {
			return fmt.Errorf("smtp server %s does not offer STARTTLS and VERDICT_SMTP_STARTTLS is mandatory", s.cfg.Addr)
		}
	}
	if s.cfg.Username != "" {
		// PlainAuth refuses to send the password unencrypted except to
		// localhost.
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, host)); err != nil {
			return classify("AUTH", err)
		}
	}
	if err := c.Mail(e.From); err != nil {
		return classify("MAIL FROM", err)
	}
	var accepted int
	var rejected []string
	for _, to := range e.To {
		err := c.Rcpt(to)
		switch {
		case err == nil:
			accepted++
		case isPermanent(err):
			rejected = append(rejected, to)
			s.log.Warn("recipient refused", "to", to, "err", err)
		default:
			return classify("RCPT TO", err)
		}
	}
	if accepted == 0 {
		return fmt.Errorf("%w: every recipient refused: %s", ErrPermanent, strings.Join(rejected, ", "))
	}
	w, err := c.Data()
	if err != nil {
		return classify("DATA", err)
	}
	if _, err := w.Write(e.Data); err != nil {
		return classify("write message", err)
	}
	if err := w.Close(); err != nil {
		return classify("end of DATA", err)
	}
	// The message is accepted once DATA ends with 250; QUIT is a courtesy.
	_ = c.Quit()
	return nil
}

func isPermanent(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 500
}

func classify(step string, err error) error {
	if isPermanent(err) {
		return fmt.Errorf("%w: smtp %s: %w", ErrPermanent, step, err)
	}
	return fmt.Errorf("smtp %s: %w", step, err)
}

// outbox writes each email to dir as <Message-ID>.eml. The name is the
// Message-ID, so sending the same email again rewrites the same file.
type outbox struct{ dir string }

func (o outbox) Send(_ context.Context, e Email) error {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return fmt.Errorf("create outbox %s: %w", o.dir, err)
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			return r
		}
		return '_'
	}, strings.Trim(e.MessageID, "<>")) + ".eml"
	path := filepath.Join(o.dir, name)
	tmp, err := os.CreateTemp(o.dir, ".tmp-*.eml")
	if err != nil {
		return fmt.Errorf("write outbox: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(e.Data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("move email into outbox: %w", err)
	}
	return nil
}
