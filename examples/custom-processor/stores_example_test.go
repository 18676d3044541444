package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/ordokafka/ordo/pkg/guard"
	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/store/redisstore"
	"github.com/ordokafka/ordo/processors/redisledger"
)

// The redis-ledger processor wired by hand, as ordo run wires it from its
// keys (store: redis, redis_url, breaker.*). Compiled, not run: it needs a
// Redis.
func Example_redisLedger() {
	reg := prometheus.NewRegistry()
	st, _ := redisstore.New(redisstore.Options{Client: redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})})
	defer st.Close()
	ledger, _ := redisledger.New(redisledger.Options{Store: st})
	breakers, _ := guard.NewBreakers(reg) // ordo_breaker_state on your registry
	br, _ := breakers.New(guard.BreakerOptions{Name: "redis"})
	cfg := ordo.Config{ /* brokers, group, topics */ Processor: ledger, Fencer: st,
		Middleware: []ordo.Middleware{br.Middleware()}}
	_ = cfg
}

// A breaker and a rate limit for a processor of your own, as middleware.
func Example_guard() {
	var cfg ordo.Config
	reg := prometheus.NewRegistry()       // yours; also cfg.Registerer, or register the set on cons.Registry() after ordo.New
	breakers, _ := guard.NewBreakers(reg) // ordo_breaker_state{name}
	billing, _ := breakers.New(guard.BreakerOptions{Name: "billing-api", Failures: 5, OpenFor: 5 * time.Second})
	limit, _ := guard.NewLimiter("billing-api", 20, 1) // 20 calls a second
	cfg.Registerer = reg
	cfg.Middleware = []ordo.Middleware{billing.Middleware(), limit.Middleware()}
	_ = cfg
}
