"""Replicate end to end: park → signed webhook into Easel's web server → resume → image.

The real ReplicateImageProvider (real `replicate` SDK) talks to the fake Replicate API
(tests/fakes/replicate_server.py); the fake delivers signed webhooks to Easel's real
aiohttp app (bot.web) on a local port; the core, the worker and the sweeper are real.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from adapters.providers.replicate_images import ReplicateImageProvider
from adapters.providers.replicate_webhook import WebhookSecret, fetch_webhook_secret
from bot.web import build_web_app
from core.errors import ContentPolicy
from core.models import StatusView
from core.runtime import Runtime
from core.service import Easel
from core.status import received_view
from core.submit import SubmitRequest
from core.sweeper import sweep
from core.worker import Worker
from tests.corekit import FakeChat, ledger_ok, make_runtime, request, thread
from tests.fakes.replicate_server import DEFAULT_TOKEN, FakeReplicate, WebhookDelivery

STARTER_CREDITS = 50
CREATE = "models.predictions.create"


@dataclass
class Flow:
    """Easel (core + web server) wired to the fake Replicate; one person, one thread."""

    fake: FakeReplicate
    provider: ReplicateImageProvider
    rt: Runtime
    chat: FakeChat
    web_url: str
    clock: list[float]  # what the webhook secret's re-fetch limit reads as "now"

    @property
    def pool(self) -> asyncpg.Pool:
        return self.rt.pool

    async def ask(self, text: str) -> Any:
        """Post the status message and submit, as a chat adapter does; returns the status ref."""
        req = request(text)
        status = await self.chat.post_status(req.thread, received_view(text))
        await Easel(self.rt).submit(SubmitRequest(**{**req.__dict__, "status_message": status}))
        return status

    async def park(self, text: str = "a lighthouse at dusk") -> tuple[str, Any]:
        """Ask, run the worker until the generation is parked; returns (prediction id, status)."""
        status = await self.ask(text)
        await Worker(self.rt).run_until_empty()
        row = await self.generation()
        assert row["status"] == "waiting", row["status"]
        return str(row["external_id"]), status

    async def generation(self) -> asyncpg.Record:
        row = await self.pool.fetchrow("SELECT * FROM generations ORDER BY id DESC LIMIT 1")
        assert row is not None
        return row

    async def count(self, sql: str) -> int:
        return int(await self.pool.fetchval(sql))

    async def account(self) -> tuple[int, int, int]:
        row = await self.pool.fetchrow("SELECT available, reserved, spent FROM accounts")
        assert row is not None
        return row["available"], row["reserved"], row["spent"]


@pytest.fixture
async def fake() -> AsyncIterator[FakeReplicate]:
    server = FakeReplicate()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def flow(
    fake: FakeReplicate, pool: asyncpg.Pool, images_dir: Path, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Flow]:
    caplog.set_level(logging.INFO)
    provider = ReplicateImageProvider(
        DEFAULT_TOKEN, base_url=fake.base_url, poll_interval_s=0.01, timeout_s=5
    )
    # The port is taken first so the runtime's public URL is right from the start.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    web_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    chat = FakeChat()
    rt = make_runtime(
        pool,
        images_dir,
        providers={"replicate": provider},
        chat=chat,
        default_model="flux",
        public_url=web_url,
        webhook_grace_s=0.2,
    )
    clock = [0.0]
    secrets = WebhookSecret(lambda: fetch_webhook_secret(provider.client), clock=lambda: clock[0])

    async def replicate_secret(refresh: bool) -> str | None:
        # As bot/roles.py does: the signing secret comes from Replicate's API.
        return await secrets.refetched() if refresh else await secrets.current()

    runner = web.AppRunner(build_web_app(rt, replicate_secret=replicate_secret), access_log=None)
    await runner.setup()
    await web.SockSite(runner, listener).start()
    yield Flow(fake, provider, rt, chat, web_url, clock)
    await runner.cleanup()
    assert DEFAULT_TOKEN not in caplog.text


def _outcome(delivery: WebhookDelivery) -> str:
    """What Easel's webhook endpoint said it did: requeued, duplicate or ignored."""
    return str(json.loads(delivery.response_text).get("outcome"))


