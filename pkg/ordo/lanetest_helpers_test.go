package ordo

import (
	"context"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

type nopPauser struct{}

func (nopPauser) PauseFetchPartitions(map[string][]int32) map[string][]int32 { return nil }
func (nopPauser) ResumeFetchPartitions(map[string][]int32)                   {}

type nopWatch struct{}

func (nopWatch) enter() {}
func (nopWatch) leave() {}

// testLane builds a lane on topic without a broker: proc runs its records
// (wrapped in Recover, as the consumer does), the budget is budget, and
// nothing pauses a partition. lc holds what the test sets of the lane's
// config (workers, bounds); the rest is filled in. more, if not nil,
// changes the dependencies before the lane starts. end closes the lane
// and waits for its workers.
func testLane(tb testing.TB, topic string, role laneRole, lc laneConfig, proc Processor, budget laneBudget, more func(*laneDeps)) (l *lane, end func()) {
	tb.Helper()
	cfg := Config{Group: "g", Logger: slog.New(slog.DiscardHandler)}.withDefaults()
	lc.group, lc.ordering, lc.clock, lc.log, lc.chunk = "g", OrderKey, cfg.Clock, cfg.Logger, streamChunk
	lc.mapCap = capacityFor(4096)
	m, err := newMetrics(prometheus.NewRegistry(), &Consumer{cfg: cfg})
	if err != nil {
		tb.Fatal(err)
	}
	deps := laneDeps{proc: Recover(proc), streamProc: proc, budget: budget, router: newRouter(&cfg), fetch: nopPauser{},
		sem: make(chan struct{}, 256), metrics: m.topic(topic), sourceMetrics: m.topic(role.source), watch: nopWatch{}, workCtx: context.Background()}
	if more != nil {
		more(&deps)
	}
	l = newLane(&lc, deps, role, topic, 0, 1, nil, nil)
	return l, func() {
		l.beginClose(false)
		l.freeze(4096)
		l.cancel()
		l.wg.Wait()
	}
}
