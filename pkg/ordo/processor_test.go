package ordo

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestChainOrder(t *testing.T) {
	var calls []string
	mw := func(name string) Middleware {
		return func(next Processor) Processor {
			return ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
				calls = append(calls, name+">")
				err := next.Process(ctx, r)
				calls = append(calls, "<"+name)
				return err
			})
		}
	}
	sentinel := errors.New("from p")
	rec := &kgo.Record{Offset: 5}
	p := ProcessorFunc(func(_ context.Context, r *kgo.Record) error {
		if r != rec {
			t.Error("the record did not reach the processor")
		}
		calls = append(calls, "p")
		return sentinel
	})

	err := Chain(p, mw("a"), mw("b"), mw("c")).Process(context.Background(), rec)
	if !errors.Is(err, sentinel) {
		t.Fatalf("Chain returned %v, want the processor's error", err)
	}
	if got, want := strings.Join(calls, " "), "a> b> c> p <c <b <a"; got != want {
		t.Fatalf("call order %q, want %q (mws[0] outermost)", got, want)
	}

	calls = nil
	if err := Chain(p).Process(context.Background(), rec); !errors.Is(err, sentinel) {
		t.Fatalf("Chain(p) returned %v", err)
	}
	if got := strings.Join(calls, " "); got != "p" {
		t.Fatalf("Chain(p) call order %q, want p", got)
	}

	// A middleware may short-circuit: inner ones and p are not called.
	calls = nil
	stop := func(Processor) Processor {
		return ProcessorFunc(func(context.Context, *kgo.Record) error {
			calls = append(calls, "stop")
			return nil
		})
	}
	if err := Chain(p, mw("a"), stop, mw("b")).Process(context.Background(), rec); err != nil {
		t.Fatalf("short-circuited chain returned %v", err)
	}
	if got, want := strings.Join(calls, " "), "a> stop <a"; got != want {
		t.Fatalf("call order %q, want %q", got, want)
	}
}

func TestRecoverPanic(t *testing.T) {
	boomErr := errors.New("boom as error")
	cases := []struct {
		name  string
		value any
		check func(any) bool
	}{
		{"string", "boom", func(v any) bool { return v == "boom" }},
		{"error", boomErr, func(v any) bool { e, ok := v.(error); return ok && errors.Is(e, boomErr) }},
		{"int", 42, func(v any) bool { return v == 42 }},
		{"nil", nil, func(v any) bool {
			// Since Go 1.21, panic(nil) panics with *runtime.PanicNilError.
			_, ok := v.(*runtime.PanicNilError)
			return ok
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Recover(ProcessorFunc(func(context.Context, *kgo.Record) error {
				panic(c.value)
			}))
			err := p.Process(context.Background(), &kgo.Record{})
			var pe *PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("Recover returned %T %v, want *PanicError", err, err)
			}
			if !c.check(pe.Value) {
				t.Fatalf("PanicError.Value = %#v, want %#v", pe.Value, c.value)
			}
			if len(pe.Stack) == 0 {
				t.Fatal("PanicError.Stack is empty")
			}
			if !bytes.Contains(pe.Stack, []byte("TestRecoverPanic")) {
				t.Fatalf("PanicError.Stack does not show the panicking test:\n%s", pe.Stack)
			}
			if !strings.HasPrefix(err.Error(), "processor panic: ") {
				t.Fatalf("Error() = %q", err.Error())
			}
			if classify(err) != ClassPanic {
				t.Fatalf("classify = %q, want panic", classify(err))
			}
		})
	}
}