async def test_a_webhook_resumes_the_parked_generation_and_charges_once(flow: Flow) -> None:
    status = await flow.ask("a lighthouse at dusk")
    await Worker(flow.rt).run_until_empty()

    parked = await flow.generation()
    [prediction] = flow.fake.predictions.values()
    assert (parked["status"], parked["external_id"]) == ("waiting", prediction.id)
    assert prediction.webhook == f"{flow.web_url}/webhooks/replicate"
    assert prediction.webhook_events_filter == ["completed"]
    assert prediction.input["prompt"] == parked["refined_prompt"]
    waiting = flow.chat.find(status).current
    assert isinstance(waiting, StatusView) and not waiting.is_final
    assert any("the image will appear here" in line for line in waiting.lines)
    assert flow.chat.images(thread()) == []
    cost = flow.rt.catalog.get("flux").cost("2K")
    assert await flow.account() == (STARTER_CREDITS - cost, cost, 0)

    flow.fake.finish(prediction.id)
    delivery = await flow.fake.deliver_webhook(prediction.id)
    assert delivery.status == 200 and _outcome(delivery) == "requeued"
    assert (await flow.generation())["status"] == "queued"

    await Worker(flow.rt).run_until_empty()
    [image] = flow.chat.images(thread())
    assert image.data == flow.fake.image_for(prediction.id)
    final = flow.chat.find(status).current
    assert isinstance(final, StatusView) and final.succeeded
    done = await flow.generation()
    assert (done["status"], done["attempts"]) == ("succeeded", 1)
    assert len(flow.fake.requests_to(CREATE)) == 1, "resuming does not create a new prediction"
    assert len(flow.fake.requests_to("predictions.get")) == 1
    events = [r["stage"] for r in await flow.pool.fetch("SELECT stage FROM generation_events ORDER BY id")]
    assert events.count("webhook") == 1 and events[-1] == "succeeded"
    assert await flow.count("SELECT count(*) FROM ledger WHERE kind = 'confirm'") == 1
    assert await flow.account() == (STARTER_CREDITS - cost, 0, cost)
    assert await ledger_ok(flow.pool) == []


@pytest.mark.parametrize("forgery", ["bad-signature", "stale-timestamp"])
async def test_a_forged_or_stale_webhook_is_refused_and_changes_nothing(
    flow: Flow, forgery: str, caplog: pytest.LogCaptureFixture
) -> None:
    prediction_id, _ = await flow.park()
    flow.fake.finish(prediction_id)
    before = dict(await flow.generation())

    if forgery == "bad-signature":
        delivery = await flow.fake.deliver_webhook(prediction_id, signature_ok=False)
    else:  # correctly signed, but six minutes old: a replay
        delivery = await flow.fake.deliver_webhook(prediction_id, timestamp=int(time.time()) - 360)

    assert delivery.status == 401
    assert dict(await flow.generation()) == before
    assert await flow.count("SELECT count(*) FROM webhook_deliveries") == 0
    assert await flow.count("SELECT count(*) FROM generation_events WHERE stage = 'webhook'") == 0
    reason = "bad signature" if forgery == "bad-signature" else "stale timestamp"
    assert f"replicate webhook rejected: {reason}" in caplog.text
    await Worker(flow.rt).run_until_empty()
    assert flow.chat.images(thread()) == [], "a refused webhook wakes nothing"


