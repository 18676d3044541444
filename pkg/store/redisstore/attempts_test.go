package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/ordokafka/ordo/internal/testenv"
	"github.com/ordokafka/ordo/pkg/store/redisstore"
)

// TestAttempts: Begin reports the calls that began and never ended, and
// counts those that ran alone; End forgets the record; a left-over hash
// expires.
func TestAttempts(t *testing.T) {
	rdb := testenv.Redis(t)
	a := redisstore.NewAttempts(rdb, redisstore.AttemptsOptions{Prefix: "ordotest:" + testenv.Name(t) + ":", TTL: time.Minute})
	ctx := context.Background()
	step := func(alone bool, wantAlone int, wantCrashed bool) {
		t.Helper()
		n, crashed, err := a.Begin(ctx, "g/t/0/7/0", alone)
		if err != nil || n != wantAlone || crashed != wantCrashed {
			t.Fatalf("Begin(alone=%v) = %d, %v, %v; want %d, %v", alone, n, crashed, err, wantAlone, wantCrashed)
		}
	}
	step(false, 0, false) // the first call, beside others: then the process dies
	step(true, 0, true)   // a suspect: runs alone, and dies too
	step(true, 1, true)   // one crash alone so far
	if err := a.End(ctx, "g/t/0/7/0"); err != nil {
		t.Fatal(err)
	}
	step(false, 0, false) // ended: the record starts clean
	ttl := rdb.PTTL(ctx, a.Key("g/t/0/7/0")).Val()
	if ttl <= 0 || ttl > time.Minute {
		t.Errorf("TTL of a began call %v, want within a minute", ttl)
	}
}
