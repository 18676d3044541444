package replay_test

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/replay"
)

// Rewind a stopped group by 3 offsets: plan, look, export, execute.
func ExamplePlanReset() {
	c, _ := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"))
	defer c.Close()
	cl, _ := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("orders"))
	defer cl.Close()
	ctx := context.Background()
	for i := range 10 {
		cl.ProduceSync(ctx, kgo.StringRecord("event "+strconv.Itoa(i)))
	}
	adm := kadm.NewClient(cl)
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 10, LeaderEpoch: -1})
	adm.CommitOffsets(ctx, "billing", offs) // the group has consumed everything

	plan, err := replay.PlanReset(ctx, adm, replay.ResetRequest{
		Group:  "billing",
		Topics: []replay.Selection{{Topic: "orders"}},
		Target: replay.Target{Verb: replay.ShiftBy, Shift: -3},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range plan.Partitions {
		fmt.Printf("%s/%d: %d -> %d, lag after %d\n", p.Topic, p.Partition, p.Current, p.New, p.Lag())
	}
	_ = replay.WriteCSV(os.Stdout, plan.Rows())
	if err := replay.ExecuteReset(ctx, adm, plan); err != nil {
		fmt.Println(err)
	}
	// Output:
	// orders/0: 10 -> 7, lag after 3
	// orders,0,7
}

// Copy offsets [2, 5) of every partition into another topic.
func ExampleCopy() {
	c, _ := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders", "orders.replay"))
	defer c.Close()
	cl, _ := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("orders"))
	defer cl.Close()
	ctx := context.Background()
	for i := range 10 {
		cl.ProduceSync(ctx, kgo.KeySliceRecord([]byte("customer-1"), []byte("event "+strconv.Itoa(i))))
	}
	res, err := replay.Copy(ctx, replay.CopyConfig{
		Brokers: c.ListenAddrs(),
		From:    "orders",
		Into:    "orders.replay",
		Start:   replay.AtOffset(2),
		End:     replay.AtOffset(5),
		ID:      "example",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("copied", res.Copied, "records")
	// Output:
	// copied 3 records
}

// Read offsets [3, 6) of partition 0 without a group, e.g. to derive the
// dedup keys of a range that is about to be replayed.
func ExampleScan() {
	c, _ := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"))
	defer c.Close()
	cl, _ := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("orders"))
	defer cl.Close()
	ctx := context.Background()
	for i := range 10 {
		cl.ProduceSync(ctx, kgo.StringRecord("event "+strconv.Itoa(i)))
	}
	ranges, err := replay.Scan(ctx, replay.ScanConfig{
		Brokers: c.ListenAddrs(),
		Ranges:  []replay.ScanRange{{Topic: "orders", Partition: 0, From: 3, To: 6}},
	}, func(r *kgo.Record) error {
		fmt.Printf("%s/%d/%d %s\n", r.Topic, r.Partition, r.Offset, r.Value)
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ranges[0].Records, "records")
	// Output:
	// orders/0/3 event 3
	// orders/0/4 event 4
	// orders/0/5 event 5
	// 3 records
}
