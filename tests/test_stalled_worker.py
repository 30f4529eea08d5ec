"""A worker stalled past its lease (SIGSTOP) wakes up after another finished its job.

Two `easel worker` processes share one database and one image folder. Whichever claims
the generation is stopped with SIGSTOP at a held request: its image request to the
provider (even runs) or the upload of its image into the Slack thread (odd runs). The
other worker's sweeper requeues the job once the lease runs out and that worker finishes
it; then the stalled one gets SIGCONT. What it does after waking must change nothing a
person or the record sees: the stored object is the one `assets.sha256` names, the status
message ends at Done, and the thread holds exactly one image.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.scripted import RecordedRequest
from tests.fakes.slack_routes import SlackRoutes
from tests.fakes.slack_server import FakeSlack
from tests.procs import EaselProcess, EaselProcesses, wait_until
from tests.test_processes import (
    LEASE_S,
    SlowOpenAI,
    Submitter,
    easel_env,
    settlements,
    status_texts,
    uploads_in,
    worker_pid,
)

pytestmark = pytest.mark.slow

RUNS = 10
SHARE_PATH = "/api/files.completeUploadExternal"


class HoldFirst:
    """Holds the first request that comes after `arm()`, until `release()`."""

    def __init__(self) -> None:
        self._armed = False
        self.held = 0
        self._gate = asyncio.Event()

    def arm(self) -> None:
        self._armed, self.held = True, 0
        self._gate = asyncio.Event()

    def release(self) -> None:
        self._gate.set()

    async def pass_through(self) -> None:
        if not self._armed:
            return
        self._armed = False
        self.held += 1
        await self._gate.wait()


class HeldOpenAI(SlowOpenAI):
    def __init__(self, api_key: str) -> None:
        super().__init__(api_key, image_delay_s=0.2)
        self.hold = HoldFirst()

    async def _images(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        await self.hold.pass_through()
        return await super()._images(request, recorded)


class HeldSlack(FakeSlack):
    """FakeSlack that can hold the first image share (files.completeUploadExternal)."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = HoldFirst()

    async def start(self) -> str:
        app = SlackRoutes(self).application()
        app.middlewares.append(self._hold)
        self._runner = web.AppRunner(app, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.root_url = self.workspace.root_url = f"http://127.0.0.1:{port}"
        return self.api_url

    @web.middleware
    async def _hold(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == SHARE_PATH:
            await self.hold.pass_through()
        response: web.StreamResponse = await handler(request)
        return response


@pytest.fixture
async def procs(tmp_path: Path, database_url: str) -> AsyncIterator[EaselProcesses]:
    processes = EaselProcesses(tmp_path / "logs")
    try:
        yield processes
    finally:
        for process in processes.started:  # a stopped process would ignore SIGTERM
            if process.is_running:
                os.kill(process.pid, signal.SIGCONT)
        await processes.stop_all()
        processes.kill_all()


@pytest.fixture
async def held_fakes() -> AsyncIterator[tuple[HeldSlack, HeldOpenAI]]:
    slack, openai = HeldSlack(), HeldOpenAI(FakeOpenAI().api_key)
    for fake in (slack, openai):
        await fake.start()
    yield slack, openai
    for fake in (slack, openai):
        await fake.stop()


def lost_claim_logged(process: EaselProcess, generation_id: int) -> bool:
    for record in process.log_records():
        msg = str(record.get("msg", ""))
        if (f"generation {generation_id}: lease lost" in msg
                or (record.get("generation_id") == generation_id
                    and ("lease lost" in msg or "withdrew" in msg))):
            return True
    return False


async def test_a_worker_stopped_past_its_lease_changes_nothing_when_it_wakes(
    database_url: str, pool: asyncpg.Pool, procs: EaselProcesses, tmp_path: Path,
    held_fakes: tuple[HeldSlack, HeldOpenAI],
) -> None:
    slack, openai = held_fakes
    data_dir = tmp_path / "data"
    procs.env = easel_env(database_url, slack, openai, data_dir, EASEL_MAX_ATTEMPTS="5")
    submitter = Submitter(pool, slack, openai.api_key, openai.sdk_base_url,
                          tmp_path / "submit-images", max_attempts=5)
    workers = list(await asyncio.gather(procs.start_worker("worker-a"),
                                        procs.start_worker("worker-b")))
    by_pid = {w.pid: w for w in workers}
    withdrawn = 0
    try:
        for run in range(RUNS):
            at_upload = run % 2 == 1
            hold = slack.hold if at_upload else openai.hold
            hold.arm()
            sent = await submitter.submit(run + 1)
            await wait_until(lambda hold=hold: _true(hold.held == 1), timeout_s=30,
                             what="the first worker's held request")
            row = await pool.fetchrow("SELECT locked_by, claims FROM generations WHERE id = $1",
                                      sent.generation_id)
            assert row is not None
            stalled = by_pid[worker_pid(row["locked_by"]) or 0]
            os.kill(stalled.pid, signal.SIGSTOP)
            try:
                async def finished_elsewhere(sent: Any = sent) -> bool:
                    row = await pool.fetchrow(
                        "SELECT status::text AS status, claims FROM generations WHERE id = $1",
                        sent.generation_id)
                    return bool(row and row["status"] == "succeeded" and row["claims"] >= 2)

                await wait_until(finished_elsewhere, timeout_s=LEASE_S + 30, interval_s=0.1,
                                 what="the other worker to finish it")
            finally:
                hold.release()  # the stalled worker's request is answered while it sleeps
                await asyncio.sleep(0.3)
                os.kill(stalled.pid, signal.SIGCONT)
            await wait_until(lambda s=stalled, g=sent.generation_id: _true(
                lost_claim_logged(s, g)), timeout_s=30, what="the woken worker to see its loss")
            await asyncio.sleep(1.0)  # whatever it would still do, it has done by now

            final = await pool.fetchrow("SELECT * FROM generations WHERE id = $1",
                                        sent.generation_id)
            assert final is not None and final["status"] == "succeeded"
            assert await settlements(pool, final["reservation_id"]) == ["confirm"]
            [asset] = await pool.fetch("SELECT object_key, sha256 FROM assets "
                                       "WHERE generation_id = $1 AND kind = 'output'",
                                       sent.generation_id)
            stored = (data_dir / "images" / asset["object_key"]).read_bytes()
            assert hashlib.sha256(stored).hexdigest() == asset["sha256"], run
            texts = status_texts(slack, sent)
            assert texts[-1].startswith("✅ Done"), (run, texts)
            assert len(uploads_in(slack, sent.thread)) == 1, run
            withdrawn += sum(1 for r in stalled.log_records()
                             if r.get("generation_id") == sent.generation_id
                             and "withdrew" in str(r.get("msg", "")))
            assert all(w.is_running for w in workers)
        print(f"{RUNS} of {RUNS} runs: one stored object matching its sha256, Done, one image; "
              f"{withdrawn} image(s) a woken worker had posted were withdrawn")
    finally:
        for w in workers:
            if w.is_running:
                os.kill(w.pid, signal.SIGCONT)
        await submitter.close()


async def _true(value: bool) -> bool:
    return value
