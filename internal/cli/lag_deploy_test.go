package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/ordokafka/ordo/pkg/lag"
	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/topics"
)

const deployDir = "../../deploy"

// allowedByName are metrics the dashboard and the alerts may name that no
// package here exports yet: ordo_breaker_state comes with the store and
// breaker middleware (gobreaker's states: 0 closed, 1 half-open, 2 open).
var allowedByName = []string{"ordo_breaker_state"}

// yamlDocs decodes every document of a YAML file.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

// at walks m along path ("spec.triggers.0.metadata": keys of mappings,
// indexes of lists); nil if absent.
func at(m any, path string) any {
	for k := range strings.SplitSeq(path, ".") {
		switch v := m.(type) {
		case map[string]any:
			m = v[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(v) {
				return nil
			}
			m = v[i]
		default:
			return nil
		}
	}
	return m
}

// adapterConfig is the Prometheus Adapter's config.yaml in its ConfigMap.
func adapterConfig(cm map[string]any) string {
	data, _ := cm["data"].(map[string]any)
	s, _ := data["config.yaml"].(string)
	return s
}

// Every YAML file under deploy/ parses; every Kubernetes manifest has the
// apiVersion and kind it is meant to have, and no manifest goes unchecked.
// The settings the docs promise are there: KEDA's kafka trigger at 50
// records per replica, scale-up window 0 and scale-down window 300 s, no
// more replicas than orders has partitions, the probes on /healthz and
// /readyz, and the exporter's arguments accepted by `ordo lag serve`.
func TestDeployManifests(t *testing.T) {
	want := map[string][][2]string{
		"keda/scaledobject-kafka.yaml":      {{"keda.sh/v1alpha1", "ScaledObject"}},
		"keda/scaledobject-prometheus.yaml": {{"keda.sh/v1alpha1", "ScaledObject"}},
		"hpa/hpa.yaml":                      {{"autoscaling/v2", "HorizontalPodAutoscaler"}},
		"hpa/prometheus-adapter.yaml":       {{"v1", "ConfigMap"}},
		"k8s/worker.yaml":                   {{"apps/v1", "Deployment"}},
		"k8s/lag-exporter.yaml":             {{"apps/v1", "Deployment"}, {"v1", "Service"}},
	}
	docs := map[string][]map[string]any{}
	err := filepath.WalkDir(deployDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml") {
			return err
		}
		rel, _ := filepath.Rel(deployDir, path)
		docs[filepath.ToSlash(rel)] = yamlDocs(t, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for rel, ds := range docs {
		kinds, ok := want[rel]
		if !ok {
			if strings.HasPrefix(rel, "keda/") || strings.HasPrefix(rel, "hpa/") || strings.HasPrefix(rel, "k8s/") {
				t.Errorf("%s: a manifest this test does not know: add it to want", rel)
			}
			continue
		}
		var got [][2]string
		for _, d := range ds {
			av, _ := d["apiVersion"].(string)
			k, _ := d["kind"].(string)
			got = append(got, [2]string{av, k})
		}
		if !slices.Equal(got, kinds) {
			t.Errorf("%s: apiVersion/kind %v, want %v", rel, got, kinds)
		}
	}
	for rel := range want {
		if _, ok := docs[rel]; !ok {
			t.Errorf("deploy/%s is missing", rel)
		}
	}

	set, err := topics.Load("../../topics")
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := set.Lookup("orders")
	partitions := int(spec.Partitions)

	kafka := docs["keda/scaledobject-kafka.yaml"][0]
	if tr := at(kafka, "spec.triggers.0"); at(tr, "type") != "kafka" || at(tr, "metadata.lagThreshold") != "50" ||
		at(tr, "metadata.consumerGroup") != "orders-ledger" || at(tr, "metadata.topic") != "orders" {
		t.Errorf("kafka trigger %v", tr)
	}
	prom := docs["keda/scaledobject-prometheus.yaml"][0]
	if tr := at(prom, "spec.triggers.0"); at(tr, "type") != "prometheus" || at(tr, "metricType") != "Value" ||
		!strings.Contains(at(tr, "metadata.query").(string), "ordo_consumer_lag_seconds") {
		t.Errorf("prometheus trigger %v", tr)
	}
	for _, so := range []map[string]any{kafka, prom} {
		b := "spec.advanced.horizontalPodAutoscalerConfig.behavior."
		if at(so, "spec.cooldownPeriod") == nil || at(so, b+"scaleUp.stabilizationWindowSeconds") != 0 ||
			at(so, b+"scaleDown.stabilizationWindowSeconds") != 300 || at(so, "spec.maxReplicaCount") != partitions ||
			at(so, "spec.scaleTargetRef.name") != "orders-ledger" {
			t.Errorf("%v: cooldown, windows 0/300, maxReplicaCount %d (the partitions of orders), target orders-ledger", at(so, "metadata.name"), partitions)
		}
	}
	hpa := docs["hpa/hpa.yaml"][0]
	if at(hpa, "spec.behavior.scaleUp.stabilizationWindowSeconds") != 0 || at(hpa, "spec.behavior.scaleDown.stabilizationWindowSeconds") != 300 ||
		at(hpa, "spec.maxReplicas") != partitions || at(hpa, "spec.scaleTargetRef.name") != "orders-ledger" {
		t.Errorf("hpa: windows 0/300 and maxReplicas %d wanted: %v", partitions, hpa["spec"])
	}
	// The adapter serves every external metric the HPA asks for.
	var adapter struct {
		ExternalRules []struct {
			SeriesQuery  string `yaml:"seriesQuery"`
			MetricsQuery string `yaml:"metricsQuery"`
			Name         struct {
				As string `yaml:"as"`
			} `yaml:"name"`
		} `yaml:"externalRules"`
	}
	if err := yaml.Unmarshal([]byte(adapterConfig(docs["hpa/prometheus-adapter.yaml"][0])), &adapter); err != nil {
		t.Fatalf("prometheus-adapter config.yaml: %v", err)
	}
	var served []string
	for _, r := range adapter.ExternalRules {
		served = append(served, r.Name.As)
	}
	metrics, _ := at(hpa, "spec.metrics").([]any)
	if len(metrics) == 0 {
		t.Error("hpa: no metrics")
	}
	for _, m := range metrics {
		if name, _ := at(m, "external.metric.name").(string); !slices.Contains(served, name) {
			t.Errorf("hpa asks for %q, the adapter serves %v", name, served)
		}
	}

	for _, rel := range []string{"k8s/worker.yaml", "k8s/lag-exporter.yaml"} {
		c := at(docs[rel][0], "spec.template.spec.containers.0")
		if at(c, "livenessProbe.httpGet.path") != "/healthz" || at(c, "readinessProbe.httpGet.path") != "/readyz" {
			t.Errorf("%s: probes %v %v", rel, at(c, "livenessProbe"), at(c, "readinessProbe"))
		}
	}
	// The exporter's arguments are a valid `ordo lag serve`.
	args, _ := at(docs["k8s/lag-exporter.yaml"][0], "spec.template.spec.containers.0.args").([]any)
	var sargs []string
	for _, a := range args {
		sargs = append(sargs, a.(string))
	}
	if len(sargs) < 2 || sargs[0] != "lag" || sargs[1] != "serve" {
		t.Fatalf("exporter args %q", sargs)
	}
	ls := &LagServeCmd{}
	if err := newLagServeCommand(ls, io.Discard).ParseFlags(sargs[2:]); err != nil {
		t.Fatalf("exporter args %q: %v", sargs, err)
	}
	if err := ls.Validate(); err != nil {
		t.Errorf("exporter args %q: %v", sargs, err)
	}
	if !slices.Equal(ls.Groups, []string{"orders-ledger"}) || !slices.Equal(ls.Topics, []string{"orders"}) {
		t.Errorf("exporter: groups %q topics %q", ls.Groups, ls.Topics)
	}
}

// exportedMetrics are the metric names Ordo's processes export, gathered
// from real registries: a consumer's (pkg/ordo) that processed and
// dead-lettered records on kfake, with the lag collector (pkg/lag) on it
// and the Go and process collectors, as `ordo dev` and `ordo run` serve
// them; and the name of each histogram's series (_bucket, _sum, _count).
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders", ordo.DefaultNaming.DLQTopic("orders", "g")))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	addrs := cluster.ListenAddrs()
	prod, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for _, v := range []string{"ok", "bad", "ok"} {
		if err := prod.ProduceSync(context.Background(), &kgo.Record{Key: []byte(v), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := ordo.New(ordo.Config{Brokers: addrs, Group: "g", Topics: []string{"orders"}, CommitInterval: 50 * time.Millisecond,
		Processor: ordo.ProcessorFunc(func(_ context.Context, r *kgo.Record) error {
			if string(r.Value) == "bad" {
				return ordo.Permanent(errors.New("bad"))
			}
			return nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	reg := cons.Registry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	lc, err := lag.New(lag.Config{Brokers: addrs, Groups: []string{"g"}, Topics: []string{"orders"}, Window: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	reg.MustRegister(lc)
	if err := cons.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = cons.Stop(ctx)
	}()
	names := map[string]bool{}
	gather := func() {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			names[mf.GetName()] = true
			if mf.GetType() == dto.MetricType_HISTOGRAM {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					names[mf.GetName()+s] = true
				}
			}
		}
	}
	waitUntil(t, 15*time.Second, "records processed, dead-lettered and committed", func() bool {
		s := cons.Stats()
		gather()
		return s.Processed == 2 && s.DeadLettered == 1 && names["ordo_commits_total"] && names[lag.MetricStatus]
	})
	for _, n := range allowedByName {
		names[n] = true
	}
	return names
}

var (
	// prefixed are the names of Ordo's, Go's and the process's metrics.
	prefixed = regexp.MustCompile(`\b(?:ordo|go|process)_[a-z0-9_]+\b`)
	// selected is any name written before a label selector: name{...}.
	selected = regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{`)
)

// namesIn returns the metric names a PromQL expression names.
func namesIn(expr string) []string {
	expr = regexp.MustCompile(`"[^"]*"`).ReplaceAllString(expr, `""`) // label values are not names
	out := prefixed.FindAllString(expr, -1)
	for _, m := range selected.FindAllStringSubmatch(expr, -1) {
		if m[1] != "by" && m[1] != "without" {
			out = append(out, m[1])
		}
	}
	return out
}

// exprs collects the strings under the keys "expr", "query" and
// "definition" anywhere in v (a decoded JSON or YAML document).
func exprs(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && (k == "expr" || k == "query" || k == "definition") {
				*out = append(*out, s)
			}
			exprs(e, out)
		}
	case []any:
		for _, e := range v {
			exprs(e, out)
		}
	}
}

// The Grafana dashboard's queries, the alert rules, the KEDA prometheus
// trigger and the Prometheus Adapter's rules name only metrics that Ordo
// exports (gathered from real registries), or ordo_breaker_state, allowed
// by name until the breaker middleware exports it.
func TestDashboardAndAlertsNameOnlyExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	for _, n := range []string{lag.MetricLagRecords, lag.MetricLagSeconds, lag.MetricStatus, "ordo_records_total", "ordo_member_lag_records"} {
		if !exported[n] {
			t.Fatalf("%s not gathered: the registries are not what the test thinks (got %v)", n, exported)
		}
	}
	sources := map[string][]string{}

	b, err := os.ReadFile(deployDir + "/grafana/dashboards/ordo.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	var es []string
	exprs(dash, &es)
	sources["grafana/dashboards/ordo.json"] = es
	if len(es) < 10 {
		t.Errorf("dashboard: %d queries found, want the panels' (>= 10)", len(es))
	}

	var alerts []string
	for _, d := range yamlDocs(t, deployDir+"/prometheus/alerts.yml") {
		var names []string
		for _, g := range d["groups"].([]any) {
			for _, r := range at(g, "rules").([]any) {
				alerts = append(alerts, at(r, "expr").(string))
				names = append(names, at(r, "alert").(string))
			}
		}
		for _, w := range []string{"OrdoLagAge", "OrdoDeadLettersGrowing", "OrdoPartitionStalled", "OrdoBreakerOpen"} {
			if !slices.Contains(names, w) {
				t.Errorf("alerts.yml has no %s (has %v)", w, names)
			}
		}
	}
	sources["prometheus/alerts.yml"] = alerts
	var keda []string
	exprs(yamlDocs(t, deployDir+"/keda/scaledobject-prometheus.yaml")[0], &keda)
	sources["keda/scaledobject-prometheus.yaml"] = keda
	adapterCM := yamlDocs(t, deployDir+"/hpa/prometheus-adapter.yaml")[0]
	sources["hpa/prometheus-adapter.yaml"] = []string{adapterConfig(adapterCM)}

	for src, es := range sources {
		if len(es) == 0 {
			t.Errorf("%s: no query found", src)
		}
		for _, e := range es {
			names := namesIn(e)
			if len(names) == 0 && src != "hpa/prometheus-adapter.yaml" {
				t.Errorf("%s: %q names no metric", src, e)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("%s: %q names %s, which Ordo does not export", src, e, n)
				}
			}
		}
	}
}

// The compose file mounts what Prometheus and Grafana are configured to
// read: the alert rules at the path of rule_files, the dashboards at the
// provider's path.
func TestComposeProvisionsDashboardAndAlerts(t *testing.T) {
	compose := yamlDocs(t, "../../docker-compose.yml")[0]
	volumes := func(svc string) []string {
		var out []string
		for _, v := range at(compose, "services."+svc+".volumes").([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	prom := yamlDocs(t, deployDir+"/prometheus/prometheus.yml")[0]
	for _, rf := range prom["rule_files"].([]any) {
		mount := "./deploy/prometheus/alerts.yml:" + rf.(string) + ":ro"
		if !slices.Contains(volumes("prometheus"), mount) {
			t.Errorf("prometheus reads %s; compose mounts %v", rf, volumes("prometheus"))
		}
	}
	prov := yamlDocs(t, deployDir+"/grafana/provisioning/dashboards/ordo.yml")[0]
	path := at(prov, "providers.0.options.path").(string)
	if mount := "./deploy/grafana/dashboards:" + path + ":ro"; !slices.Contains(volumes("grafana"), mount) {
		t.Errorf("grafana reads dashboards from %s; compose mounts %v", path, volumes("grafana"))
	}
	if _, err := os.Stat(deployDir + "/grafana/dashboards/ordo.json"); err != nil {
		t.Error(err)
	}
}

// docs/metrics.md lists every metric of pkg/lag, and docs/README.md links
// docs/scaling.md.
func TestDocsListLagMetrics(t *testing.T) {
	b, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{lag.MetricLagRecords, lag.MetricLagSeconds, lag.MetricStatus, lag.MetricScrapeErrors, lag.MetricScrapeDuration} {
		if !strings.Contains(string(b), "`"+m+"`") {
			t.Errorf("docs/metrics.md does not list %s", m)
		}
	}
	idx, err := os.ReadFile("../../docs/README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(idx), "(scaling.md)") {
		t.Error("docs/README.md does not link scaling.md")
	}
}
