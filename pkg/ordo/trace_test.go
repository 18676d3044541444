package ordo_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// TestTraceTravelsIntoTheProcessorAndTheRetryChain: with franz-go's kotel
// hooks (through KgoOpts), the trace a record carries in its headers
// reaches the processor's context, on the source topic and again on the
// retry tier its failure goes to, and its dead letter carries it on.
func TestTraceTravelsIntoTheProcessorAndTheRetryChain(t *testing.T) {
	const group = "g"
	c := newCluster(t, 1, chainTopics("t", group, 1)...)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tracer := kotel.NewTracer(kotel.TracerProvider(tp), kotel.TracerPropagator(propagation.TraceContext{}))
	hooks := kotel.NewKotel(kotel.WithTracer(tracer)).Hooks()

	// Produce inside a span: its trace goes into the record's headers.
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.WithHooks(hooks...))
	if err != nil {
		t.Fatal(err)
	}
	ctx, span := tp.Tracer("test").Start(context.Background(), "order placed")
	want := span.SpanContext().TraceID()
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	span.End()
	prod.Close()

	seen := make(chan [2]any, 4)
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		info, _ := ordo.InfoFromContext(ctx)
		seen <- [2]any{info.Tier, trace.SpanContextFromContext(ctx).TraceID()}
		return errors.New("fails everywhere")
	})
	cfg := baseConfig(c.ListenAddrs(), group, proc, "t")
	cfg.Retry = ordo.RetryPolicy{MaxAttempts: 1, Tiers: []time.Duration{10 * time.Millisecond}}
	cfg.KgoOpts = append(cfg.KgoOpts, kgo.WithHooks(hooks...))
	cons := startConsumer(t, cfg)
	for tier := range 2 {
		select {
		case got := <-seen:
			if got[0] != tier || got[1] != want {
				t.Errorf("call on tier %v had trace %v, want tier %d and the producer's trace %v", got[0], got[1], tier, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no call on tier %d", tier)
		}
	}
	dead := consumeAll(t, c.ListenAddrs(), ordo.DefaultNaming.DLQTopic("t", group), 1)
	stop(t, cons)
	var carried trace.SpanContext
	ctxd := propagation.TraceContext{}.Extract(context.Background(), kotel.NewRecordCarrier(dead[0]))
	carried = trace.SpanContextFromContext(ctxd)
	if carried.TraceID() != want {
		t.Errorf("the dead letter carries trace %v, want %v", carried.TraceID(), want)
	}
}
