"""Compare: one request, a generation per model, one status, a side-by-side result."""

from __future__ import annotations

import io
from pathlib import Path

import asyncpg
import pytest
from PIL import Image

from core.errors import BadOption, ContentPolicy, InsufficientCredits
from core.models import StatusView
from core.service import Easel
from core.status import received_view
from core.submit import SubmitRequest
from core.worker import Worker
from tests.corekit import FakeChat, ScriptedProvider, ledger_ok, make_runtime, request, thread, user


def _runtime(pool: asyncpg.Pool, images_dir: Path, chat: FakeChat, **config: object):
    return make_runtime(
        pool, images_dir, chat=chat,
        providers={
            "sketch": ScriptedProvider(),
            "google": ScriptedProvider("google"),
            "openai": ScriptedProvider("openai", script=[ContentPolicy()]),
        },
        max_active=5, **config,
    )


async def _compare(easel: Easel, chat: FakeChat, text: str, models: tuple[str, ...], **kw: object):
    req = request(text, **kw)
    status = await chat.post_status(req.thread, received_view(text))
    return await easel.submit(SubmitRequest(**{**req.__dict__, "status_message": status,
                                               "compare": models})), status


async def test_three_models_one_failing(pool: asyncpg.Pool, images_dir: Path) -> None:
    chat = FakeChat()
    rt = _runtime(pool, images_dir, chat)
    easel = Easel(rt)
    submitted, status = await _compare(easel, chat, "a castle", ("nano2", "pro", "gpt"))
    assert len(submitted.generation_ids) == 3 and submitted.cost == 10 + 14 + 14
    await Worker(rt).run_until_empty()

    rows = await pool.fetch("SELECT model, status::text, cost FROM generations ORDER BY id")
    assert [(r["model"], r["status"]) for r in rows] == [
        ("nano2", "succeeded"), ("pro", "succeeded"), ("gpt", "failed")]
    account = await pool.fetchrow("SELECT available, reserved, spent FROM accounts")
    assert tuple(account) == (50 - 24, 0, 24)  # two charged, gpt refunded
    assert await ledger_ok(pool) == []

    images = chat.images(thread())
    assert len(images) == 3  # the composite, then the two individual images
    with Image.open(io.BytesIO(images[0].data)) as composite:
        assert composite.width > composite.height  # side by side
    assert [b.action for b in images[1].buttons] == ["continue"]
    assert {i.generation_id for i in images[1:]} == set(submitted.generation_ids[:2])

    shown = chat.find(status)
    final = shown.current
    assert isinstance(final, StatusView) and final.is_final
    assert "24 of 38 credits" in final.headline
    assert any("GPT Image 2" in line and "refunded" in line for line in final.lines)
    assert any("this compare costs 38 credits" in v.headline for v in shown.history
               if isinstance(v, StatusView))
    assert len([m for m in chat.thread(thread()) if m.kind == "status"]) == 1


async def test_continue_with_sets_the_parent_and_model(pool: asyncpg.Pool, images_dir: Path) -> None:
    chat = FakeChat()
    rt = _runtime(pool, images_dir, chat)
    easel = Easel(rt)
    submitted, _ = await _compare(easel, chat, "a castle", ("nano2", "pro"))
    await Worker(rt).run_until_empty()
    chosen = submitted.generation_ids[1]
    model = await easel.continue_with(thread(), user(), chosen)
    assert model.name == "pro"
    follow = await easel.submit(request("make it darker"))
    await Worker(rt).run_until_empty()
    row = await pool.fetchrow("SELECT parent_id, model FROM generations WHERE id = $1",
                              follow.generation_id)
    assert (row["parent_id"], row["model"]) == (chosen, "pro")


async def test_a_compare_is_all_or_nothing(pool: asyncpg.Pool, images_dir: Path) -> None:
    chat = FakeChat()
    rt = _runtime(pool, images_dir, chat, starter_credits=20)
    easel = Easel(rt)
    with pytest.raises(InsufficientCredits):
        await _compare(easel, chat, "a castle", ("nano2", "pro"))  # 10 + 14 > 20
    assert await pool.fetchval("SELECT count(*) FROM reservations") == 0
    assert await pool.fetchval("SELECT count(*) FROM generations") == 0
    with pytest.raises(BadOption):
        await _compare(easel, chat, "a castle", ("nano2",))
    assert await ledger_ok(pool) == []


async def test_a_repeated_compare_event_is_one_compare(pool: asyncpg.Pool, images_dir: Path) -> None:
    chat = FakeChat()
    rt = _runtime(pool, images_dir, chat)
    easel = Easel(rt)
    first, _ = await _compare(easel, chat, "a castle", ("nano2", "pro"), event="cmp-1")
    again, _ = await _compare(easel, chat, "a castle", ("nano2", "pro"), event="cmp-1")
    assert again.duplicate and again.generation_id == first.generation_id
    assert await pool.fetchval("SELECT count(*) FROM generations") == 2


class _DiesOnThirdImage(FakeChat):
    """The group's finisher dies after the composite and the first model's image."""

    def __init__(self) -> None:
        super().__init__()
        self.posts = 0

    async def post_image(self, thread, image):  # type: ignore[no-untyped-def]
        self.posts += 1
        if self.posts == 3:
            raise ConnectionError("the finisher's process went away")
        return await super().post_image(thread, image)


async def test_a_finisher_dying_part_way_is_finished_once_by_the_sweeper(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    from core.sweeper import sweep

    chat = _DiesOnThirdImage()
    rt = _runtime(pool, images_dir, chat)
    easel = Easel(rt)
    submitted, status = await _compare(easel, chat, "a castle", ("nano2", "pro"))
    await Worker(rt).run_until_empty()
    assert len(chat.images(thread())) == 2  # the composite and nano2's image
    await pool.execute("UPDATE compare_groups SET finish_until = now() - interval '1 second'")
    assert (await sweep(rt)).groups == 1
    images = chat.images(thread())
    assert [i.generation_id for i in images[1:]] == list(submitted.generation_ids)
    assert len(images) == 3  # nothing posted twice
    final = chat.find(status).current
    assert isinstance(final, StatusView) and "Compare done" in final.headline
    assert await ledger_ok(pool) == []