func TestRecoverPassesThrough(t *testing.T) {
	sentinel := errors.New("plain")
	perm := Permanent(sentinel)
	type ctxKey struct{}
	ctx := context.WithValue(context.Background(), ctxKey{}, "v")
	rec := &kgo.Record{Offset: 9}
	for _, want := range []error{nil, sentinel, perm, context.DeadlineExceeded} {
		calls := 0
		p := Recover(ProcessorFunc(func(gotCtx context.Context, r *kgo.Record) error {
			calls++
			if gotCtx.Value(ctxKey{}) != "v" || r != rec {
				t.Error("Recover did not pass the context and record through")
			}
			return want
		}))
		if got := p.Process(ctx, rec); !errors.Is(got, want) {
			t.Fatalf("Recover changed %v into %v", want, got)
		}
		if calls != 1 {
			t.Fatalf("processor called %d times", calls)
		}
	}
	// Recover as a Middleware in a Chain.
	if err := Chain(ProcessorFunc(func(context.Context, *kgo.Record) error { panic("x") }), Recover).
		Process(ctx, rec); err == nil {
		t.Fatal("Chain(p, Recover) let a panic through as nil")
	}
}

func TestProcessorFunc(t *testing.T) {
	type ctxKey struct{}
	ctx := context.WithValue(context.Background(), ctxKey{}, 1)
	rec := &kgo.Record{Key: []byte("k")}
	sentinel := errors.New("x")
	var p Processor = ProcessorFunc(func(c context.Context, r *kgo.Record) error {
		if c.Value(ctxKey{}) != 1 || r != rec {
			t.Error("ProcessorFunc did not pass its arguments")
		}
		return sentinel
	})
	if err := p.Process(ctx, rec); !errors.Is(err, sentinel) {
		t.Fatalf("Process returned %v", err)
	}
}

func TestInfoFromContext(t *testing.T) {
	if info, ok := InfoFromContext(context.Background()); ok || info != (RecordInfo{}) {
		t.Fatalf("InfoFromContext(Background) = %+v, %v", info, ok)
	}
	// A value of another type under another key, and a nil *work.
	type otherKey struct{}
	ctx := context.WithValue(context.Background(), otherKey{}, &work{})
	if _, ok := InfoFromContext(ctx); ok {
		t.Fatal("InfoFromContext found info under a foreign key")
	}

	l := &lane{cfg: &laneConfig{group: "payments"}, epoch: 7}
	w := &work{lane: l, attempt: 3}
	ctx = context.WithValue(context.Background(), infoKey{}, w)
	info, ok := InfoFromContext(ctx)
	if !ok || info != (RecordInfo{Attempt: 3, Group: "payments", LaneEpoch: 7}) {
		t.Fatalf("InfoFromContext = %+v, %v", info, ok)
	}
	// It reads the attempt at call time.
	w.attempt = 4
	if info, _ := InfoFromContext(ctx); info.Attempt != 4 {
		t.Fatalf("Attempt = %d after the retry, want 4", info.Attempt)
	}
	// Derived contexts keep it.
	dctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	if _, ok := InfoFromContext(dctx); !ok {
		t.Fatal("InfoFromContext lost the info in a derived context")
	}
}

// fixedClock is a Clock that always reads the same instant.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }
func (c fixedClock) AfterFunc(time.Duration, func()) Timer {
	panic("fixedClock.AfterFunc is not used by dlqRecord")
}

func headerValues(hs []kgo.RecordHeader, key string) []string {
	var out []string
	for _, h := range hs {
		if h.Key == key {
			out = append(out, string(h.Value))
		}
	}
	return out
}

