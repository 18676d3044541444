package dlq

import (
	"context"
	"fmt"
	"slices"
)

// Readers returns, sorted, the consumer groups that will see records
// produced to topic: groups with committed offsets for it, and groups
// whose members are assigned or subscribed to it (classic and KIP-848
// groups). A redrive into a source topic reaches every one of them, not
// only the group it is for.
func (c *Client) Readers(ctx context.Context, topic string) ([]string, error) {
	listed, err := c.adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("dlq: listing groups: %w", err)
	}
	if len(listed) == 0 {
		return nil, nil
	}
	readers := make(map[string]bool)

	for g, r := range c.adm.FetchManyOffsets(ctx, listed.Groups()...) {
		if r.Err != nil {
			return nil, fmt.Errorf("dlq: cannot tell whether group %s reads %s: committed offsets: %w", g, topic, r.Err)
		}
		for _, o := range r.Fetched[topic] {
			if o.Err == nil && o.At >= 0 {
				readers[g] = true
				break
			}
		}
	}

	var classic, consumer []string
	for _, g := range listed.Sorted() {
		switch {
		case g.GroupType == "consumer":
			consumer = append(consumer, g.Group)
		case g.ProtocolType == "consumer" || g.ProtocolType == "":
			classic = append(classic, g.Group)
		}
	}
	if len(classic) > 0 {
		described, err := c.adm.DescribeGroups(ctx, classic...)
		if err != nil {
			return nil, fmt.Errorf("dlq: describing groups: %w", err)
		}
		for g, d := range described {
			if d.Err != nil {
				return nil, fmt.Errorf("dlq: cannot tell whether group %s reads %s: %w", g, topic, d.Err)
			}
			_, assigned := d.AssignedPartitions()[topic]
			if assigned || slices.Contains(d.JoinTopics(), topic) {
				readers[g] = true
			}
		}
	}
	if len(consumer) > 0 {
		described, err := c.adm.DescribeConsumerGroups(ctx, consumer...)
		if err != nil {
			return nil, fmt.Errorf("dlq: describing groups: %w", err)
		}
		for g, d := range described {
			if d.Err != nil {
				return nil, fmt.Errorf("dlq: cannot tell whether group %s reads %s: %w", g, topic, d.Err)
			}
			_, assigned := d.AssignedPartitions()[topic]
			if assigned || slices.Contains(d.SubscribedTopics(), topic) {
				readers[g] = true
			}
		}
	}
	out := make([]string, 0, len(readers))
	for g := range readers {
		out = append(out, g)
	}
	slices.Sort(out)
	return out, nil
}
