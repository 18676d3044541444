package topics

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Actions reported in a [Result].
const (
	ActionCreate  = "create"  // dry run: the topic is missing and would be created
	ActionCreated = "created" // the topic was missing and has been created
	ActionExists  = "exists"  // the topic exists with the declared partition count
	ActionError   = "error"   // see Result.Err
)

// Result is what Apply did, or would do, for one topic.
type Result struct {
	Topic  string
	Action string // one of the Action constants
	Err    error  // non-nil exactly when Action is ActionError
}

// PartitionMismatchError reports an existing topic whose partition count
// differs from its declaration. Apply never changes an existing topic: adding
// partitions remaps keys to partitions, which breaks per-key order across the
// change, and Kafka cannot remove partitions.
type PartitionMismatchError struct {
	Topic    string
	Existing int
	Declared int32
}

func (e *PartitionMismatchError) Error() string {
	if e.Existing < int(e.Declared) {
		return fmt.Sprintf("topic %q has %d partitions but is declared with %d; Apply does not change existing topics: "+
			"add partitions deliberately (for example kadm CreatePartitions or rpk topic add-partitions), "+
			"knowing that it remaps keys to partitions", e.Topic, e.Existing, e.Declared)
	}
	return fmt.Sprintf("topic %q has %d partitions but is declared with %d; Kafka cannot remove partitions: "+
		"declare %d partitions", e.Topic, e.Existing, e.Declared, e.Existing)
}

// Apply creates the topics of specs that do not exist yet, in order, and
// reports one Result per spec, in the same order.
//
// A topic that already exists is never changed. With the declared partition
// count it is ActionExists; with any other count it is ActionError with a
// [*PartitionMismatchError]. Configs and replication factor of existing topics
// are not compared.
//
// With dryRun, Apply creates nothing: each missing topic is validated by the
// broker (CreateTopics with ValidateOnly) and reported as ActionCreate, or as
// ActionError if the broker would refuse it.
//
// The error is non-nil if the topics could not be listed (then there are no
// results), or if any result is ActionError (then it joins those errors, each
// naming its topic).
func Apply(ctx context.Context, adm *kadm.Client, specs []TopicSpec, dryRun bool) ([]Result, error) {
	if adm == nil {
		return nil, errors.New("topics: Apply needs a kadm client")
	}
	if len(specs) == 0 {
		return nil, nil
	}

	results := make([]Result, len(specs))
	seen := make(map[string]bool, len(specs))
	names := make([]string, 0, len(specs))
	for i, s := range specs {
		results[i].Topic = s.Name
		if err := checkSpec(s); err != nil {
			results[i].Action, results[i].Err = ActionError, err
			continue
		}
		if seen[s.Name] {
			results[i].Action, results[i].Err = ActionError, errors.New("listed more than once")
			continue
		}
		seen[s.Name] = true
		names = append(names, s.Name)
	}

	var existing kadm.TopicDetails
	if len(names) > 0 {
		// ListTopics with no names would list every topic; names is not empty.
		var err error
		existing, err = adm.ListTopics(ctx, names...)
		if err != nil {
			return nil, fmt.Errorf("topics: list topics: %w", err)
		}
	}

	for i, s := range specs {
		if results[i].Action != "" {
			continue
		}
		action, err := applyOne(ctx, adm, s, existing[s.Name], dryRun)
		if err != nil {
			action = ActionError
		}
		results[i].Action, results[i].Err = action, err
	}

	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("topic %q: %w", r.Topic, r.Err))
		}
	}
	return results, errors.Join(errs...)
}

// applyOne handles one topic, given what the metadata said about it.
func applyOne(ctx context.Context, adm *kadm.Client, s TopicSpec, d kadm.TopicDetail, dryRun bool) (string, error) {
	if exists, err := existsAs(s, d); exists || err != nil {
		return ActionExists, err
	}

	configs := make(map[string]*string, len(s.Configs))
	for k, v := range s.Configs {
		configs[k] = kadm.StringPtr(v)
	}

	if dryRun {
		resp, err := adm.ValidateCreateTopics(ctx, s.Partitions, s.ReplicationFactor, configs, s.Name)
		if err != nil {
			return "", err
		}
		if r, ok := resp[s.Name]; ok && r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return "", withMessage(r.Err, r.ErrMessage)
		}
		// A topic created by someone else since the listing would also be
		// found by the real run; reporting "create" is still what the plan says.
		return ActionCreate, nil
	}

	r, err := adm.CreateTopic(ctx, s.Partitions, s.ReplicationFactor, configs, s.Name)
	switch {
	case err == nil:
		return ActionCreated, nil
	case errors.Is(err, kerr.TopicAlreadyExists):
		// Created by someone else between the listing and now: judge it as
		// an existing topic.
		details, lerr := adm.ListTopics(ctx, s.Name)
		if lerr != nil {
			return "", fmt.Errorf("created concurrently, then: list topics: %w", lerr)
		}
		if exists, err := existsAs(s, details[s.Name]); exists || err != nil {
			return ActionExists, err
		}
		return "", withMessage(err, r.ErrMessage)
	default:
		return "", withMessage(err, r.ErrMessage)
	}
}

// existsAs reports whether the topic exists according to d, and an error if
// it exists in a way that does not match s or cannot be described.
func existsAs(s TopicSpec, d kadm.TopicDetail) (bool, error) {
	if d.Topic == "" || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return false, nil
	}
	if len(d.Partitions) == 0 {
		if d.Err != nil {
			return true, fmt.Errorf("describe: %w", d.Err)
		}
		return true, errors.New("describe: the broker reports the topic without partitions")
	}
	// A transient per-topic error (such as LEADER_NOT_AVAILABLE just after
	// creation) does not hide the partition count.
	if len(d.Partitions) != int(s.Partitions) {
		return true, &PartitionMismatchError{Topic: s.Name, Existing: len(d.Partitions), Declared: s.Partitions}
	}
	return true, nil
}

func checkSpec(s TopicSpec) error {
	if msg := nameProblem(s.Name); msg != "" {
		return fmt.Errorf("name %s", msg)
	}
	if s.Partitions < 1 {
		return fmt.Errorf("partitions must be >= 1, got %d", s.Partitions)
	}
	if s.ReplicationFactor < 1 {
		return fmt.Errorf("replication factor must be >= 1, got %d", s.ReplicationFactor)
	}
	return nil
}

func withMessage(err error, msg string) error {
	if msg == "" {
		return err
	}
	return fmt.Errorf("%w: %s", err, msg)
}