func TestDLQRecord(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c := newTestRouter(Config{Group: "billing-group", ProcessorName: "invoicer", Clock: fixedClock{now}}.withDefaults())
	ts := time.UnixMilli(1_700_000_000_123)
	src := &kgo.Record{
		Topic:     "orders",
		Partition: 3,
		Offset:    4242,
		Timestamp: ts,
		Key:       []byte("customer-1"),
		Value:     []byte(`{"amount":10}`),
		Headers: []kgo.RecordHeader{
			{Key: "trace-id", Value: []byte("abc")},
			{Key: HeaderAttempt, Value: []byte("99")},         // forged: dropped
			{Key: HeaderError, Value: []byte("forged")},       // forged: dropped
			{Key: HeaderOriginalTopic, Value: []byte("evil")}, // forged: dropped
			{Key: "ordo-custom", Value: []byte("x")},          // any ordo- prefix: dropped
			{Key: "ordo-", Value: []byte("x")},                // the bare prefix: dropped
			{Key: "ORDO-Error", Value: []byte("forged")},      // the prefix in another case: dropped
			{Key: "Ordo-Attempt", Value: []byte("7")},         // likewise
			{Key: "ordo", Value: []byte("short")},             // not the prefix: kept
			{Key: "x-ordo-attempt", Value: []byte("1")},       // prefix elsewhere: kept
			{Key: "trace-id", Value: []byte("def")},           // repeated foreign: kept
			{Key: "", Value: nil},                             // empty key: kept
		},
	}
	w := &work{rec: src, attempt: 3, lastErr: errors.New("boom"), cut: -1}
	out := c.outRecord(w, action{kind: actDLQ, class: ClassRetryable})

	if out.Topic != "orders.billing-group.dlq" {
		t.Errorf("Topic = %q, want orders.billing-group.dlq (the group's own)", out.Topic)
	}
	if !bytes.Equal(out.Key, src.Key) || !bytes.Equal(out.Value, src.Value) {
		t.Errorf("key/value = %q/%q, want %q/%q", out.Key, out.Value, src.Key, src.Value)
	}
	if !out.Timestamp.Equal(now) {
		t.Errorf("Timestamp = %v, want the clock's %v", out.Timestamp, now)
	}

	// Foreign headers first, in order.
	var foreign []string
	for _, h := range out.Headers {
		if !strings.HasPrefix(h.Key, headerPrefix) {
			foreign = append(foreign, h.Key+"="+string(h.Value))
		}
	}
	if got, want := strings.Join(foreign, ","), "trace-id=abc,ordo=short,x-ordo-attempt=1,trace-id=def,="; got != want {
		t.Errorf("foreign headers %q, want %q", got, want)
	}

	want := map[string]string{
		HeaderOriginalTopic:     "orders",
		HeaderOriginalPartition: "3",
		HeaderOriginalOffset:    "4242",
		HeaderOriginalTimestamp: strconv.FormatInt(ts.UnixMilli(), 10),
		HeaderAttempt:           "3",
		HeaderError:             "boom",
		HeaderErrorClass:        "retryable",
		HeaderGroup:             "billing-group",
		HeaderProcessor:         "invoicer",
	}
	if want[HeaderOriginalTimestamp] != "1700000000123" {
		t.Fatalf("test setup: timestamp %s", want[HeaderOriginalTimestamp])
	}
	ordoHeaders := 0
	for _, h := range out.Headers {
		if strings.HasPrefix(h.Key, headerPrefix) {
			ordoHeaders++
			if _, ok := want[h.Key]; !ok {
				t.Errorf("unexpected ordo header %s=%q", h.Key, h.Value)
			}
		}
	}
	if ordoHeaders != len(want) {
		t.Errorf("%d ordo- headers, want %d: %v", ordoHeaders, len(want), out.Headers)
	}
	for k, v := range want {
		got := headerValues(out.Headers, k)
		if len(got) != 1 || got[0] != v {
			t.Errorf("header %s = %q, want exactly [%q]", k, got, v)
		}
	}
	// The source record is not modified.
	if len(src.Headers) != 12 || string(src.Headers[1].Value) != "99" || src.Topic != "orders" {
		t.Error("outRecord modified the source record")
	}
}