async def test_the_same_webhook_id_twice_has_one_effect(flow: Flow) -> None:
    prediction_id, _ = await flow.park()
    flow.fake.finish(prediction_id)

    first = await flow.fake.deliver_webhook(prediction_id, webhook_id="msg_once")
    again = await flow.fake.deliver_webhook(prediction_id, webhook_id="msg_once")

    assert (first.status, _outcome(first)) == (200, "requeued")
    assert (again.status, _outcome(again)) == (200, "duplicate")
    assert await flow.count("SELECT count(*) FROM webhook_deliveries") == 1
    assert await flow.count("SELECT count(*) FROM generation_events WHERE stage = 'webhook'") == 1
    await Worker(flow.rt).run_until_empty()
    # A late redelivery with a new id after the job finished requeues nothing either.
    late = await flow.fake.deliver_webhook(prediction_id, webhook_id="msg_late")
    assert (late.status, _outcome(late)) == (200, "ignored")
    assert len(flow.chat.images(thread())) == 1
    assert (await flow.generation())["status"] == "succeeded"
    assert await flow.count("SELECT count(*) FROM ledger WHERE kind = 'confirm'") == 1
    assert await ledger_ok(flow.pool) == []


async def test_a_lost_webhook_is_swept_and_the_worker_polls_it_to_completion(flow: Flow) -> None:
    flow.fake.polls_to_finish = 1  # the first poll finds it finished
    prediction_id, status = await flow.park()
    assert (await sweep(flow.rt)).woken == 0, "within the grace period the webhook may come"

    await asyncio.sleep(0.3)  # past webhook_grace_s = 0.2; no webhook ever arrives
    assert (await sweep(flow.rt)).woken == 1
    assert (await flow.generation())["status"] == "queued"
    await Worker(flow.rt).run_until_empty()

    assert flow.fake.deliveries == []
    assert len(flow.fake.requests_to("predictions.get")) == 1
    [image] = flow.chat.images(thread())
    assert image.data == flow.fake.image_for(prediction_id)
    final = flow.chat.find(status).current
    assert isinstance(final, StatusView) and final.succeeded
    stages = [r["stage"] for r in await flow.pool.fetch("SELECT stage FROM generation_events")]
    assert "poll" in stages and "webhook" not in stages
    assert await flow.count("SELECT count(*) FROM ledger WHERE kind = 'confirm'") == 1
    assert await ledger_ok(flow.pool) == []


async def test_a_poll_that_finds_it_still_running_parks_it_again(flow: Flow) -> None:
    flow.fake.polls_to_finish = 2
    prediction_id, _ = await flow.park()
    await asyncio.sleep(0.3)
    assert (await sweep(flow.rt)).woken == 1
    await Worker(flow.rt).run_until_empty()

    parked = await flow.generation()
    assert (parked["status"], parked["external_id"]) == ("waiting", prediction_id)
    assert await flow.count("SELECT count(*) FROM reservations WHERE status = 'pending'") == 1
    await asyncio.sleep(0.3)
    assert (await sweep(flow.rt)).woken == 1
    await Worker(flow.rt).run_until_empty()
    assert (await flow.generation())["status"] == "succeeded"
    assert len(flow.chat.images(thread())) == 1
    assert await ledger_ok(flow.pool) == []


async def test_a_webhook_for_an_unknown_prediction_is_a_logged_no_op(
    flow: Flow, caplog: pytest.LogCaptureFixture
) -> None:
    ours, _ = await flow.park()
    # A prediction Easel never made (another app on the same Replicate account).
    stray = await flow.provider.client.predictions.async_create(
        model="black-forest-labs/flux-1.1-pro",
        input={"prompt": "not ours"},
        webhook=f"{flow.web_url}/webhooks/replicate",
    )
    flow.fake.finish(stray.id)

    delivery = await flow.fake.deliver_webhook(stray.id)

    assert (delivery.status, _outcome(delivery)) == (200, "ignored")
    assert f"replicate webhook {stray.id}: ignored" in caplog.text
    row = await flow.generation()
    assert (row["status"], row["external_id"]) == ("waiting", ours)
    assert await flow.count("SELECT count(*) FROM webhook_deliveries WHERE generation_id IS NULL") == 1
    assert await flow.count("SELECT count(*) FROM generation_events WHERE stage = 'webhook'") == 0


