package ordo

import (
	"sync/atomic"
	"time"
)

// stallAfter is how long a stream runner may stay in one call before the
// watchdog hands the records behind it to the lane's other workers: a
// runner seen in the same call on two looks stallAfter apart is stuck.
const stallAfter = time.Millisecond

// watchdog finds stream runners stuck in one call (see lane). It looks
// every stallAfter while some runner holds a chunk, and sleeps otherwise:
// an idle consumer costs it nothing. It runs on its own goroutine, owned
// by the Consumer, which stops it in Stop; it is not on the data path.
type watchdog struct {
	every  time.Duration
	active atomic.Int64  // runners holding a chunk
	wake   chan struct{} // capacity 1
	stop   chan struct{}
	done   chan struct{}
	lanes  func() []*lane // the lanes to look at
}

func newWatchdog(every time.Duration, lanes func() []*lane) *watchdog {
	return &watchdog{
		every: every,
		wake:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		lanes: lanes,
	}
}

func (wd *watchdog) enter() {
	if wd.active.Add(1) == 1 {
		select {
		case wd.wake <- struct{}{}:
		default:
		}
	}
}

func (wd *watchdog) leave() { wd.active.Add(-1) }

func (wd *watchdog) run() {
	defer close(wd.done)
	for {
		select {
		case <-wd.stop:
			return
		case <-wd.wake:
		}
		t := time.NewTicker(wd.every)
		for wd.active.Load() > 0 {
			select {
			case <-wd.stop:
				t.Stop()
				return
			case <-t.C:
			}
			for _, l := range wd.lanes() {
				l.checkStall()
			}
		}
		t.Stop()
	}
}

// close stops the watchdog and waits for it.
func (wd *watchdog) close() {
	close(wd.stop)
	<-wd.done
}
