package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// testPKI is a CA made for a test, a server certificate it signed for
// 127.0.0.1 and localhost, and a client certificate, all as PEM files in
// a temporary directory.
type testPKI struct {
	dir                       string
	caFile                    string
	clientCert, clientKey     string
	serverCert, serverKeyFile string
	server                    tls.Certificate
	pool                      *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{dir: dir, pool: x509.NewCertPool()}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ordo test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p.pool.AddCert(ca)
	p.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)

	issue := func(name string, serial int64, usage x509.ExtKeyUsage, ips []net.IP, dns []string) (certFile, keyFile string, c tls.Certificate) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: ips, DNSNames: dns,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certFile = writePEM(t, dir, name+".pem", "CERTIFICATE", der)
		keyFile = writePEM(t, dir, name+"-key.pem", "EC PRIVATE KEY", kder)
		c, err = tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return certFile, keyFile, c
	}
	p.serverCert, p.serverKeyFile, p.server = issue("broker", 2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)}, []string{"localhost"})
	p.clientCert, p.clientKey, _ = issue("client", 3, x509.ExtKeyUsageClientAuth, nil, nil)
	return p
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// brokerCommands are the commands that talk to brokers: every command
// with --brokers but the hidden bench worker (one side of ordo bench,
// which starts its own in-process broker).
func brokerCommands(t *testing.T) []*cobra.Command {
	t.Helper()
	var out []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Flags().Lookup("brokers") != nil && !c.Hidden {
			out = append(out, c)
		}
	}
	walk(NewRoot(&bytes.Buffer{}, &bytes.Buffer{}))
	return out
}

// Every command that talks to brokers checks its TLS and SASL flags before
// it connects: all problems at once, each named as its flag, exit code 2,
// nothing connected.
func TestConnFlagsCheckedBeforeConnectingEverywhere(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	notPEM := writeFile(t, "ca.pem", "not a certificate\n")
	cmds := brokerCommands(t)
	if len(cmds) < 12 {
		t.Fatalf("found %d commands with --brokers, want at least 12 (run, topics apply, lag, lag serve, replay reset and copy, dlq list, show, stats and redrive, produce, consume)", len(cmds))
	}
	for _, c := range cmds {
		path := strings.Fields(strings.TrimPrefix(c.CommandPath(), "ordo "))
		t.Run(strings.Join(path, "_"), func(t *testing.T) {
			// ordo run names a setting as written ("--flag: ..."), and one
			// not given by its key, with the ways to set it.
			run := path[0] == "run"
			cases := []struct {
				args, want, wantRun []string
			}{
				{[]string{"--tls-ca", "/does/not/exist/ca.pem", "--tls-cert", "c.pem", "--sasl-mechanism", "scram-sha-1"}, []string{
					"--tls-ca /does/not/exist/ca.pem: no such file",
					"--tls-key is required with --tls-cert",
					`--sasl-mechanism "scram-sha-1": want one of plain, scram-sha-256, scram-sha-512, oauthbearer`,
				}, []string{
					"--tls-ca: /does/not/exist/ca.pem: no such file",
					"tls.key_file: is required with --tls-cert (the key of the client certificate) (set tls.key_file in the --config file or with ORDO_TLS_KEY_FILE or --tls-key)",
					`--sasl-mechanism: "scram-sha-1": want one of plain, scram-sha-256, scram-sha-512, oauthbearer`,
				}},
				{[]string{"--tls-ca", notPEM, "--tls-key", "k.pem", "--sasl-mechanism", "plain"}, []string{
					"--tls-ca " + notPEM + ": no PEM certificate in it",
					"--tls-cert is required with --tls-key",
					"--sasl-user is required with SASL mechanism plain",
					"--sasl-mechanism plain needs a password: set ORDO_SASL_PASSWORD, or --sasl-password-file to a file holding it",
				}, []string{
					"--tls-ca: " + notPEM + ": no PEM certificate in it",
					"tls.cert_file: is required with --tls-key",
					"sasl.user: is required with SASL mechanism plain",
					"--sasl-mechanism: plain needs a password: set ORDO_SASL_PASSWORD, or sasl.password_file to a file holding it",
				}},
				{[]string{"--sasl-mechanism", "oauthbearer", "--sasl-user", "u", "--sasl-password-file", "p"}, []string{
					"--sasl-user is not used by oauthbearer",
					"--sasl-password-file is not used by oauthbearer",
					"--sasl-mechanism oauthbearer needs a token: set ORDO_SASL_TOKEN, or --sasl-token-file to a file holding it",
				}, []string{
					"--sasl-user: is not used by oauthbearer",
					"--sasl-password-file: is not used by oauthbearer",
					"--sasl-mechanism: oauthbearer needs a token: set ORDO_SASL_TOKEN, or sasl.token_file to a file holding it",
				}},
				{[]string{"--sasl-user", "u", "--sasl-token-file", "t"}, []string{
					"--sasl-user is set but --sasl-mechanism is not",
					"--sasl-token-file is set but --sasl-mechanism is not",
				}, []string{
					"--sasl-user: is set but sasl.mechanism is not",
					"--sasl-token-file: is set but sasl.mechanism is not",
				}},
			}
			for _, tc := range cases {
				var out, errb bytes.Buffer
				args := append(append(path, "--brokers", ln.Addr().String()), tc.args...)
				t.Setenv("ORDO_SASL_PASSWORD", "")
				t.Setenv("ORDO_SASL_TOKEN", "")
				if code := Main(context.Background(), args, &out, &errb); code != 2 {
					t.Fatalf("%v: exit %d, want 2; stderr:\n%s", tc.args, code, errb.String())
				}
				want := tc.want
				if run {
					want = tc.wantRun
				}
				for _, w := range want {
					if !strings.Contains(errb.String(), w) {
						t.Errorf("%v: stderr lacks %q:\n%s", tc.args, w, errb.String())
					}
				}
			}
		})
	}
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(50 * time.Millisecond))
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Error("something connected to --brokers")
	}
}

