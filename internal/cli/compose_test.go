package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/ordokafka/ordo/pkg/devbroker"
	"github.com/ordokafka/ordo/pkg/topics"
)

// docker-compose.yml cannot be run here (no Docker engine, no registry):
// these tests read it, and the files it mounts, with the loaders the
// containers use (ordo run's config loader, the flags of ordo topics apply,
// ordo lag serve and ordo healthcheck), and check that the pieces point at
// each other. TestComposePipelineOnKfake then runs the services' ordo
// commands, in order, against kfake.

const (
	repoRoot    = "../.."
	composePath = repoRoot + "/docker-compose.yml"
)

// composeFile is the part of the Compose specification that
// docker-compose.yml uses. It is decoded with unknown keys as errors, so
// that a misspelled key (compose would reject it, or worse, ignore it) fails
// here too: a key compose knows that this test does not is added here.
type composeFile struct {
	Name     string                    `yaml:"name"`
	XOrdo    map[string]any            `yaml:"x-ordo"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string         `yaml:"image"`
	Build       any            `yaml:"build"`
	PullPolicy  string         `yaml:"pull_policy"`
	Command     []string       `yaml:"command"`
	Environment map[string]any `yaml:"environment"`
	Ports       []string       `yaml:"ports"`
	Volumes     []string       `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	Restart         string   `yaml:"restart"`
	StopGracePeriod string   `yaml:"stop_grace_period"`
	ExtraHosts      []string `yaml:"extra_hosts"`
}

// parseCompose decodes a compose file's text.
func parseCompose(b []byte) (*composeFile, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c composeFile
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w (depends_on, environment and healthcheck.test are written in their long forms: a mapping, a mapping, a list)", err)
	}
	return &c, nil
}

func loadCompose(t *testing.T) *composeFile {
	t.Helper()
	b, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseCompose(b)
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// service returns the service or fails the test.
func (c *composeFile) service(t *testing.T, name string) composeService {
	t.Helper()
	s, ok := c.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml has no service %q", name)
	}
	return s
}

// hostPath maps a path inside the service's container to the repository
// file a read-only bind mount puts there.
func (s composeService) hostPath(t *testing.T, svc, inContainer string) string {
	t.Helper()
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || !strings.HasPrefix(parts[0], "./") {
			continue
		}
		src, dst := parts[0], parts[1]
		rest, ok := strings.CutPrefix(inContainer, dst)
		if !ok || rest != "" && !strings.HasPrefix(rest, "/") {
			continue
		}
		if len(parts) < 3 || parts[2] != "ro" {
			t.Errorf("%s: mount %q is writable: make it %s:ro (the container only reads it)", svc, v, v)
		}
		return filepath.Join(repoRoot, src, rest)
	}
	t.Fatalf("%s reads %s, and no bind mount of the repository puts a file there (volumes %q)", svc, inContainer, s.Volumes)
	return ""
}

// env is the service's environment as KEY=VALUE lines.
func (s composeService) env() []string {
	var out []string
	for k, v := range s.Environment {
		out = append(out, k+"="+fmt.Sprint(v))
	}
	slices.Sort(out)
	return out
}

// publishedPorts are the service's published ports: each host port (a
// range gives several) with the container port it maps to.
func (s composeService) publishedPorts(t *testing.T, svc string) map[int]int {
	t.Helper()
	out := map[int]int{}
	for _, p := range s.Ports {
		parts := strings.Split(p, ":")
		if len(parts) != 2 && len(parts) != 3 {
			t.Errorf("%s: port %q: want \"HOST:CONTAINER\" (or \"IP:HOST:CONTAINER\")", svc, p)
			continue
		}
		host, cont := parts[len(parts)-2], parts[len(parts)-1]
		c, err := strconv.Atoi(cont)
		if err != nil {
			t.Errorf("%s: port %q: container port %q is not a number", svc, p, cont)
			continue
		}
		lo, hi, isRange := strings.Cut(host, "-")
		from, err1 := strconv.Atoi(lo)
		to := from
		var err2 error
		if isRange {
			to, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || to < from {
			t.Errorf("%s: port %q: host port %q is not a number or a range", svc, p, host)
			continue
		}
		for h := from; h <= to; h++ {
			out[h] = c
		}
	}
	return out
}

// commandFlags returns a service's command as a command line: the items
// split on spaces (Redpanda's image splits "--flag value" items so).
func commandFlags(cmd []string) []string {
	var out []string
	for _, c := range cmd {
		out = append(out, strings.Fields(c)...)
	}
	return out
}

// flagValue returns the value of --name in args ("--name v" or
// "--name=v"); "" when absent.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// listenPort is the port of a host:port.
func listenPort(t *testing.T, what, hostport string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(hostport)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("%s: %q is not host:port", what, hostport)
	}
	return h, n
}

// ordoServices are the services that run the image of the Dockerfile.
var ordoServices = []string{"topics", "worker", "lag"}

// The stack the issue lists is there; the images are pinned; the ordo
// services build the Dockerfile's image; every bind mount names a file of
// the repository and every named volume is declared.
func TestComposeServices(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{"redpanda", "redpanda-console", "topics", "worker", "lag", "redis", "postgres", "prometheus", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("docker-compose.yml has no service %q: the local stack needs it", name)
		}
	}
	for name, s := range c.Services {
		if slices.Contains(ordoServices, name) {
			b, _ := s.Build.(map[string]any)
			if b["context"] != "." || b["dockerfile"] != "Dockerfile" || s.PullPolicy != "build" {
				t.Errorf("%s: build %v, pull_policy %q: want build {context: ., dockerfile: Dockerfile} and pull_policy build (the image is this repository's, never pulled)", name, s.Build, s.PullPolicy)
			}
			if _, tag, ok := strings.Cut(s.Image, ":"); !ok || tag == "latest" {
				t.Errorf("%s: image %q: name the built image with a tag other than latest (ordo:dev)", name, s.Image)
			}
			continue
		}
		if s.Build != nil {
			t.Errorf("%s: builds an image; only %v build the Dockerfile", name, ordoServices)
		}
		ref := s.Image
		if i := strings.LastIndex(ref, "/"); i >= 0 {
			ref = ref[i+1:]
		}
		_, tag, ok := strings.Cut(ref, ":")
		if !ok || tag == "latest" || !strings.ContainsAny(tag, "0123456789") {
			t.Errorf("%s: image %q is not pinned: give it a version tag (not latest), e.g. redis:7.4.2", name, s.Image)
		}
	}
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			switch {
			case strings.HasPrefix(src, "./"):
				if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
					t.Errorf("%s: mounts %s, which the repository does not have", name, src)
				}
			default:
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("%s: mounts the volume %q, not declared under the top-level volumes", name, src)
				}
			}
		}
	}
}

