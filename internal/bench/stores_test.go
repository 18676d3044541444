package bench

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// The store scenarios run small and report both sides; without their
// service they are skipped with a note, not failed.
func TestStoreScenarios(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, tc := range []struct{ name, variable string }{{ScenarioRedisLedger, RedisAddrVar}, {ScenarioPostgresInbox, PostgresDSNVar}} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{Scenarios: []string{tc.name}, StoreRecords: 3000, Rounds: 1}
			if os.Getenv(tc.variable) == "" {
				rep, err := Run(ctx, opts)
				if err != nil || len(rep.Scenarios) != 1 || !strings.Contains(rep.Scenarios[0].Skipped, tc.variable) {
					t.Fatalf("without %s: %+v, %v; want a skipped result naming it", tc.variable, rep, err)
				}
				return
			}
			rep, err := Run(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			r := rep.Scenarios[0]
			if r.Skipped != "" || r.Value <= 0 || r.Baseline <= 0 || r.Ratio <= 0 || r.WriteP50Us <= 0 {
				t.Errorf("result %+v", r)
			}
			var buf bytes.Buffer
			if err := WriteTable(&buf, rep); err != nil || !strings.Contains(buf.String(), "by hand") {
				t.Errorf("table %q, %v", buf.String(), err)
			}
		})
	}
	t.Setenv(RedisAddrVar, "")
	rep, err := Run(ctx, Options{Scenarios: []string{ScenarioRedisLedger}})
	if err != nil || rep.Scenarios[0].Skipped == "" {
		t.Errorf("unset: %+v %v", rep, err)
	}
	var buf bytes.Buffer
	_ = WriteTable(&buf, rep)
	if !strings.Contains(buf.String(), "skipped: "+RedisAddrVar) {
		t.Errorf("table %q does not say why it skipped", buf.String())
	}
}
