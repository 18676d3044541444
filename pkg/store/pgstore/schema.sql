-- Ordo's idempotency store on PostgreSQL, schema version 1.
-- Applied by pgstore.Migrate (or `ordo store migrate`); every statement is
-- idempotent. pgstore.Schema returns this text with the configured table
-- names, for teams that run migrations with their own tool.

-- The inbox: one row per applied write, inserted in the same transaction
-- as the write itself, so that the effect and its dedup mark commit
-- together. pgstore.Prune deletes rows older than a retention.
CREATE TABLE IF NOT EXISTS ordo_inbox (
    key        text        PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ordo_inbox_applied_at ON ordo_inbox (applied_at);

-- The fences: each partition's latest fencing token, per consumer group.
-- Fence increments it when the partition is assigned; a write locks the
-- row FOR SHARE and is rejected if its token is lower.
CREATE TABLE IF NOT EXISTS ordo_fence (
    grp       text    NOT NULL,
    topic     text    NOT NULL,
    partition integer NOT NULL,
    token     bigint  NOT NULL,
    PRIMARY KEY (grp, topic, partition)
);
