-- Operations views that do not grow with history, and a cheaper write path (issue 18).

-- `easel status` and the metrics read windows of finished generations.
CREATE INDEX generations_finished ON generations (finished_at) WHERE finished_at IS NOT NULL;
-- LIMITS counts a person's generations in flight, not their whole history.
CREATE INDEX generations_user_active ON generations (user_id)
    WHERE status IN ('queued', 'running', 'waiting');
-- Both tables are appended to in time order: a BRIN index finds a recent window for the
-- cost of a few bytes per 128 pages, not an index entry per row on the write path.
CREATE INDEX generation_events_at ON generation_events USING brin (at)
    WITH (autosummarize = on);
CREATE INDEX ledger_created ON ledger USING brin (created_at) WITH (autosummarize = on);

-- Stage writes and heartbeats move `locked_until`; an index on it made every one of them
-- a non-HOT update (a new entry in all nine indexes). The sweeper finds expired leases
-- among the running generations, which this smaller index lists.
DROP INDEX generations_running;
CREATE INDEX generations_running ON generations (id) WHERE status = 'running';
-- Room on each page for the updated versions of its rows, so they stay HOT.
ALTER TABLE generations SET (fillfactor = 80);

-- Foreign keys checked on every generation but held another way (each was one lookup
-- and a KEY SHARE row lock per inserted row, the ledger's on the user's row, which many
-- concurrent generations of one person turned into multixacts):
-- * generation_events rows are inserted only by the statements that update their
--   generation in the same statement (`... SELECT id FROM g`); generations are never
--   deleted.
-- * ledger rows are inserted only by the statements that debit the account, create or
--   settle the reservation they name (core/credits.py), and `easel credits audit`
--   checks that every entry's user, reservation and generation exist.
ALTER TABLE generation_events DROP CONSTRAINT generation_events_generation_id_fkey;
ALTER TABLE ledger DROP CONSTRAINT ledger_user_id_fkey;
ALTER TABLE ledger DROP CONSTRAINT ledger_generation_id_fkey;
ALTER TABLE ledger DROP CONSTRAINT ledger_reservation_id_fkey;

-- /metrics: totals up to `folded_until` are kept here (folded in by a scrape at most every
-- few minutes); a scrape adds only the rows after it. `le` is a histogram bucket's upper
-- bound ('Infinity' for counters and the +Inf bucket); `total` the sum of the values.
CREATE TABLE metrics_rollup (
    family text NOT NULL,
    labels text[] NOT NULL,
    le     double precision NOT NULL,
    n      bigint NOT NULL,
    total  double precision NOT NULL,
    PRIMARY KEY (family, labels, le)
);
CREATE TABLE metrics_watermark (
    one           boolean PRIMARY KEY DEFAULT true CHECK (one),
    folded_until  timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO metrics_watermark DEFAULT VALUES;
