"""The worker: claims generations and runs them, a bounded number at a time.

Wakes on LISTEN/NOTIFY with a polling fallback; a side task heartbeats the
leases of everything in flight in one statement; on shutdown it stops claiming,
lets in-flight work finish within a grace period and gives the rest back.

Each loop (claim, heartbeat, listen) outlives a lost database: it backs off with
jitter and tries again, and the LISTEN connection is opened again. A loop that
ends anyway ends `run()` with an error, so the process exits non-zero and its
supervisor restarts it, rather than living on without claiming.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from core import generations as q
from core.dbhealth import CONNECTION_ERRORS, backoff_s
from core.lease import Claim
from core.logcontext import current_generation, current_session
from core.pipeline import Pipeline
from core.runtime import Runtime

log = logging.getLogger("easel.worker")

POLL_INTERVAL_S = 1.0
# How often an idle LISTEN connection is checked (a dead peer does not always say so).
LISTEN_CHECK_S = 5.0


class LoopEnded(RuntimeError):
    """A loop the worker cannot do without has ended."""


@dataclass
class Held:
    """A job in flight: what was claimed, the task running it, and the claim it holds."""

    job: q.Job
    task: asyncio.Task[None]
    claim: Claim


class Worker:
    """One process's share of the work."""

    def __init__(self, runtime: Runtime, *, concurrency: int | None = None) -> None:
        self.rt = runtime
        self.concurrency = concurrency or runtime.config.worker_concurrency
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.pipeline = Pipeline(runtime)
        self.inflight: dict[int, Held] = {}
        self.completed = 0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._listener: Any = None
        self._outages_resumed = 0  # database outages after which this worker claimed again

    async def run(self) -> None:
        """Claim and run until `stop()`; then drain within the shutdown grace period."""
        await self._register()
        side = [
            asyncio.create_task(self._heartbeat_loop(), name="worker-heartbeat"),
            asyncio.create_task(self._listen_loop(), name="worker-listen"),
        ]
        failures = 0
        try:
            while not self._stopping.is_set():
                _check_alive(side)
                started_at = time.monotonic()
                try:
                    claimed = await self._claim_some()
                except CONNECTION_ERRORS as exc:
                    failures += 1
                    self.rt.health.lost("claim", exc)
                    await self._sleep(backoff_s(failures))
                    continue
                failures = 0
                self.rt.health.reached(started_at)
                if claimed and self.rt.health.outages > self._outages_resumed:
                    self._outages_resumed = self.rt.health.outages
                    log.info("claiming again after the database outage: %d generation(s)",
                             claimed)
                if not claimed:
                    await self._sleep(POLL_INTERVAL_S)
        finally:
            for task in side:
                task.cancel()
            await self._drain(self.rt.config.shutdown_grace_s)
            with contextlib.suppress(*CONNECTION_ERRORS):
                await asyncio.shield(self.flush_shown())
            await self._unlisten()

    async def run_until_empty(self, timeout_s: float = 60.0) -> int:
        """Run until nothing is due and nothing is in flight (tests, `easel chat`)."""
        await self._register()
        heartbeat = asyncio.create_task(self._heartbeat_loop())
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    claimed = await self._claim_some()
                    if not claimed and not self.inflight and not await self._queued():
                        await self.flush_shown()
                        return self.completed
                    if not claimed:
                        await self._sleep(0.05)
        finally:
            heartbeat.cancel()

    async def _queued(self) -> bool:
        """Whether anything of ours is queued (due later) or running elsewhere."""
        return bool(
            await self.rt.pool.fetchval(
                """SELECT EXISTS (SELECT 1 FROM generations WHERE status IN ('queued', 'running')
                   AND platform = ANY($1::text[]))""",
                list(self.rt.platforms),
            )
        )

    def stop(self) -> None:
        """Stop claiming (SIGTERM); `run()` then drains and returns."""
        self._stopping.set()
        self._wake.set()

    async def _claim_some(self) -> int:
        free = self.concurrency - len(self.inflight)
        if free <= 0:
            return 0
        jobs = await q.claim(
            self.rt.pool, self.id, free, self.rt.config.lease_s, list(self.rt.platforms),
            self.rt.only_channel, context_turns=self.rt.config.context_turns,
        )
        for job in jobs:
            claim = Claim(job.id, job.claims, self.rt.config.lease_s)
            task = asyncio.create_task(self._run_one(job, claim), name=f"generation-{job.id}")
            self.inflight[job.id] = Held(job, task, claim)
        return len(jobs)

    async def _run_one(self, job: q.Job, claim: Claim) -> None:
        # Each task has its own context: every log line of this job carries its ids.
        current_generation.set(job.id)
        current_session.set(job.session_id)
        try:
            await self.pipeline.run(job, claim)
        except CONNECTION_ERRORS as exc:  # its lease runs out and another claim takes it
            self.rt.health.lost(f"generation {job.id}", exc)
        except Exception:  # never "Task exception was never retrieved"
            log.exception("generation %s: its task failed", job.id)
        finally:
            self.inflight.pop(job.id, None)
            self.completed += 1
            self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _heartbeat_loop(self) -> None:
        interval_s = self.rt.config.lease_s / 3
        while True:
            await asyncio.sleep(interval_s)
            started_at = time.monotonic()
            try:
                await self.heartbeat()
            except CONNECTION_ERRORS as exc:  # the next beat may reach it
                self.rt.health.lost("heartbeat", exc)
                continue
            self.rt.health.reached(started_at)

    async def heartbeat(self) -> None:
        """Extend the leases of everything in flight; stop at once what we no longer own."""
        held = list(self.inflight.values())
        health = self.rt.health.snapshot()
        await self.rt.pool.execute(
            """UPDATE workers SET seen_at = now(), done_count = $2, db_outages = $3,
               db_last_outage_s = $4 WHERE id = $1""",
            self.id,
            self.completed,
            health.outages,
            health.last_outage_s,
        )
        await self.flush_shown()
        if not held:
            return
        sent_at = time.monotonic()
        rows = await self.rt.pool.fetch(
            q.HEARTBEAT,
            self.id,
            self.rt.config.lease_s,
            [h.job.id for h in held],
            [h.job.claims for h in held],
        )
        kept = {row["id"] for row in rows}
        for h in held:
            if h.job.id in kept:
                h.claim.renewed(sent_at)
            elif not h.claim.released and not h.task.done():
                # Requeued by the sweeper or claimed elsewhere: not one more edit or write.
                log.warning("generation %s: lease lost, stopping its task", h.job.id)
                h.claim.lost = True
                h.task.cancel()

    async def flush_shown(self) -> None:
        """Write down which final status edits were delivered (see the sweeper)."""
        shown, self.pipeline.shown = self.pipeline.shown, []
        if not shown:
            return
        try:
            await self.rt.pool.execute(q.MARK_SHOWN, shown)
        except BaseException:
            self.pipeline.shown.extend(shown)  # the next beat writes them down
            raise

    async def _drain(self, grace_s: float) -> None:
        tasks = [h.task for h in self.inflight.values()]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
        for task in pending:
            task.cancel()  # the pipeline gives a cancelled job back to the queue
        if pending:
            await asyncio.wait(pending, timeout=5)

    async def _register(self) -> None:
        await self.rt.pool.execute(
            """INSERT INTO workers (id, host, pid) VALUES ($1, $2, $3)
               ON CONFLICT (id) DO UPDATE SET seen_at = now()""",
            self.id,
            socket.gethostname(),
            os.getpid(),
        )

    async def _listen_loop(self) -> None:
        """Hold a LISTEN connection, opening it again whenever it is lost."""
        if self.rt.connect is None:
            await asyncio.Event().wait()  # polling only (tests without a connect function)
        failures = 0
        while True:
            started_at = time.monotonic()
            try:
                self._listener = await self.rt.connect()  # type: ignore[misc]
                await self._listener.add_listener(q.NOTIFY_CHANNEL, self._on_notify)
            except CONNECTION_ERRORS as exc:
                await self._unlisten()
                failures += 1
                self.rt.health.lost("listen", exc)
                await asyncio.sleep(backoff_s(failures))
                continue
            failures = 0
            self.rt.health.reached(started_at)
            self._wake.set()  # what was queued while we were not listening
            await self._until_closed(self._listener)
            await self._unlisten()

    async def _until_closed(self, conn: Any) -> None:
        closed = asyncio.Event()
        conn.add_termination_listener(lambda *_: closed.set())
        while not closed.is_set() and not conn.is_closed():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closed.wait(), LISTEN_CHECK_S)
            if closed.is_set() or conn.is_closed():
                return
            try:
                await conn.execute("SELECT 1", timeout=LISTEN_CHECK_S)
            except CONNECTION_ERRORS:
                return

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _unlisten(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close(timeout=2)
            self._listener = None


def _check_alive(side: list[asyncio.Task[None]]) -> None:
    """Raise if one of the worker's side loops has ended (they run until cancelled)."""
    for task in side:
        if task.done():
            exc = None if task.cancelled() else task.exception()
            raise LoopEnded(f"the worker's {task.get_name()} loop ended: {exc!r}") from exc
