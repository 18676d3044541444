// Package batch coalesces concurrent calls into batches, auto-pipelining
// style: each of a few flushers takes the first waiting call, then every
// call waiting behind it (up to a maximum), and runs them in one round trip
// while the next batch gathers behind it. Under light load a batch is one
// call and adds nothing; under load batches grow by themselves.
package batch

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is returned by Do after Close.
var ErrClosed = errors.New("store: closed")

// Call is one call in a batch. The flush function sets Res or Err.
type Call[Req, Res any] struct {
	Ctx  context.Context
	Req  Req
	Res  Res
	Err  error
	done chan struct{}
}

// Coalescer runs calls through a flush function, in batches.
type Coalescer[Req, Res any] struct {
	ch       chan *Call[Req, Res]
	stop     chan struct{}
	wg       sync.WaitGroup
	flush    func([]*Call[Req, Res])
	maxBatch int
	once     sync.Once
}

// New starts flushers goroutines, each running batches of at most maxBatch
// calls through flush, which must set Res or Err of every call it is given
// (it may be called concurrently by the flushers). Close stops them.
func New[Req, Res any](flushers, maxBatch int, flush func([]*Call[Req, Res])) *Coalescer[Req, Res] {
	c := &Coalescer[Req, Res]{
		ch:       make(chan *Call[Req, Res], flushers*maxBatch),
		stop:     make(chan struct{}),
		flush:    flush,
		maxBatch: maxBatch,
	}
	for range flushers {
		c.wg.Go(c.loop)
	}
	return c
}

// Do runs req in the next batch and returns its result. If ctx ends first,
// Do returns ctx.Err(); the call may still run (its result is lost).
func (c *Coalescer[Req, Res]) Do(ctx context.Context, req Req) (Res, error) {
	var zero Res
	call := &Call[Req, Res]{Ctx: ctx, Req: req, done: make(chan struct{})}
	select {
	case c.ch <- call:
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-c.stop:
		return zero, ErrClosed
	}
	select {
	case <-call.done:
		return call.Res, call.Err
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-c.stop:
		// A batch in progress finishes; a queued call is never taken.
		select {
		case <-call.done:
			return call.Res, call.Err
		default:
			return zero, ErrClosed
		}
	}
}

func (c *Coalescer[Req, Res]) loop() {
	batch := make([]*Call[Req, Res], 0, c.maxBatch)
	for {
		batch = batch[:0]
		select {
		case first := <-c.ch:
			batch = append(batch, first)
		case <-c.stop:
			c.drain()
			return
		}
	gather:
		for len(batch) < c.maxBatch {
			select {
			case next := <-c.ch:
				batch = append(batch, next)
			default:
				break gather
			}
		}
		live := batch[:0]
		for _, call := range batch {
			if err := call.Ctx.Err(); err != nil {
				call.Err = err
				close(call.done)
				continue
			}
			live = append(live, call)
		}
		if len(live) > 0 {
			c.flush(live)
			for _, call := range live {
				close(call.done)
			}
		}
	}
}

// drain fails the calls still queued at Close.
func (c *Coalescer[Req, Res]) drain() {
	for {
		select {
		case call := <-c.ch:
			call.Err = ErrClosed
			close(call.done)
		default:
			return
		}
	}
}

// Close stops the flushers after the batches in progress; calls queued and
// not yet taken fail with ErrClosed.
func (c *Coalescer[Req, Res]) Close() {
	c.once.Do(func() { close(c.stop) })
	c.wg.Wait()
	c.drain()
}
