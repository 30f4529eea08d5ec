"""Operations views that do not grow with history (issue 18).

/metrics keeps rolled-up totals plus the rows since the last fold: its figures must
match full-table counts before, across and after folds. `easel status`, LIMITS and the
metrics window must be answered from indexes on a filled history (asserted on the
plan, never on a time). The audit streams and catches what the dropped foreign keys
no longer refuse.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
from prometheus_client.core import Metric

from bot.bench_fill import fill
from bot.metrics import snapshot
from bot.metrics_rollup import TOTALS
from bot.ops import FAILURES, STATUS
from core.audit import audit
from core.errors import ContentPolicy, ProviderDown
from core.service import Easel
from core.submit import LIMITS
from core.worker import Worker
from tests.corekit import ScriptedProvider, make_runtime, request


def _samples(metrics: list[Metric]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in metrics for s in family.samples}


async def _expected(pool: asyncpg.Pool) -> dict[str, Any]:
    """What full-table scans say (the old /metrics queries)."""
    return {
        "outcomes": {(r["model"], r["status"]): r["n"] for r in await pool.fetch(
            "SELECT model, status::text AS status, count(*) AS n FROM generations GROUP BY 1, 2")},
        "credits": {r["kind"]: r["total"] for r in await pool.fetch(
            "SELECT kind::text AS kind, sum(amount) AS total FROM ledger GROUP BY 1")},
        "errors": {r["kind"]: r["n"] for r in await pool.fetch(
            """SELECT coalesce(detail->>'kind', 'unknown') AS kind, count(*) AS n
               FROM generation_events WHERE stage IN ('retry', 'failed') GROUP BY 1""")},
        "stages": {r["stage"]: r["n"] for r in await pool.fetch(
            """SELECT stage, count(*) AS n FROM generation_events
               WHERE duration_ms IS NOT NULL GROUP BY 1""")},
        "succeeded": await pool.fetchval(
            "SELECT count(*) FROM generations WHERE status = 'succeeded'"),
    }


def _shown(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, Any]:
    def by(name: str, label: str) -> dict[Any, float]:
        return {dict(labels)[label]: v for (n, labels), v in samples.items() if n == name}

    return {
        "outcomes": {(dict(labels)["model"], dict(labels)["outcome"]): v
                     for (n, labels), v in samples.items() if n == "easel_generations_total"},
        "credits": by("easel_credits_total", "kind"),
        "errors": by("easel_provider_errors_total", "kind"),
        "stages": by("easel_stage_duration_seconds_count", "stage"),
        "succeeded": samples[("easel_end_to_end_seconds_count", ())],
    }


async def _run_some(rt: Any, n: int) -> None:
    easel = Easel(rt)
    for _ in range(n):
        await easel.submit(request("a lighthouse at dusk", who=f"p{_ % 3}", n=_))
    await Worker(rt).run_until_empty()


async def test_metrics_match_full_counts_before_across_and_after_folds(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    provider = ScriptedProvider(script=[ProviderDown("down"), None, ContentPolicy("no")])
    rt = make_runtime(pool, images_dir, providers={"sketch": provider},
                      default_model="sketch", max_active=100, rate_per_minute=100)
    await _run_some(rt, 4)
    unfolded = _samples(await snapshot(pool, fold_every_s=1e9))  # nothing folded yet
    assert _shown(unfolded) == await _expected(pool)
    # Fold everything so far, then make more: totals = rolled up + the rows since.
    folded = _samples(await snapshot(pool, fold_every_s=0, settle_s=0))
    assert _shown(folded) == _shown(unfolded)
    assert await pool.fetchval("SELECT count(*) FROM metrics_rollup") > 0
    await _run_some(rt, 3)
    after = _samples(await snapshot(pool, fold_every_s=1e9))
    assert _shown(after) == await _expected(pool)
    assert _shown(after)["succeeded"] == _shown(folded)["succeeded"] + 3
    # A second fold moves the watermark on and still counts each row once.
    before_fold = await pool.fetchval("SELECT folded_until FROM metrics_watermark")
    again = _samples(await snapshot(pool, fold_every_s=0, settle_s=0))
    assert await pool.fetchval("SELECT folded_until FROM metrics_watermark") > before_fold
    assert again == after
    # Histogram buckets stay cumulative across the fold.
    buckets = sorted((float(dict(labels)["le"]), v) for (n, labels), v in again.items()
                     if n == "easel_end_to_end_seconds_bucket")
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert buckets[-1][1] == _shown(again)["succeeded"]


async def _plan(conn: asyncpg.Connection, sql: str, *args: object) -> str:
    plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    return plan if isinstance(plan, str) else json.dumps(plan)


def _seq_scanned(plan: str) -> set[str]:
    """The tables a plan reads whole."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("Node Type") == "Seq Scan":
                found.add(node["Relation Name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(plan))
    return found


async def test_views_are_answered_from_indexes_on_a_long_history(
    database_url: str, pool: asyncpg.Pool
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await fill(conn, 20_000)
        # LIMITS for the person with the long history reads their active generations only.
        plan = await _plan(conn, LIMITS, 2, "bench", "no-such-event")
        assert "generations_user_active" in plan, plan
        for sql in (STATUS, FAILURES):
            plan = await _plan(conn, sql)
            assert '"Relation Name": "generations"' in plan
            assert not _seq_scanned(plan), (sql, plan)
        # A scrape after a fold reads the tables only through their time indexes.
        await snapshot(pool, fold_every_s=0, settle_s=0)
        watermark = await conn.fetchval("SELECT folded_until FROM metrics_watermark")
        plan = await _plan(conn, TOTALS, [0.5, 1.0], watermark)
        for index in ("generations_finished", "generation_events_at", "ledger_created"):
            assert index in plan, (index, plan)
        assert _seq_scanned(plan) <= {"metrics_rollup"}, plan  # one row per label and bucket
        assert await audit(conn) == []
    finally:
        await conn.close()


async def test_the_audit_reports_ledger_entries_that_name_nothing(pool: asyncpg.Pool) -> None:
    # The ledger has no foreign keys any more (one lookup and row lock per entry); the
    # audit is where a dangling id shows.
    await pool.execute("INSERT INTO users (id, platform, external_id) VALUES (1, 'console', 'a')")
    await pool.execute(
        """INSERT INTO ledger (user_id, kind, amount, reservation_id, generation_id,
                               idempotency_key)
           VALUES (99, 'grant', 1, NULL, NULL, 'a'), (1, 'reserve', 1, 77, 88, 'b')""")
    async with pool.acquire() as conn:
        problems = await audit(conn)
    assert any("names user 99" in p for p in problems), problems
    assert any("names reservation 77" in p for p in problems), problems
    assert any("names generation 88" in p for p in problems), problems