// internalKafka is Redpanda's internal listener as advertised to the
// containers: the address every ordo service must use.
func internalKafka(t *testing.T, c *composeFile) string {
	t.Helper()
	listeners := redpandaListeners(t, c.service(t, "redpanda"), "--advertise-kafka-addr")
	return listeners["internal"]
}

// redpandaListeners parses a Redpanda listener flag:
// "internal://0.0.0.0:9092,external://..." by listener name.
func redpandaListeners(t *testing.T, s composeService, flag string) map[string]string {
	t.Helper()
	v := flagValue(commandFlags(s.Command), strings.TrimPrefix(flag, "--"))
	if v == "" {
		t.Fatalf("redpanda: no %s in its command", flag)
	}
	out := map[string]string{}
	for _, l := range strings.Split(v, ",") {
		name, addr, ok := strings.Cut(l, "://")
		if !ok {
			t.Fatalf("redpanda: %s %q: want name://host:port entries", flag, v)
		}
		out[name] = addr
	}
	return out
}

// Redpanda listens on an internal listener for containers and an external
// one for the host; it advertises the first under its service name and the
// second as localhost on the host port that publishes it; dev-container
// mode; a healthcheck.
func TestComposeRedpandaListeners(t *testing.T) {
	c := loadCompose(t)
	rp := c.service(t, "redpanda")
	listen := redpandaListeners(t, rp, "--kafka-addr")
	adv := redpandaListeners(t, rp, "--advertise-kafka-addr")
	for _, name := range []string{"internal", "external"} {
		if listen[name] == "" || adv[name] == "" {
			t.Fatalf("redpanda: listener %q: --kafka-addr %v, --advertise-kafka-addr %v: want both internal (containers) and external (host)", name, listen, adv)
		}
		if h, _ := listenPort(t, "redpanda --kafka-addr "+name, listen[name]); h != "0.0.0.0" {
			t.Errorf("redpanda: listener %s binds %s: bind 0.0.0.0 so that other containers and the published port reach it", name, listen[name])
		}
	}
	_, inPort := listenPort(t, "internal listener", listen["internal"])
	if h, p := listenPort(t, "advertised internal", adv["internal"]); h != "redpanda" || p != inPort {
		t.Errorf("redpanda advertises internal %s: want redpanda:%d (its service name and internal port)", adv["internal"], inPort)
	}
	_, exPort := listenPort(t, "external listener", listen["external"])
	h, p := listenPort(t, "advertised external", adv["external"])
	if h != "localhost" && h != "127.0.0.1" {
		t.Errorf("redpanda advertises external %s: host clients need localhost", adv["external"])
	}
	if got, ok := rp.publishedPorts(t, "redpanda")[p]; !ok || got != exPort {
		t.Errorf("redpanda advertises external %s, but ports %q do not publish host port %d to the external listener's %d", adv["external"], rp.Ports, p, exPort)
	}
	if !slices.Contains(commandFlags(rp.Command), "dev-container") {
		t.Errorf("redpanda: command %q: want --mode dev-container", rp.Command)
	}
	if rp.Healthcheck == nil {
		t.Error("redpanda has no healthcheck: the services that need it wait for service_healthy")
	}
}

// Every depends_on names a service, with a condition it can meet: healthy
// needs a healthcheck, completed_successfully a one-shot (restart "no").
// The start order the stack needs is there. Every healthcheck has its test,
// interval, timeout and retries.
func TestComposeDependsOnAndHealthchecks(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.Services {
		for dep, d := range s.DependsOn {
			target, ok := c.Services[dep]
			if !ok {
				t.Errorf("%s depends on %q, which is not a service", name, dep)
				continue
			}
			switch d.Condition {
			case "service_started":
			case "service_healthy":
				if target.Healthcheck == nil {
					t.Errorf("%s waits for %s to be healthy, and %s has no healthcheck: add one", name, dep, dep)
				}
			case "service_completed_successfully":
				if target.Restart != "no" {
					t.Errorf("%s waits for %s to complete, and %s has restart %q: a one-shot has restart \"no\"", name, dep, dep, target.Restart)
				}
			default:
				t.Errorf("%s depends on %s with condition %q: want service_started, service_healthy or service_completed_successfully", name, dep, d.Condition)
			}
		}
		if hc := s.Healthcheck; hc != nil {
			if len(hc.Test) < 2 || hc.Test[0] != "CMD" && hc.Test[0] != "CMD-SHELL" {
				t.Errorf("%s: healthcheck test %q: want [CMD, ...] or [CMD-SHELL, ...]", name, hc.Test)
			}
			for what, d := range map[string]string{"interval": hc.Interval, "timeout": hc.Timeout} {
				if v, err := time.ParseDuration(d); err != nil || v <= 0 {
					t.Errorf("%s: healthcheck %s %q: want a duration such as 5s", name, what, d)
				}
			}
			if hc.Retries < 1 {
				t.Errorf("%s: healthcheck retries %d: want >= 1", name, hc.Retries)
			}
		}
	}
	want := map[string]map[string]string{
		"redpanda-console": {"redpanda": "service_healthy"},
		"topics":           {"redpanda": "service_healthy"},
		"worker":           {"redpanda": "service_healthy", "topics": "service_completed_successfully"},
		"lag":              {"redpanda": "service_healthy", "topics": "service_completed_successfully"},
		"grafana":          {"prometheus": "service_started"},
	}
	for name, deps := range want {
		for dep, cond := range deps {
			if got := c.Services[name].DependsOn[dep].Condition; got != cond {
				t.Errorf("%s depends on %s with condition %q, want %s", name, dep, got, cond)
			}
		}
	}
	for _, name := range []string{"redpanda", "worker", "lag", "redis", "postgres"} {
		if c.Services[name].Healthcheck == nil {
			t.Errorf("%s has no healthcheck", name)
		}
	}
	if c.Services["topics"].Restart != "no" {
		t.Errorf("topics: restart %q: it is a one-shot, restart \"no\"", c.Services["topics"].Restart)
	}
	if hc := c.Services["postgres"].Healthcheck; hc == nil || !slices.Contains(hc.Test, "pg_isready") {
		t.Errorf("postgres: healthcheck %v: want pg_isready", hc)
	}
	redis := c.Services["redis"]
	if !slices.Contains(redis.Command, "--appendonly") || redis.Command[slices.Index(redis.Command, "--appendonly")+1] != "yes" {
		t.Errorf("redis: command %q: want --appendonly yes (the stores' keys must survive a restart)", redis.Command)
	}
	pg := c.Services["postgres"]
	if pg.Environment["POSTGRES_PASSWORD"] == nil || pg.Environment["POSTGRES_USER"] == nil || pg.Environment["POSTGRES_DB"] == nil || len(pg.Volumes) == 0 {
		t.Errorf("postgres: environment %v, volumes %v: want POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB and a volume", pg.Environment, pg.Volumes)
	}
}

