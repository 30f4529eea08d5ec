"""`easel bench --fill N`: a database with N generations of history, and the operations
views timed against it.

The history is written by a few `generate_series` statements in a scratch database:
users, sessions, reservations, generations over the last 90 days (a few queued and
running at the newest end), five stage events each and the ledger entries that go with
them, so the accounts balance and `easel credits audit` finds nothing. One user has
`SMALL` generations and one has `BIG`, so LIMITS can be timed for both. Then `/metrics`,
`easel status`, LIMITS and the audit are each run a few times and their times printed.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from bot.db import create_pool

OTHER_USERS = 10_000
SMALL = 10
BIG = 100_000
HISTORY_DAYS = 90
ACTIVE = 250  # the newest generations are still in flight: 200 queued, 50 running
REPEATS = 5

# {n} generations, {big} of them the big user's, {users} other users, {days} of history
# (integers from this module, formatted in).
# Generation i belongs to the small user (i <= SMALL), the big one, or one of the others.
FILL = [
    """INSERT INTO users (id, platform, external_id)
       SELECT u, 'bench', CASE u WHEN 1 THEN 'small' WHEN 2 THEN 'big' ELSE 'user-' || u END
       FROM generate_series(1, {users} + 2) AS u""",
    """CREATE TEMP TABLE fill AS
       SELECT i,
           CASE WHEN i <= {small} THEN 1 WHEN i <= {small} + {big} THEN 2
                ELSE 3 + i % {users} END AS user_id,
           now() - ({n} - i) * make_interval(days => {days}) / {n} AS at,
           CASE WHEN i > {n} - {active} + 50 THEN 'queued'
                WHEN i > {n} - {active} THEN 'running'
                WHEN i % 25 = 0 THEN 'failed' ELSE 'succeeded' END::generation_status AS status
       FROM generate_series(1, {n}) AS i""",
    """INSERT INTO sessions (id, platform, channel, thread, model, created_by, created_at)
       SELECT i, 'bench', 'c', 't' || i, 'bench', user_id, at FROM fill""",
    """WITH r AS (
           INSERT INTO reservations (id, user_id, generation_id, amount, status, created_at,
                                     expires_at, settled_at)
           SELECT i, user_id, i, 1, CASE status WHEN 'succeeded' THEN 'confirmed'
                      WHEN 'failed' THEN 'released' ELSE 'pending' END::reservation_status,
                  at, at + interval '1 hour',
                  CASE WHEN status IN ('succeeded', 'failed') THEN at + interval '5 s' END
           FROM fill
       )
       INSERT INTO generations (id, session_id, user_id, platform, source_event, model,
           params, user_prompt, refined_prompt, status, stage, attempts, claims, run_after,
           locked_by, locked_until, deadline_at, reservation_id, cost, error_kind, error,
           created_at, started_at, finished_at, final_shown_at)
       SELECT i, i, user_id, 'bench', 'fill-' || i, 'bench',
           '{{"aspect_ratio": "1:1", "resolution": "1K", "seed": 1}}', 'a filled image',
           'a filled image, refined', status,
           CASE WHEN status IN ('queued', 'running') THEN 'received' ELSE 'done' END
               ::generation_stage,
           1, 1, at, CASE WHEN status = 'running' THEN 'bench' END,
           CASE WHEN status = 'running' THEN now() + interval '1 minute' END,
           at + interval '10 minutes', i, 1,
           CASE WHEN status = 'failed' THEN 'rate_limited' END,
           CASE WHEN status = 'failed' THEN 'The model is busy.' END,
           at, at + interval '100 ms',
           CASE WHEN status IN ('succeeded', 'failed') THEN at + interval '5 s' END,
           CASE WHEN status IN ('succeeded', 'failed') THEN at + interval '5 s' END
       FROM fill""",
    """INSERT INTO generation_events (generation_id, claim, stage, detail, duration_ms, at)
       SELECT i, 1, s.stage, '{{}}', CASE WHEN s.n < 5 THEN s.ms END,
              at + s.n * interval '1 s'
       FROM fill, (VALUES (1, 'understanding', 5.0), (2, 'refining_prompt', 20.0),
                          (3, 'generating', 4000.0), (4, 'uploading', 50.0),
                          (5, 'end', NULL)) AS s(n, stage, ms)
       WHERE s.n < 5 OR status IN ('succeeded', 'failed')""",
    "UPDATE generation_events SET stage = g.status::text, "
    "detail = CASE g.status WHEN 'failed' THEN '{{\"kind\": \"rate_limited\"}}'::jsonb "
    "ELSE '{{}}'::jsonb END FROM generations g "
    "WHERE generation_events.stage = 'end' AND g.id = generation_events.generation_id",
    """INSERT INTO ledger (user_id, kind, amount, reason, idempotency_key, created_at)
       SELECT id, 'grant', 1000000000, 'fill', 'fill-grant:' || id, now() - interval '1 year'
       FROM users""",
    """INSERT INTO ledger (user_id, kind, amount, reason, reservation_id, generation_id,
                          idempotency_key, created_at)
       SELECT user_id, 'reserve', 1, 'bench 1K', i, i, 'reserve:' || i, at FROM fill
       UNION ALL
       SELECT user_id, CASE status WHEN 'succeeded' THEN 'confirm' ELSE 'release' END
              ::ledger_kind, 1, '', i, i,
              CASE status WHEN 'succeeded' THEN 'confirm:' ELSE 'release:' END || i,
              at + interval '5 s'
       FROM fill WHERE status IN ('succeeded', 'failed')""",
    """INSERT INTO accounts (user_id, granted, available, reserved, spent)
       SELECT u.id, 1000000000,
           1000000000 - count(f.i) FILTER (WHERE f.status <> 'failed'),
           count(f.i) FILTER (WHERE f.status IN ('queued', 'running')),
           count(f.i) FILTER (WHERE f.status = 'succeeded')
       FROM users u LEFT JOIN fill f ON f.user_id = u.id GROUP BY u.id""",
]
SEQUENCES = ["users", "sessions", "reservations", "generations", "generation_events",
             "ledger"]


async def fill(conn: asyncpg.Connection, generations: int) -> float:
    """Write the history; return the seconds it took."""
    big = max(0, min(BIG, generations - SMALL - ACTIVE))
    started = time.perf_counter()
    async with conn.transaction():
        # The rows are consistent by construction; checking 10M foreign keys one by one
        # would only slow the fill (a superuser may skip them; others wait longer).
        try:
            await conn.execute("SET LOCAL session_replication_role = replica")
        except asyncpg.InsufficientPrivilegeError:
            pass
        for sql in FILL:
            await conn.execute(sql.format(n=generations, big=big, users=OTHER_USERS,
                                          days=HISTORY_DAYS, small=SMALL, active=ACTIVE))
        for table in SEQUENCES:
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
    await conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


async def _timed(run: Callable[[], Awaitable[Any]]) -> list[float]:
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        await run()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def _line(name: str, times: list[float]) -> str:
    return (f"  {name:22} median {statistics.median(times):8.1f} ms  "
            f"min {min(times):8.1f} ms  ({len(times)} runs)")


async def run_fill(url: str, args: argparse.Namespace) -> int:
    """Fill the scratch database at `url` and print how long each view takes."""
    from bot.metrics import snapshot
    from bot.ops import queue_status
    from core.audit import audit
    from core.submit import LIMITS

    conn = await asyncpg.connect(url)
    pool = await create_pool(url, max_size=2)
    try:
        fill_s = await fill(conn, args.fill)
        counts = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM generations) AS generations,
                      (SELECT count(*) FROM generation_events) AS events,
                      (SELECT count(*) FROM ledger) AS ledger,
                      (SELECT count(*) FROM generations WHERE user_id = 1) AS small,
                      (SELECT count(*) FROM generations WHERE user_id = 2) AS big,
                      pg_size_pretty(pg_database_size(current_database())) AS size""")
        assert counts is not None

        async def limits(user_id: int) -> None:
            async with pool.acquire() as c, c.transaction():
                await c.fetchrow(LIMITS, user_id, "bench", "not-a-known-event")

        async def audited() -> None:
            async with pool.acquire() as c:
                problems = await audit(c)
            if problems:
                raise SystemExit(f"easel bench --fill: the filled history fails the audit: "
                                 f"{problems[:3]}")

        print(f"easel bench --fill: {counts['generations']} generations, {counts['events']} "
              f"events, {counts['ledger']} ledger entries ({counts['size']}), written in "
              f"{fill_s:.1f} s")
        t0 = time.perf_counter()
        await snapshot(pool)
        first_ms = (time.perf_counter() - t0) * 1000
        print(f"  {'/metrics, 1st scrape':22} {first_ms:8.1f} ms  (after an upgrade it folds "
              "the history into the totals, once)")
        print(_line("/metrics", await _timed(lambda: snapshot(pool))))
        print(_line("easel status", await _timed(lambda: queue_status(pool))))
        print(_line(f"LIMITS, {counts['small']} generations", await _timed(lambda: limits(1))))
        print(_line(f"LIMITS, {counts['big']} generations", await _timed(lambda: limits(2))))
        t0 = time.perf_counter()
        await audited()
        print(f"  {'credits audit':22} {(time.perf_counter() - t0) * 1000:8.1f} ms  (1 run, "
              f"O(accounts + ledger))")
    finally:
        await pool.close()
        await conn.close()
    return 0
