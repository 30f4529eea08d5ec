"""/metrics in Prometheus format, read from Postgres at scrape time.

Every process shares one database, so counts taken from it agree across any
number of workers and match what `easel status` and the rows say. A scrape costs
the same with a thousand generations or a million (bot/metrics_rollup.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from bot.metrics_rollup import FOLD_EVERY_S, IN_FLIGHT, QUEUE, SETTLE_S, fold_if_due, totals

BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
INFINITY = float("inf")


def _histogram(name: str, doc: str, label: str | None, rows: list[asyncpg.Record]) -> Metric:
    """A histogram family from (labels, le, n, total) rows, one row per occupied bucket."""
    family = HistogramMetricFamily(name, doc, labels=[label] if label else None)
    groups: dict[tuple[str, ...], list[asyncpg.Record]] = {}
    for row in rows:
        groups.setdefault(tuple(row["labels"]), []).append(row)
    for key, bucket_rows in sorted(groups.items()):
        counts = {float(r["le"]): int(r["n"]) for r in bucket_rows}
        seen = 0
        buckets = []
        for bound in BUCKETS_S:
            seen += counts.get(float(bound), 0)
            buckets.append((str(bound), float(seen)))
        buckets.append(("+Inf", float(sum(counts.values()))))
        family.add_metric(list(key), buckets, sum_value=sum(float(r["total"]) for r in bucket_rows))
    return family


class _Snapshot:
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


async def snapshot(
    pool: asyncpg.Pool, *, fold_every_s: float = FOLD_EVERY_S, settle_s: float = SETTLE_S
) -> list[Metric]:
    """Read the figures from the database into Prometheus metric families.

    Totals since the first generation, at a cost that does not grow with history (see
    bot/metrics_rollup.py); histograms are cumulative, as Prometheus expects.
    """
    buckets = [float(b) for b in BUCKETS_S]
    await fold_if_due(pool, buckets, every_s=fold_every_s, settle_s=settle_s)
    by_family: dict[str, list[asyncpg.Record]] = {}
    for row in await totals(pool, buckets):
        by_family.setdefault(row["family"], []).append(row)
    outcomes = CounterMetricFamily(
        "easel_generations", "Generations by model, platform and outcome",
        labels=["model", "platform", "outcome"],
    )
    for r in by_family.get("outcome", []):
        outcomes.add_metric(list(r["labels"]), r["n"])
    for r in await pool.fetch(IN_FLIGHT):
        outcomes.add_metric([r["model"], r["platform"], r["status"]], r["n"])
    queue = await pool.fetchrow(QUEUE)
    assert queue is not None
    depth = GaugeMetricFamily("easel_queue_depth", "Generations queued now")
    depth.add_metric([], queue["depth"])
    oldest = GaugeMetricFamily("easel_queue_oldest_seconds", "Age of the oldest queued one")
    oldest.add_metric([], float(queue["oldest_s"]))
    ledger = CounterMetricFamily(
        "easel_credits", "Credits moved, by ledger kind (reserve/confirm/release/grant)",
        labels=["kind"],
    )
    for r in by_family.get("credits", []):
        ledger.add_metric(list(r["labels"]), round(r["total"]))
    errors = CounterMetricFamily(
        "easel_provider_errors", "Provider errors by kind", labels=["kind"]
    )
    for r in by_family.get("error", []):
        errors.add_metric(list(r["labels"]), r["n"])
    # The two kinds an operator alerts on, as their own counters.
    unknown = CounterMetricFamily(
        "easel_provider_outcome_unknown",
        "Provider calls sent but never answered (timeout, connection lost): failed and "
        "refunded, not sent again; the provider may have billed them",
    )
    quota = CounterMetricFamily(
        "easel_provider_quota_errors",
        "Generations refused because the provider account is out of quota or credit",
    )
    given_up = {str(next(iter(r["labels"]))): r["n"] for r in by_family.get("error", [])
                if list(r["labels"])}
    unknown.add_metric([], given_up.get("outcome_unknown", 0))
    quota.add_metric([], given_up.get("provider_quota", 0))
    stages = _histogram("easel_stage_duration_seconds", "Stage durations", "stage",
                        by_family.get("stage", []))
    latency = _histogram("easel_end_to_end_seconds", "Submit to done, succeeded ones", None,
                         by_family.get("latency", []))
    return [outcomes, depth, oldest, ledger, errors, unknown, quota, stages, latency]


async def metrics_handler(request: web.Request) -> web.Response:
    from bot.web import RUNTIME

    registry = CollectorRegistry()
    registry.register(_Snapshot(await snapshot(request.app[RUNTIME].pool)))
    return web.Response(body=generate_latest(registry), content_type="text/plain",
                        charset="utf-8")
