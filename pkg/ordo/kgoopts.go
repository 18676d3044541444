package ordo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Config.KgoOpts pass franz-go's own knobs through (TLS, SASL, client ID,
// fetch sizes). The options that Ordo sets itself, because its guarantees
// rest on them, are refused: a consumer group and topics of their own,
// another balancer, autocommit, rebalance callbacks, and the session and
// rebalance timeouts that Config already has.

// forbiddenOpt is an option Ordo owns: how to see that an option set it,
// and what to say.
type forbiddenOpt struct {
	opt  any // the kgo option function, as OptValue takes it
	set  func(v any) bool
	what string
}

func nonZero(v any) bool {
	if v == nil {
		return false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Func, reflect.Map, reflect.Slice, reflect.Pointer, reflect.Interface:
		return !rv.IsNil() && (rv.Kind() != reflect.Slice && rv.Kind() != reflect.Map || rv.Len() > 0)
	}
	return !rv.IsZero()
}

var forbiddenOpts = []forbiddenOpt{
	{kgo.ConsumerGroup, nonZero, "sets the consumer group: use Config.Group"},
	{kgo.ConsumeTopics, nonZero, "sets the topics: use Config.Topics"},
	{kgo.ConsumeRegex, func(v any) bool { b, _ := v.(bool); return b }, "consumes by regex: list the topics in Config.Topics"},
	{kgo.ConsumePartitions, nonZero, "assigns partitions directly: Ordo consumes through its group"},
	{kgo.AutoCommitMarks, func(v any) bool { b, _ := v.(bool); return b }, "turns on autocommit: Ordo commits only finished records itself"},
	{kgo.AutoCommitCallback, nonZero, "sets an autocommit callback: Ordo commits itself (see Config.OnCommit)"},
	{kgo.GreedyAutoCommit, func(v any) bool { b, _ := v.(bool); return b }, "turns on greedy autocommit: Ordo commits only finished records itself"},
	{kgo.OnPartitionsAssigned, nonZero, "replaces Ordo's assignment callback"},
	{kgo.OnPartitionsRevoked, nonZero, "replaces Ordo's revoke callback, which drains and commits"},
	{kgo.OnPartitionsLost, nonZero, "replaces Ordo's lost-partition callback, which fences the lanes"},
	{kgo.AdjustFetchOffsetsFn, nonZero, "moves fetch offsets behind Ordo's offset tracker"},
	{kgo.Balancers, func(v any) bool {
		bs, _ := v.([]kgo.GroupBalancer)
		for _, b := range bs {
			if b.ProtocolName() != "cooperative-sticky" {
				return true
			}
		}
		return false
	}, "sets another balancer: Ordo's revoke protocol needs cooperative-sticky"},
	{kgo.SessionTimeout, func(v any) bool { d, _ := v.(time.Duration); return d != 45*time.Second }, "sets the session timeout: use Config.SessionTimeout"},
	{kgo.RebalanceTimeout, func(v any) bool { d, _ := v.(time.Duration); return d != 60*time.Second }, "sets the rebalance timeout: use Config.RebalanceTimeout"},
}

var errProbe = errors.New("ordo: option probe does not connect")

// checkKgoOpts returns an error for each option Ordo owns. Each option is
// applied to a client of its own that cannot dial, and read back with
// kgo's OptValue; nothing connects.
func checkKgoOpts(opts []kgo.Opt) []error {
	var errs []error
	noDial := kgo.Dialer(func(context.Context, string, string) (net.Conn, error) { return nil, errProbe })
	for i, opt := range opts {
		field := fmt.Sprintf("KgoOpts[%d]", i)
		if opt == nil {
			errs = append(errs, &FieldError{Field: field, Reason: "is nil"})
			continue
		}
		cl, err := kgo.NewClient(opt, noDial)
		if err != nil {
			errs = append(errs, &FieldError{Field: field, Reason: fmt.Sprintf("is not a valid franz-go option: %v", err)})
			continue
		}
		for _, f := range forbiddenOpts {
			if f.set(cl.OptValue(f.opt)) {
				errs = append(errs, &FieldError{Field: field, Reason: f.what})
			}
		}
		cl.Close()
	}
	return errs
}