// No two services publish the same host port, and none publishes a port
// that what runs beside the stack on the host takes: ordo dev's broker and
// metrics, ordo lag serve's default address, a local Redis and PostgreSQL
// (the development machines and CI run both).
func TestComposePublishedPorts(t *testing.T) {
	c := loadCompose(t)
	reserved := map[int]string{6379: "a local Redis", 5432: "a local PostgreSQL"}
	root := NewRoot(io.Discard, io.Discard)
	for _, f := range []struct{ cmd, flag string }{{"dev", "kafka-addr"}, {"dev", "metrics-addr"}, {"run", "metrics-addr"}, {"lag serve", "addr"}} {
		cmd, _, err := root.Find(strings.Fields(f.cmd))
		if err != nil {
			t.Fatal(err)
		}
		_, p := listenPort(t, f.cmd, cmd.Flags().Lookup(f.flag).DefValue)
		reserved[p] = fmt.Sprintf("ordo %s's default --%s", f.cmd, f.flag)
	}
	owner := map[int]string{}
	for name, s := range c.Services {
		for h := range s.publishedPorts(t, name) {
			if other, ok := owner[h]; ok {
				t.Errorf("host port %d is published by both %s and %s", h, other, name)
			}
			owner[h] = name
			if what, ok := reserved[h]; ok {
				t.Errorf("%s publishes host port %d, which %s takes: publish another host port (the stack uses 1xxxx)", name, h, what)
			}
		}
	}
}

// workerConfig loads the worker's config as its container does: its
// command's flags, the file its --config names (through the bind mount)
// and its environment, through ordo run's loader.
func workerConfig(t *testing.T, c *composeFile, env []string) (*RunCmd, error) {
	t.Helper()
	w := c.service(t, "worker")
	if len(w.Command) < 1 || w.Command[0] != "run" {
		t.Fatalf("worker: command %q: want [run, --config, FILE]", w.Command)
	}
	r := &RunCmd{Out: io.Discard, Err: io.Discard, Environ: func() []string { return env }}
	if err := newRunCommand(r).ParseFlags(w.Command[1:]); err != nil {
		t.Fatalf("worker: command %q: %v", w.Command, err)
	}
	if r.ConfigPath == "" {
		t.Fatalf("worker: command %q has no --config", w.Command)
	}
	r.ConfigPath = w.hostPath(t, "worker", r.ConfigPath)
	err := r.Validate()
	return r, err
}

// metricsListen is where the worker's /metrics listens.
func metricsListen(t *testing.T, c *composeFile) (string, int) {
	t.Helper()
	r, err := workerConfig(t, c, c.service(t, "worker").env())
	if err != nil {
		t.Fatalf("worker's config: %v", err)
	}
	return listenPort(t, "worker metrics_addr", *r.fc.MetricsAddr)
}

// lagServe parses the lag service's command as ordo lag serve does.
func lagServe(t *testing.T, c *composeFile) *LagServeCmd {
	t.Helper()
	l := c.service(t, "lag")
	if len(l.Command) < 2 || l.Command[0] != "lag" || l.Command[1] != "serve" {
		t.Fatalf("lag: command %q: want [lag, serve, ...]", l.Command)
	}
	ls := &LagServeCmd{}
	if err := newLagServeCommand(ls, io.Discard).ParseFlags(l.Command[2:]); err != nil {
		t.Fatalf("lag: command %q: %v", l.Command, err)
	}
	if err := ls.Validate(); err != nil {
		t.Fatalf("lag: command %q: %v", l.Command, err)
	}
	return ls
}

// The worker's config file, mounted read-only, loads through ordo run's
// loader with the service's environment; its brokers are Redpanda's
// internal listener, its metrics listen on 0.0.0.0 at the port the service
// publishes and its healthcheck GETs; its group, topics and retry tiers are
// those topics/ declares (which the topics service creates) and those of
// deploy/ordo.yaml; it drains within the stop grace period.
func TestComposeWorkerConfig(t *testing.T) {
	c := loadCompose(t)
	w := c.service(t, "worker")
	r, err := workerConfig(t, c, w.env())
	if err != nil {
		t.Fatalf("the worker's config does not load as ordo run loads it: %v", err)
	}
	kafka := internalKafka(t, c)
	if !slices.Equal(r.cfg.Brokers, []string{kafka}) {
		t.Errorf("worker: brokers %q: want [%s], Redpanda's internal listener (localhost:19092 is the host's)", r.cfg.Brokers, kafka)
	}
	host, port := listenPort(t, "worker metrics_addr", *r.fc.MetricsAddr)
	if host != "0.0.0.0" {
		t.Errorf("worker: metrics_addr %s: listen on 0.0.0.0:%d, or Prometheus (another container) cannot scrape it", *r.fc.MetricsAddr, port)
	}
	published := w.publishedPorts(t, "worker")
	if len(published) == 0 {
		t.Error("worker publishes no port")
	}
	for h, cp := range published {
		if cp != port {
			t.Errorf("worker publishes host port %d to container port %d; its metrics listen on %d", h, cp, port)
		}
	}
	checkOrdoHealthcheck(t, "worker", w, port)

	// The same pipeline as deploy/ordo.yaml, and its chain is in topics/.
	dep := &RunCmd{ConfigPath: deployConfig, Out: io.Discard, Err: io.Discard, Environ: func() []string { return nil }}
	if err := dep.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.cfg.Group != dep.cfg.Group || !slices.Equal(r.cfg.Topics, dep.cfg.Topics) || r.fc.Processor != "example" ||
		!slices.Equal(r.cfg.Retry.Tiers, dep.cfg.Retry.Tiers) {
		t.Errorf("worker: group %q topics %q processor %q tiers %v; deploy/ordo.yaml: %q %q example %v: keep them the same pipeline",
			r.cfg.Group, r.cfg.Topics, r.fc.Processor, r.cfg.Retry.Tiers, dep.cfg.Group, dep.cfg.Topics, dep.cfg.Retry.Tiers)
	}
	set, err := topics.Load(topicsDir(t, c))
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range r.cfg.Topics {
		ch, ok := set.Chain(topic, r.cfg.Group)
		if !ok || !slices.Equal(ch.Retry.Delays, r.cfg.Retry.Tiers) || !ch.DLQ {
			t.Errorf("the topics service's directory declares chain %+v for %s/%s; the worker routes to tiers %v and a DLQ: ordo run would refuse to start", ch, topic, r.cfg.Group, r.cfg.Retry.Tiers)
		}
	}
	grace, err := time.ParseDuration(w.StopGracePeriod)
	if err != nil || grace <= r.fc.ShutdownTimeout {
		t.Errorf("worker: stop_grace_period %q: want more than its shutdown_timeout %s, or docker kills it before it commits", w.StopGracePeriod, r.fc.ShutdownTimeout)
	}
	if !slices.Contains(w.Command, "--config") || w.hostPath(t, "worker", flagValue(w.Command, "config")) != filepath.Join(repoRoot, "deploy", "compose", "ordo.yaml") {
		t.Errorf("worker: command %q does not run deploy/compose/ordo.yaml", w.Command)
	}

	// The lag exporter watches the worker's group.
	ls := lagServe(t, c)
	if !slices.Contains(ls.Groups, r.cfg.Group) || !slices.Equal(ls.Topics, r.cfg.Topics) {
		t.Errorf("lag: groups %q topics %q: want the worker's group %q and topics %q", ls.Groups, ls.Topics, r.cfg.Group, r.cfg.Topics)
	}
}

