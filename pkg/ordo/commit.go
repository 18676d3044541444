package ordo

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Commits. Each owned lane's watermark (its lowest unfinished offset) is
// committed every CommitInterval, and on revoke and stop, with the lane's
// offset map as the partition's commit metadata. One commit runs at a time
// (commitSem), held across taking the marks and the commit, so a periodic
// commit can never carry a partition that a revoke has already handed on.
// Every commit is bounded by its context: a coordinator that does not
// answer delays a stop or a revoke by no more than its deadline.

// lockCommit takes the commit semaphore, or fails when ctx ends first.
func (c *Consumer) lockCommit(ctx context.Context) error {
	select {
	case c.commitSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Consumer) unlockCommit() { <-c.commitSem }

// commitFinal freezes closing lanes and commits their watermarks; what it
// could not commit by ctx's deadline is logged, partition by partition.
func (c *Consumer) commitFinal(ctx context.Context, cl *kgo.Client, lanes []*lane, reason string) error {
	mapMax := int(c.mapMax.Load())
	if err := c.lockCommit(ctx); err != nil {
		marks := map[tp]mark{}
		for _, l := range lanes {
			if m, ok := l.freeze(mapMax); ok {
				marks[tp{l.topic, l.partition}] = m
			}
		}
		c.logUncommitted(reason, marks, err)
		return fmt.Errorf("ordo: %s commit: waiting for the commit in flight: %w", reason, err)
	}
	defer c.unlockCommit()
	marks := map[tp]mark{}
	for _, l := range lanes {
		if m, ok := l.freeze(mapMax); ok {
			marks[tp{l.topic, l.partition}] = m
		}
	}
	return c.commitLocked(ctx, cl, marks, lanes, reason)
}

// committer commits every lane's watermark each CommitInterval.
func (c *Consumer) committer() {
	defer close(c.tickDone)
	tick := make(chan struct{}, 1)
	for {
		t := c.cfg.Clock.AfterFunc(c.cfg.CommitInterval, func() {
			select {
			case tick <- struct{}{}:
			default:
			}
		})
		select {
		case <-c.tickStop:
			t.Stop()
			return
		case <-tick:
			if err := c.commitOwned(c.tickCtx); err != nil && c.tickCtx.Err() == nil {
				c.logs.warn("commit", "periodic commit", "err", err)
			}
		}
	}
}

// commitOwned commits the watermarks of the lanes this member owns now.
func (c *Consumer) commitOwned(ctx context.Context) error {
	if err := c.lockCommit(ctx); err != nil {
		return nil // stopping
	}
	defer c.unlockCommit()
	lanes := c.ownedLanes()
	mapMax := int(c.mapMax.Load())
	marks := map[tp]mark{}
	for _, l := range lanes {
		if m, ok := l.watermark(mapMax); ok {
			marks[tp{l.topic, l.partition}] = m
		}
	}
	return c.commitLocked(ctx, c.cl, marks, lanes, "periodic")
}

// commitLocked commits marks. A partition whose offset map the broker
// refuses as too large (its offset.metadata.max.bytes is below
// Config.MaxOffsetMapBytes) is committed again at once without the map,
// and later maps are kept under half the refused size.
func (c *Consumer) commitLocked(ctx context.Context, cl *kgo.Client, marks map[tp]mark, lanes []*lane, reason string) error {
	if len(marks) == 0 {
		return nil
	}
	for k, m := range marks {
		if m.dropped > 0 {
			c.metrics.topic(k.topic).mapDropped.Add(float64(m.dropped))
			c.logs.warn("offset-map", "an offset map could not hold every finished offset; those records will run again after a handoff",
				"topic", k.topic, "partition", k.partition, "offsets", m.dropped)
		}
	}
	byTP := make(map[tp]*lane, len(lanes))
	for _, l := range lanes {
		byTP[tp{l.topic, l.partition}] = l
	}
	committed, tooLarge, err := c.sendCommit(ctx, cl, marks, byTP, true)
	if len(tooLarge) > 0 {
		longest := 0
		retry := map[tp]mark{}
		for _, k := range tooLarge {
			longest = max(longest, len(marks[k].meta))
			retry[k] = marks[k]
		}
		if half := int64(longest / 2); half < c.mapMax.Load() {
			c.mapMax.Store(max(half, 64))
		}
		c.cfg.Logger.Warn("the broker refused an offset map as too large (its offset.metadata.max.bytes is below Config.MaxOffsetMapBytes); committing without it, and keeping later maps smaller",
			"bytes", longest, "partitions", len(tooLarge), "now", c.mapMax.Load())
		more, _, rerr := c.sendCommit(ctx, cl, retry, byTP, false)
		for k, off := range more {
			committed[k] = off
		}
		err = errors.Join(err, rerr)
	}
	for _, l := range lanes {
		if off, ok := committed[tp{l.topic, l.partition}]; ok {
			l.committed(off)
		}
	}
	if err != nil {
		c.metrics.commits.WithLabelValues("error").Inc()
		if reason != "periodic" {
			missed := map[tp]mark{}
			for k, m := range marks {
				if _, ok := committed[k]; !ok {
					missed[k] = m
				}
			}
			c.logUncommitted(reason, missed, err)
		}
		return fmt.Errorf("ordo: %s commit: %w", reason, err)
	}
	c.metrics.commits.WithLabelValues("ok").Inc()
	if c.cfg.OnCommit != nil && len(committed) > 0 {
		ev := CommitEvent{Reason: reason, Offsets: map[string]map[int32]int64{}}
		for k, off := range committed {
			if ev.Offsets[k.topic] == nil {
				ev.Offsets[k.topic] = map[int32]int64{}
			}
			ev.Offsets[k.topic][k.partition] = off
		}
		c.cfg.OnCommit(ev)
	}
	return nil
}

// sendCommit sends one OffsetCommit of marks, with their offset maps if
// withMaps. Just before the request goes out it drops any partition lost
// since the marks were taken (a loss does not wait for the commit: it must
// not block on a commit that waits for the group). It returns what the
// broker accepted and the partitions it refused as too large.
func (c *Consumer) sendCommit(ctx context.Context, cl *kgo.Client, marks map[tp]mark, byTP map[tp]*lane, withMaps bool) (map[tp]int64, []tp, error) {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for k, m := range marks {
		if offsets[k.topic] == nil {
			offsets[k.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[k.topic][k.partition] = kgo.EpochOffset{Epoch: m.epoch, Offset: m.offset}
	}
	ctx = kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			kept := t.Partitions[:0]
			for _, p := range t.Partitions {
				k := tp{t.Topic, p.Partition}
				if l := byTP[k]; l != nil && l.isLost() {
					continue
				}
				if m := marks[k]; withMaps && m.meta != "" {
					p.Metadata = kmsg.StringPtr(m.meta)
				}
				kept = append(kept, p)
			}
			t.Partitions = kept
		}
		return nil
	})
	var cerr error
	committed := map[tp]int64{}
	var tooLarge []tp
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				k := tp{t.Topic, p.Partition}
				perr := kerr.ErrorForCode(p.ErrorCode)
				switch {
				case perr == nil:
					committed[k] = offsets[t.Topic][p.Partition].Offset
				case errors.Is(perr, kerr.OffsetMetadataTooLarge) && withMaps:
					tooLarge = append(tooLarge, k)
				default:
					cerr = errors.Join(cerr, fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, perr))
				}
			}
		}
	})
	return committed, tooLarge, cerr
}

// logUncommitted says which partitions a final commit missed and at which
// offsets: the next owner starts from their previous commits and processes
// those records again.
func (c *Consumer) logUncommitted(reason string, marks map[tp]mark, err error) {
	if len(marks) == 0 {
		return
	}
	keys := make([]tp, 0, len(marks))
	for k := range marks {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].topic != keys[j].topic {
			return keys[i].topic < keys[j].topic
		}
		return keys[i].partition < keys[j].partition
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s@%d", k, marks[k].offset)
	}
	c.cfg.Logger.Error("could not commit; the next owner will process these records again from the previous commit",
		"reason", reason, "partitions", strings.Join(parts, " "), "err", err)
}
