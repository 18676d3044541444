package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// interrupted is the cause of a command context ended by a signal.
type interrupted struct{ sig os.Signal }

func (i interrupted) Error() string { return "interrupted by " + i.sig.String() }

// interrupts turns SIGINT/SIGTERM into the two stages of a stop. The first
// signal cancels the command's context: ordo dev and ordo run then drain.
// Any signal once a drain has begun (the second, or the first after the
// command began draining on its own, at --duration) closes hard: the drain
// cancels the records still running and stops at once. A nil *interrupts
// never fires.
type interrupts struct {
	mu       sync.Mutex
	cancel   context.CancelCauseFunc
	draining bool
	hard     chan struct{}
}

func newInterrupts(cancel context.CancelCauseFunc) *interrupts {
	return &interrupts{cancel: cancel, hard: make(chan struct{})}
}

// signal records one signal.
func (i *interrupts) signal(sig os.Signal) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if !i.draining {
		i.draining = true
		i.cancel(interrupted{sig})
		return
	}
	select {
	case <-i.hard:
	default:
		close(i.hard)
	}
}

// draining records that the command began to drain on its own: the next
// signal stops it at once.
func (i *interrupts) drainStarted() {
	if i == nil {
		return
	}
	i.mu.Lock()
	i.draining = true
	i.mu.Unlock()
}

// hardStop is closed when a signal arrives during a drain; nil (never) for
// a nil *interrupts.
func (i *interrupts) hardStop() <-chan struct{} {
	if i == nil {
		return nil
	}
	return i.hard
}

// watch feeds sigs to i until done is closed.
func (i *interrupts) watch(sigs <-chan os.Signal, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case s := <-sigs:
			i.signal(s)
		}
	}
}

// Causes of an unfinished drain.
var (
	errDrainTimedOut = errors.New("drain timed out")
	errHardStop      = errors.New("stopped at a second interrupt")
)

// drainStop is the stop of ordo dev and ordo run, once their context has
// ended. It says it is draining, then stops cons within timeout (named
// timeoutName, as the user sets it); a signal during the drain (hard)
// cancels the records still running and stops at once. It returns the
// lanes as Stop left them and, if the drain did not finish, an error that
// names what was abandoned.
func drainStop(cons *ordo.Consumer, out io.Writer, name string, timeout time.Duration, timeoutName string, in *interrupts) ([]ordo.LaneSnapshot, error) {
	in.drainStarted()
	fmt.Fprintf(out, "%s: draining: finishing running records and committing; press Ctrl-C again to stop now\n", name)
	tctx, cancelT := context.WithTimeoutCause(context.Background(), timeout, errDrainTimedOut)
	defer cancelT()
	ctx, cancel := context.WithCancelCause(tctx)
	defer cancel(nil)
	stopped := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-in.hardStop():
			fmt.Fprintf(out, "%s: second interrupt: canceling running records and stopping now\n", name)
			cancel(errHardStop)
		case <-stopped:
		}
	})
	err := cons.Stop(ctx)
	close(stopped)
	wg.Wait()
	lanes := cons.Lanes()
	if err == nil {
		return lanes, nil
	}
	// Stop may end its drain before ctx does (to keep time for the
	// commit), so a drain that ran out of time is known by its error too.
	var why string
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errHardStop):
		why = "stopped at the second interrupt"
	case errors.Is(cause, errDrainTimedOut), errors.Is(err, context.DeadlineExceeded):
		why = fmt.Sprintf("the drain timed out after %s (%s)", timeout, timeoutName)
	default:
		why = "the stop failed: " + err.Error()
	}
	return lanes, fmt.Errorf("%s: %s", why, abandoned(lanes))
}

// abandoned says which unfinished records a stop left behind.
func abandoned(lanes []ordo.LaneSnapshot) string {
	var recs, running int
	var parts []string
	for _, l := range lanes {
		if l.InFlight == 0 && l.Running == 0 {
			continue
		}
		recs += l.InFlight
		running += l.Running
		parts = append(parts, fmt.Sprintf("%s/%d", l.Topic, l.Partition))
	}
	if recs == 0 && running == 0 {
		return "no record was left unfinished"
	}
	ofThem := ""
	if running > 0 {
		ofThem = fmt.Sprintf(" (%d of them running)", running)
	}
	noun := "records"
	if recs == 1 {
		noun = "record"
	}
	return fmt.Sprintf("abandoned %d unfinished %s%s in %s; they were not committed and the group will deliver them again",
		recs, noun, ofThem, strings.Join(parts, ", "))
}

// stopReport prints the final line: the totals at the moment of stop (from
// the lanes as Stop left them), then one line per partition where records
// were in flight or lag remained. produced < 0: no producer; extra ends the
// totals line.
func stopReport(out io.Writer, name string, s ordo.Stats, lanes []ordo.LaneSnapshot, produced int64, extra string) {
	s.InFlight, s.LagRecords, s.Paused, s.Partitions, s.Waiting = 0, 0, 0, 0, 0
	for _, l := range lanes {
		s.AddLane(l)
	}
	fmt.Fprintf(out, "%s: stopped. %s%s\n", name, statsLine(s, produced), extra)
	for _, l := range lanes {
		lag := l.LagRecords()
		if l.InFlight == 0 && lag == 0 {
			continue
		}
		committed := "none"
		if l.Committed >= 0 {
			committed = fmt.Sprint(l.Committed)
		}
		running := ""
		if l.Running > 0 {
			running = fmt.Sprintf(" (%d running)", l.Running)
		}
		fmt.Fprintf(out, "  %s/%d: in-flight %d%s, lag %d, committed %s\n", l.Topic, l.Partition, l.InFlight, running, lag, committed)
	}
}
