"""Each real provider adapter through the real core: submit → worker → image or refund.

The OpenAI and Gemini adapters use their real SDKs against the local fake APIs
(tests/fakes/openai_server.py, gemini_server.py); Postgres, the worker, the
pipeline and the credits are the real ones. Each test says what the person sees
in the thread, what the rows say, and that the API key leaked nowhere.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from adapters.providers.google_images import GoogleImageProvider
from adapters.providers.openai_images import OpenAIImageProvider
from core.errors import BadUpload, ContentPolicy, ProviderDown
from core.models import StatusView
from core.runtime import Runtime
from core.service import Easel
from core.status import received_view
from core.submit import SubmitRequest, Submitted, Upload
from core.worker import Worker
from tests.corekit import FakeChat, ledger_ok, make_runtime, request, thread
from tests.fakes import gemini_server as gemini
from tests.fakes import openai_server as openai_fake
from tests.fakes.chat import Shown
from tests.fakes.openai_server import png_bytes
from tests.fakes.scripted import RecordedRequest, Reply, ScriptedServer

STARTER_CREDITS = 50
OPENAI_IMAGE_ROUTES = ("images/generations", "images/edits")


@dataclass(frozen=True)
class Case:
    """One catalog model and how its provider's fake says each outcome."""

    model: str
    provider: str
    refusal: Reply
    rate_limited: Reply
    server_error: Reply


CASES = [
    Case(
        "gpt",
        "openai",
        openai_fake.moderation_blocked(),
        openai_fake.rate_limited("1"),
        openai_fake.server_error(),
    ),
    Case(
        "nano2",
        "google",
        gemini.finish_blocked("IMAGE_SAFETY"),
        gemini.rate_limited("1"),
        gemini.server_error(500),
    ),
    Case(
        "pro",
        "google",
        gemini.prompt_blocked("PROHIBITED_CONTENT"),
        # No header here: the delay comes from Google's RetryInfo detail.
        gemini.rate_limited(retry_after=None, retry_delay="1s"),
        gemini.server_error(503),
    ),
]


@dataclass
class World:
    """One provider case wired into a real core, plus what to look at afterwards."""

    case: Case
    fake: ScriptedServer
    key: str
    pool: asyncpg.Pool
    images_dir: Path
    provider: Any
    chat: FakeChat = field(default_factory=FakeChat)

    def runtime(self, **config: object) -> Runtime:
        return make_runtime(
            self.pool,
            self.images_dir,
            providers={self.case.provider: self.provider},
            chat=self.chat,
            default_model=self.case.model,
            **config,
        )

    def script(self, replies: list[Reply]) -> None:
        """Queue replies for the image route the model's next call will use."""
        if self.case.provider == "openai":
            for route in OPENAI_IMAGE_ROUTES:
                self.fake.script(route, replies)
        else:
            self.fake.script(gemini.ROUTE, replies)

    def image_calls(self) -> list[RecordedRequest]:
        routes = OPENAI_IMAGE_ROUTES if self.case.provider == "openai" else (gemini.ROUTE,)
        return [r for r in self.fake.requests if r.route in routes]

    def sent_images(self, call: RecordedRequest) -> list[bytes]:
        """The input images one provider call carried, as bytes."""
        if self.case.provider == "openai":
            assert call.route == "images/edits", "an edit goes to images/edits as multipart"
            return [f.data for f in call.files if f.field_name == "image[]"]
        parts = call.json["contents"][0]["parts"]
        return [
            base64.urlsafe_b64decode(part["inlineData"]["data"]) for part in parts if "inlineData" in part
        ]


@pytest_asyncio.fixture(scope="module")
async def openai_server() -> AsyncIterator[openai_fake.FakeOpenAI]:
    fake = openai_fake.FakeOpenAI()
    await fake.start()
    yield fake
    await fake.stop()


@pytest_asyncio.fixture(scope="module")
async def gemini_server() -> AsyncIterator[gemini.FakeGemini]:
    fake = gemini.FakeGemini()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(params=CASES, ids=[case.model for case in CASES])