// A secret in the environment and in a file at once is an error, and a
// secret file is read without its trailing newline.
func TestConnSecretSources(t *testing.T) {
	pass := writeFile(t, "pass", "s3cret-from-file\n")
	o := ConnFlags{SASL: SASLOptions{Mechanism: "SCRAM-SHA-512", User: "u", PasswordFile: pass},
		LookupEnv: func(k string) (string, bool) {
			return map[string]string{"ORDO_SASL_PASSWORD": "s3cret-from-env"}[k], k == "ORDO_SASL_PASSWORD"
		}}
	errs := o.validate()
	if len(errs) != 1 || errs[0].Error() != "--sasl-password-file gives the password, and so does ORDO_SASL_PASSWORD: keep one" {
		t.Errorf("errors %v", errs)
	}
	o.LookupEnv = func(string) (string, bool) { return "", false }
	if errs := o.validate(); len(errs) != 0 || len(o.opts()) != 1 {
		t.Fatalf("errors %v, %d options", errs, len(o.opts()))
	}
	got, err := secretFromFile(pass)
	if err != nil || string(got) != "s3cret-from-file" {
		t.Errorf("secretFromFile = %q, %v", string(got), err)
	}
	if _, err := secretFromFile(writeFile(t, "empty", "\n")); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("an empty secret file: %v", err)
	}
}

// A secret prints as [redacted] with every verb, alone or inside a
// configuration, and in JSON.
func TestSecretNeverPrints(t *testing.T) {
	const pw = "hunter2-VERY-secret"
	fc := FileConfig{}
	fc.SASL.Password = secret(pw)
	fc.SASL.Token = secret(pw)
	s := secret(pw)
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s"} {
		for _, v := range []any{s, fc, &fc, fc.SASL} {
			if out := fmt.Sprintf(f, v); strings.Contains(out, pw) || strings.Contains(out, fmt.Sprintf("%x", pw)) {
				t.Errorf("Sprintf(%q, %T) = %s", f, v, out)
			}
		}
	}
	b, err := json.Marshal(fc)
	if err != nil || strings.Contains(string(b), pw) || !strings.Contains(string(b), redacted) {
		t.Errorf("json %s, %v", b, err)
	}
}

