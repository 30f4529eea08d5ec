"""/metrics in Prometheus format, read from Postgres at scrape time.

Every process shares one database, so counts taken from it agree across any
number of workers and match what `easel status` and the rows say.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

QUERIES = {
    "outcomes": """SELECT model, platform, status::text AS status, count(*) AS n
                   FROM generations GROUP BY 1, 2, 3""",
    "queue": """SELECT count(*) FILTER (WHERE status = 'queued') AS depth,
                   coalesce(extract(epoch FROM now() - min(created_at)
                       FILTER (WHERE status = 'queued')), 0) AS oldest_s
                FROM generations""",
    "credits": """SELECT kind::text AS kind, coalesce(sum(amount), 0) AS total
                  FROM ledger GROUP BY 1""",
    "errors": """SELECT coalesce(detail->>'kind', 'unknown') AS kind, count(*) AS n
                 FROM generation_events WHERE stage IN ('retry', 'failed') GROUP BY 1""",
    "stages": """SELECT stage, duration_ms / 1000.0 AS s FROM generation_events
                 WHERE duration_ms IS NOT NULL AND at > now() - interval '1 day'""",
    "latency": """SELECT extract(epoch FROM finished_at - created_at) AS s FROM generations
                  WHERE status = 'succeeded' AND finished_at > now() - interval '1 day'""",
}


def _histogram(name: str, doc: str, label: str | None, rows: list[tuple[str, float]]) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=[label] if label else None)
    groups: dict[str, list[float]] = {}
    for key, value in rows:
        groups.setdefault(key, []).append(value)
    for key, values in sorted(groups.items()):
        buckets = [(str(b), float(sum(1 for v in values if v <= b))) for b in BUCKETS_S]
        buckets.append(("+Inf", float(len(values))))
        family.add_metric([key] if label else [], buckets, sum_value=sum(values))
    return family


class _Snapshot:
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


async def snapshot(pool: object) -> list[Metric]:
    """Read the figures from the database into Prometheus metric families."""
    rows = {name: await pool.fetch(sql) for name, sql in QUERIES.items()}  # type: ignore[attr-defined]
    outcomes = CounterMetricFamily(
        "easel_generations", "Generations by model, platform and outcome",
        labels=["model", "platform", "outcome"],
    )
    for r in rows["outcomes"]:
        outcomes.add_metric([r["model"], r["platform"], r["status"]], r["n"])
    depth = GaugeMetricFamily("easel_queue_depth", "Generations queued now")
    depth.add_metric([], rows["queue"][0]["depth"])
    oldest = GaugeMetricFamily("easel_queue_oldest_seconds", "Age of the oldest queued one")
    oldest.add_metric([], float(rows["queue"][0]["oldest_s"]))
    ledger = CounterMetricFamily(
        "easel_credits", "Credits moved, by ledger kind (reserve/confirm/release/grant)",
        labels=["kind"],
    )
    for r in rows["credits"]:
        ledger.add_metric([r["kind"]], r["total"])
    errors = CounterMetricFamily(
        "easel_provider_errors", "Provider errors by kind", labels=["kind"]
    )
    for r in rows["errors"]:
        errors.add_metric([r["kind"]], r["n"])
    stages = _histogram(
        "easel_stage_duration_seconds", "Stage durations (last day)", "stage",
        [(r["stage"], float(r["s"])) for r in rows["stages"]],
    )
    latency = _histogram(
        "easel_end_to_end_seconds", "Submit to done (last day)", None,
        [("", float(r["s"])) for r in rows["latency"]],
    )
    return [outcomes, depth, oldest, ledger, errors, stages, latency]


async def metrics_handler(request: web.Request) -> web.Response:
    from bot.web import RUNTIME

    registry = CollectorRegistry()
    registry.register(_Snapshot(await snapshot(request.app[RUNTIME].pool)))
    return web.Response(body=generate_latest(registry), content_type="text/plain",
                        charset="utf-8")
