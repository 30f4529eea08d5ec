"""A Postgres restart under load: every Easel process lives through it and resumes by itself.

A private server of the test's own (tests/pgctl.py) is stopped with `pg_ctl stop -m fast`
for 2 s and then for 15 s while two `easel worker`, an `easel web` and an `easel gateway`
(Slack over HTTP) run real generations against fake Slack and OpenAI servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.db import create_pool
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.pgctl import RestartablePostgres
from tests.procs import EaselProcess, EaselProcesses, free_port, wait_until
from tests.test_processes import SlowOpenAI, Submitter, easel_env, uploads_in

pytestmark = pytest.mark.slow

OUTAGES_S = (2.0, 15.0)
PER_ROUND = 40
RESUME_TARGET_S = 5.0  # database back -> first claim (printed, not asserted)


@pytest.fixture
async def postgres(tmp_path: Path) -> AsyncIterator[RestartablePostgres]:
    server = await asyncio.to_thread(RestartablePostgres, tmp_path / "pg")
    yield server
    with contextlib.suppress(Exception):
        await server.start()  # a failed test may leave it stopped
    await asyncio.to_thread(server.close)


async def ready(port: int) -> tuple[int, dict[str, object]]:
    """GET /readyz of the process on `port`: its status code and body."""
    async with aiohttp.ClientSession() as session, session.get(
        f"http://127.0.0.1:{port}/readyz"
    ) as response:
        return response.status, json.loads(await response.text())


def logged(process: EaselProcess, text: str) -> int:
    return sum(1 for r in process.log_records() if text in str(r.get("msg", "")))


async def test_postgres_stopped_for_2s_and_15s_under_load_every_process_resumes(
    postgres: RestartablePostgres, tmp_path: Path,
) -> None:
    database_url = await postgres.database("easel")
    pool = await create_pool(database_url, max_size=10)
    slack = FakeSlack()
    openai = SlowOpenAI(FakeOpenAI().api_key, image_delay_s=(0.3, 1.2))
    for fake in (slack, openai):
        await fake.start()
    web_port, gateway_port = free_port(), free_port()
    procs = EaselProcesses(tmp_path / "logs", easel_env(
        database_url, slack, openai, tmp_path / "data",
        SLACK_SIGNING_SECRET=slack.signing_secret))
    submitter = Submitter(pool, slack, openai.api_key, openai.sdk_base_url,
                          tmp_path / "submit-images")
    try:
        web, *workers = await asyncio.gather(
            procs.start_web("web", web_port), procs.start_worker("worker-1"),
            procs.start_worker("worker-2"))
        gateway = procs.start("gateway", "gateway", env={"EASEL_WEB_PORT": str(gateway_port)})
        await gateway.wait_for_log("easel running: gateway")
        everyone = [web, gateway, *workers]
        sent = []
        for round_n, outage_s in enumerate(OUTAGES_S):
            batch = await asyncio.gather(*(
                submitter.submit(round_n * 1000 + n) for n in range(PER_ROUND)))
            sent += batch
            ids = [s.generation_id for s in batch]

            async def some_done(ids: list[int] = ids) -> bool:
                return bool(await pool.fetchval(
                    "SELECT count(*) >= 8 FROM generations WHERE id = ANY($1::bigint[]) "
                    "AND status = 'succeeded'", ids))

            await wait_until(some_done, timeout_s=60, what="work under way")
            running = await pool.fetchval(
                "SELECT count(*) FROM generations WHERE status = 'running'")
            await postgres.stop()
            await asyncio.sleep(min(outage_s, 1.0))
            status, body = await ready(web_port)
            assert status == 503 and str(body["database"]).startswith("unreachable"), body
            await asyncio.sleep(max(0.0, outage_s - 1.0))
            resumes_before = [logged(w, "claiming again after the database outage")
                              for w in workers]
            await postgres.start()
            back_at = time.monotonic()

            async def claimed_again(before: list[int] = resumes_before) -> bool:
                return any(logged(w, "claiming again after the database outage") > n
                           for w, n in zip(workers, before, strict=True))

            await wait_until(claimed_again, timeout_s=60, interval_s=0.05,
                             what="a worker to claim again")
            resumed_s = time.monotonic() - back_at

            async def batch_finished(ids: list[int] = ids) -> bool:
                return not await pool.fetchval(
                    "SELECT count(*) FROM generations WHERE id = ANY($1::bigint[]) "
                    "AND status NOT IN ('succeeded', 'failed')", ids)

            await wait_until(batch_finished, timeout_s=120, interval_s=0.2,
                             what="every generation of the round to finish")
            finished_s = time.monotonic() - back_at
            # The gateway takes a new request after the outage, and it is answered with an image.
            delivery = await slack.deliver_event(
                f"http://127.0.0.1:{gateway_port}/slack/events",
                slack.app_mention(f"a lighthouse after outage {round_n + 1}"))
            assert delivery.status == 200

            async def mention_done(round_n: int = round_n) -> bool:
                return bool(await pool.fetchval(
                    "SELECT status = 'succeeded' FROM generations WHERE user_prompt LIKE $1",
                    f"%after outage {round_n + 1}%"))

            await wait_until(mention_done, timeout_s=60, what="the gateway's request to finish")
            status, body = await ready(web_port)
            assert status == 200 and body["database_outages"] == 1 + round_n, body
            print(f"outage {outage_s:.0f}s with {running} running: first claim "
                  f"{resumed_s:.2f}s after the database came back (target {RESUME_TARGET_S}s), "
                  f"round finished {finished_s:.1f}s after")
            assert all(p.is_running for p in everyone), [(p.name, p.popen.poll()) for p in everyone]

        rows = await pool.fetch("SELECT status::text AS s, count(*) AS n FROM generations "
                                "GROUP BY 1")
        outcomes = {r["s"]: r["n"] for r in rows}
        print(f"outcomes: {outcomes}")
        assert set(outcomes) <= {"succeeded", "failed"}, outcomes
        assert sum(outcomes.values()) == len(sent) + len(OUTAGES_S)
        # Every person sees the outcome: the image, or the reason and that nothing was charged.
        for s in sent:
            row = await pool.fetchrow("SELECT status::text AS status FROM generations "
                                      "WHERE id = $1", s.generation_id)
            assert row is not None
            texts = slack.message(s.status.channel, s.status.message_id).texts  # type: ignore[union-attr]
            if row["status"] == "succeeded":
                assert len(uploads_in(slack, s.thread)) == 1
                assert texts[-1].startswith("✅ Done"), texts[-1]
            else:
                assert "Nothing was charged" in texts[-1], texts[-1]
        audit = await procs.run("credits", "audit")
        assert audit.returncode == 0 and "0 violations" in audit.stdout, audit.stdout
        status_run = await procs.run("status")
        assert "workers seen in the last minute: 2" in status_run.stdout, status_run.stdout
        assert status_run.stdout.count("lived through 2 database outages") == 2, status_run.stdout
        for worker in workers:  # once per outage, once per recovery
            assert logged(worker, "database unreachable") == len(OUTAGES_S), worker.name
            assert logged(worker, "database reachable again") == len(OUTAGES_S), worker.name
        await procs.stop_all(grace_s=15)
        assert [p.popen.returncode for p in everyone] == [0] * len(everyone)
        for name, text in procs.all_output().items():
            assert "never retrieved" not in text and "Traceback" not in text, name
    finally:
        try:
            await procs.stop_all()
        finally:
            procs.kill_all()
        await submitter.close()
        for fake in (slack, openai):
            await fake.stop()
        await pool.close()
