package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// metricsServer serves reg on addr until Close: /metrics, /healthz (the
// process is alive: always 200), /readyz (200 when httpOpts.ready returns
// nil, else 503 with its error) and, with httpOpts.pprof, net/http/pprof
// under /debug/pprof/.
type metricsServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// httpOpts are the metrics server's options.
type httpOpts struct {
	// ready answers /readyz; nil: always ready.
	ready func() error
	// pprof serves net/http/pprof under /debug/pprof/ (off by default: it
	// exposes stacks and costs CPU while profiling).
	pprof bool
}

func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger, opts httpOpts) (*metricsServer, error) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address %s: %w", addr, err)
	}
	m := &metricsServer{
		srv:  &http.Server{Handler: metricsMux(reg, opts), ReadHeaderTimeout: 5 * time.Second},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(m.done)
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	return m, nil
}

// metricsMux is the metrics server's handler.
func metricsMux(reg *prometheus.Registry, opts httpOpts) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if opts.ready != nil {
			if err := opts.ready(); err != nil {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, err.Error()+"\n")
				return
			}
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	if opts.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func (m *metricsServer) Addr() string { return m.ln.Addr().String() }

func (m *metricsServer) Close(ctx context.Context) {
	_ = m.srv.Shutdown(ctx)
	<-m.done
}

// progress prints line() every interval until ctx ends.
func progress(ctx context.Context, out io.Writer, every time.Duration, line func(elapsed time.Duration) string) {
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fmt.Fprintln(out, line(time.Since(start).Truncate(time.Second)))
		}
	}
}

// statsLine formats the consumer's progress.
func statsLine(s ordo.Stats, produced int64) string {
	prod := ""
	if produced >= 0 {
		prod = fmt.Sprintf("produced=%d ", produced)
	}
	return fmt.Sprintf("%sprocessed=%d failed=%d tiered=%d waiting=%d dlq=%d in-flight=%d lag=%d paused=%d/%d",
		prod, s.Processed, s.Errors, s.Tiered, s.Waiting, s.DeadLettered, s.InFlight, s.LagRecords, s.Paused, s.Partitions)
}

// syncWriter serializes writes from the progress goroutine and the caller.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