async def world(
    request: pytest.FixtureRequest,
    openai_server: openai_fake.FakeOpenAI,
    gemini_server: gemini.FakeGemini,
    pool: asyncpg.Pool,
    images_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[World]:
    caplog.set_level(logging.DEBUG)  # every record, SDKs' included, is checked for the key
    case: Case = request.param
    fake: ScriptedServer
    provider: OpenAIImageProvider | GoogleImageProvider
    if case.provider == "openai":
        fake, key = openai_server, openai_server.api_key
        provider = OpenAIImageProvider(key, openai_server.sdk_base_url, timeout_s=10)
    else:
        fake, key = gemini_server, gemini_server.api_key
        provider = GoogleImageProvider(key, gemini_server.base_url, timeout_s=10)
    fake.reset()
    yield World(case, fake, key, pool, images_dir, provider)
    await provider.aclose()
    fake.reset()


async def _ask(easel: Easel, chat: FakeChat, text: str, **kwargs: Any) -> tuple[Submitted, Any]:
    """What a chat adapter does: post the status message, then submit."""
    req = request(text, **kwargs)
    status = await chat.post_status(req.thread, received_view(text))
    req = SubmitRequest(**{**req.__dict__, "status_message": status})
    return await easel.submit(req), status


def _views(shown: Shown) -> list[StatusView]:
    return [view for view in shown.history if isinstance(view, StatusView)]


async def _account(pool: asyncpg.Pool) -> tuple[int, int, int]:
    row = await pool.fetchrow("SELECT available, reserved, spent FROM accounts")
    assert row is not None
    return row["available"], row["reserved"], row["spent"]


async def pool_value(world: World, sql: str) -> Any:
    return await world.pool.fetchval(sql)


async def _assert_key_hidden(world: World, caplog: pytest.LogCaptureFixture) -> None:
    """The key is in no status view, caption, error column, event detail or log record."""
    seen = [
        view.as_text() if isinstance(view, StatusView) else view
        for messages in world.chat.threads.values()
        for shown in messages
        for view in shown.history
    ]
    seen += [str(e) for e in await world.pool.fetch("SELECT error FROM generations")]
    seen += [str(d) for d in await world.pool.fetch("SELECT detail FROM generation_events")]
    assert caplog.records, "the SDKs and the core logged something to check"
    seen += [caplog.text]
    seen += [record.getMessage() for record in caplog.records]
    assert seen
    for text in seen:
        assert world.key not in text
    assert world.key[:12] not in caplog.text


# --- outcomes ----------------------------------------------------------------------------


async def test_success_posts_one_image_and_charges_the_catalog_cost_once(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    rt = world.runtime()
    submitted, status = await _ask(Easel(rt), world.chat, "a lighthouse at dusk")
    await Worker(rt).run_until_empty()

    [image] = world.chat.images(thread())
    assert image.data.startswith(b"\x89PNG") and image.generation_id == submitted.generation_id
    final = world.chat.find(status).current
    assert isinstance(final, StatusView) and final.succeeded
    cost = rt.catalog.get(world.case.model).cost("2K")
    assert submitted.cost == cost > 0
    assert f"{cost} credits" in final.headline
    assert len(world.image_calls()) == 1
    assert await pool_value(world, "SELECT status FROM generations") == "succeeded"
    assert await pool_value(world, "SELECT status FROM reservations") == "confirmed"
    assert await pool_value(world, "SELECT count(*) FROM ledger WHERE kind = 'confirm'") == 1
    assert await _account(world.pool) == (STARTER_CREDITS - cost, 0, cost)
    assert await ledger_ok(world.pool) == []
    await _assert_key_hidden(world, caplog)


async def test_a_second_turn_sends_the_previous_image_to_the_provider(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    rt = world.runtime()
    easel = Easel(rt)
    await _ask(easel, world.chat, "a red fox in the snow")
    await Worker(rt).run_until_empty()
    await _ask(easel, world.chat, "make it darker")
    await Worker(rt).run_until_empty()

    first, second = world.chat.images(thread())
    first_call, edit_call = world.image_calls()
    assert world.case.provider == "google" or first_call.route == "images/generations"
    assert world.sent_images(edit_call) == [first.data]
    assert second.data.startswith(b"\x89PNG")
    assert await pool_value(world, "SELECT count(*) FROM ledger WHERE kind = 'confirm'") == 2
    assert await ledger_ok(world.pool) == []
    await _assert_key_hidden(world, caplog)


async def test_an_uploaded_photo_reaches_the_provider(world: World, caplog: pytest.LogCaptureFixture) -> None:
    rt = world.runtime()
    photo = png_bytes(24, 16, (10, 200, 30))
    await _ask(Easel(rt), world.chat, "put a party hat on it", uploads=(Upload(photo, "photo.png"),))
    await Worker(rt).run_until_empty()

    [call] = world.image_calls()
    assert world.sent_images(call) == [photo]
    assert len(world.chat.images(thread())) == 1
    assert await pool_value(world, "SELECT count(*) FROM assets WHERE kind = 'upload'") == 1
    assert await ledger_ok(world.pool) == []
    await _assert_key_hidden(world, caplog)


async def test_a_safety_refusal_refunds_and_says_so(world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.script([world.case.refusal])
    rt = world.runtime()
    _, status = await _ask(Easel(rt), world.chat, "something the model refuses")
    await Worker(rt).run_until_empty()

    final = world.chat.find(status).current
    assert isinstance(final, StatusView) and final.succeeded is False
    assert ContentPolicy.default_message in final.headline
    assert "Nothing was charged" in final.headline
    assert len(world.image_calls()) == 1, "a refusal is not retried"
    assert world.chat.images(thread()) == []
    row = await world.pool.fetchrow("SELECT status, error_kind FROM generations")
    assert row is not None and (row["status"], row["error_kind"]) == ("failed", "content_policy")
    assert await pool_value(world, "SELECT status FROM reservations") == "released"
    assert await _account(world.pool) == (STARTER_CREDITS, 0, 0)
    assert await ledger_ok(world.pool) == []
    await _assert_key_hidden(world, caplog)


async def test_429_with_retry_after_then_success_charges_once(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.script([world.case.rate_limited])
    rt = world.runtime(backoff_base_s=0.01)
    submitted, status = await _ask(Easel(rt), world.chat, "a castle on a hill")
    await Worker(rt).run_until_empty()

    assert len(world.image_calls()) == 2
    notes = [line for view in _views(world.chat.find(status)) for line in view.lines]
    # The provider's Retry-After (1 s) wins over the tiny core backoff.
    assert any("trying again in 1s (attempt 2 of 3)" in line for line in notes), notes
    final = world.chat.find(status).current
    assert isinstance(final, StatusView) and final.succeeded
    row = await world.pool.fetchrow("SELECT status, attempts FROM generations")
    assert row is not None and (row["status"], row["attempts"]) == ("succeeded", 2)
    delay = await pool_value(
        world, "SELECT (detail->>'delay_s')::float FROM generation_events WHERE stage = 'retry'"
    )
    assert delay >= 1.0
    assert await pool_value(world, "SELECT count(*) FROM ledger WHERE kind = 'confirm'") == 1
    assert await _account(world.pool) == (STARTER_CREDITS - submitted.cost, 0, submitted.cost)
    assert await ledger_ok(world.pool) == []
    await _assert_key_hidden(world, caplog)


async def test_server_errors_until_out_of_attempts_refund_and_tell(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.script([world.case.server_error] * 5)
    rt = world.runtime(backoff_base_s=0.01, max_attempts=3)
    _, status = await _ask(Easel(rt), world.chat, "a boat at sea")
    await Worker(rt).run_until_empty()

    assert len(world.image_calls()) == 3
    final = world.chat.find(status).current
    assert isinstance(final, StatusView) and final.succeeded is False
    assert ProviderDown.default_message in final.headline
    row = await world.pool.fetchrow("SELECT status, attempts, error_kind FROM generations")
    assert row is not None
    assert (row["status"], row["attempts"], row["error_kind"]) == ("failed", 3, "provider_down")
    assert await pool_value(world, "SELECT status FROM reservations") == "released"
    assert await _account(world.pool) == (STARTER_CREDITS, 0, 0)
    assert await ledger_ok(world.pool) == []
    await _assert_key_hidden(world, caplog)


async def test_a_rejected_key_is_never_shown_even_when_the_provider_echoes_it(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # The fake OpenAI echoes a wrong key whole in its 401, as the real API echoes part of it.
    wrong_key = "sk-wrong" if world.case.provider == "openai" else "AIza-wrong"
    wrong_key += "-key-that-must-not-leak-0123456789"
    provider: OpenAIImageProvider | GoogleImageProvider
    if world.case.provider == "openai":
        provider = OpenAIImageProvider(wrong_key, world.fake.base_url + "/v1", timeout_s=10)
    else:
        provider = GoogleImageProvider(wrong_key, world.fake.base_url, timeout_s=10)
    chat = FakeChat()
    rt = make_runtime(
        world.pool,
        world.images_dir,
        providers={world.case.provider: provider},
        chat=chat,
        default_model=world.case.model,
    )
    try:
        _, status = await _ask(Easel(rt), chat, "a cat")
        await Worker(rt).run_until_empty()
    finally:
        await provider.aclose()
    world.chat = chat

    final = world.chat.find(status).current
    assert isinstance(final, StatusView) and final.succeeded is False
    assert "API key" in final.headline and "Nothing was charged" in final.headline
    assert await _account(world.pool) == (STARTER_CREDITS, 0, 0)
    world.key = wrong_key
    await _assert_key_hidden(world, caplog)


# --- refused uploads ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("upload", "says"),
    [
        (Upload(b"%PDF-1.7 not an image at all", "notes.pdf"), "not an image Easel can read"),
        (Upload(png_bytes(64, 64) + b"\0" * 4096, "huge.png"), "the limit is 2 KB"),
    ],
    ids=["not-an-image", "oversized"],
)
async def test_bad_uploads_are_refused_and_reserve_nothing(
    pool: asyncpg.Pool, images_dir: Path, upload: Upload, says: str
) -> None:
    rt = make_runtime(pool, images_dir, default_model="sketch", max_upload_bytes=2048)
    with pytest.raises(BadUpload) as refused:
        await Easel(rt).submit(request("edit this", uploads=(upload,)))

    assert says in refused.value.user_message
    assert upload.filename in refused.value.user_message
    assert await pool.fetchval("SELECT count(*) FROM reservations") == 0
    assert await pool.fetchval("SELECT count(*) FROM generations") == 0
    assert await pool.fetchval("SELECT count(*) FROM assets") == 0
    stored = await asyncio.to_thread(lambda: list(images_dir.rglob("*.*")))
    assert stored == [], "a refused upload is not stored"
    assert await ledger_ok(pool) == []
