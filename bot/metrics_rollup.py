"""The SQL behind /metrics: totals kept in `metrics_rollup`, plus the rows since.

A scrape reads the rolled-up totals and aggregates, in SQL, only the rows after the
watermark (`metrics_watermark.folded_until`), so its cost follows the traffic of the
last few minutes, not the size of the history. At most every `FOLD_EVERY_S` a scrape
folds the rows older than `SETTLE_S` into the totals. The margin is there because a
row's timestamp is its transaction's start: a statement that began before the
watermark but committed after the fold would otherwise never be counted (Easel's
writes are single statements of milliseconds; five minutes is far beyond them).
"""

from __future__ import annotations

import asyncpg

FOLD_EVERY_S = 300.0
SETTLE_S = 300.0


def _window(after: str, up_to: str) -> str:
    """Rows of each family with their time in (`after`, `up_to`], aggregated by bucket.
    `$1` is the histogram buckets' upper bounds (float8[])."""
    return f"""
SELECT family, labels,
    coalesce(le, (SELECT min(b) FROM unnest($1::float8[]) AS b WHERE b >= value),
             'Infinity') AS le,
    count(*) AS n, coalesce(sum(value), 0)::float8 AS total
FROM (
    SELECT 'outcome' AS family, ARRAY[model, platform, status::text] AS labels,
           'Infinity'::float8 AS le, 0::float8 AS value
    FROM generations WHERE finished_at > {after} AND finished_at <= {up_to}
  UNION ALL
    SELECT 'latency', '{{}}'::text[], NULL, extract(epoch FROM finished_at - created_at)::float8
    FROM generations
    WHERE status = 'succeeded' AND finished_at > {after} AND finished_at <= {up_to}
  UNION ALL
    SELECT 'stage', ARRAY[stage], NULL, duration_ms / 1000.0
    FROM generation_events
    WHERE duration_ms IS NOT NULL AND at > {after} AND at <= {up_to}
  UNION ALL
    SELECT 'error', ARRAY[coalesce(detail->>'kind', 'unknown')], 'Infinity', 0
    FROM generation_events
    WHERE stage IN ('retry', 'failed') AND at > {after} AND at <= {up_to}
  UNION ALL
    SELECT 'credits', ARRAY[kind::text], 'Infinity', amount::float8
    FROM ledger WHERE created_at > {after} AND created_at <= {up_to}
) AS observed
GROUP BY 1, 2, 3"""


WATERMARK = "SELECT folded_until FROM metrics_watermark"

# Every family's totals: rolled up, plus the rows since the watermark ($2). The watermark
# is a parameter, not a subquery, so the plan is made for its value: a window of minutes
# found through the indexes, not a third of each table (the planner's guess for an
# unknown bound).
TOTALS = f"""
SELECT family, labels, le, sum(n)::bigint AS n, sum(total)::float8 AS total FROM (
    SELECT family, labels, le, n, total FROM metrics_rollup
  UNION ALL
    {_window("$2::timestamptz", "'infinity'::timestamptz")}
) AS t
GROUP BY 1, 2, 3
"""

# Generations not finished yet, by status: they sit in a small partial index.
IN_FLIGHT = """
SELECT model, platform, status::text AS status, count(*) AS n FROM generations
WHERE status IN ('queued', 'running', 'waiting') GROUP BY 1, 2, 3
"""

QUEUE = """
SELECT count(*) AS depth,
    coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_s
FROM generations WHERE status = 'queued'
"""

# $2: the new watermark (older than SETTLE_S), $3: the old one (locked by the caller).
FOLD = f"""
WITH folded AS (
    INSERT INTO metrics_rollup (family, labels, le, n, total)
    {_window("$3::timestamptz", "$2::timestamptz")}
    ON CONFLICT (family, labels, le) DO UPDATE
        SET n = metrics_rollup.n + EXCLUDED.n, total = metrics_rollup.total + EXCLUDED.total
)
UPDATE metrics_watermark SET folded_until = $2
"""

DUE = """
SELECT folded_until, now() - make_interval(secs => $1) AS fold_until,
    folded_until < now() - make_interval(secs => $1 + $2) AS due
FROM metrics_watermark FOR UPDATE SKIP LOCKED
"""


async def fold_if_due(
    pool: asyncpg.Pool, buckets: list[float], *, every_s: float = FOLD_EVERY_S,
    settle_s: float = SETTLE_S,
) -> bool:
    """Fold the settled rows into the totals when the last fold is `every_s` old.

    One scrape folds at a time; the others skip it (SKIP LOCKED) and read as before.
    """
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(DUE, settle_s, every_s)
        if row is None or not row["due"]:
            return False
        await conn.execute(FOLD, buckets, row["fold_until"], row["folded_until"])
        return True


async def totals(pool: asyncpg.Pool, buckets: list[float]) -> list[asyncpg.Record]:
    """(family, labels, le, n, total) for every family, over the whole history."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                         readonly=True):
        # One snapshot: a fold committing in between cannot count its rows twice.
        watermark = await conn.fetchval(WATERMARK)
        return list(await conn.fetch(TOTALS, buckets, watermark))
