package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The SASL tests run against kfake's own SASL: PLAIN, SCRAM-SHA-256 and
// SCRAM-SHA-512 (kfake has no OAUTHBEARER: its server side is played by
// the test through kfake's control functions, below).

const (
	saslUser = "alice"
	saslPass = "correct-horse-battery"
	badPass  = "wrong-pony-staple"
)

func newSASLKfake(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	return newKfake(t, append([]kfake.Opt{kfake.EnableSASL(), kfake.SeedTopics(2, "orders"),
		kfake.Superuser("PLAIN", saslUser, saslPass),
		kfake.Superuser("SCRAM-SHA-256", saslUser, saslPass),
		kfake.Superuser("SCRAM-SHA-512", saslUser, saslPass)}, opts...)...)
}

// Each mechanism kfake has: produce with the password from
// ORDO_SASL_PASSWORD, consume with it from --sasl-password-file; a wrong
// password fails at once with words that name the user and the mechanism
// and show no password; no SASL at all says to set it.
func TestSASLProduceConsume(t *testing.T) {
	c := newSASLKfake(t)
	addr := c.ListenAddrs()[0]
	passFile := writeFile(t, "pass", saslPass+"\n")
	for _, mech := range []string{"plain", "scram-sha-256", "scram-sha-512"} {
		t.Run(mech, func(t *testing.T) {
			value := "through " + mech
			sasl := []string{"--sasl-mechanism", mech, "--sasl-user", saslUser}
			t.Setenv("ORDO_SASL_PASSWORD", saslPass)
			code, out, errs := runOrdo(t, value+"\n", append([]string{"produce", "--brokers", addr, "--topic", "orders", "-k", mech}, sasl...)...)
			if code != 0 || !strings.Contains(out, "line 1: orders/") {
				t.Fatalf("produce: exit %d\n%s%s", code, out, errs)
			}
			t.Setenv("ORDO_SASL_PASSWORD", "")
			code, out, errs = runOrdo(t, "", append([]string{"consume", "--brokers", addr, "--topic", "orders", "-e", "--sasl-password-file", passFile}, sasl...)...)
			if code != 0 || !strings.Contains(out, `"key":"`+mech+`","value":"`+value+`"`) {
				t.Fatalf("consume: exit %d\n%s%s", code, out, errs)
			}

			t.Setenv("ORDO_SASL_PASSWORD", badPass)
			start := time.Now()
			code, out, errs = runOrdo(t, "x\n", append([]string{"produce", "--brokers", addr, "--topic", "orders", "--connect-timeout", "20s"}, sasl...)...)
			want := "the brokers refused SASL " + strings.ToUpper(mech) + ` authentication as user "alice"`
			if code != 1 || !strings.Contains(errs, want) || !strings.Contains(errs, "check --sasl-user, the password (ORDO_SASL_PASSWORD or --sasl-password-file) and --sasl-mechanism") {
				t.Errorf("wrong password: exit %d, stderr %q; want exit 1 and %q", code, errs, want)
			}
			if strings.Contains(out+errs, badPass) || strings.Contains(out+errs, saslPass) {
				t.Errorf("a password shows: %s%s", out, errs)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("refused credentials took %s to report: they must fail at once, not at --connect-timeout", took)
			}
		})
	}
	code, _, errs := runOrdo(t, "", "consume", "--brokers", addr, "--topic", "orders", "-e", "--connect-timeout", "20s")
	if code != 1 || !strings.Contains(errs, "if it requires SASL, set --sasl-mechanism, --sasl-user and the password in ORDO_SASL_PASSWORD") {
		t.Errorf("no SASL: exit %d, stderr %q", code, errs)
	}
	t.Setenv("ORDO_SASL_TOKEN", "tok")
	code, _, errs = runOrdo(t, "", "consume", "--brokers", addr, "--topic", "orders", "-e", "--sasl-mechanism", "oauthbearer")
	if code != 1 || !strings.Contains(errs, "the brokers do not support SASL mechanism OAUTHBEARER: set --sasl-mechanism to one they enable") {
		t.Errorf("oauthbearer on kfake: exit %d, stderr %q", code, errs)
	}
}