// topicsDir is the directory the topics service applies, in the repository.
func topicsDir(t *testing.T, c *composeFile) string {
	t.Helper()
	s := c.service(t, "topics")
	dir := flagValue(s.Command, "dir")
	if dir == "" {
		t.Fatalf("topics: command %q has no --dir", s.Command)
	}
	return s.hostPath(t, "topics", dir)
}

// checkOrdoHealthcheck: the service's healthcheck runs the image's ordo
// (its ENTRYPOINT) as `ordo healthcheck`, valid flags, on loopback at the
// port the service listens on, on /readyz or /healthz.
func checkOrdoHealthcheck(t *testing.T, name string, s composeService, port int) {
	t.Helper()
	hc := s.Healthcheck
	if hc == nil || len(hc.Test) < 3 {
		t.Errorf("%s: healthcheck %v: want [CMD, %s, healthcheck, --url, ...]", name, hc, dockerEntrypoint(t))
		return
	}
	if hc.Test[0] != "CMD" || hc.Test[1] != dockerEntrypoint(t) || hc.Test[2] != "healthcheck" {
		t.Errorf("%s: healthcheck %q: want [CMD, %s, healthcheck, ...]: the image has no shell or curl", name, hc.Test, dockerEntrypoint(t))
		return
	}
	h := &HealthcheckCmd{}
	if err := newHealthcheckCommand(h).ParseFlags(hc.Test[3:]); err != nil {
		t.Errorf("%s: healthcheck %q: %v", name, hc.Test, err)
		return
	}
	if err := h.Validate(); err != nil {
		t.Errorf("%s: healthcheck %q: %v", name, hc.Test, err)
	}
	u, _ := url.Parse(h.URL)
	if (u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost") || u.Port() != strconv.Itoa(port) || u.Path != "/readyz" && u.Path != "/healthz" {
		t.Errorf("%s: healthcheck GETs %s: want http://127.0.0.1:%d/readyz (or /healthz), where the service listens", name, h.URL, port)
	}
}

// The topics one-shot applies the repository's topics/ (mounted read-only)
// through Redpanda's internal listener, with flags ordo topics apply takes;
// the lag exporter reads the same listener and listens on 0.0.0.0 at the
// port it publishes and its healthcheck GETs.
func TestComposeTopicsAndLag(t *testing.T) {
	c := loadCompose(t)
	kafka := internalKafka(t, c)
	s := c.service(t, "topics")
	if len(s.Command) < 2 || s.Command[0] != "topics" || s.Command[1] != "apply" {
		t.Fatalf("topics: command %q: want [topics, apply, ...]", s.Command)
	}
	apply, _, err := NewRoot(io.Discard, io.Discard).Find([]string{"topics", "apply"})
	if err != nil {
		t.Fatal(err)
	}
	if err := apply.ParseFlags(s.Command[2:]); err != nil {
		t.Fatalf("topics: command %q: %v", s.Command, err)
	}
	f := apply.Flags()
	brokers, _ := f.GetStringSlice("brokers")
	timeout, _ := f.GetDuration("timeout")
	connect, _ := f.GetDuration("connect-timeout")
	a := &TopicsApplyCmd{Brokers: brokers, Dir: topicsDir(t, c), Timeout: timeout, ConnectTimeout: connect}
	if err := a.Validate(); err != nil {
		t.Errorf("topics: command %q: %v", s.Command, err)
	}
	if !slices.Equal(brokers, []string{kafka}) {
		t.Errorf("topics: --brokers %q: want %s, Redpanda's internal listener", brokers, kafka)
	}
	if a.Dir != filepath.Join(repoRoot, "topics") {
		t.Errorf("topics: --dir is %s in the repository, want topics/", a.Dir)
	}

	ls := lagServe(t, c)
	if !slices.Equal(ls.Brokers, []string{kafka}) {
		t.Errorf("lag: --brokers %q: want %s, Redpanda's internal listener", ls.Brokers, kafka)
	}
	host, port := listenPort(t, "lag --addr", ls.Addr)
	if host != "0.0.0.0" {
		t.Errorf("lag: --addr %s: listen on 0.0.0.0:%d, or Prometheus cannot scrape it", ls.Addr, port)
	}
	lag := c.service(t, "lag")
	for h, cp := range lag.publishedPorts(t, "lag") {
		if cp != port {
			t.Errorf("lag publishes host port %d to container port %d; it listens on %d", h, cp, port)
		}
	}
	checkOrdoHealthcheck(t, "lag", lag, port)
}

