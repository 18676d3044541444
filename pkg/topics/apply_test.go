package topics_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/topics"
)

// newCluster starts an in-process kfake broker and returns an admin client
// for it; both are closed when the test ends.
func newCluster(t *testing.T) *kadm.Client {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func ordersSpecs(t *testing.T) []topics.TopicSpec {
	t.Helper()
	set, err := topics.Parse("orders.yaml", []byte(`
topics:
  - name: orders
    partitions: 12
    configs: {retention.ms: "604800000"}
    groups:
      - {name: billing, retry: {delays: [1s, 5s, 30s]}}
  - name: audit
    partitions: 2
    groups: [{name: billing, dlq: false}]
`))
	if err != nil {
		t.Fatal(err)
	}
	return set.Specs()
}

type row struct{ topic, action string }

func rows(rs []topics.Result) []row {
	out := make([]row, 0, len(rs))
	for _, r := range rs {
		out = append(out, row{r.Topic, r.Action})
	}
	return out
}

func partitionCounts(ctx context.Context, t *testing.T, adm *kadm.Client) map[string]int {
	t.Helper()
	details, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]int)
	for name, d := range details {
		out[name] = len(d.Partitions)
	}
	return out
}

var allOrders = []string{"orders", "orders.billing.retry.1", "orders.billing.retry.2", "orders.billing.retry.3", "orders.billing.dlq", "audit"}

func withAction(action string, names ...string) []row {
	out := make([]row, 0, len(names))
	for _, n := range names {
		out = append(out, row{n, action})
	}
	return out
}

