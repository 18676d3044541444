package ordo

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kslog"
	"golang.org/x/time/rate"
)

// The edges: brokers that refuse connections or never answer, fetches that
// fail. Each failure is counted (ordo_broker_errors_total,
// ordo_fetch_errors_total) and logged, but at a bounded rate: an outage
// that lasts hours must not write a line every few seconds, nor hide behind
// a counter that stays 0.

// edgeLogEvery is the least time between two warnings of one kind; the
// warnings in between are counted and reported with the next one.
const edgeLogEvery = 10 * time.Second

// edgeLog logs warnings of each kind (a string) at most once per
// edgeLogEvery, with how many were suppressed since the last.
type edgeLog struct {
	log *slog.Logger
	mu  sync.Mutex
	by  map[string]*edgeKind
}

type edgeKind struct {
	lim        *rate.Limiter
	suppressed int
}

func newEdgeLog(log *slog.Logger) *edgeLog {
	return &edgeLog{log: log, by: map[string]*edgeKind{}}
}

// warn logs msg as a warning unless a warning of its kind was logged less
// than edgeLogEvery ago.
func (e *edgeLog) warn(kind, msg string, args ...any) {
	e.logAt(slog.LevelWarn, kind, msg, args...)
}

func (e *edgeLog) logAt(level slog.Level, kind, msg string, args ...any) {
	e.mu.Lock()
	k := e.by[kind]
	if k == nil {
		k = &edgeKind{lim: rate.NewLimiter(rate.Every(edgeLogEvery), 1)}
		e.by[kind] = k
	}
	if !k.lim.Allow() {
		k.suppressed++
		e.mu.Unlock()
		return
	}
	n := k.suppressed
	k.suppressed = 0
	e.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed_since_last", n)
	}
	e.log.Log(context.Background(), level, msg, args...)
}

// kgoLogger is franz-go's logger for the client: its logs go to the
// consumer's logger, its warnings and errors limited per message.
func (e *edgeLog) kgoLogger() kgo.Logger {
	return &kgoEdgeLogger{inner: kslog.New(e.log), e: e}
}

type kgoEdgeLogger struct {
	inner kgo.Logger
	e     *edgeLog
}

func (k *kgoEdgeLogger) Level() kgo.LogLevel { return k.inner.Level() }

func (k *kgoEdgeLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if level > kgo.LogLevelWarn || level == kgo.LogLevelNone {
		k.inner.Log(level, msg, keyvals...)
		return
	}
	sl := slog.LevelWarn
	if level == kgo.LogLevelError {
		sl = slog.LevelError
	}
	k.e.logAt(sl, "kgo:"+msg, msg, keyvals...)
}

// brokerHooks counts and logs broker connection and request failures.
type brokerHooks struct{ c *Consumer }

var (
	_ kgo.HookBrokerConnect = (*brokerHooks)(nil)
	_ kgo.HookBrokerE2E     = (*brokerHooks)(nil)
)

func brokerAddr(meta kgo.BrokerMetadata) string {
	return net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
}

func (h *brokerHooks) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	addr := brokerAddr(meta)
	h.c.metrics.brokerErrors.WithLabelValues(addr, "connect").Inc()
	h.c.logs.warn("connect:"+addr, "cannot connect to broker", "broker", addr, "err", err)
}

func (h *brokerHooks) OnBrokerE2E(meta kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	err := e2e.Err()
	if err == nil {
		h.c.brokerOK.Store(time.Now().UnixNano())
		return
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
		return
	}
	addr := brokerAddr(meta)
	h.c.metrics.brokerErrors.WithLabelValues(addr, "request").Inc()
	h.c.logs.warn("request:"+addr, "broker request failed", "broker", addr, "request_key", key, "err", err)
}