// prometheusConfig is the part of prometheus.yml this test reads.
type prometheusConfig struct {
	Global struct {
		ScrapeInterval string `yaml:"scrape_interval"`
		ScrapeTimeout  string `yaml:"scrape_timeout"`
	} `yaml:"global"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		ScrapeTimeout string `yaml:"scrape_timeout"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
		DNSSDConfigs []struct {
			Names []string `yaml:"names"`
			Type  string   `yaml:"type"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
	} `yaml:"scrape_configs"`
}

// Prometheus scrapes the compose services by name on the ports they listen
// on: the worker (all its replicas) at its metrics_addr, the lag exporter
// at its --addr, within the scrape timeout; a host target only with
// extra_hosts host-gateway; Grafana's datasource is this Prometheus.
func TestComposePrometheusTargets(t *testing.T) {
	c := loadCompose(t)
	prom := c.service(t, "prometheus")
	b, err := os.ReadFile(prom.hostPath(t, "prometheus", "/etc/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var pc prometheusConfig
	if err := yaml.Unmarshal(b, &pc); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	// The ports each service listens on: the ordo services' from their
	// config, the others' from the container ports they publish.
	_, workerPort := metricsListen(t, c)
	ls := lagServe(t, c)
	_, lagPort := listenPort(t, "lag --addr", ls.Addr)
	listens := map[string][]int{"worker": {workerPort}, "lag": {lagPort}}
	for name, s := range c.Services {
		if name == "worker" || name == "lag" {
			continue
		}
		for _, cp := range s.publishedPorts(t, name) {
			listens[name] = append(listens[name], cp)
		}
	}
	scraped := map[string]string{} // service:port -> job
	hostTargets := false
	for _, sc := range pc.ScrapeConfigs {
		var targets []string
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
		for _, d := range sc.DNSSDConfigs {
			if d.Type != "A" || d.Port == 0 {
				t.Errorf("job %s: dns_sd_configs %+v: want type A and a port (Docker's DNS answers A records, one per replica)", sc.JobName, d)
			}
			for _, n := range d.Names {
				targets = append(targets, net.JoinHostPort(n, strconv.Itoa(d.Port)))
			}
		}
		for _, tg := range targets {
			host, port := listenPort(t, "job "+sc.JobName+" target", tg)
			if host == "host.docker.internal" {
				hostTargets = true
				continue
			}
			ports, ok := listens[host]
			if !ok {
				t.Errorf("job %s scrapes %s: %s is not a compose service", sc.JobName, tg, host)
				continue
			}
			if !slices.Contains(ports, port) {
				t.Errorf("job %s scrapes %s: %s listens on %v", sc.JobName, tg, host, ports)
			}
			scraped[tg] = sc.JobName
		}
	}
	for _, tg := range []string{net.JoinHostPort("worker", strconv.Itoa(workerPort)), net.JoinHostPort("lag", strconv.Itoa(lagPort))} {
		if _, ok := scraped[tg]; !ok {
			t.Errorf("no job scrapes %s (scraped: %v)", tg, scraped)
		}
	}
	if hostTargets && !slices.Contains(prom.ExtraHosts, "host.docker.internal:host-gateway") {
		t.Errorf("prometheus.yml scrapes host.docker.internal, which does not resolve on Linux: add extra_hosts [\"host.docker.internal:host-gateway\"] to the prometheus service")
	}
	// The lag exporter answers within the scrape timeout of its job.
	timeout := pc.Global.ScrapeTimeout
	if timeout == "" {
		timeout = defaultScrapeTimeout(t, pc.Global.ScrapeInterval)
	}
	for _, sc := range pc.ScrapeConfigs {
		if scraped[net.JoinHostPort("lag", strconv.Itoa(lagPort))] == sc.JobName && sc.ScrapeTimeout != "" {
			timeout = sc.ScrapeTimeout
		}
	}
	if d, err := time.ParseDuration(timeout); err != nil || ls.ScrapeTimeout >= d {
		t.Errorf("lag: --timeout %s: want it below Prometheus's scrape timeout %s, or a slow broker fails the scrape instead of the exporter's own", ls.ScrapeTimeout, timeout)
	}
	// Grafana reads this Prometheus.
	g := c.service(t, "grafana")
	ds := yamlDocs(t, g.hostPath(t, "grafana", "/etc/grafana/provisioning/datasources/prometheus.yml"))[0]
	u, err := url.Parse(fmt.Sprint(at(ds, "datasources.0.url")))
	if err != nil || !slices.Contains(listens[u.Hostname()], atoi(u.Port())) || u.Hostname() != "prometheus" {
		t.Errorf("grafana's datasource is %v: want http://prometheus:%v", at(ds, "datasources.0.url"), listens["prometheus"])
	}
}

// defaultScrapeTimeout is Prometheus's default scrape timeout: 10s, or the scrape
// interval when that is shorter.
func defaultScrapeTimeout(t *testing.T, interval string) string {
	t.Helper()
	d, err := time.ParseDuration(interval)
	if err != nil {
		t.Fatalf("prometheus.yml: scrape_interval %q: %v", interval, err)
	}
	return min(d, 10*time.Second).String()
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// uncommentBlock returns text with the commented lines between the marker
// lines "-- NAME: begin" and "-- NAME: end" uncommented (their first "#"
// and the space after it removed), and how many lines it uncommented.
func uncommentBlock(text, name string) (string, int) {
	lines := strings.Split(text, "\n")
	commented := regexp.MustCompile(`^(\s*)# ?(.*)$`)
	in, n := false, 0
	for i, l := range lines {
		switch {
		case strings.Contains(l, "-- "+name+": begin"):
			in = true
		case strings.Contains(l, "-- "+name+": end"):
			in = false
		case in:
			if m := commented.FindStringSubmatch(l); m != nil {
				lines[i] = m[1] + m[2]
				n++
			}
		}
	}
	return strings.Join(lines, "\n"), n
}

// The commented redis-ledger switch in docker-compose.yml, uncommented,
// is valid compose: the worker then waits for a healthy Redis, and its
// environment sets the processor and Redis's URL (the redis service, at
// the port it listens on), which ordo run's loader takes: redis-ledger on
// the redis store.
func TestComposeRedisLedgerBlock(t *testing.T) {
	b, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	text, n := uncommentBlock(string(b), "redis-ledger")
	if n < 4 {
		t.Fatalf("docker-compose.yml: %d lines in the redis-ledger blocks; want its depends_on and environment, between \"-- redis-ledger: begin\" and \"-- redis-ledger: end\"", n)
	}
	c, err := parseCompose([]byte(text))
	if err != nil {
		t.Fatalf("docker-compose.yml with the redis-ledger blocks uncommented: %v", err)
	}
	w := c.service(t, "worker")
	if w.DependsOn["redis"].Condition != "service_healthy" {
		t.Errorf("redis-ledger: the worker depends on redis %q, want service_healthy", w.DependsOn["redis"].Condition)
	}
	if w.Environment["ORDO_PROCESSOR"] != "redis-ledger" {
		t.Errorf("redis-ledger: ORDO_PROCESSOR %v", w.Environment["ORDO_PROCESSOR"])
	}
	u, err := url.Parse(fmt.Sprint(w.Environment["ORDO_REDIS_URL"]))
	if err != nil || u.Scheme != "redis" || u.Hostname() != "redis" {
		t.Errorf("redis-ledger: ORDO_REDIS_URL %v: want redis://redis:PORT/DB", w.Environment["ORDO_REDIS_URL"])
	} else if ports := c.service(t, "redis").publishedPorts(t, "redis"); !slices.Contains(mapValues(ports), atoi(u.Port())) {
		t.Errorf("redis-ledger: ORDO_REDIS_URL %s: redis listens on %v", u, mapValues(ports))
	}
	r, err := workerConfig(t, c, w.env())
	if err != nil {
		t.Fatalf("redis-ledger: the worker's config with the blocks uncommented does not load: %v", err)
	}
	if r.fc.Processor != "redis-ledger" || r.spec == nil || r.spec.kind != storeRedis || r.fc.RedisURL != u.String() {
		t.Errorf("redis-ledger: loaded processor %q, store %v, redis_url %q; want redis-ledger on store redis at %s", r.fc.Processor, r.spec, r.fc.RedisURL, u)
	}
}

func mapValues(m map[int]int) []int {
	var out []int
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// dockerfile is the Dockerfile as stages of instructions.
type dockerStage struct {
	from, name string
	instrs     [][2]string // instruction (upper case), arguments
}

func parseDockerfile(t *testing.T) []dockerStage {
	t.Helper()
	b, err := os.ReadFile(repoRoot + "/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var stages []dockerStage
	var cur strings.Builder
	for l := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(l)
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			continue
		}
		instr, args, _ := strings.Cut(line, " ")
		instr = strings.ToUpper(instr)
		args = strings.TrimSpace(args)
		if instr == "FROM" {
			f := strings.Fields(args)
			var st dockerStage
			for i := 0; i < len(f); i++ {
				switch {
				case strings.HasPrefix(f[i], "--"):
				case strings.EqualFold(f[i], "AS") && i+1 < len(f):
					st.name = f[i+1]
					i++
				default:
					st.from = f[i]
				}
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if instr != "ARG" {
				t.Fatalf("Dockerfile: %s before the first FROM", instr)
			}
			continue
		}
		stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, [2]string{instr, args})
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and a final stage", len(stages))
	}
	return stages
}

// dockerEntrypoint is the binary of the Dockerfile's ENTRYPOINT.
func dockerEntrypoint(t *testing.T) string {
	t.Helper()
	stages := parseDockerfile(t)
	for _, in := range stages[len(stages)-1].instrs {
		if in[0] == "ENTRYPOINT" {
			var ep []string
			if err := json.Unmarshal([]byte(in[1]), &ep); err != nil || len(ep) == 0 {
				t.Fatalf("Dockerfile: ENTRYPOINT %s: want the exec form, [\"/path/to/ordo\"]", in[1])
			}
			return ep[0]
		}
	}
	t.Fatal("Dockerfile: the final stage has no ENTRYPOINT")
	return ""
}

// shellFields splits a shell command line into words, honoring quotes.
func shellFields(s string) []string {
	var out []string
	var w strings.Builder
	inWord, quote := false, rune(0)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				out = append(out, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, w.String())
	}
	return out
}