func TestApplyCreatesThenExists(t *testing.T) {
	ctx, adm := testContext(t), newCluster(t)
	specs := ordersSpecs(t)

	res, err := topics.Apply(ctx, adm, specs, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rows(res), withAction(topics.ActionCreated, allOrders...); !reflect.DeepEqual(got, want) {
		t.Fatalf("first apply:\n got %v\nwant %v", got, want)
	}
	wantCounts := map[string]int{"orders": 12, "orders.billing.retry.1": 12, "orders.billing.retry.2": 12, "orders.billing.retry.3": 12, "orders.billing.dlq": 12, "audit": 2}
	if got := partitionCounts(ctx, t, adm); !reflect.DeepEqual(got, wantCounts) {
		t.Fatalf("topics after apply: %v, want %v", got, wantCounts)
	}

	// Configs reach the broker, on the derived topics too.
	rc, err := adm.DescribeTopicConfigs(ctx, "orders", "orders.billing.dlq")
	if err != nil {
		t.Fatal(err)
	}
	if len(rc) != 2 {
		t.Fatalf("described %d topics, want 2", len(rc))
	}
	for _, r := range rc {
		got := "<unset>"
		for _, c := range r.Configs {
			if c.Key == "retention.ms" {
				got = c.MaybeValue()
			}
		}
		if r.Err != nil || got != "604800000" {
			t.Errorf("%s retention.ms = %q (err %v); want 604800000", r.Name, got, r.Err)
		}
	}

	res, err = topics.Apply(ctx, adm, specs, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rows(res), withAction(topics.ActionExists, allOrders...); !reflect.DeepEqual(got, want) {
		t.Fatalf("second apply:\n got %v\nwant %v", got, want)
	}
}

func TestApplyDryRun(t *testing.T) {
	ctx, adm := testContext(t), newCluster(t)
	if _, err := adm.CreateTopic(ctx, 12, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}

	res, err := topics.Apply(ctx, adm, ordersSpecs(t), true)
	if err != nil {
		t.Fatal(err)
	}
	want := append(withAction(topics.ActionExists, "orders"), withAction(topics.ActionCreate, allOrders[1:]...)...)
	if got := rows(res); !reflect.DeepEqual(got, want) {
		t.Fatalf("dry run:\n got %v\nwant %v", got, want)
	}
	if got := partitionCounts(ctx, t, adm); !reflect.DeepEqual(got, map[string]int{"orders": 12}) {
		t.Fatalf("dry run changed the cluster: %v", got)
	}
}

func TestApplyDryRunReportsBrokerRefusal(t *testing.T) {
	ctx, adm := testContext(t), newCluster(t)
	specs := []topics.TopicSpec{{Name: "wide", Partitions: 1, ReplicationFactor: 3}} // one broker only

	res, err := topics.Apply(ctx, adm, specs, true)
	if err == nil || len(res) != 1 || res[0].Action != topics.ActionError || res[0].Err == nil {
		t.Fatalf("dry run of an impossible topic: %+v, %v", res, err)
	}
	if got := partitionCounts(ctx, t, adm); len(got) != 0 {
		t.Fatalf("dry run changed the cluster: %v", got)
	}
}

func TestApplyPartitionMismatch(t *testing.T) {
	ctx, adm := testContext(t), newCluster(t)
	if _, err := adm.CreateTopic(ctx, 6, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 24, 1, nil, "audit"); err != nil {
		t.Fatal(err)
	}

	for _, dryRun := range []bool{true, false} {
		res, err := topics.Apply(ctx, adm, ordersSpecs(t), dryRun)
		if err == nil {
			t.Fatalf("dryRun=%v: no error for mismatched partitions", dryRun)
		}
		byTopic := make(map[string]topics.Result)
		for _, r := range res {
			byTopic[r.Topic] = r
		}

		var pm *topics.PartitionMismatchError
		o := byTopic["orders"]
		if o.Action != topics.ActionError || !errors.As(o.Err, &pm) || pm.Existing != 6 || pm.Declared != 12 {
			t.Fatalf("dryRun=%v: orders = %+v", dryRun, o)
		}
		if msg := o.Err.Error(); !strings.Contains(msg, `topic "orders" has 6 partitions but is declared with 12`) {
			t.Errorf("unclear message: %s", msg)
		}
		if !strings.Contains(err.Error(), `topic "orders": topic "orders" has 6 partitions`) {
			t.Errorf("joined error does not name orders: %v", err)
		}
		a := byTopic["audit"]
		if a.Action != topics.ActionError || !errors.As(a.Err, &pm) || pm.Existing != 24 || pm.Declared != 2 {
			t.Fatalf("dryRun=%v: audit = %+v", dryRun, a)
		}

		// The rest of the chain is still handled.
		want := topics.ActionCreated
		if dryRun {
			want = topics.ActionCreate
		}
		for _, n := range []string{"orders.billing.retry.1", "orders.billing.retry.2", "orders.billing.retry.3", "orders.billing.dlq"} {
			if r := byTopic[n]; r.Action != want && r.Action != topics.ActionExists || r.Err != nil {
				t.Errorf("dryRun=%v: %s = %+v", dryRun, n, r)
			}
		}
	}
	// The mismatched topics were left alone.
	got := partitionCounts(ctx, t, adm)
	if got["orders"] != 6 || got["audit"] != 24 {
		t.Fatalf("Apply altered existing topics: %v", got)
	}
}

func TestApplyRejectsBadSpecs(t *testing.T) {
	ctx, adm := testContext(t), newCluster(t)
	specs := []topics.TopicSpec{
		{Name: "ok", Partitions: 1, ReplicationFactor: 1},
		{Name: "bad name", Partitions: 1, ReplicationFactor: 1},
		{Name: "zero", Partitions: 0, ReplicationFactor: 1},
		{Name: "ok", Partitions: 1, ReplicationFactor: 1},
	}
	res, err := topics.Apply(ctx, adm, specs, false)
	if err == nil {
		t.Fatal("no error for bad specs")
	}
	want := []row{{"ok", topics.ActionCreated}, {"bad name", topics.ActionError}, {"zero", topics.ActionError}, {"ok", topics.ActionError}}
	if got := rows(res); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := partitionCounts(ctx, t, adm); !reflect.DeepEqual(got, map[string]int{"ok": 1}) {
		t.Fatalf("cluster: %v", got)
	}

	// Nothing to do is not an error, and does not list every topic.
	if res, err := topics.Apply(ctx, adm, nil, false); res != nil || err != nil {
		t.Fatalf("Apply(nil) = %v, %v", res, err)
	}
	if _, err := topics.Apply(ctx, nil, specs, false); err == nil {
		t.Fatal("Apply with a nil client succeeded")
	}
}
