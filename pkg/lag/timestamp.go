package lag

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// tsKey names a record: the offset of the oldest unconsumed record of a
// partition.
type tsKey struct {
	topic     string
	partition int32
	offset    int64
}

// Fetch sizes for reading one record's timestamp. A broker returns a
// partition's first batch whole only when it is the first partition of the
// response; a partition that came back empty for lack of room is asked
// again alone.
const (
	fetchPartitionBytes = 64 << 10
	fetchMaxBytes       = 4 << 20
	fetchRounds         = 3 // control batches, out-of-range offsets: a few more tries
)

// timestamps reads the timestamp of the first record at or after each
// wanted offset, with one Fetch per partition leader (plus one per
// partition that did not fit). An offset below the log start (records
// deleted) reads the log start's record. It returns what it read and the
// errors of the rest.
func (c *Collector) timestamps(ctx context.Context, want map[tsKey]struct{}) (map[tsKey]time.Time, error) {
	var topics []string
	for k := range want {
		if !slices.Contains(topics, k.topic) {
			topics = append(topics, k.topic)
		}
	}
	mreq := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		mreq.Topics = append(mreq.Topics, rt)
	}
	meta, err := c.cl.RequestCachedMetadata(ctx, mreq, 0)
	if err != nil {
		return nil, fmt.Errorf("metadata of %v for record timestamps: %w", topics, err)
	}
	type leaderOf struct {
		leader int32
		epoch  int32
		id     [16]byte
	}
	leaders := map[string]map[int32]leaderOf{}
	for _, t := range meta.Topics {
		if t.Topic == nil {
			continue
		}
		m := map[int32]leaderOf{}
		for _, p := range t.Partitions {
			m[p.Partition] = leaderOf{p.Leader, p.LeaderEpoch, t.TopicID}
		}
		leaders[*t.Topic] = m
	}

	got := map[tsKey]time.Time{}
	var errs []error
	// at is where each wanted key is read now (it moves past control
	// batches and up to the log start).
	at := make(map[tsKey]int64, len(want))
	for k := range want {
		at[k] = k.offset
	}
	alone := map[tsKey]bool{}
	for round := 0; round < fetchRounds && len(at) > 0; round++ {
		// One request per leader, each partition at most once in a
		// request (two groups may want two offsets of one partition).
		type slot struct {
			leader    int32
			topic     string
			partition int32
		}
		byLeader := map[int32][][]tsKey{}
		used := map[slot]int{} // requests of the leader that hold the partition
		var batches [][]tsKey
		for k := range at {
			l, ok := leaders[k.topic][k.partition]
			if !ok {
				errs = append(errs, fmt.Errorf("record timestamp of %s/%d: no leader known", k.topic, k.partition))
				delete(at, k)
				continue
			}
			if alone[k] {
				batches = append(batches, []tsKey{k})
				continue
			}
			sl := slot{l.leader, k.topic, k.partition}
			i := used[sl]
			used[sl]++
			reqs := byLeader[l.leader]
			if i == len(reqs) {
				reqs = append(reqs, nil)
			}
			reqs[i] = append(reqs[i], k)
			byLeader[l.leader] = reqs
		}
		for _, reqs := range byLeader {
			batches = append(batches, reqs...)
		}
		for _, ks := range batches {
			if ctx.Err() != nil {
				return got, errors.Join(append(errs, fmt.Errorf("record timestamps: %w", ctx.Err()))...)
			}
			l := leaders[ks[0].topic][ks[0].partition]
			req := kmsg.NewPtrFetchRequest()
			req.ReplicaID = -1
			req.MaxWaitMillis = 0
			req.MinBytes = 0
			req.MaxBytes = fetchMaxBytes
			req.SessionID, req.SessionEpoch = 0, -1
			for _, k := range ks {
				i := slices.IndexFunc(req.Topics, func(t kmsg.FetchRequestTopic) bool { return t.Topic == k.topic })
				if i < 0 {
					rt := kmsg.NewFetchRequestTopic()
					rt.Topic = k.topic
					rt.TopicID = leaders[k.topic][k.partition].id
					req.Topics = append(req.Topics, rt)
					i = len(req.Topics) - 1
				}
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition = k.partition
				rp.FetchOffset = at[k]
				rp.CurrentLeaderEpoch = leaders[k.topic][k.partition].epoch
				rp.LogStartOffset = -1
				rp.PartitionMaxBytes = fetchPartitionBytes
				req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
			}
			resp, err := c.cl.Broker(int(l.leader)).Request(ctx, req)
			if err != nil {
				for _, k := range ks {
					errs = append(errs, fmt.Errorf("record timestamp of %s/%d at offset %d (broker %d): %w", k.topic, k.partition, at[k], l.leader, err))
					delete(at, k)
				}
				continue
			}
			fresp, _ := resp.(*kmsg.FetchResponse)
			if fresp == nil {
				continue
			}
			if err := kerr.ErrorForCode(fresp.ErrorCode); err != nil {
				for _, k := range ks {
					errs = append(errs, fmt.Errorf("record timestamp of %s/%d (broker %d): %w", k.topic, k.partition, l.leader, err))
					delete(at, k)
				}
				continue
			}
			answered := map[tsKey]bool{}
			for i := range fresp.Topics {
				rt := &fresp.Topics[i]
				topic := rt.Topic
				if topic == "" { // v13+: by ID
					for _, k := range ks {
						if leaders[k.topic][k.partition].id == rt.TopicID {
							topic = k.topic
							break
						}
					}
				}
				for j := range rt.Partitions {
					rp := &rt.Partitions[j]
					var k tsKey
					found := false
					for _, kk := range ks {
						if kk.topic == topic && kk.partition == rp.Partition {
							k, found = kk, true
							break
						}
					}
					if !found {
						continue
					}
					answered[k] = true
					c.readTimestamp(k, at, rp, got, alone, &errs)
				}
			}
			for _, k := range ks {
				if !answered[k] {
					errs = append(errs, fmt.Errorf("record timestamp of %s/%d (broker %d): partition missing from the fetch response", k.topic, k.partition, l.leader))
					delete(at, k)
				}
			}
		}
	}
	for k := range at {
		errs = append(errs, fmt.Errorf("record timestamp of %s/%d: no record at or after offset %d after %d fetches", k.topic, k.partition, k.offset, fetchRounds))
	}
	if len(errs) > 0 {
		c.cl.ForceMetadataRefresh() // a moved leader is the usual cause
	}
	return got, errors.Join(errs...)
}