// ordo run: a secret comes from its variable or a file of its own; one
// written in the --config file is refused, and no error shows it.
func TestRunConfigSecrets(t *testing.T) {
	const pw = "hunter2-run-secret"
	t.Run("in the file", func(t *testing.T) {
		_, path, err := loadRun(t, baseFile+"sasl: {mechanism: plain, user: u, password: "+pw+"}\n", nil)
		want := []string{
			path + ": sasl.password: a secret does not belong in the configuration file: set ORDO_SASL_PASSWORD, or sasl.password_file to a file that holds it",
			path + ": sasl.mechanism: plain needs a password: set ORDO_SASL_PASSWORD, or sasl.password_file to a file holding it",
		}
		if got := errorLines(err); !slices.Equal(got, want) {
			t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if err != nil && strings.Contains(err.Error(), pw) {
			t.Errorf("the error shows the password: %v", err)
		}
		_, _, err = loadRun(t, baseFile+"sasl: {mechanism: oauthbearer, token: "+pw+"}\n", nil)
		if err == nil || !strings.Contains(err.Error(), "sasl.token: a secret does not belong in the configuration file: set ORDO_SASL_TOKEN") || strings.Contains(err.Error(), pw) {
			t.Errorf("error %v", err)
		}
	})
	t.Run("from the environment", func(t *testing.T) {
		r, _, err := loadRun(t, baseFile+"sasl: {mechanism: scram-sha-256, user: u}\n", []string{"ORDO_SASL_PASSWORD=" + pw})
		if err != nil {
			t.Fatal(err)
		}
		if r.conn.mechanism != "SCRAM-SHA-256" || string(r.fc.SASL.Password) != pw {
			t.Errorf("connection %+v", r.conn)
		}
		for _, dump := range []string{fmt.Sprintf("%+v %#v", *r.fc, r.fc), fmt.Sprint(r.cfg), r.Out.(*bytes.Buffer).String(), r.Err.(*bytes.Buffer).String()} {
			if strings.Contains(dump, pw) {
				t.Errorf("the password shows: %s", dump)
			}
		}
	})
	t.Run("both", func(t *testing.T) {
		tok := writeFile(t, "token", "tok\n")
		_, path, err := loadRun(t, baseFile+"sasl: {mechanism: oauthbearer, token_file: "+tok+"}\n", []string{"ORDO_SASL_TOKEN=" + pw})
		want := path + ": sasl.token_file: gives the token, and so does ORDO_SASL_TOKEN: keep one"
		if got := errorLines(err); len(got) != 1 || got[0] != want {
			t.Errorf("errors %q, want %q", got, want)
		}
		r, _, err := loadRun(t, baseFile+"sasl: {mechanism: oauthbearer, token_file: "+tok+"}\n", nil)
		if err != nil || r.conn.mechanism != "OAUTHBEARER" || len(r.cfg.KgoOpts) != 1 {
			t.Errorf("token file: %v, %+v", err, r.conn)
		}
	})
}

// No command prints a secret of the environment: not in --help, not in
// the errors of a bad configuration or of brokers that do not answer.
func TestSecretsNeverPrinted(t *testing.T) {
	const pw = "hunter2-env-secret"
	t.Setenv("ORDO_SASL_PASSWORD", pw)
	t.Setenv("ORDO_SASL_TOKEN", pw)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		path := strings.Fields(strings.TrimPrefix(c.CommandPath(), "ordo"))
		runs := [][]string{append(slices.Clone(path), "--help")}
		if c.Flags().Lookup("sasl-mechanism") != nil {
			runs = append(runs,
				append(slices.Clone(path), "--brokers", closed, "--sasl-mechanism", "plain", "--sasl-user", "u", "--sasl-password-file", "/nope"),
				append(slices.Clone(path), "--brokers", closed, "--sasl-mechanism", "oauthbearer", "--sasl-token-file", "/nope"))
		}
		for _, args := range runs {
			var out bytes.Buffer
			Main(context.Background(), args, &out, &out)
			if strings.Contains(out.String(), pw) {
				t.Errorf("ordo %v shows the secret:\n%s", args, out.String())
			}
		}
	}
	walk(NewRoot(&bytes.Buffer{}, &bytes.Buffer{}))
}
