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

// forbiddenOpt is an option Ordo owns: how to see that an option set it
// (v is its value in a probe client given the option, base in a probe
// without it), and what to say.
type forbiddenOpt struct {
	opt  any // the kgo option function, as OptValue takes it
	set  func(v, base any) bool
	what string
}

func nonZero(v, _ any) bool {
	if v == nil {
		return false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Func, reflect.Pointer, reflect.Interface:
		return !rv.IsNil()
	case reflect.Map, reflect.Slice:
		return rv.Len() > 0
	}
	return !rv.IsZero()
}

func isTrue(v, _ any) bool { b, _ := v.(bool); return b }

func differs(v, base any) bool { return v != base }

var forbiddenOpts = []forbiddenOpt{
	{kgo.ConsumerGroup, nonZero, "sets the consumer group: use Config.Group"},
	{kgo.ConsumeTopics, nonZero, "sets the topics: use Config.Topics"},
	{kgo.ConsumeRegex, isTrue, "consumes by regex: list the topics in Config.Topics"},
	{kgo.ConsumePartitions, nonZero, "assigns partitions directly: Ordo consumes through its group"},
	{kgo.AdjustFetchOffsetsFn, nonZero, "moves fetch offsets behind Ordo's offset tracker"},
	{kgo.Balancers, func(v, _ any) bool {
		bs, _ := v.([]kgo.GroupBalancer)
		for _, b := range bs {
			if b.ProtocolName() != "cooperative-sticky" {
				return true
			}
		}
		return false
	}, "sets another balancer: Ordo's revoke protocol needs cooperative-sticky"},
	{kgo.ConsumeResetOffset, differs, resetReason},
	{kgo.RecordPartitioner, func(v, base any) bool { return fmt.Sprintf("%T", v) != fmt.Sprintf("%T", base) }, "sets the partitioner: Ordo writes retry and dead-letter records to their source partition's number"},
	{kgo.ConsumeStartOffset, differs, "sets the start offset: use Config.Start"},
	{kgo.SessionTimeout, differs, "sets the session timeout: use Config.SessionTimeout"},
	{kgo.RebalanceTimeout, differs, "sets the rebalance timeout: use Config.RebalanceTimeout"},
}

var errProbe = errors.New("ordo: option probe does not connect")

// noDial are the last options of a probe client: a dialer that never
// connects, after clearing a TLS config (franz-go refuses a Dialer beside
// DialTLSConfig, and TLS is what KgoOpts are for).
func noDial() []kgo.Opt {
	return []kgo.Opt{
		kgo.DialTLSConfig(nil),
		kgo.Dialer(func(context.Context, string, string) (net.Conn, error) { return nil, errProbe }),
	}
}

// groupOnly are the options franz-go accepts only in a group, and reports
// in one: they are probed in a group of the probe's own, against a grouped
// probe without them (its commit callback defaulted). The rebalance
// callbacks are also group-only, but a group wraps them: an option valid
// only in a group that changes none of these (nor DisableAutoCommit, which
// Ordo sets anyway) is one of them.
var groupOnly = []forbiddenOpt{
	{kgo.AutoCommitMarks, isTrue, "turns on autocommit: Ordo commits only finished records itself"},
	{kgo.GreedyAutoCommit, isTrue, "turns on greedy autocommit: Ordo commits only finished records itself"},
	{kgo.AutoCommitCallback, func(v, base any) bool { return funcPtr(v) != funcPtr(base) }, "sets an autocommit callback: Ordo commits itself (see Config.OnCommit)"},
}

func funcPtr(v any) uintptr {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || rv.Kind() != reflect.Func || rv.IsNil() {
		return 0
	}
	return rv.Pointer()
}

// checkKgoOpts returns an error for each option Ordo owns. Each option is
// applied to a probe client of its own that consumes nothing and cannot
// dial, and read back with kgo's OptValue against a probe without it;
// nothing connects.
func checkKgoOpts(opts []kgo.Opt) []error {
	if len(opts) == 0 {
		return nil
	}
	probe := func(grouped bool, opt ...kgo.Opt) (*kgo.Client, error) {
		all := []kgo.Opt{kgo.HeartbeatInterval(time.Millisecond)}
		if grouped {
			all = append(all, kgo.ConsumerGroup("ordo-option-probe"))
		}
		all = append(all, opt...)
		return kgo.NewClient(append(all, noDial()...)...)
	}
	var errs []error
	for i, opt := range opts {
		field := fmt.Sprintf("KgoOpts[%d]", i)
		if opt == nil {
			errs = append(errs, &FieldError{Field: field, Reason: "is nil"})
			continue
		}
		reasons, err := probeOpt(probe, opt)
		if err != nil {
			errs = append(errs, &FieldError{Field: field, Reason: fmt.Sprintf("is not a valid franz-go option: %v", err)})
		}
		for _, r := range reasons {
			errs = append(errs, &FieldError{Field: field, Reason: r})
		}
	}
	return errs
}

// probeOpt returns what Ordo-owned settings opt changes.
func probeOpt(probe func(bool, ...kgo.Opt) (*kgo.Client, error), opt kgo.Opt) ([]string, error) {
	grouped := false
	cl, err := probe(false, opt)
	if err != nil {
		grouped = true
		if cl, err = probe(true, opt); err != nil {
			return nil, err
		}
	}
	defer cl.Close()
	base, err := probe(grouped)
	if err != nil {
		return nil, err
	}
	defer base.Close()
	if g, _ := cl.OptValue(kgo.ConsumerGroup).(string); !grouped && g != "" {
		// A group of its own (its callbacks now wrapped by franz-go).
		return []string{forbiddenOpts[0].what}, nil
	}
	list := forbiddenOpts
	if grouped {
		list = groupOnly
	}
	var out []string
	for _, f := range list {
		if f.set(cl.OptValue(f.opt), base.OptValue(f.opt)) {
			out = append(out, f.what)
		}
		if len(out) > 0 && out[len(out)-1] == resetReason {
			break // it sets the start offset too, as franz-go documents
		}
	}
	if grouped && len(out) == 0 && cl.OptValue(kgo.DisableAutoCommit) == base.OptValue(kgo.DisableAutoCommit) {
		// Valid only in a group, and none of the group-only settings
		// that franz-go reports: what is left are the rebalance
		// callbacks, which a group wraps out of sight.
		out = append(out, callbackReason)
	}
	return out, nil
}

const resetReason = "sets the reset offset: use Config.OffsetsLost"

const callbackReason = "sets a rebalance callback (OnPartitionsAssigned, OnPartitionsRevoked or OnPartitionsLost): Ordo drains, commits and fences partitions in its own"

// producerBatchMax is the largest record the consumer's client produces
// (franz-go's ProducerBatchMaxBytes, as KgoOpts set it): a failed record
// sent to a tier or the dead-letter topic is cut below it.
func producerBatchMax(opts []kgo.Opt) int {
	const dflt = 1_000_012 // franz-go's default
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), noDial()...)...)
	if err != nil {
		return dflt
	}
	defer cl.Close()
	if v, ok := cl.OptValue(kgo.ProducerBatchMaxBytes).(int32); ok && v > 0 {
		return int(v)
	}
	return dflt
}
