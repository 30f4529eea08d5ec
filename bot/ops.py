"""Operational views: `easel status`."""

from __future__ import annotations

import asyncpg

STATUS = """
SELECT
    (SELECT count(*) FROM generations WHERE status = 'queued') AS queued,
    (SELECT count(*) FROM generations WHERE status = 'running') AS running,
    (SELECT count(*) FROM generations WHERE status = 'waiting') AS waiting,
    (SELECT extract(epoch FROM now() - min(created_at)) FROM generations
      WHERE status = 'queued') AS oldest_queued_s,
    (SELECT count(*) FROM generations WHERE status = 'succeeded'
      AND finished_at > now() - interval '1 hour') AS succeeded_1h
"""
FAILURES = """
SELECT coalesce(error_kind, 'unknown') AS kind, count(*) AS n FROM generations
WHERE status = 'failed' AND finished_at > now() - interval '1 hour'
GROUP BY 1 ORDER BY 2 DESC
"""
WORKERS = """
SELECT id, done_count, extract(epoch FROM now() - seen_at) AS seen_s, db_outages,
       db_last_outage_s FROM workers
WHERE seen_at > now() - interval '1 minute' ORDER BY id
"""


async def queue_status(pool: asyncpg.Pool) -> str:
    """A few lines an operator reads at a glance."""
    row = await pool.fetchrow(STATUS)
    assert row is not None
    oldest = f"{row['oldest_queued_s']:.1f}s" if row["oldest_queued_s"] is not None else "-"
    lines = [
        f"queue: {row['queued']} queued (oldest {oldest}), {row['running']} running, "
        f"{row['waiting']} waiting on a provider",
        f"last hour: {row['succeeded_1h']} succeeded",
    ]
    failures = await pool.fetch(FAILURES)
    lines.append(
        "failures in the last hour: "
        + (", ".join(f"{r['kind']} {r['n']}" for r in failures) if failures else "none")
    )
    workers = await pool.fetch(WORKERS)
    lines.append(f"workers seen in the last minute: {len(workers)}")
    lines += [f"  {w['id']} · {w['done_count']} done · seen {w['seen_s']:.0f}s ago"
              + _outages(w["db_outages"], w["db_last_outage_s"]) for w in workers]
    return "\n".join(lines)


def _outages(count: int, last_s: float | None) -> str:
    """How the worker's database connection has fared ("" when it never lost it)."""
    if not count:
        return ""
    last = f", the last {last_s:.1f}s" if last_s is not None else ", one now"
    return f" · lived through {count} database outage{'s' if count != 1 else ''}{last}"
