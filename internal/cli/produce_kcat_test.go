package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// kcatRun runs kcat with args and stdin, within 30 s, and returns its
// stdout.
func kcatRun(t *testing.T, kcat, stdin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat %v: %v: %s", args, err, stderr.String()[max(0, stderr.Len()-3000):])
	}
	return out
}

// Wire compatibility with librdkafka, over TLS on both sides (the test's
// CA): kcat reads what ordo produce wrote (binary bytes, null key,
// repeated headers, the chosen partition) byte for byte, and ordo consume
// reads what kcat wrote. Not over SASL: librdkafka 2.0 wants SaslHandshake
// v0, which kfake does not serve (it serves v1 only), so kcat cannot
// authenticate to kfake; ordo's SASL is tested against kfake itself.
func TestProduceConsumeWithKcatOverTLS(t *testing.T) {
	kcat := kcatPath(t)
	pki := newTestPKI(t)
	c := newKfake(t, kfake.SeedTopics(2, "orders"), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS12}))
	addr := c.ListenAddrs()[0]
	sec := []string{"-b", addr, "-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + pki.caFile}
	ordoSec := []string{"--brokers", addr, "--tls-ca", pki.caFile}

	in := `{"key":"c-1","value":{"base64":"AP8BAg=="},"partition":1,"headers":[{"key":"h","value":"1"},{"key":"h","value":{"base64":"/w=="}}]}` + "\n" +
		`{"key":null,"value":"plain text","partition":1}` + "\n"
	if code, _, errs := runOrdo(t, in, append([]string{"produce", "--topic", "orders", "--format", "json", "-q"}, ordoSec...)...); code != 0 {
		t.Fatalf("ordo produce: %s", errs)
	}
	var recs []kcatRecord
	for _, line := range bytes.Split(bytes.TrimSpace(kcatRun(t, kcat, "", append(sec, "-C", "-t", "orders", "-p", "1", "-J", "-e", "-q", "-o", "beginning")...)), []byte("\n")) {
		r, err := parseKcatLine(line)
		if err != nil {
			t.Fatalf("kcat line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 2 {
		t.Fatalf("kcat read %d records, want 2", len(recs))
	}
	if r := recs[0]; string(r.Key) != "c-1" || !bytes.Equal(r.Payload, []byte{0, 0xff, 1, 2}) || len(r.Headers) != 4 ||
		string(r.Headers[0]) != "h" || string(r.Headers[1]) != "1" || string(r.Headers[2]) != "h" || !bytes.Equal(r.Headers[3], []byte{0xff}) {
		t.Errorf("kcat read %+v", r)
	}
	if r := recs[1]; r.Key != nil || string(r.Payload) != "plain text" {
		t.Errorf("kcat read key %q payload %q", r.Key, r.Payload)
	}

	kcatRun(t, kcat, "k-2:from kcat\n", append(sec, "-P", "-t", "orders", "-p", "0", "-K", ":", "-H", "origin=librdkafka")...)
	code, out, errs := runOrdo(t, "", append([]string{"consume", "--topic", "orders", "--partitions", "0", "-e"}, ordoSec...)...)
	if code != 0 || !strings.Contains(out, `"key":"k-2","value":"from kcat","headers":[{"key":"origin","value":"librdkafka"}]`) {
		t.Errorf("ordo consume: exit %d\n%s%s", code, out, errs)
	}
}