// oauthServer plays the broker side of OAUTHBEARER (RFC 7628) on a kfake
// cluster without kfake's SASL: it accepts the mechanism at the handshake
// and a client message that carries the expected token, and records the
// tokens it is sent.
type oauthServer struct {
	mu   sync.Mutex
	want string
	seen []string
}

func newOAuthKfake(t *testing.T, want string) (*kfake.Cluster, *oauthServer) {
	t.Helper()
	c := newKfake(t, kfake.SeedTopics(1, "orders"))
	s := &oauthServer{want: want}
	c.ControlKey(int16(kmsg.SASLHandshake), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.SASLHandshakeRequest)
		resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
		resp.SupportedMechanisms = []string{"OAUTHBEARER"}
		if r.Mechanism != "OAUTHBEARER" {
			resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		}
		return resp, nil, true
	})
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.SASLAuthenticateRequest)
		resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		// The client's first message: gs2 header, then auth=Bearer <token>.
		tok, ok := strings.CutPrefix(string(r.SASLAuthBytes), "n,,\x01auth=Bearer ")
		tok, _ = strings.CutSuffix(tok, "\x01\x01")
		s.mu.Lock()
		s.seen = append(s.seen, tok)
		if !ok || tok != s.want {
			resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
			msg := "invalid token"
			resp.ErrorMessage = &msg
		}
		s.mu.Unlock()
		return resp, nil, true
	})
	return c, s
}

