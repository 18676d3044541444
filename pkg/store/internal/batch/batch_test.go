package batch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestCoalesces: calls made while a batch is in flight gather into the
// next one; each gets its own result.
func TestCoalesces(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	gate := make(chan struct{})
	c := New(1, 100, func(calls []*Call[int, int]) {
		mu.Lock()
		sizes = append(sizes, len(calls))
		first := len(sizes) == 1
		mu.Unlock()
		if first {
			<-gate
		}
		for _, call := range calls {
			call.Res = call.Req * 2
		}
	})
	defer c.Close()
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = c.Do(context.Background(), 0) })
	time.Sleep(20 * time.Millisecond) // the first batch is in flight
	for i := 1; i <= 50; i++ {
		wg.Go(func() {
			if got, err := c.Do(context.Background(), i); err != nil || got != 2*i {
				t.Errorf("Do(%d) = %d, %v", i, got, err)
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	close(gate)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 2 || sizes[1] != 50 {
		t.Errorf("batch sizes %v, want [1 50]", sizes)
	}
}

// TestCanceledAndClosed: a canceled call returns at once; after Close, Do
// fails with ErrClosed.
func TestCanceledAndClosed(t *testing.T) {
	block := make(chan struct{})
	c := New(1, 1, func(calls []*Call[int, int]) { <-block })
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if _, err := c.Do(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
	close(block)
	c.Close()
	if _, err := c.Do(context.Background(), 1); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}
