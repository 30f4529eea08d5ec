"""The worker: claims generations and runs them, a bounded number at a time.

Wakes on LISTEN/NOTIFY with a polling fallback; a side task heartbeats the
leases of everything in flight in one statement; on shutdown it stops claiming,
lets in-flight work finish within a grace period and gives the rest back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from typing import Any

from core import generations as q
from core.logcontext import current_generation, current_session
from core.pipeline import Pipeline
from core.runtime import Runtime

log = logging.getLogger("easel.worker")

POLL_INTERVAL_S = 1.0


class Worker:
    """One process's share of the work."""

    def __init__(self, runtime: Runtime, *, concurrency: int | None = None) -> None:
        self.rt = runtime
        self.concurrency = concurrency or runtime.config.worker_concurrency
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.pipeline = Pipeline(runtime)
        self.inflight: dict[int, tuple[q.Job, asyncio.Task[None]]] = {}
        self.completed = 0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._listener: Any = None

    async def run(self) -> None:
        """Claim and run until `stop()`; then drain within the shutdown grace period."""
        await self._register()
        await self._listen()
        heartbeat = asyncio.create_task(self._heartbeat_loop())
        try:
            while not self._stopping.is_set():
                claimed = await self._claim_some()
                if not claimed:
                    await self._sleep(POLL_INTERVAL_S)
        finally:
            heartbeat.cancel()
            await self._drain(self.rt.config.shutdown_grace_s)
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
            self.rt.pool, self.id, free, self.rt.config.lease_s, list(self.rt.platforms)
        )
        for job in jobs:
            task = asyncio.create_task(self._run_one(job), name=f"generation-{job.id}")
            self.inflight[job.id] = (job, task)
        return len(jobs)

    async def _run_one(self, job: q.Job) -> None:
        # Each task has its own context: every log line of this job carries its ids.
        current_generation.set(job.id)
        current_session.set(job.session_id)
        try:
            await self.pipeline.run(job)
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
            try:
                await self.heartbeat()
            except Exception as exc:  # the database blinked: the next beat may work
                log.warning("heartbeat failed: %s", exc)

    async def heartbeat(self) -> None:
        """Extend the leases of everything in flight; cancel what we no longer own."""
        held = list(self.inflight.values())
        await self.rt.pool.execute(
            "UPDATE workers SET seen_at = now(), done_count = $2 WHERE id = $1",
            self.id,
            self.completed,
        )
        await self.flush_shown()
        if not held:
            return
        rows = await self.rt.pool.fetch(
            q.HEARTBEAT,
            self.id,
            self.rt.config.lease_s,
            [job.id for job, _ in held],
            [job.claims for job, _ in held],
        )
        kept = {row["id"] for row in rows}
        unleased = [(job, task) for job, task in held if job.id not in kept and not task.done()]
        if not unleased:
            return
        # A job this worker just finished, parked or requeued holds no lease either, but its
        # task may still be making the final status edit: only a job claimed again is lost.
        claims_now = {
            row["id"]: row["claims"]
            for row in await self.rt.pool.fetch(
                "SELECT id, claims FROM generations WHERE id = ANY($1::bigint[])",
                [job.id for job, _ in unleased],
            )
        }
        for job, task in unleased:
            if claims_now.get(job.id, job.claims) != job.claims:
                log.warning("generation %s: lease lost, stopping its task", job.id)
                task.cancel()

    async def flush_shown(self) -> None:
        """Write down which final status edits were delivered (see the sweeper)."""
        shown, self.pipeline.shown = self.pipeline.shown, []
        if shown:
            await self.rt.pool.execute(q.MARK_SHOWN, shown)

    async def _drain(self, grace_s: float) -> None:
        tasks = [task for _, task in self.inflight.values()]
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

    async def _listen(self) -> None:
        if self.rt.connect is None:
            return
        try:
            self._listener = await self.rt.connect()
            await self._listener.add_listener(q.NOTIFY_CHANNEL, self._on_notify)
        except Exception as exc:  # polling still works without LISTEN
            log.warning("LISTEN unavailable, polling only: %s", exc)
            self._listener = None

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _unlisten(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
