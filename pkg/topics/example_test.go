package topics_test

import (
	"fmt"

	"github.com/ordokafka/ordo/pkg/topics"
)

func ExampleParse() {
	set, err := topics.Parse("topics/orders.yaml", []byte(`
topics:
  - name: orders
    partitions: 12
    groups:
      - name: ledger
        retry:
          delays: [1s, 10s, 1m]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range set.Specs() {
		fmt.Println(s.Name, s.Kind, s.Group, s.Partitions, s.Delay)
	}
	if c, ok := set.Chain("orders", "ledger"); ok {
		fmt.Println("ledger:", c.Retry.Tiers(), "tiers, first", c.RetryTopic(1), "DLQ", c.DLQTopic())
	}

	_, err = topics.Parse("topics/bad.yaml", []byte("topics:\n- {name: orders, partitions: 0}\n"))
	fmt.Println(err)
	// Output:
	// orders main  12 0s
	// orders.ledger.retry.1 retry ledger 12 1s
	// orders.ledger.retry.2 retry ledger 12 10s
	// orders.ledger.retry.3 retry ledger 12 1m0s
	// orders.ledger.dlq dlq ledger 12 0s
	// ledger: 3 tiers, first orders.ledger.retry.1 DLQ orders.ledger.dlq
	// topics/bad.yaml: topic "orders": partitions must be >= 1, got 0
}
