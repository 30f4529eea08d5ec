"""Never paying a provider twice: retry only when the provider certainly did no paid work.

The real OpenAI and Gemini adapters (real SDKs against the local fakes) in the real core:
a timeout after sending is one POST, failed, refunded and counted in /metrics; a 429
without a quota code is retried and charged once; a quota refusal is one POST, no retry,
the quota sentence, an ERROR log and a metric; a retry reuses the refined prompt.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from adapters.providers.google_images import GoogleImageProvider
from adapters.providers.openai_images import OpenAIImageProvider
from adapters.refiners.llm import OpenAIRefiner
from bot.metrics import snapshot
from core.errors import OutcomeUnknown, ProviderQuotaExhausted
from core.models import StatusView
from core.runtime import Runtime
from core.service import Easel
from core.status import received_view
from core.submit import SubmitRequest
from core.worker import Worker
from tests.corekit import FakeChat, ledger_ok, make_runtime, request
from tests.fakes import gemini_server as gemini
from tests.fakes import openai_server as openai_fake
from tests.fakes.scripted import RecordedRequest, Reply, ScriptedServer

STARTER = 50
CLIENT_TIMEOUT_S = 0.5


@dataclass(frozen=True)
class Case:
    model: str
    provider: str
    route: str
    rate_limited: Reply
    out_of_quota: Reply


CASES = [
    Case("gpt", "openai", "images/generations", openai_fake.rate_limited("0"),
         openai_fake.openai_error(
             429, "You exceeded your current quota, please check your plan and billing details.",
             type="insufficient_quota", code="insufficient_quota")),
    Case("nano2", "google", gemini.ROUTE, gemini.rate_limited("0"),
         gemini.google_error(
             429, "Quota exceeded for metric: generativelanguage.googleapis.com/"
             "generate_content_free_tier_requests, limit: 0, model: gemini-3.1-flash-image",
             "RESOURCE_EXHAUSTED")),
]


@dataclass
class World:
    case: Case
    fake: ScriptedServer
    rt: Runtime
    chat: FakeChat

    def posts(self) -> list[RecordedRequest]:
        return self.fake.requests_to(self.case.route)


@pytest_asyncio.fixture(scope="module")
async def fakes() -> AsyncIterator[dict[str, ScriptedServer]]:
    servers: dict[str, ScriptedServer] = {
        "openai": openai_fake.FakeOpenAI(), "google": gemini.FakeGemini()
    }
    for server in servers.values():
        await server.start()
    yield servers
    for server in servers.values():
        await server.stop()


@pytest.fixture(params=CASES, ids=[c.model for c in CASES])
async def world(
    request: pytest.FixtureRequest, fakes: dict[str, ScriptedServer], pool: asyncpg.Pool,
    images_dir: Path,
) -> AsyncIterator[World]:
    case: Case = request.param
    fake = fakes[case.provider]
    fake.reset()
    provider: Any
    if case.provider == "openai":
        provider = OpenAIImageProvider(openai_fake.DEFAULT_KEY, f"{fake.base_url}/v1",
                                       timeout_s=CLIENT_TIMEOUT_S)
    else:
        provider = GoogleImageProvider(gemini.DEFAULT_KEY, fake.base_url,
                                       timeout_s=CLIENT_TIMEOUT_S)
    chat = FakeChat()
    rt = make_runtime(pool, images_dir, providers={case.provider: provider}, chat=chat,
                      default_model=case.model, backoff_base_s=0.01)
    yield World(case, fake, rt, chat)
    await provider.aclose()
    fake.reset()


async def _run(world: World, text: str) -> StatusView:
    req = request(text)
    status = await world.chat.post_status(req.thread, received_view(text))
    await Easel(world.rt).submit(SubmitRequest(**{**req.__dict__, "status_message": status}))
    await Worker(world.rt).run_until_empty()
    final = world.chat.find(status).current
    assert isinstance(final, StatusView) and final.is_final
    return final


async def _account(pool: asyncpg.Pool) -> tuple[int, int, int]:
    row = await pool.fetchrow("SELECT available, reserved, spent FROM accounts")
    assert row is not None
    return row["available"], row["reserved"], row["spent"]


async def _metric(pool: asyncpg.Pool, name: str) -> float:
    for family in await snapshot(pool, fold_every_s=0, settle_s=0):
        for sample in family.samples:
            if sample.name.startswith(name):
                return float(sample.value)
    return 0.0


async def test_a_timeout_after_sending_is_one_post_refunded_and_counted(world: World) -> None:
    # The fake holds every answer past the client's timeout: the provider got the request.
    world.fake.script(world.case.route, [Reply(200, {}, delay_s=5)] * 3)
    final = await _run(world, "a lighthouse at dusk")

    posts = len(world.posts())
    print(f"{world.case.model}: POSTs for one timed-out generation: {posts}")
    assert posts == 1, "outcome unknown: never sent a second time"
    assert final.succeeded is False and OutcomeUnknown.default_message in final.headline
    row = await world.rt.pool.fetchrow("SELECT status::text, error_kind, attempts FROM generations")
    assert row is not None and tuple(row) == ("failed", "outcome_unknown", 1)
    assert await _account(world.rt.pool) == (STARTER, 0, 0)
    assert await _metric(world.rt.pool, "easel_provider_outcome_unknown") == 1
    assert await ledger_ok(world.rt.pool) == []


async def test_a_429_without_quota_code_is_retried_and_charged_once(world: World) -> None:
    world.fake.script(world.case.route, [world.case.rate_limited])
    final = await _run(world, "a castle on a hill")

    assert len(world.posts()) == 2 and final.succeeded
    cost = world.rt.catalog.get(world.case.model).cost("2K")
    assert await _account(world.rt.pool) == (STARTER - cost, 0, cost)
    confirms = await world.rt.pool.fetchval("SELECT count(*) FROM ledger WHERE kind = 'confirm'")
    assert confirms == 1
    assert await ledger_ok(world.rt.pool) == []


async def test_out_of_quota_is_one_post_no_retry_and_an_admin_is_told(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    world.fake.script(world.case.route, [world.case.out_of_quota] * 3)
    final = await _run(world, "a fox")

    assert len(world.posts()) == 1, "a quota refusal is not retried"
    assert final.succeeded is False and ProviderQuotaExhausted.default_message in final.headline
    assert "out of quota" in final.headline and "An admin has been told" in final.headline
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    model = world.rt.catalog.get(world.case.model)
    assert any(world.case.provider in r.getMessage() and model.model_id in r.getMessage()
               for r in errors), [r.getMessage() for r in errors]
    assert await world.rt.pool.fetchval("SELECT error_kind FROM generations") == "provider_quota"
    assert await _account(world.rt.pool) == (STARTER, 0, 0)
    assert await _metric(world.rt.pool, "easel_provider_quota_errors") == 1


async def test_a_connection_refused_before_sending_is_retried(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    provider = OpenAIImageProvider(openai_fake.DEFAULT_KEY, "http://127.0.0.1:9/v1", timeout_s=2)
    chat = FakeChat()
    rt = make_runtime(pool, images_dir, providers={"openai": provider}, chat=chat,
                      default_model="gpt", backoff_base_s=0.01)
    world = World(CASES[0], openai_fake.FakeOpenAI(), rt, chat)
    final = await _run(world, "a fox")
    await provider.aclose()

    attempts = await pool.fetchval("SELECT attempts FROM generations")
    assert attempts == rt.config.max_attempts, "nothing was sent, so every attempt is safe"
    assert final.succeeded is False and await _account(pool) == (STARTER, 0, 0)


async def test_a_retry_reuses_the_refined_prompt_and_pays_the_refiner_once(
    fakes: dict[str, ScriptedServer], pool: asyncpg.Pool, images_dir: Path
) -> None:
    fake = fakes["openai"]
    fake.reset()
    base_url = f"{fake.base_url}/v1"
    provider = OpenAIImageProvider(openai_fake.DEFAULT_KEY, base_url, timeout_s=5)
    chat = FakeChat()
    rt = make_runtime(pool, images_dir, providers={"openai": provider}, chat=chat,
                      default_model="gpt", backoff_base_s=0.01)
    rt.refiner = OpenAIRefiner(openai_fake.DEFAULT_KEY, base_url, model="gpt-5.4-mini")
    fake.script("images/generations", [openai_fake.rate_limited("0")] * 2)
    world = World(CASES[0], fake, rt, chat)
    final = await _run(world, "a castle on a hill")
    await provider.aclose()

    assert final.succeeded
    prompts = [r.json["prompt"] for r in fake.requests_to("images/generations")]
    assert prompts == ["a fake refined prompt"] * 3, "three POSTs, one prompt"
    assert len(fake.requests_to("chat/completions")) == 1, "the refiner is paid once"
