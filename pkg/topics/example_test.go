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
    retry:
      delays: [1s, 10s, 1m]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range set.Specs() {
		fmt.Println(s.Name, s.Kind, s.Partitions, s.Delay)
	}

	_, err = topics.Parse("topics/bad.yaml", []byte("topics:\n- {name: orders, partitions: 0}\n"))
	fmt.Println(err)
	// Output:
	// orders main 12 0s
	// orders.retry.1 retry 12 1s
	// orders.retry.2 retry 12 10s
	// orders.retry.3 retry 12 1m0s
	// orders.dlq dlq 12 0s
	// topics/bad.yaml: topic "orders": partitions must be >= 1, got 0
}