func (s *oauthServer) tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// OAUTHBEARER, with the broker side played by the test: the token of
// ORDO_SASL_TOKEN or of --sasl-token-file reaches the broker, produce and
// consume work through it, and a refused token fails at once in words.
func TestOAuthBearerProduceConsume(t *testing.T) {
	const token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."
	c, srv := newOAuthKfake(t, token)
	addr := c.ListenAddrs()[0]
	t.Setenv("ORDO_SASL_TOKEN", token)
	code, _, errs := runOrdo(t, "hello\n", "produce", "--brokers", addr, "--topic", "orders", "--sasl-mechanism", "oauthbearer")
	if code != 0 {
		t.Fatalf("produce: exit %d: %s", code, errs)
	}
	t.Setenv("ORDO_SASL_TOKEN", "")
	tokFile := writeFile(t, "token", token+"\n")
	code, out, errs := runOrdo(t, "", "consume", "--brokers", addr, "--topic", "orders", "-e", "--sasl-mechanism", "oauthbearer", "--sasl-token-file", tokFile)
	if code != 0 || !strings.Contains(out, `"value":"hello"`) {
		t.Fatalf("consume: exit %d\n%s%s", code, out, errs)
	}
	for _, tok := range srv.tokens() {
		if tok != token {
			t.Errorf("the broker was sent the token %q", tok)
		}
	}
	if len(srv.tokens()) < 2 {
		t.Errorf("the broker saw %d authentications", len(srv.tokens()))
	}
	if err := os.WriteFile(tokFile, []byte("expired-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runOrdo(t, "", "consume", "--brokers", addr, "--topic", "orders", "-e", "--sasl-mechanism", "oauthbearer", "--sasl-token-file", tokFile)
	if code != 1 || !strings.Contains(errs, "the brokers refused the OAUTHBEARER token") || strings.Contains(out+errs, "expired-token") {
		t.Errorf("refused token: exit %d, stderr %q", code, errs)
	}
}

// --sasl-token-file is read again at each authentication: a token rotated
// in place is the one the next connection sends.
func TestOAuthBearerTokenFileReadAtEachAuthentication(t *testing.T) {
	tokFile := writeFile(t, "token", "tok-1\n")
	mech := tokenMechanism("", tokFile)
	first := func() string {
		_, msg, err := mech.Authenticate(context.Background(), "127.0.0.1:9092")
		if err != nil {
			t.Fatal(err)
		}
		return string(msg)
	}
	if got := first(); !strings.Contains(got, "auth=Bearer tok-1\x01") {
		t.Fatalf("first message %q", got)
	}
	if err := os.WriteFile(tokFile, []byte("tok-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := first(); !strings.Contains(got, "auth=Bearer tok-2\x01") {
		t.Errorf("after rotation: %q", got)
	}
}

// TLS with a CA made by the test: produce and consume with --tls-ca (and
// a client certificate where the broker requires one); each mistake is
// reported in words that say what to do.
func TestTLSProduceConsume(t *testing.T) {
	pki := newTestPKI(t)
	c := newKfake(t, kfake.SeedTopics(1, "orders"), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS12}))
	addr := c.ListenAddrs()[0]
	code, _, errs := runOrdo(t, "secure\n", "produce", "--brokers", addr, "--topic", "orders", "--tls-ca", pki.caFile)
	if code != 0 {
		t.Fatalf("produce: exit %d: %s", code, errs)
	}
	code, out, errs := runOrdo(t, "", "consume", "--brokers", addr, "--topic", "orders", "-e", "--tls", "--tls-ca", pki.caFile, "--tls-server-name", "localhost")
	if code != 0 || !strings.Contains(out, `"value":"secure"`) {
		t.Fatalf("consume: exit %d\n%s%s", code, out, errs)
	}
	other := newTestPKI(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"system roots", []string{"--tls"}, "the broker's TLS certificate is not trusted (x509: certificate signed by unknown authority): give the CA certificate that signed it with --tls-ca"},
		{"another CA", []string{"--tls-ca", other.caFile}, "the CA of --tls-ca did not sign it: give the CA that did"},
		{"server name", []string{"--tls-ca", pki.caFile, "--tls-server-name", "kafka.example.com"}, "the broker's certificate does not hold the name connected to (x509: certificate is valid for localhost, not kafka.example.com): connect to a name the certificate holds, or set --tls-server-name to one"},
		{"no TLS", nil, "the broker closed the connection at once: if its listener is TLS, add --tls (and --tls-ca for a private CA)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, _, errs := runOrdo(t, "", append([]string{"consume", "--brokers", addr, "--topic", "orders", "-e", "--connect-timeout", "20s"}, tc.args...)...)
			if code != 1 || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, stderr %q\nwant exit 1 and %q", code, errs, tc.want)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %s: a TLS mistake must fail at once, not at --connect-timeout", took)
			}
		})
	}
	// TLS to a plaintext listener: the handshake gets no answer; the error
	// at --connect-timeout says so.
	plain := newKfake(t, kfake.SeedTopics(1, "orders"))
	code, _, errs = runOrdo(t, "", "consume", "--brokers", plain.ListenAddrs()[0], "--topic", "orders", "-e", "--tls", "--connect-timeout", "1s")
	if code != 1 || !strings.Contains(errs, "with --tls: if the broker's listener is plaintext, the TLS handshake waits for an answer that never comes") {
		t.Errorf("TLS to plaintext: exit %d, stderr %q", code, errs)
	}
}

// A broker that requires client certificates (mTLS): --tls-cert and
// --tls-key give one; without them the error says to.
func TestMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	c := newKfake(t, kfake.SeedTopics(1, "orders"), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pki.server},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.pool, MinVersion: tls.VersionTLS12}))
	addr := c.ListenAddrs()[0]
	code, _, errs := runOrdo(t, "mtls\n", "produce", "--brokers", addr, "--topic", "orders", "--tls-ca", pki.caFile, "--tls-cert", pki.clientCert, "--tls-key", pki.clientKey)
	if code != 0 {
		t.Fatalf("produce with a client certificate: exit %d: %s", code, errs)
	}
	code, _, errs = runOrdo(t, "", "consume", "--brokers", addr, "--topic", "orders", "-e", "--tls-ca", pki.caFile, "--connect-timeout", "20s")
	if code != 1 || !strings.Contains(errs, "the broker requires a client certificate: give it with --tls-cert and --tls-key") {
		t.Errorf("without a client certificate: exit %d, stderr %q", code, errs)
	}
}