@pytest.mark.parametrize(
    ("outcome", "says"),
    [
        ("failed", "could not accept this request: Invalid input"),
        ("nsfw", ContentPolicy.default_message),
    ],
)
async def test_a_failed_prediction_refunds_and_tells_the_person(flow: Flow, outcome: str, says: str) -> None:
    prediction_id, status = await flow.park()
    flow.fake.finish(prediction_id, outcome)
    delivery = await flow.fake.deliver_webhook(prediction_id)
    assert delivery.status == 200
    await Worker(flow.rt).run_until_empty()

    final = flow.chat.find(status).current
    assert isinstance(final, StatusView) and final.succeeded is False
    assert says in final.headline and "Nothing was charged" in final.headline
    assert flow.chat.images(thread()) == []
    assert (await flow.generation())["status"] == "failed"
    assert await flow.count("SELECT count(*) FROM reservations WHERE status = 'released'") == 1
    assert await flow.account() == (STARTER_CREDITS, 0, 0)
    assert await ledger_ok(flow.pool) == []


async def test_a_prediction_stuck_in_starting_past_the_deadline_is_cancelled_and_refunded_once(
    flow: Flow,
) -> None:
    flow.fake.polls_to_finish = 10**6  # it never leaves "starting"/"processing"
    prediction_id, status = await flow.park()
    await flow.pool.execute("UPDATE generations SET deadline_at = now() - interval '1 second'")

    assert (await sweep(flow.rt)).failed == 1
    assert (await sweep(flow.rt)).failed == 0

    cancels = flow.fake.requests_to("predictions.cancel")
    assert [c.match["id"] for c in cancels] == [prediction_id]
    assert flow.fake.predictions[prediction_id].status == "canceled"
    assert (await flow.generation())["status"] == "failed"
    assert await flow.count("SELECT count(*) FROM ledger WHERE kind = 'release'") == 1
    assert await flow.account() == (STARTER_CREDITS, 0, 0)
    final = flow.chat.find(status).current
    assert isinstance(final, StatusView) and final.succeeded is False
    assert await ledger_ok(flow.pool) == []


async def test_a_webhook_signed_with_a_rotated_secret_is_accepted_after_one_refetch(
    flow: Flow,
) -> None:
    prediction_id, _ = await flow.park()
    first = await flow.fake.deliver_webhook(prediction_id, webhook_id="msg_before")
    assert first.status == 200  # the secret was fetched once, for this one
    flow.fake.secret = "whsec_" + "cm90YXRlZC1zZWNyZXQtMDEyMzQ1Njc4OWFi"  # rotated at Replicate

    flow.clock[0] += 1  # within the minute: no re-fetch, refused
    refused = await flow.fake.deliver_webhook(prediction_id, webhook_id="msg_soon")
    assert refused.status == 401
    assert len(flow.fake.requests_to("webhooks.secret")) == 1

    flow.clock[0] += 60
    flow.fake.finish(prediction_id)
    accepted = await flow.fake.deliver_webhook(prediction_id, webhook_id="msg_after")
    assert accepted.status == 200
    assert len(flow.fake.requests_to("webhooks.secret")) == 2, "one re-fetch"
    again = await flow.fake.deliver_webhook(prediction_id, webhook_id="msg_again")
    assert again.status == 200 and len(flow.fake.requests_to("webhooks.secret")) == 2


@pytest.mark.parametrize("label", ["v0", "v1a", "v2"])
async def test_only_v1_signatures_are_accepted(flow: Flow, label: str) -> None:
    prediction_id, _ = await flow.park()
    flow.fake.finish(prediction_id)

    delivery = await flow.fake.deliver_webhook(prediction_id, label=label)

    assert delivery.status == 401
    assert await flow.count("SELECT count(*) FROM webhook_deliveries") == 0
