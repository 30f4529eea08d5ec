"""Recovery: the sweeper that makes sure nothing is left half done.

Requeues generations whose worker died (lease expired), fails and refunds those
out of attempts or past their deadline, wakes parked generations whose webhook
is late so a worker polls the provider, and settles reservations whose
generation is terminal but unsettled. Runs every few seconds and once at start-up.
A generation past its deadline whose worker is gone is failed and refunded here, and
its provider job (a parked prediction) cancelled at the provider.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from core import generations as q
from core.compare import finish_group, finish_stranded_groups
from core.credits import confirm, release
from core.dbhealth import CONNECTION_ERRORS, backoff_s
from core.errors import EaselError, GenerationTimedOut, WorkerLost
from core.fencing import cancel_quietly
from core.ports import CancellableProvider
from core.runtime import Runtime
from core.status import StatusReporter, failure_view, success_view

log = logging.getLogger("easel.sweeper")

REQUEUE_EXPIRED = """
WITH g AS (
    UPDATE generations SET status = 'queued', locked_by = NULL, locked_until = NULL,
        run_after = now()
    WHERE status = 'running' AND locked_until < now() AND attempts < max_attempts
      AND deadline_at > now()
    RETURNING id, claims
)
INSERT INTO generation_events (generation_id, claim, stage, detail)
SELECT id, claims, 'lease_expired', '{}' FROM g
RETURNING generation_id
"""

WAKE_PARKED = """
WITH g AS (
    UPDATE generations SET status = 'queued', run_after = now()
    WHERE status = 'waiting' AND run_after <= now() AND deadline_at > now()
    RETURNING id, claims
)
INSERT INTO generation_events (generation_id, claim, stage, detail)
SELECT id, claims, 'poll', '{"reason": "webhook late"}' FROM g
RETURNING generation_id
"""

DOOMED = """
SELECT g.*, s.workspace, s.channel, s.thread FROM generations g
JOIN sessions s ON s.id = g.session_id
WHERE (g.status = 'running' AND g.locked_until < now()
        AND (g.attempts >= g.max_attempts OR g.deadline_at <= now()))
   OR (g.status IN ('queued', 'waiting') AND g.deadline_at <= now())
LIMIT 500
"""

UNSETTLED = """
SELECT r.id, g.status::text AS status FROM reservations r JOIN generations g ON g.id = r.generation_id
WHERE r.status = 'pending' AND g.status IN ('succeeded', 'failed', 'cancelled')
UNION ALL
SELECT r.id, 'orphan' FROM reservations r
WHERE r.status = 'pending' AND r.generation_id IS NULL AND r.expires_at < now()
LIMIT 1000
"""


# Finished, but nobody is known to have told the thread (a worker died in between).
UNSHOWN = """
SELECT g.*, s.workspace, s.channel, s.thread FROM generations g
JOIN sessions s ON s.id = g.session_id
WHERE g.final_shown_at IS NULL AND g.finished_at IS NOT NULL AND g.compare_group IS NULL
  AND g.finished_at < now() - make_interval(secs => $1)
ORDER BY g.finished_at LIMIT 200
"""


@dataclass(frozen=True)
class SweepReport:
    requeued: int = 0
    woken: int = 0
    failed: int = 0
    settled: int = 0
    groups: int = 0
    shown: int = 0


async def sweep(rt: Runtime) -> SweepReport:
    """One pass of recovery."""
    requeued = await rt.pool.fetch(REQUEUE_EXPIRED)
    woken = await rt.pool.fetch(WAKE_PARKED)
    if requeued or woken:
        await q.notify(rt.pool)
    failed = 0
    for row in await rt.pool.fetch(DOOMED):
        job = q.Job.from_row(row)
        error: EaselError = (
            GenerationTimedOut() if job.deadline_at <= datetime.now(UTC) else WorkerLost()
        )
        if await _fail(rt, job, error):
            failed += 1
    settled = 0
    for row in await rt.pool.fetch(UNSETTLED):
        settle = confirm if row["status"] == "succeeded" else release
        async with rt.pool.acquire() as conn:
            if await settle(conn, row["id"], "settled by the sweeper"):
                settled += 1
    groups = await finish_stranded_groups(rt)
    shown = await show_unshown_finals(rt)
    report = SweepReport(len(requeued), len(woken), failed, settled, groups, shown)
    if report != SweepReport():
        log.info("sweep: %s", report)
    return report


async def _fail(rt: Runtime, job: q.Job, error: EaselError) -> bool:
    row = await rt.pool.fetchrow(
        q.SWEEP_FAIL, job.id, None, error.kind, error.user_message, {"kind": error.kind},
        error.user_message, None,
    )
    if row is None:
        return False
    provider = rt.providers.get(rt.catalog.get(job.model).provider)
    if job.external_id and isinstance(provider, CancellableProvider):
        await cancel_quietly(provider, job.external_id)
    if job.compare_group:
        await finish_group(rt, job.compare_group)
        return True
    platform = rt.platform_for(job.thread)
    if platform is None:
        log.warning("generation %s failed but no %s adapter here to say so",
                    job.id, job.thread.platform)
        return True
    reporter = StatusReporter(platform, job.thread, job.status_message, 0)
    view = failure_view(
        message=error.user_message,
        model=rt.catalog.get(job.model).display_name,
        elapsed_s=(datetime.now(UTC) - job.created_at).total_seconds(),
        generation_id=job.id,
    )
    if await reporter.final(view):
        await rt.pool.execute(q.MARK_SHOWN, [job.id])
    return True


async def show_unshown_finals(rt: Runtime) -> int:
    """Deliver the final status of generations whose worker died before showing it."""
    shown = 0
    for row in await rt.pool.fetch(UNSHOWN, rt.config.lease_s):
        job = q.Job.from_row(row)
        platform = rt.platform_for(job.thread)
        if platform is None or job.status_message is None:
            continue
        model = rt.catalog.get(job.model)
        elapsed_s = (row["finished_at"] - job.created_at).total_seconds()
        view = (
            success_view(
                model=model.display_name, cost=job.cost, elapsed_s=elapsed_s,
                refined_prompt=job.refined_prompt, generation_id=job.id,
                buttons=rt.follow_up_buttons(model, job.id, str(job.params.get("resolution", ""))),
            )
            if row["status"] == "succeeded"
            else failure_view(message=row["error"] or WorkerLost().user_message,
                              model=model.display_name, elapsed_s=elapsed_s,
                              generation_id=job.id)
        )
        if await StatusReporter(platform, job.thread, job.status_message, 0).final(view):
            await rt.pool.execute(q.MARK_SHOWN, [job.id])
            shown += 1
    return shown


async def run_sweeper(rt: Runtime, stop: asyncio.Event) -> None:
    """Sweep every `sweep_interval_s` until `stop` is set; a lost database is waited out."""
    failures = 0
    while not stop.is_set():
        wait_s = rt.config.sweep_interval_s
        started_at = time.monotonic()
        try:
            await sweep(rt)
            failures = 0
            rt.health.reached(started_at)
        except CONNECTION_ERRORS as exc:
            failures += 1
            rt.health.lost("sweep", exc)
            wait_s = min(wait_s, backoff_s(failures))
        except Exception as exc:  # one bad row must not stop recovery for everyone else
            log.warning("sweep failed: %r", exc)
        try:
            await asyncio.wait_for(stop.wait(), wait_s)
        except TimeoutError:
            pass
