package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The connection security of every command that talks to brokers: TLS and
// SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER) through
// franz-go's kgo.DialTLSConfig and pkg/sasl. The commands with flags take
// them as ConnFlags (the flags of connFlagDefs); `ordo run` takes the same
// settings as configuration keys (tls.*, sasl.*), and also as those flags.
//
// A secret (a SASL password or an OAUTHBEARER token) is never a flag value,
// which anyone could read in ps: it comes from the environment
// (ORDO_SASL_PASSWORD, ORDO_SASL_TOKEN) or from a file. It is held as a
// secret, which prints as [redacted] whatever the format, and no error
// quotes it.

// Names of the variables that carry secrets (names, not credentials).
const (
	envSASLPassword = "ORDO_SASL_PASSWORD" //nolint:gosec // a variable's name
	envSASLToken    = "ORDO_SASL_TOKEN"    //nolint:gosec // a variable's name
)

// saslMechanisms are the values of --sasl-mechanism (and sasl.mechanism).
var saslMechanisms = []string{"plain", "scram-sha-256", "scram-sha-512", "oauthbearer"}

// TLSOptions are the TLS settings of a connection to the brokers. Any of
// them set turns TLS on.
type TLSOptions struct {
	Enabled bool
	// CAFile is a PEM file of the CAs that sign the brokers' certificates;
	// default: the system's roots.
	CAFile string
	// CertFile and KeyFile are the client's certificate and key (PEM), for
	// brokers that authenticate clients by certificate (mTLS). Both or
	// neither.
	CertFile, KeyFile string
	// ServerName is the name checked in the brokers' certificates; default:
	// the host of each broker's address.
	ServerName string
	// InsecureSkipVerify accepts any certificate: tests only.
	InsecureSkipVerify bool
}

// on reports whether the options ask for TLS.
func (t *TLSOptions) on() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify
}

// SASLOptions are the SASL settings of a connection to the brokers.
type SASLOptions struct {
	// Mechanism is plain, scram-sha-256, scram-sha-512 or oauthbearer
	// (any case); "": no SASL.
	Mechanism string
	User      string
	// Password (from ORDO_SASL_PASSWORD) or PasswordFile: one of them,
	// for plain and scram-*.
	Password     secret
	PasswordFile string
	// Token (from ORDO_SASL_TOKEN) or TokenFile: one of them, for
	// oauthbearer. TokenFile is read again at every authentication, so
	// that a token rotated in place is used by the next connection.
	Token     secret
	TokenFile string
}

// secret is a password or a token. It prints as [redacted] with any verb
// and marshals to JSON the same way, so that no error, log line or dump of
// a configuration shows it; string(s) is the only way to its value.
type secret string

const redacted = "[redacted]"

