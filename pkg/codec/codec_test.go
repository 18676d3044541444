package codec_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/codec"
	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/ordotest"
)

type order struct {
	ID    string `json:"id"`
	Cents int64  `json:"cents"`
}

func TestJSON(t *testing.T) {
	ctx := t.Context()
	o, err := codec.JSON[order]().Decode(ctx, []byte(`{"id":"o-1","cents":250,"note":"extra"}`))
	if err != nil || o != (order{ID: "o-1", Cents: 250}) {
		t.Fatalf("%+v, %v", o, err)
	}
	var de *codec.DecodeError
	for _, tc := range []struct {
		dec   codec.Decoder[order]
		value string
		want  string
	}{
		{codec.JSON[order](), `{"id":"o-1","cents":"ten"}`, "decoding json: json: cannot unmarshal string"},
		{codec.JSON[order](), `{"id":`, "decoding json: unexpected end of JSON input"},
		{codec.StrictJSON[order](), `{"id":"o-1","note":"extra"}`, `decoding json: json: unknown field "note"`},
		{codec.StrictJSON[order](), `{"id":"o-1"} {"id":"o-2"}`, "decoding json: data after the value"},
	} {
		_, err := tc.dec.Decode(ctx, []byte(tc.value))
		if !errors.As(err, &de) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Decode(%s): %v, want a *DecodeError starting %q", tc.value, err, tc.want)
		}
	}
}

// Through the engine: a good value reaches the function typed; a bad one
// is dead-lettered at once with its reason, and the function never sees
// it.
func TestProcessorDeadLettersBadPayloadsWithTheirReason(t *testing.T) {
	var got atomic.Int64
	proc := codec.Processor(codec.JSON[order](), func(_ context.Context, _ *kgo.Record, o order) error {
		got.Add(o.Cents)
		return nil
	})
	h := ordotest.New(t, proc, ordotest.Tiers(time.Minute))
	h.WaitDone(h.Produce("k", `{"id":"o-1","cents":250}`))
	if got.Load() != 250 {
		t.Errorf("function saw %d cents", got.Load())
	}
	bad := h.Produce("k", `{"id":"o-2","cents":"ten"}`)
	dl := h.WaitDeadLetter(bad)
	o := h.Outcome(bad)
	if len(o.Calls) != 1 || o.Tier != 0 {
		t.Errorf("a bad payload was retried: %d calls, tier %d", len(o.Calls), o.Tier)
	}
	msg := ordotest.HeaderValue(dl, ordo.HeaderError)
	if ordotest.HeaderValue(dl, ordo.HeaderErrorClass) != "permanent" ||
		!strings.Contains(msg, h.Topic()+"/0@1: decoding json: json: cannot unmarshal string into Go struct field order.cents") {
		t.Errorf("dead letter: class %q, error %q", ordotest.HeaderValue(dl, ordo.HeaderErrorClass), msg)
	}
	if got.Load() != 250 {
		t.Errorf("function saw the bad value: %d cents", got.Load())
	}
}

// An error of the function is the function's: retried, not permanent.
func TestProcessorLeavesTheFunctionsErrorsAlone(t *testing.T) {
	boom := errors.New("ledger down")
	p := codec.Processor(codec.JSON[order](), func(context.Context, *kgo.Record, order) error { return boom })
	err := p.Process(t.Context(), &kgo.Record{Value: []byte(`{}`)})
	if !errors.Is(err, boom) || ordo.ClassOf(err) != ordo.ClassRetryable {
		t.Errorf("%v (class %s)", err, ordo.ClassOf(err))
	}
}