func TestDLQRecordClassesAndDefaults(t *testing.T) {
	c := newTestRouter(Config{Group: "g"}.withDefaults())
	src := &kgo.Record{Topic: "t", Partition: 0, Offset: 0, Timestamp: time.UnixMilli(0)}
	for _, class := range []ErrorClass{ClassRetryable, ClassPermanent, ClassPanic, ClassTimeout} {
		out := c.outRecord(&work{rec: src, attempt: 1, lastErr: errors.New("e"), cut: -1}, action{kind: actDLQ, class: class})
		if got := headerValues(out.Headers, HeaderErrorClass); len(got) != 1 || got[0] != string(class) {
			t.Errorf("class header %q, want %q", got, class)
		}
	}
	out := c.outRecord(&work{rec: src, attempt: 1, cut: -1}, action{kind: actDLQ, class: ClassRetryable})
	if got := headerValues(out.Headers, HeaderError); len(got) != 1 || got[0] != "unknown error" {
		t.Errorf("error header with no error = %q, want unknown error", got)
	}
	if got := headerValues(out.Headers, HeaderProcessor); len(got) != 1 || got[0] != DefaultProcessorName {
		t.Errorf("processor header = %q, want the default name", got)
	}
	if got := headerValues(out.Headers, HeaderOriginalTimestamp); len(got) != 1 || got[0] != "0" {
		t.Errorf("timestamp header = %q, want 0", got)
	}
	if out.Key != nil || out.Value != nil {
		t.Errorf("nil key/value became %q/%q", out.Key, out.Value)
	}
	if out.Timestamp.IsZero() {
		t.Error("DLQ record has no timestamp")
	}

	// A custom dead-letter topic name.
	c = newTestRouter(Config{Group: "g", Naming: Naming{DLQTemplate: "dead-{topic}-{group}"}}.withDefaults())
	if out := c.outRecord(&work{rec: src, attempt: 1, cut: -1}, action{kind: actDLQ, class: ClassPermanent}); out.Topic != "dead-t-g" {
		t.Errorf("Topic = %q, want dead-t-g", out.Topic)
	}
}

func TestDLQRecordErrorTruncated(t *testing.T) {
	c := newTestRouter(Config{Group: "g"}.withDefaults())
	src := &kgo.Record{Topic: "t"}
	for _, n := range []int{0, 1, maxErrorHeader - 1, maxErrorHeader, maxErrorHeader + 1, 3 * maxErrorHeader, 1 << 20} {
		text := strings.Repeat("x", n)
		out := c.outRecord(&work{rec: src, attempt: 1, lastErr: errors.New(text), cut: -1}, action{kind: actDLQ, class: ClassRetryable})
		got := headerValues(out.Headers, HeaderError)
		if len(got) != 1 {
			t.Fatalf("error header %d times", len(got))
		}
		wantLen := min(n, maxErrorHeader)
		if len(got[0]) != wantLen || got[0] != text[:wantLen] {
			t.Fatalf("error of %d bytes: header of %d bytes, want the first %d", n, len(got[0]), wantLen)
		}
	}
	if maxErrorHeader != 4096 {
		t.Fatalf("maxErrorHeader = %d, want 4096", maxErrorHeader)
	}
	// Multi-byte text is cut to at most 4096 bytes too.
	text := strings.Repeat("€", 2000) // 6000 bytes
	out := c.outRecord(&work{rec: src, attempt: 1, lastErr: errors.New(text), cut: -1}, action{kind: actDLQ, class: ClassRetryable})
	if got := headerValues(out.Headers, HeaderError)[0]; len(got) > maxErrorHeader || !strings.HasPrefix(text, got) {
		t.Fatalf("multi-byte error header of %d bytes is not a prefix of at most %d", len(got), maxErrorHeader)
	}
}

