package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// healthcheck runs `ordo healthcheck args...` and returns its exit code,
// stdout and stderr.
func healthcheck(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), append([]string{"healthcheck"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// ordo healthcheck against the real metrics server of ordo run and ordo lag
// serve: /readyz 503 with its reason is exit 1 and the reason printed; once
// ready, exit 0; /healthz is 0 throughout.
func TestHealthcheckReadyz(t *testing.T) {
	var notReady atomic.Bool
	notReady.Store(true)
	srv := httptest.NewServer(metricsMux(prometheus.NewRegistry(), httpOpts{ready: func() error {
		if notReady.Load() {
			return errors.New(`ordo: not in group "orders-ledger" yet`)
		}
		return nil
	}}))
	defer srv.Close()

	code, out, errb := healthcheck("--url", srv.URL+"/readyz")
	if code != 1 || !strings.Contains(errb, srv.URL+"/readyz: 503 Service Unavailable: ordo: not in group \"orders-ledger\" yet") || out != "" {
		t.Errorf("not ready: exit %d, stdout %q, stderr %q; want 1 and the URL, the status and the reason on stderr", code, out, errb)
	}
	if code, _, errb := healthcheck("--url", srv.URL+"/healthz"); code != 0 {
		t.Errorf("/healthz: exit %d, stderr %q; want 0 (the process lives)", code, errb)
	}
	notReady.Store(false)
	if code, out, errb := healthcheck("--url", srv.URL+"/readyz"); code != 0 || !strings.Contains(out, "200 OK") {
		t.Errorf("ready: exit %d, stdout %q, stderr %q; want 0 and 200 OK", code, out, errb)
	}
}

// Any 2xx is healthy; other statuses, no listener and an answer slower
// than --timeout are not (exit 1, naming the URL).
func TestHealthcheckStatusesAndFailures(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/302":
			w.WriteHeader(http.StatusFound) // no Location: not followed, not healthy
		case "/500":
			w.WriteHeader(http.StatusInternalServerError)
		case "/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()
	defer close(release)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/readyz"
	ln.Close()

	cases := []struct {
		url  string
		code int
		want string
	}{
		{srv.URL + "/204", 0, ""},
		{srv.URL + "/302", 1, "302 Found"},
		{srv.URL + "/500", 1, "500 Internal Server Error"},
		{closed, 1, closed + ": no answer"},
		{srv.URL + "/slow", 1, srv.URL + "/slow: no answer"},
	}
	for _, tc := range cases {
		start := time.Now()
		code, _, errb := healthcheck("--url", tc.url, "--timeout", "300ms")
		if code != tc.code || !strings.Contains(errb, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tc.url, code, errb, tc.code, tc.want)
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("%s: took %s with --timeout 300ms", tc.url, el)
		}
	}
}

// Bad flags are usage errors (exit 2), all named at once, before any
// request; the default URL is ordo run's /readyz on its default metrics
// address.
func TestHealthcheckFlags(t *testing.T) {
	code, _, errb := healthcheck("--url", "127.0.0.1:9100/readyz", "--timeout", "0s")
	if code != 2 || !strings.Contains(errb, "--url \"127.0.0.1:9100/readyz\": want http://host:port/path") ||
		!strings.Contains(errb, "--timeout must be > 0, got 0s") {
		t.Errorf("exit %d, stderr %q; want 2 naming --url and --timeout", code, errb)
	}
	h := &HealthcheckCmd{Out: io.Discard}
	if err := newHealthcheckCommand(h).ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	if h.URL != "http://127.0.0.1:9100/readyz" || h.Timeout != 2*time.Second || h.Validate() != nil {
		t.Errorf("defaults: url %q timeout %s (%v)", h.URL, h.Timeout, h.Validate())
	}
}