// Every command that talks to brokers uses the connection flags, not only
// checks them: against a broker with TLS and SCRAM, each succeeds with
// them and fails without.
func TestEveryBrokerCommandConnectsWithTLSAndSASL(t *testing.T) {
	pki := newTestPKI(t)
	c := newSASLKfake(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS12}),
		kfake.SeedTopics(2, "orders", "orders.copy", "orders.g.dlq", "orders.g.retry.1"))
	addr := c.ListenAddrs()[0]
	t.Setenv("ORDO_SASL_PASSWORD", saslPass)
	conn := []string{"--brokers", addr, "--tls-ca", pki.caFile, "--sasl-mechanism", "scram-sha-512", "--sasl-user", saslUser}
	if code, _, errs := runOrdo(t, "a\nb\n", append([]string{"produce", "--topic", "orders", "-q"}, conn...)...); code != 0 {
		t.Fatalf("produce: %s", errs)
	}
	topicsDir := t.TempDir()
	if err := os.WriteFile(topicsDir+"/orders.yaml", []byte("topics:\n  - name: orders\n    partitions: 2\n    groups:\n      - name: g\n        retry: {delays: [1s]}\n        dlq: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"topics", "apply", "--dir", topicsDir},
		{"lag", "--group", "g", "--topic", "orders"},
		{"replay", "reset", "--group", "g", "--topic", "orders", "--to-earliest"},
		// --reprocess's dry run scans the ranges with clients of its own.
		{"replay", "reset", "--group", "g", "--topic", "orders", "--to-earliest", "--reprocess", "--store", "redis", "--redis-url", "redis://127.0.0.1:1/0"},
		{"replay", "copy", "--from", "orders", "--into", "orders.copy", "--progress", "none"},
		{"dlq", "list", "--topic", "orders", "--group", "g"},
		{"dlq", "show", "--topic", "orders", "--group", "g"},
		{"dlq", "stats", "--topic", "orders", "--group", "g"},
		{"dlq", "redrive", "--topic", "orders", "--group", "g"},
		{"consume", "--topic", "orders", "-e"},
	} {
		t.Run(strings.Join(args[:2], "_"), func(t *testing.T) {
			code, out, errs := runOrdo(t, "", append(args, conn...)...)
			if code != 0 {
				t.Fatalf("with TLS and SASL: exit %d\n%s%s", code, out, errs)
			}
			code, _, errs = runOrdo(t, "", append(args, "--brokers", addr, "--tls-ca", pki.caFile)...)
			if code != 1 || !strings.Contains(errs, "if it requires SASL, set --sasl-mechanism") {
				t.Errorf("without SASL: exit %d, stderr %q", code, errs)
			}
		})
	}
	// lag serve's readiness check goes through the same options.
	s := &LagServeCmd{Brokers: []string{addr}, Conn: ConnFlags{TLS: TLSOptions{CAFile: pki.caFile}, SASL: SASLOptions{Mechanism: "scram-sha-512", User: saslUser}}}
	if errs := s.Conn.validate(); len(errs) != 0 {
		t.Fatal(errs)
	}
	if err := brokersAnswer(s.Brokers, s.Conn.opts()...)(); err != nil {
		t.Errorf("lag serve's readiness with TLS and SASL: %v", err)
	}
	if err := brokersAnswer(s.Brokers)(); err == nil {
		t.Error("lag serve's readiness without TLS and SASL: the broker answered")
	}
}