// Format prints [redacted].
func (secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalJSON encodes [redacted].
func (secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// connFlagDef is a flag of the connection options and the key of `ordo
// run` it stands for.
type connFlagDef struct {
	flag, key, usage string
	isBool           bool
}

// connFlagDefs are the flags every command that talks to brokers has, each
// with its `ordo run` key. The secrets have no flag.
var connFlagDefs = []connFlagDef{
	{"tls", "tls.enabled", "connect to the brokers with TLS (implied by any other --tls-* flag)", true},
	{"tls-ca", "tls.ca_file", "PEM file of the CA certificates that sign the brokers' certificates (default: the system's)", false},
	{"tls-cert", "tls.cert_file", "PEM file of this client's certificate, for brokers that require one (with --tls-key)", false},
	{"tls-key", "tls.key_file", "PEM file of the key of --tls-cert", false},
	{"tls-server-name", "tls.server_name", "name to verify in the brokers' certificates (default: the host of each broker address)", false},
	{"tls-insecure-skip-verify", "tls.insecure_skip_verify", "accept any broker certificate, unverified (tests only: anyone in the path can read and change the traffic)", true},
	{"sasl-mechanism", "sasl.mechanism", "SASL mechanism: " + strings.Join(saslMechanisms, ", "), false},
	{"sasl-user", "sasl.user", "SASL user (plain, scram-*)", false},
	{"sasl-password-file", "sasl.password_file", "file holding the SASL password (or set " + envSASLPassword + "; a password is never a flag)", false},
	{"sasl-token-file", "sasl.token_file", "file holding the OAUTHBEARER token, read again at each authentication (or set " + envSASLToken + ")", false},
}

// secretKeys are the `ordo run` keys of secrets: set only through their
// variable, never in the --config file.
var secretKeys = map[string]string{"sasl.password": envSASLPassword, "sasl.token": envSASLToken}

// addConnFlags declares the connection flags on f, bound to o when o is
// not nil (`ordo run` reads them through its configuration layers instead,
// and with keys says so in each flag's usage). Their values complete in
// the shell (completeFlagValues).
func addConnFlags(f *pflag.FlagSet, o *ConnFlags, keys bool) {
	for _, d := range connFlagDefs {
		usage := d.usage
		if keys {
			usage += "; key " + d.key
		}
		var b *bool
		var s *string
		if o != nil {
			b, s = o.boolField(d.key), o.stringField(d.key)
		}
		switch {
		case d.isBool && b != nil:
			f.BoolVar(b, d.flag, false, usage)
		case d.isBool:
			f.Bool(d.flag, false, usage)
		case s != nil:
			f.StringVar(s, d.flag, "", usage)
		default:
			f.String(d.flag, "", usage)
		}
	}
}

// ConnFlags are the TLS and SASL flags of a command that talks to brokers,
// with the secrets from the environment.
type ConnFlags struct {
	TLS  TLSOptions
	SASL SASLOptions
	// LookupEnv reads ORDO_SASL_PASSWORD and ORDO_SASL_TOKEN. Default
	// os.LookupEnv.
	LookupEnv func(string) (string, bool)

	conn *connection // built by validate
}

func (o *ConnFlags) boolField(key string) *bool {
	switch key {
	case "tls.enabled":
		return &o.TLS.Enabled
	case "tls.insecure_skip_verify":
		return &o.TLS.InsecureSkipVerify
	}
	return nil
}

func (o *ConnFlags) stringField(key string) *string {
	switch key {
	case "tls.ca_file":
		return &o.TLS.CAFile
	case "tls.cert_file":
		return &o.TLS.CertFile
	case "tls.key_file":
		return &o.TLS.KeyFile
	case "tls.server_name":
		return &o.TLS.ServerName
	case "sasl.mechanism":
		return &o.SASL.Mechanism
	case "sasl.user":
		return &o.SASL.User
	case "sasl.password_file":
		return &o.SASL.PasswordFile
	case "sasl.token_file":
		return &o.SASL.TokenFile
	}
	return nil
}

// flagNames names the connection settings as a command with flags takes
// them.
type flagNames struct{}

func (flagNames) name(key string) string {
	if env, ok := secretKeys[key]; ok {
		return env
	}
	for _, d := range connFlagDefs {
		if d.key == key {
			return "--" + d.flag
		}
	}
	return key
}

func (n flagNames) errorf(key, format string, args ...any) error {
	return fmt.Errorf("%s %s", n.name(key), fmt.Sprintf(format, args...))
}

// validate reads the secrets from the environment, checks every setting
// and reads the files they name; it connects to nothing. Every problem is
// returned, each naming its flag or variable.
func (o *ConnFlags) validate() []error {
	lookup := o.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	spec := connSpec{TLS: o.TLS, SASL: o.SASL}
	if v, ok := lookup(envSASLPassword); ok && v != "" {
		spec.SASL.Password = secret(v)
	}
	if v, ok := lookup(envSASLToken); ok && v != "" {
		spec.SASL.Token = secret(v)
	}
	conn, errs := spec.build(flagNames{})
	o.conn = conn
	return errs
}

// opts are the client options of the connection (after validate).
func (o *ConnFlags) opts() []kgo.Opt { return o.conn.opts() }

// waitForBroker is waitForBroker through the connection (after
// validate), with more client options.
func (o *ConnFlags) waitForBroker(ctx context.Context, brokers []string, timeout time.Duration, what string, more ...kgo.Opt) error {
	return waitFor(ctx, brokers, timeout, what, o.conn, append(o.opts(), more...))
}

// connNamer names a connection setting, by its key (tls.ca_file,
// sasl.password...), as the user gives it.
type connNamer interface {
	name(key string) string
	errorf(key, format string, args ...any) error
}

// connSpec is what a command was told about its connection.
type connSpec struct {
	TLS  TLSOptions
	SASL SASLOptions
}

// connection is a checked connSpec: the client options it makes, and how
// to word a failure to connect in the user's names.
type connection struct {
	kopts      []kgo.Opt
	tls        bool
	caFile     bool
	clientCert bool
	mechanism  string // as the broker names it: SCRAM-SHA-256; "" none
	user       string
	names      connNamer
}

// opts are the client options; nil for a nil connection. They are
// clipped: appending to them copies.
func (c *connection) opts() []kgo.Opt {
	if c == nil {
		return nil
	}
	return slices.Clip(c.kopts)
}

// build checks s and reads the files it names. Every problem is returned,
// each named through n; the connection is nil if there is one.
func (s connSpec) build(n connNamer) (*connection, []error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		if err := n.errorf(key, format, args...); err != nil { // nil: reported already
			errs = append(errs, err)
		}
	}
	c := &connection{names: n}

	if t := s.TLS; t.on() {
		c.tls, c.caFile, c.clientCert = true, t.CAFile != "", t.CertFile != ""
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // InsecureSkipVerify only when the user asks, documented as for tests
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			switch {
			case err != nil:
				bad("tls.ca_file", "%s", fileProblem(err))
			default:
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					bad("tls.ca_file", "%s: no PEM certificate in it (want the CA's certificate, -----BEGIN CERTIFICATE-----)", t.CAFile)
				}
				cfg.RootCAs = pool
			}
		}
		switch {
		case t.CertFile != "" && t.KeyFile == "":
			bad("tls.key_file", "is required with %s (the key of the client certificate)", n.name("tls.cert_file"))
		case t.KeyFile != "" && t.CertFile == "":
			bad("tls.cert_file", "is required with %s (the client certificate of the key)", n.name("tls.key_file"))
		case t.CertFile != "":
			cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			var pe *os.PathError
			switch {
			case errors.As(err, &pe) && pe.Path == t.KeyFile:
				bad("tls.key_file", "%s", fileProblem(err))
			case errors.As(err, &pe):
				bad("tls.cert_file", "%s", fileProblem(err))
			case err != nil:
				bad("tls.cert_file", "%s with %s %s: %v", t.CertFile, n.name("tls.key_file"), t.KeyFile, err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		c.kopts = append(c.kopts, kgo.DialTLSConfig(cfg))
	}

	a := s.SASL
	mech := strings.ToLower(strings.TrimSpace(a.Mechanism))
	needsPassword := mech == "plain" || mech == "scram-sha-256" || mech == "scram-sha-512"
	switch {
	case mech == "":
		for _, k := range []struct {
			key string
			set bool
		}{{"sasl.user", a.User != ""}, {"sasl.password_file", a.PasswordFile != ""}, {"sasl.token_file", a.TokenFile != ""}} {
			if k.set {
				bad(k.key, "is set but %s is not: set it to one of %s", n.name("sasl.mechanism"), strings.Join(saslMechanisms, ", "))
			}
		}
	case needsPassword:
		if strings.TrimSpace(a.User) == "" {
			bad("sasl.user", "is required with SASL mechanism %s", mech)
		}
		if a.TokenFile != "" {
			bad("sasl.token_file", "is for oauthbearer, not %s: give the password with %s or %s", mech, envSASLPassword, n.name("sasl.password_file"))
		}
		pass, ok := readSecret(a.Password, a.PasswordFile, "sasl.password", "sasl.password_file", "password", mech, n, bad)
		if ok {
			c.mechanism, c.user = strings.ToUpper(mech), a.User
			c.kopts = append(c.kopts, kgo.SASL(passwordMechanism(mech, a.User, pass)))
		}
	case mech == "oauthbearer":
		if a.User != "" {
			bad("sasl.user", "is not used by oauthbearer (the token names the principal): remove it")
		}
		if a.PasswordFile != "" {
			bad("sasl.password_file", "is not used by oauthbearer: give the token with %s or %s", envSASLToken, n.name("sasl.token_file"))
		}
		if tok, ok := readSecret(a.Token, a.TokenFile, "sasl.token", "sasl.token_file", "token", mech, n, bad); ok {
			c.mechanism = "OAUTHBEARER"
			c.kopts = append(c.kopts, kgo.SASL(tokenMechanism(tok, a.TokenFile)))
		}
	default:
		bad("sasl.mechanism", "%q: want one of %s", a.Mechanism, strings.Join(saslMechanisms, ", "))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// readSecret returns the secret given by its variable (env, the value of
// key) or by its file (fileKey), exactly one of which must be set. what
// is "password" or "token".
func readSecret(env secret, file, key, fileKey, what, mech string, n connNamer, bad func(string, string, ...any)) (secret, bool) {
	switch {
	case env != "" && file != "":
		bad(fileKey, "gives the %s, and so does %s: keep one", what, n.name(key))
		return "", false
	case env != "":
		return env, true
	case file == "":
		bad("sasl.mechanism", "%s needs a %s: set %s, or %s to a file holding it", mech, what, n.name(key), n.name(fileKey))
		return "", false
	}
	s, err := secretFromFile(file)
	if err != nil {
		bad(fileKey, "%v", err)
		return "", false
	}
	return s, true
}

// secretFromFile reads a secret from a file: its content without one
// trailing newline. An empty secret is an error; no error shows the
// content.
func secretFromFile(path string) (secret, error) {
	b, err := os.ReadFile(path) //nolint:gosec // the user names the file that holds the secret
	if err != nil {
		return "", errors.New(fileProblem(err))
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return secret(s), nil
}

// fileProblem words an error of reading a file: the path and what is
// wrong, without Go's "open" prefix.
func fileProblem(err error) string {
	var pe *os.PathError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		return pe.Path + ": no such file"
	case errors.Is(err, os.ErrPermission):
		return pe.Path + ": permission denied (the file must be readable by this user)"
	}
	return pe.Path + ": " + pe.Err.Error()
}

// passwordMechanism is the franz-go mechanism of plain and scram-*.
func passwordMechanism(mech, user string, pass secret) sasl.Mechanism {
	switch mech {
	case "plain":
		return plain.Auth{User: user, Pass: string(pass)}.AsMechanism()
	case "scram-sha-256":
		return scram.Auth{User: user, Pass: string(pass)}.AsSha256Mechanism()
	}
	return scram.Auth{User: user, Pass: string(pass)}.AsSha512Mechanism()
}

// tokenMechanism is OAUTHBEARER with tok, read again from file (when not
// "") at each authentication so that a token rotated in place is used.
func tokenMechanism(tok secret, file string) sasl.Mechanism {
	if file == "" {
		return oauth.Auth{Token: string(tok)}.AsMechanism()
	}
	return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
		s, err := secretFromFile(file)
		if err != nil {
			return oauth.Auth{}, err
		}
		return oauth.Auth{Token: string(s)}, nil
	})
}

// explainConnect words an error of connecting that retrying will not cure,
// in the user's names, and says whether it is one (fatal). attempts is the
// number of attempts that failed the same way in a row: a connection the
// broker closes at once is taken for refused credentials (or for a
// missing TLS or SASL) only the second time.
func (c *connection) explainConnect(err error, attempts int) (msg string, fatal bool) {
	if c == nil {
		c = &connection{names: flagNames{}}
	}
	n := c.names
	var cv *tls.CertificateVerificationError
	var he x509.HostnameError
	var ee *kgo.ErrFirstReadEOF
	switch alert := remoteTLSAlert(err); {
	case alert == alertCertificateRequired || alert == alertBadCertificate && !c.clientCert:
		return "the broker requires a client certificate: give it with " + n.name("tls.cert_file") + " and " + n.name("tls.key_file"), true
	case alert == alertBadCertificate || alert == alertUnknownCA:
		return fmt.Sprintf("the broker refused the client certificate of %s (%v): give one signed by a CA the broker trusts", n.name("tls.cert_file"), err), true
	case errors.As(err, &he):
		return fmt.Sprintf("the broker's certificate does not hold the name connected to (%v): connect to a name the certificate holds, or set %s to one",
			he.Error(), n.name("tls.server_name")), true
	case errors.As(err, &cv):
		hint := "give the CA certificate that signed it with " + n.name("tls.ca_file")
		if c.caFile {
			hint = "the CA of " + n.name("tls.ca_file") + " did not sign it: give the CA that did"
		}
		return fmt.Sprintf("the broker's TLS certificate is not trusted (%v): %s", cv.Err, hint), true
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return fmt.Sprintf("the brokers do not support SASL mechanism %s: set %s to one they enable (their sasl.enabled.mechanisms)",
			c.mechanism, n.name("sasl.mechanism")), true
	case errors.Is(err, kerr.SaslAuthenticationFailed),
		c.mechanism != "" && errors.Is(err, io.EOF) && attempts >= 2:
		return c.refused(n), true
	case errors.As(err, &ee) && attempts >= 2:
		var hints []string
		if !c.tls {
			hints = append(hints, "if its listener is TLS, add "+n.name("tls.enabled")+" (and "+n.name("tls.ca_file")+" for a private CA)")
		}
		if c.mechanism == "" {
			hints = append(hints, "if it requires SASL, set "+n.name("sasl.mechanism")+", "+n.name("sasl.user")+" and the password in "+envSASLPassword)
		}
		if len(hints) == 0 {
			return "", false
		}
		return "the broker closed the connection at once: " + strings.Join(hints, "; "), true
	}
	return "", false
}

// refused words refused credentials.
func (c *connection) refused(n connNamer) string {
	if c.mechanism == "OAUTHBEARER" {
		return fmt.Sprintf("the brokers refused the OAUTHBEARER token (or closed the connection during authentication, as brokers do with refused credentials): "+
			"check the token of %s or %s, and that it has not expired", n.name("sasl.token"), n.name("sasl.token_file"))
	}
	return fmt.Sprintf("the brokers refused SASL %s authentication as user %q (or closed the connection during it, as brokers do with refused credentials): "+
		"check %s, the password (%s or %s) and %s", c.mechanism, c.user, n.name("sasl.user"), n.name("sasl.password"), n.name("sasl.password_file"), n.name("sasl.mechanism"))
}

// unreachableHint is added to the error of brokers that never answered:
// what the connection settings may have to do with it.
func (c *connection) unreachableHint() string {
	if c == nil || !c.tls {
		return ""
	}
	n := c.names
	return "; with " + n.name("tls.enabled") + ": if the broker's listener is plaintext, the TLS handshake waits for an answer that never comes: drop TLS or use the TLS listener's port"
}

// runNames names the connection settings of `ordo run` as its layers do
// (runConfig.name); a secret by its variable, the only way to set it.
// Keys in skip were reported already: their errors are dropped.
type runNames struct {
	rc   *runConfig
	skip map[string]bool
}

func (n runNames) name(key string) string {
	if env, ok := secretKeys[key]; ok {
		return env
	}
	return n.rc.name(key, -1)
}

func (n runNames) errorf(key, format string, args ...any) error {
	if n.skip[key] {
		return nil
	}
	if _, ok := secretKeys[key]; ok {
		return fmt.Errorf("%s: %s", n.name(key), fmt.Sprintf(format, args...))
	}
	return n.rc.errorf(key, -1, format, args...)
}

// connection checks the tls.* and sasl.* keys of `ordo run` and reads the
// files they name. A secret written in the --config file is refused (and
// not used): it belongs in its variable or a file of its own. Keys in skip
// were reported already.
func (fc *FileConfig) connection(rc *runConfig, skip map[string]bool) (*connection, []error) {
	var errs []error
	spec := connSpec{TLS: fc.TLS, SASL: fc.SASL}
	for _, key := range slices.Sorted(maps.Keys(secretKeys)) {
		if env := secretKeys[key]; rc.origin[key] == fromFile {
			errs = append(errs, rc.errorf(key, -1, "a secret does not belong in the configuration file: set %s, or %s_file to a file that holds it", env, key))
		}
	}
	if rc.origin["sasl.password"] == fromFile {
		spec.SASL.Password = ""
	}
	if rc.origin["sasl.token"] == fromFile {
		spec.SASL.Token = ""
	}
	conn, more := spec.build(runNames{rc: rc, skip: skip})
	errs = append(errs, more...)
	return conn, errs
}

// TLS alerts a broker sends about the client's certificate (RFC 8446).
const (
	alertBadCertificate      = 42
	alertUnknownCA           = 48
	alertCertificateRequired = 116
)

// remoteTLSAlert is the code of the TLS alert the broker sent, if err is
// one (0 if not). crypto/tls reports it as a *net.OpError "remote error"
// around its unexported alert type, a uint8.
func remoteTLSAlert(err error) uint64 {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return 0
	}
	if v := reflect.ValueOf(op.Err); v.Kind() == reflect.Uint8 {
		return v.Uint()
	}
	return 0
}
