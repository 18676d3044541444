#!/usr/bin/python3
"""Lag of a consumer group computed by an independent client.

librdkafka through python3-confluent-kafka (Debian's package), not franz-go:
committed offsets (OffsetFetch, without joining the group) and watermarks
(ListOffsets) of every partition of the topics given, and the lag as Kafka's
tools count it: high watermark minus committed offset, or minus the low
watermark when nothing is committed.

usage: pylag.py BROKERS GROUP TOPIC [TOPIC...]   (prints one JSON object)
"""
import json
import sys

from confluent_kafka import Consumer, TopicPartition


def main():
    brokers, group, topics = sys.argv[1], sys.argv[2], sys.argv[3:]
    c = Consumer({
        "bootstrap.servers": brokers,
        "group.id": group,
        "enable.auto.commit": False,
        # The group is never joined; this only matters if it were.
        "partition.assignment.strategy": "cooperative-sticky",
    })
    try:
        md = c.list_topics(timeout=10)
        tps = []
        for t in topics:
            if t not in md.topics or md.topics[t].error is not None:
                raise SystemExit("topic %s: not found (%s)" % (t, md.topics.get(t) and md.topics[t].error))
            tps += [TopicPartition(t, p) for p in sorted(md.topics[t].partitions)]
        committed = c.committed(tps, timeout=10)
        out = []
        for tp in committed:
            if tp.error is not None:
                raise SystemExit("%s/%d: %s" % (tp.topic, tp.partition, tp.error))
            low, high = c.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10, cached=False)
            at = tp.offset if tp.offset >= 0 else -1  # OFFSET_INVALID (-1001): nothing committed
            lag = high - at if at >= 0 else high - low
            out.append({"topic": tp.topic, "partition": tp.partition, "committed": at,
                        "low": low, "high": high, "lag": max(0, lag)})
        print(json.dumps({"group": group, "partitions": out}))
    finally:
        c.close()


if __name__ == "__main__":
    main()