// goBuild is a `go build` command line: its environment assignments, its
// flags (name -> value; "" for a boolean) and its packages.
type goBuild struct {
	env   []string
	flags map[string]string
	pkgs  []string
}

// parseGoBuild finds `<go> build` in a command line; goCmd is how the line
// names go ("go", "$(GO)").
func parseGoBuild(line, goCmd string) (goBuild, bool) {
	words := shellFields(line)
	i := slices.Index(words, goCmd)
	if i < 0 || i+1 >= len(words) || words[i+1] != "build" {
		return goBuild{}, false
	}
	gb := goBuild{flags: map[string]string{}}
	for j := i - 1; j >= 0 && strings.Contains(words[j], "=") && !strings.HasPrefix(words[j], "-"); j-- {
		gb.env = append(gb.env, words[j])
	}
	for j := i + 2; j < len(words); j++ {
		switch w := words[j]; {
		case w == "&&" || w == ";":
			return gb, true
		case w == "-trimpath":
			gb.flags[w] = ""
		case strings.HasPrefix(w, "-") && j+1 < len(words):
			gb.flags[w] = words[j+1]
			j++
		default:
			gb.pkgs = append(gb.pkgs, w)
		}
	}
	return gb, true
}

// The Dockerfile builds ./cmd/ordo static (CGO_ENABLED=0), with -trimpath
// and -ldflags "-s -w", on a Go at least go.mod's; the final stage copies
// that binary to its ENTRYPOINT, runs as a user other than root and has CA
// certificates; every base image is pinned. `make build-static`, which
// .ci/run runs, builds with the same flags; .dockerignore leaves out no
// file the binary is built from.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	var build *dockerStage
	var gb goBuild
	for i := range stages {
		for _, in := range stages[i].instrs {
			if g, ok := parseGoBuild(in[1], "go"); ok && in[0] == "RUN" {
				build, gb = &stages[i], g
			}
		}
	}
	if build == nil {
		t.Fatal("Dockerfile: no stage RUNs go build")
	}
	if !slices.Contains(gb.env, "CGO_ENABLED=0") || gb.flags["-ldflags"] != "-s -w" || !slices.Equal(gb.pkgs, []string{"./cmd/ordo"}) {
		t.Errorf("Dockerfile: go build %v env %v packages %v: want CGO_ENABLED=0 go build -trimpath -ldflags \"-s -w\" -o OUT ./cmd/ordo", gb.flags, gb.env, gb.pkgs)
	}
	if _, ok := gb.flags["-trimpath"]; !ok {
		t.Error("Dockerfile: go build without -trimpath")
	}
	out := gb.flags["-o"]

	// The builder's Go is at least go.mod's.
	mod, err := os.ReadFile(repoRoot + "/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindStringSubmatch(string(mod))
	builder := regexp.MustCompile(`^golang:(\d+)\.(\d+)`).FindStringSubmatch(build.from)
	if goLine == nil || builder == nil {
		t.Errorf("Dockerfile: build stage FROM %s: want golang:MAJOR.MINOR (go.mod: %v)", build.from, goLine)
	} else if atoi(builder[1])*1000+atoi(builder[2]) < atoi(goLine[1])*1000+atoi(goLine[2]) {
		t.Errorf("Dockerfile: build stage FROM %s, older than go.mod's go %s.%s: raise it", build.from, goLine[1], goLine[2])
	}

	final := stages[len(stages)-1]
	var user, copied string
	certs := strings.HasPrefix(final.from, "gcr.io/distroless/static") || strings.HasPrefix(final.from, "gcr.io/distroless/base")
	for _, in := range final.instrs {
		switch in[0] {
		case "USER":
			user = in[1]
		case "COPY":
			f := strings.Fields(in[1])
			if slices.Contains(f, "--from="+build.name) && slices.Contains(f, out) {
				copied = f[len(f)-1]
			}
			if strings.Contains(in[1], "ca-certificates") {
				certs = true
			}
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("Dockerfile: the final stage's USER is %q: run as a user other than root (distroless's nonroot is 65532)", user)
	}
	if !certs {
		t.Errorf("Dockerfile: the final stage FROM %s has no CA certificates: use gcr.io/distroless/static, or COPY /etc/ssl/certs/ca-certificates.crt", final.from)
	}
	if ep := dockerEntrypoint(t); copied == "" || ep != copied {
		t.Errorf("Dockerfile: the final stage copies %s (from %s) to %q, and its ENTRYPOINT is %q: they must be the same file", out, build.name, copied, ep)
	}
	for _, st := range stages {
		if st.from == "scratch" || slices.ContainsFunc(stages, func(s dockerStage) bool { return s.name == st.from }) {
			continue
		}
		ref := st.from[strings.LastIndex(st.from, "/")+1:]
		if _, tag, ok := strings.Cut(ref, ":"); !ok || tag == "latest" {
			t.Errorf("Dockerfile: FROM %s is not pinned: give it a tag", st.from)
		}
	}

	// make build-static is the same build, and CI runs it.
	mk, err := os.ReadFile(repoRoot + "/Makefile")
	if err != nil {
		t.Fatal(err)
	}
	recipe := regexp.MustCompile(`(?m)^build-static:.*\n((?:\t.*\n)+)`).FindStringSubmatch(string(mk))
	if recipe == nil {
		t.Fatal("Makefile: no build-static target")
	}
	var mkb goBuild
	found := false
	for l := range strings.SplitSeq(recipe[1], "\n") {
		if g, ok := parseGoBuild(strings.TrimSpace(l), "$(GO)"); ok {
			mkb, found = g, true
		}
	}
	// The output paths differ, and the Dockerfile's GOOS and GOARCH are
	// the target platform's; the rest is the same build.
	delete(mkb.flags, "-o")
	delete(gb.flags, "-o")
	if !found || !slices.Contains(mkb.env, "CGO_ENABLED=0") || fmt.Sprint(mkb.flags) != fmt.Sprint(gb.flags) || !slices.Equal(mkb.pkgs, gb.pkgs) {
		t.Errorf("Makefile build-static: go build env %v flags %v packages %v; the Dockerfile's: CGO_ENABLED=0, flags %v, packages %v: keep them the same build", mkb.env, mkb.flags, mkb.pkgs, gb.flags, gb.pkgs)
	}
	ci, err := os.ReadFile(repoRoot + "/.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^make build-static$`).Match(ci) {
		t.Error(".ci/run does not run make build-static: CI would not build the Dockerfile's binary")
	}

	checkDockerignore(t)
}

// checkDockerignore: no pattern of .dockerignore matches a file the binary
// is built from (go.mod, go.sum, the Go files and embedded files of every
// package of the module that ./cmd/ordo imports), and .git is left out.
func checkDockerignore(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(repoRoot + "/.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for l := range strings.SplitSeq(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "!") || strings.Contains(l, "**") {
			t.Errorf(".dockerignore: %q: keep patterns simple (no ! or **), as this check reads them", l)
		}
		patterns = append(patterns, path.Clean(strings.TrimPrefix(l, "/")))
	}
	if !slices.Contains(patterns, ".git") {
		t.Error(".dockerignore does not leave out .git")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go to list the packages ./cmd/ordo is built from: %v", err)
	}
	cmd := exec.Command(goBin, "list", "-deps", "-f", `{{if .Module}}{{if .Module.Main}}{{.Dir}}|{{join .GoFiles ","}}|{{join .EmbedFiles ","}}{{end}}{{end}}`, "./cmd/ordo")
	cmd.Dir = repoRoot
	listed, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"go.mod", "go.sum"}
	for l := range strings.SplitSeq(strings.TrimSpace(string(listed)), "\n") {
		parts := strings.Split(l, "|")
		if len(parts) != 3 {
			continue
		}
		rel, err := filepath.Rel(root, parts[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range append(strings.Split(parts[1], ","), strings.Split(parts[2], ",")...) {
			if f != "" {
				files = append(files, filepath.ToSlash(filepath.Join(rel, f)))
			}
		}
	}
	if len(files) < 20 {
		t.Fatalf("go list found %d files for ./cmd/ordo: %q", len(files), files)
	}
	for _, f := range files {
		// A pattern leaves out the path it matches and all under it.
		for p := f; p != "."; p = path.Dir(p) {
			for _, pat := range patterns {
				if ok, _ := path.Match(pat, p); ok {
					t.Errorf(".dockerignore: %q leaves out %s, which the Dockerfile's go build reads", pat, f)
				}
			}
		}
	}
}

// withFlag returns args with --name set to value: an existing --name
// (either form) replaced, else appended.
func withFlag(args []string, name, value string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if strings.HasPrefix(a, "--"+name+"=") {
			out[i] = "--" + name + "=" + value
			return out
		}
		if a == "--"+name && i+1 < len(out) {
			out[i+1] = value
			return out
		}
	}
	return append(out, "--"+name, value)
}

