package notifier

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// A definition names its Slack and webhook URLs, so whoever may apply
// definitions chooses where the notifier posts. Without a guard that is a
// way into what only the notifier's host can reach: a cloud metadata
// endpoint, an admin port on loopback, a service on the private network.
// The guard decides at dial time, on the address actually dialled (a name
// that resolves to a public address when applied and to 127.0.0.1 when
// dialled gains nothing), and the client follows no redirects.

// ErrRefusedTarget is a hook target the guard refused: not on
// VERDICT_WEBHOOK_ALLOWED_HOSTS, or a loopback, private or link-local
// address that is not on it. It is permanent.
var ErrRefusedTarget = errors.New("refused target")

// ParseHosts reads VERDICT_WEBHOOK_ALLOWED_HOSTS: comma-separated host
// names or IP addresses, or "*.example.com" for every name under
// example.com.
func ParseHosts(list string) ([]string, error) {
	var out []string
	for _, h := range strings.Split(list, ",") {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		name := strings.TrimPrefix(h, "*.")
		if strings.ContainsAny(name, "*/:@ ") && net.ParseIP(name) == nil {
			return nil, fmt.Errorf("VERDICT_WEBHOOK_ALLOWED_HOSTS: %q is not a host name, an IP address or *.domain", h)
		}
		out = append(out, h)
	}
	return out, nil
}

// hostAllowed says whether host is on the list.
func hostAllowed(list []string, host string) bool {
	host = strings.ToLower(strings.Trim(host, "[]"))
	for _, h := range list {
		if h == host {
			return true
		}
		if suffix, ok := strings.CutPrefix(h, "*"); ok && strings.HasSuffix(host, suffix) {
			return true
		}
	}
	return false
}

// internal says whether a is an address a definition may not make the
// notifier post to: loopback, private (RFC 1918, unique local), link-local
// (the cloud metadata endpoints), shared (RFC 6598), unspecified or
// multicast.
func internal(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() ||
		netip.MustParsePrefix("100.64.0.0/10").Contains(a) || netip.MustParsePrefix("0.0.0.0/8").Contains(a)
}

// checkTarget refuses a URL whose host is not on a non-empty allow list.
func checkTarget(allowed []string, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	if len(allowed) > 0 && !hostAllowed(allowed, u.Hostname()) {
		return fmt.Errorf("%w: %w: %s is not on VERDICT_WEBHOOK_ALLOWED_HOSTS", ErrPermanent, ErrRefusedTarget, u.Hostname())
	}
	return nil
}

// hookClient is the client of Slack and webhook posts: no proxy from the
// environment, no redirects (a 3xx is a permanent failure), and internal
// addresses refused at dial time unless their host is allowed.
func hookClient(allowed []string) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		if !hostAllowed(allowed, host) {
			d.Control = func(_, address string, _ syscall.RawConn) error {
				ap, err := netip.ParseAddrPort(address)
				if err != nil {
					return err
				}
				if internal(ap.Addr()) {
					return fmt.Errorf("%w: %s resolves to %s, a loopback, private or link-local address; list it in VERDICT_WEBHOOK_ALLOWED_HOSTS to allow it", ErrRefusedTarget, host, ap.Addr())
				}
				return nil
			}
		}
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
