// Package devbroker runs an embedded Kafka-protocol broker (franz-go's
// kfake) on a chosen loopback address, for `ordo dev`, tests and
// benchmarks. Any Kafka client can connect to it: kcat, rpk, librdkafka,
// Java clients. It keeps everything in memory.
package devbroker

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Options configure the broker.
type Options struct {
	// Addr is the listen address, host:port. The host is advertised to
	// clients as is. Default 127.0.0.1:9092; port 0 picks a free port.
	Addr string
	// GroupMinSessionTimeout is the smallest session timeout the broker
	// accepts. Default 1s, so tests can use short sessions.
	GroupMinSessionTimeout time.Duration
	// Extra are more kfake options (fault injection, SASL, data dir).
	Extra []kfake.Opt
}

// Broker is a running embedded broker.
type Broker struct {
	*kfake.Cluster
	addr string
}

// Start listens on opts.Addr and serves the Kafka protocol until Close.
func Start(opts Options) (*Broker, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:9092"
	}
	if opts.GroupMinSessionTimeout == 0 {
		opts.GroupMinSessionTimeout = time.Second
	}
	host, _, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("devbroker: address %q: %w", opts.Addr, err)
	}
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("devbroker: listen on %s: %w", opts.Addr, err)
	}
	// kfake calls the listen function once per broker; hand it the socket
	// already bound so a busy port fails here, with a clear error.
	used := false
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.GroupMinSessionTimeout(opts.GroupMinSessionTimeout),
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			if used {
				return nil, fmt.Errorf("devbroker: only one broker is supported")
			}
			used = true
			return ln, nil
		}),
	}
	kopts = append(kopts, opts.Extra...)
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("devbroker: %w", err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return &Broker{Cluster: c, addr: net.JoinHostPort(host, port)}, nil
}

// Addr returns the address clients connect to.
func (b *Broker) Addr() string { return b.addr }
