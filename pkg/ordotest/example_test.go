package ordotest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/ordotest"
)

// payment is the processor under test: a bad payload is permanent, a
// declined payment is retried later.
func payment(ctx context.Context, r *kgo.Record) error {
	var p struct{ Cents int64 }
	if err := json.Unmarshal(r.Value, &p); err != nil {
		return ordo.Permanent(fmt.Errorf("payload: %w", err))
	}
	if info, _ := ordo.InfoFromContext(ctx); p.Cents > 1000 && info.Tier == 0 {
		return errors.New("card declined")
	}
	return nil
}

// In a test, t is the *testing.T: ordotest.New(t, ...). An Example has
// none, so it runs on a stand-in (exampleT, below).
func Example() {
	t := &exampleT{}
	defer t.cleanup()

	h := ordotest.New(t, ordo.ProcessorFunc(payment), ordotest.MaxAttempts(2), ordotest.Tiers(time.Minute),
		ordotest.Configure(func(c *ordo.Config) { c.Retry.InitialBackoff = time.Second }))

	ok := h.Produce("alice", `{"Cents": 250}`)
	fmt.Println("small payment:", h.WaitDone(ok).State)

	bad := h.Produce("bob", `{"Cents": "ten"}`)
	dl := h.WaitDeadLetter(bad)
	fmt.Println("bad payload:", ordotest.HeaderValue(dl, ordo.HeaderErrorClass), "after", ordotest.HeaderValue(dl, ordo.HeaderAttempt), "call")

	big := h.Produce("carol", `{"Cents": 5000}`)
	h.WaitCalls(big, 1)
	h.Advance(time.Second) // the in-place retry fails too: off to tier 1
	fmt.Println("big payment:", h.Outcome(big).State, h.Outcome(big).Tier)
	h.Advance(time.Minute) // tier 1 is due, and there the payment goes through
	o := h.Outcome(big)
	fmt.Println("a minute later:", o.State, "after", len(o.Calls), "calls")
	// Output:
	// small payment: done
	// bad payload: permanent after 1 call
	// big payment: in tier 1
	// a minute later: done after 3 calls
}

// exampleT stands in for *testing.T in Example: it runs the cleanups at
// the end and panics on a failure.
type exampleT struct{ cleanups []func() }

func (*exampleT) Helper()                           {}
func (*exampleT) Log(...any)                        {}
func (*exampleT) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (*exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) Cleanup(f func())                { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