// readTimestamp takes k's answer from one fetched partition: the timestamp
// of its first data record at or after at[k] (done: removed from at), or
// where to read next (at[k] moved), or an error (removed from at).
func (c *Collector) readTimestamp(k tsKey, at map[tsKey]int64, rp *kmsg.FetchResponseTopicPartition, got map[tsKey]time.Time, alone map[tsKey]bool, errs *[]error) {
	switch err := kerr.ErrorForCode(rp.ErrorCode); {
	case errors.Is(err, kerr.OffsetOutOfRange):
		if rp.LogStartOffset > at[k] { // deleted records: the oldest unconsumed is the log start's
			at[k] = rp.LogStartOffset
			return
		}
		*errs = append(*errs, fmt.Errorf("record timestamp of %s/%d: offset %d out of range (log start %d, end %d)", k.topic, k.partition, at[k], rp.LogStartOffset, rp.HighWatermark))
		delete(at, k)
		return
	case err != nil:
		*errs = append(*errs, fmt.Errorf("record timestamp of %s/%d: %w", k.topic, k.partition, err))
		delete(at, k)
		return
	}
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
		KeepControlRecords: true,
		Offset:             at[k],
		Topic:              k.topic,
		Partition:          k.partition,
	}, rp, kgo.DefaultDecompressor(), nil)
	if fp.Err != nil {
		*errs = append(*errs, fmt.Errorf("record timestamp of %s/%d: %w", k.topic, k.partition, fp.Err))
		delete(at, k)
		return
	}
	for _, r := range fp.Records {
		if r.Offset < at[k] {
			continue
		}
		if r.Attrs.IsControl() {
			at[k] = r.Offset + 1
			continue
		}
		got[k] = r.Timestamp
		delete(at, k)
		return
	}
	switch {
	case at[k] >= rp.HighWatermark:
		// Only control records up to the end: nothing unconsumed that a
		// consumer would see; its age is the end's (0).
		got[k] = time.Time{}
		delete(at, k)
	case len(fp.Records) == 0:
		alone[k] = true // no room in a shared response: ask alone
	}
}
