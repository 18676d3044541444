package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/guard"
	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/processors/webhook"
)

// A webhook with a breaker and a rate limit; a 400 is permanent.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if string(body) == "bad" {
			http.Error(w, "malformed", http.StatusBadRequest)
			return
		}
		fmt.Println("received", string(body), "key", r.Header.Get("Idempotency-Key"))
	}))
	defer srv.Close()

	breakers, _ := guard.NewBreakers(nil) // pass the consumer's registry for ordo_breaker_state
	breaker, _ := breakers.New(guard.BreakerOptions{Name: "billing-api"})
	limit, _ := guard.NewLimiter("billing-api", 20, 2) // 20 a second, bursts of 2
	p, err := webhook.New(webhook.Options{URL: srv.URL, Timeout: 5 * time.Second, Breaker: breaker, Limiter: limit})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	err = p.Process(ctx, &kgo.Record{Topic: "invoices", Offset: 7, Value: []byte(`{"id":1}`)})
	fmt.Println(err)
	err = p.Process(ctx, &kgo.Record{Topic: "invoices", Offset: 8, Value: []byte("bad")})
	fmt.Println(ordo.ClassOf(err), err)
	// Output:
	// received {"id":1} key at:invoices/0/7
	// <nil>
	// permanent permanent: webhook: 400 Bad Request: malformed
}