var (
	runMetricsLine = regexp.MustCompile(`ordo run: metrics on http://(\S+)/metrics`)
	lagLine        = regexp.MustCompile(`ordo lag serve: .* on http://(\S+)/metrics`)
)

// waitForMatch waits until re matches what buf holds, and returns its first
// group.
func waitForMatch(t *testing.T, buf *syncBuffer, re *regexp.Regexp, what string) string {
	t.Helper()
	var m []string
	waitUntil(t, 20*time.Second, what, func() bool {
		m = re.FindStringSubmatch(buf.String())
		return m != nil
	})
	return m[1]
}

// composeHealthcheck runs a service's healthcheck command (ordo
// healthcheck, after [CMD, ordo]) against addr instead of its host:port.
func composeHealthcheck(t *testing.T, s composeService, addr string) (int, string) {
	t.Helper()
	args := s.Healthcheck.Test[2:]
	u, err := url.Parse(flagValue(args, "url"))
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	var out bytes.Buffer
	code := Main(context.Background(), withFlag(args, "url", u.String()), &out, &out)
	return code, out.String()
}

// The services' ordo commands, as docker-compose.yml writes them, in the
// order compose starts them, against kfake: only the broker address and
// the listen addresses are this machine's (there is no compose network
// here; the tests above check those addresses). The topics one-shot
// creates what the worker needs and exits 0, again at the next `up`; the
// worker, with its mounted config and its environment, consumes and
// commits every record and its healthcheck passes; the lag exporter serves
// the group's lag and its healthcheck passes; on SIGTERM the worker drains
// and exits cleanly.
func TestComposePipelineOnKfake(t *testing.T) {
	c := loadCompose(t)
	b, err := devbroker.Start(devbroker.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	addr := b.Addr()

	// topics, twice: the second finds everything there.
	ts := c.service(t, "topics")
	targs := withFlag(withFlag(ts.Command, "brokers", addr), "dir", topicsDir(t, c))
	for i := range 2 {
		var out bytes.Buffer
		if code := Main(context.Background(), targs, &out, &out); code != 0 {
			t.Fatalf("topics (run %d): ordo %q: exit %d, want 0 (service_completed_successfully):\n%s", i+1, targs, code, out.String())
		}
	}

	// worker
	w := c.service(t, "worker")
	wargs := withFlag(w.Command[1:], "config", w.hostPath(t, "worker", flagValue(w.Command, "config")))
	wargs = withFlag(withFlag(wargs, "brokers", addr), "metrics-addr", "127.0.0.1:0")
	var wout syncBuffer
	wctx, stopWorker := context.WithCancel(context.Background())
	defer stopWorker()
	wcmd := newRunCommand(&RunCmd{Out: &wout, Err: &wout, Environ: w.env})
	wcmd.SetArgs(wargs)
	wcmd.SetOut(io.Discard)
	wcmd.SetErr(io.Discard)
	wdone := make(chan error, 1)
	go func() { wdone <- wcmd.ExecuteContext(wctx) }()
	maddr := waitForMatch(t, &wout, runMetricsLine, "the worker's metrics address")

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 120
	for i := 1; i <= n; i++ {
		v := fmt.Sprintf(`{"customer":"c-%d","seq":%d,"amount_cents":1}`, i%6, (i+5)/6)
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Key: fmt.Appendf(nil, "c-%d", i%6), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	waitUntil(t, 30*time.Second, "the worker commits every record", func() bool {
		offs, err := adm.FetchOffsets(context.Background(), "orders-ledger")
		total := int64(0)
		if err == nil {
			offs.Each(func(o kadm.OffsetResponse) { total += o.At })
		}
		return total == n
	})
	var hcOut string
	waitUntil(t, 20*time.Second, "the worker's healthcheck passes", func() bool {
		var code int
		code, hcOut = composeHealthcheck(t, w, maddr)
		return code == 0
	})
	if !strings.Contains(hcOut, "200 OK") {
		t.Errorf("worker healthcheck: %q", hcOut)
	}

	// lag
	l := c.service(t, "lag")
	largs := withFlag(withFlag(l.Command, "brokers", addr), "addr", "127.0.0.1:0")
	var lout syncBuffer
	lctx, stopLag := context.WithCancel(context.Background())
	defer stopLag()
	ldone := make(chan int, 1)
	go func() { ldone <- Main(lctx, largs, &lout, &lout) }()
	laddr := waitForMatch(t, &lout, lagLine, "the exporter's address")
	if code, out := composeHealthcheck(t, l, laddr); code != 0 {
		t.Errorf("lag healthcheck: exit %d: %s", code, out)
	}
	if body := get(t, "http://"+laddr+"/metrics", 200); !strings.Contains(body, `ordo_consumer_lag_records{group="orders-ledger",partition="0",topic="orders"} 0`) {
		t.Errorf("lag /metrics has no caught-up ordo_consumer_lag_records for orders-ledger:\n%s", body)
	}
	stopLag()
	if code := <-ldone; code != 0 {
		t.Errorf("lag: exit %d:\n%s", code, lout.String())
	}

	stopWorker()
	select {
	case err := <-wdone:
		if err != nil {
			t.Errorf("worker: %v\n%s", err, wout.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the worker did not stop")
	}
	if !strings.Contains(wout.String(), fmt.Sprintf("ordo run: stopped. processed=%d ", n)) {
		t.Errorf("worker output:\n%s", wout.String())
	}
}

// What tells users where things are agrees with docker-compose.yml: every
// localhost port in docs/getting-started.md's compose section, in the
// compose file's header and in what make compose-up prints is a host port
// the stack publishes, and the section's table names every service.
func TestComposeDocsMatchTheStack(t *testing.T) {
	c := loadCompose(t)
	published := map[int]string{}
	for name, s := range c.Services {
		for h := range s.publishedPorts(t, name) {
			published[h] = name
		}
	}
	gs, err := os.ReadFile(repoRoot + "/docs/getting-started.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(gs)
	start := strings.Index(doc, "## With docker compose")
	if start < 0 {
		t.Fatal("docs/getting-started.md has no \"## With docker compose\" section")
	}
	section := doc[start:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	compose, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	header, _, _ := strings.Cut(string(compose), "\nservices:")
	mk, err := os.ReadFile(repoRoot + "/Makefile")
	if err != nil {
		t.Fatal(err)
	}
	up := regexp.MustCompile(`(?m)^compose-up:.*\n((?:\t.*\n)+)`).FindStringSubmatch(string(mk))
	if up == nil {
		t.Fatal("Makefile: no compose-up target")
	}
	hostPort := regexp.MustCompile(`localhost:(\d+)`)
	for src, text := range map[string]string{"docs/getting-started.md": section, "docker-compose.yml's header": header, "make compose-up": up[1]} {
		ms := hostPort.FindAllStringSubmatch(text, -1)
		if len(ms) < 5 {
			t.Errorf("%s names %d localhost ports: want the stack's URLs", src, len(ms))
		}
		for _, m := range ms {
			if _, ok := published[atoi(m[1])]; !ok {
				t.Errorf("%s names localhost:%s, which no service publishes", src, m[1])
			}
		}
	}
	for name := range c.Services {
		if !strings.Contains(section, "| `"+name+"` |") {
			t.Errorf("docs/getting-started.md's compose table does not list the service %s", name)
		}
	}
}