func TestWorkDequeFIFO(t *testing.T) {
	var d workDeque
	if d.popFront() != nil {
		t.Fatal("popFront on an empty deque returned a record")
	}
	ws := make([]*work, 100)
	for i := range ws {
		ws[i] = &work{attempt: i}
	}
	// pushFront on an empty, unallocated deque.
	d.pushFront(ws[0])
	if got := d.popFront(); got != ws[0] {
		t.Fatal("pushFront then popFront lost the record")
	}
	// Wraparound: fill, drain most, refill past the end, then grow while
	// wrapped.
	for i := 0; i < 10; i++ {
		d.pushBack(ws[i])
	}
	for i := 0; i < 8; i++ {
		if got := d.popFront(); got != ws[i] {
			t.Fatalf("pop %d: got attempt %d", i, got.attempt)
		}
	}
	for i := 10; i < 60; i++ {
		d.pushBack(ws[i])
	}
	d.pushFront(ws[99]) // a retry jumps the queue
	d.pushFront(ws[98])
	want := append([]*work{ws[98], ws[99], ws[8], ws[9]}, ws[10:60]...)
	for i, w := range want {
		if got := d.popFront(); got != w {
			t.Fatalf("pop %d: got attempt %d, want %d", i, got.attempt, w.attempt)
		}
	}
	if d.popFront() != nil || d.n != 0 {
		t.Fatal("deque not empty after draining")
	}
	for i, w := range d.buf {
		if w != nil {
			t.Fatalf("slot %d still references a popped record", i)
		}
	}
}

func TestWorkDequeModel(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		var d workDeque
		var model []*work
		id := 0
		for step := 0; step < 5000; step++ {
			// Phases that mostly push, then mostly pop, so the deque grows
			// through several sizes and wraps in each.
			pushBias := 60
			if (step/500)%2 == 1 {
				pushBias = 35
			}
			switch r := rng.IntN(100); {
			case r < pushBias/2:
				w := &work{attempt: id}
				id++
				d.pushBack(w)
				model = append(model, w)
			case r < pushBias:
				w := &work{attempt: id}
				id++
				d.pushFront(w)
				model = append([]*work{w}, model...)
			default:
				got := d.popFront()
				var want *work
				if len(model) > 0 {
					want, model = model[0], model[1:]
				}
				if got != want {
					t.Fatalf("seed %d step %d: popFront = %v, want %v", seed, step, got, want)
				}
			}
			if d.n != len(model) {
				t.Fatalf("seed %d step %d: n = %d, want %d", seed, step, d.n, len(model))
			}
			if d.n > len(d.buf) || (len(d.buf) > 0 && (d.head < 0 || d.head >= len(d.buf))) {
				t.Fatalf("seed %d step %d: head %d n %d len %d", seed, step, d.head, d.n, len(d.buf))
			}
		}
		// The deque's contents, in order, equal the model's.
		for i, want := range model {
			if got := d.buf[(d.head+i)%len(d.buf)]; got != want {
				t.Fatalf("seed %d: element %d differs", seed, i)
			}
		}
		for len(model) > 0 {
			if got := d.popFront(); got != model[0] {
				t.Fatalf("seed %d: drain order differs", seed)
			}
			model = model[1:]
		}
		if d.popFront() != nil {
			t.Fatalf("seed %d: deque not empty after draining", seed)
		}
	}
}

// Regression: truncating a long error keeps ordo-error valid UTF-8.
func TestDLQRecordErrorTruncationKeepsUTF8(t *testing.T) {
	c := newTestRouter(Config{Group: "g"}.withDefaults())
	w := &work{rec: &kgo.Record{Topic: "t"}, attempt: 1, lastErr: errors.New(strings.Repeat("€", 2000)), cut: -1}
	r := c.outRecord(w, action{kind: actDLQ, class: ClassRetryable})
	for _, h := range r.Headers {
		if h.Key == HeaderError && (!utf8.Valid(h.Value) || len(h.Value) > maxErrorHeader) {
			t.Fatalf("ordo-error is %d bytes, valid UTF-8 %v", len(h.Value), utf8.Valid(h.Value))
		}
	}
}

func newTestRouter(cfg Config) *router { return newRouter(&cfg) }