// The errors of a refused connection never show a secret, whatever path
// they take (a check, a refusal, a timeout).
func TestSecretsNotInConnectErrors(t *testing.T) {
	c := newSASLKfake(t)
	addr := c.ListenAddrs()[0]
	t.Setenv("ORDO_SASL_PASSWORD", badPass)
	var all bytes.Buffer
	for _, args := range [][]string{
		{"consume", "--topic", "orders", "-e", "--sasl-mechanism", "plain", "--sasl-user", saslUser},
		{"topics", "apply", "--dir", "../../topics", "--sasl-mechanism", "scram-sha-256", "--sasl-user", saslUser},
		{"lag", "--group", "g", "--sasl-mechanism", "scram-sha-512", "--sasl-user", saslUser},
	} {
		_, out, errs := runOrdo(t, "", append(args, "--brokers", addr)...)
		all.WriteString(out + errs)
	}
	if strings.Contains(all.String(), badPass) || !strings.Contains(all.String(), "refused SASL") {
		t.Errorf("output:\n%s", all.String())
	}
}

// ordo run takes the same settings as configuration keys: against a
// broker with TLS and SCRAM, tls.ca_file and sasl.* in the file and the
// password in ORDO_SASL_PASSWORD, it consumes and commits; with a wrong
// password it fails at once naming the keys.
func TestRunWithTLSAndSASLKeys(t *testing.T) {
	pki := newTestPKI(t)
	c := newSASLKfake(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS12}),
		kfake.SeedTopics(2, "orders.g.dlq"))
	addr := c.ListenAddrs()[0]
	config := writeFile(t, "ordo.yaml", "brokers: ["+addr+"]\ngroup: g\ntopics: [orders]\nprocessor: log\nmetrics_addr: \"\"\nlog_level: error\n"+
		"tls: {ca_file: "+pki.caFile+"}\nsasl: {mechanism: scram-sha-256, user: "+saslUser+"}\n")
	t.Setenv("ORDO_SASL_PASSWORD", saslPass)
	if code, _, errs := runOrdo(t, "1\n2\n3\n4\n5\n", "produce", "--brokers", addr, "--topic", "orders", "-q",
		"--tls-ca", pki.caFile, "--sasl-mechanism", "scram-sha-256", "--sasl-user", saslUser); code != 0 {
		t.Fatalf("produce: %s", errs)
	}

	var out, errb syncBuffer
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan int, 1)
	go func() { done <- Main(ctx, []string{"run", "--config", config}, &out, &errb) }()
	admin := &ConnFlags{TLS: TLSOptions{CAFile: pki.caFile}, SASL: SASLOptions{Mechanism: "scram-sha-256", User: saslUser}}
	if errs := admin.validate(); len(errs) != 0 {
		t.Fatal(errs)
	}
	cl, err := kgo.NewClient(append(admin.opts(), kgo.SeedBrokers(addr))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), "g")
		total := int64(0)
		if err == nil {
			offs.Each(func(o kadm.OffsetResponse) { total += o.At })
		}
		if total == 5 {
			break
		}
		if time.Now().After(deadline) {
			stop()
			<-done
			t.Fatalf("committed %d of 5 (%v)\n%s\n%s", total, err, out.String(), errb.String())
		}
	}
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("ordo run exit %d\n%s\n%s", code, out.String(), errb.String())
	}

	t.Setenv("ORDO_SASL_PASSWORD", badPass)
	var out2, errb2 bytes.Buffer
	code := Main(context.Background(), []string{"run", "--config", config}, &out2, &errb2)
	want := `the brokers refused SASL SCRAM-SHA-256 authentication as user "alice"`
	if code != 1 || !strings.Contains(errb2.String(), want) || !strings.Contains(errb2.String(), "check "+config+": sasl.user, the password (ORDO_SASL_PASSWORD or sasl.password_file)") ||
		strings.Contains(out2.String()+errb2.String(), badPass) {
		t.Errorf("wrong password: exit %d\n%s%s", code, out2.String(), errb2.String())
	}
}
