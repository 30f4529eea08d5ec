"""Several images per request (`--n`, Discord's `count`), one button row per image, and
deleting one's image — end to end on the fake Discord, the fake Slack and the console.

The fake provider fails one image of four: three are charged, one refunded, and the grid
shows the three that were made, a row of buttons for each.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from PIL import Image

from adapters.providers.sketch import SketchProvider
from adapters.storage.errors import ObjectNotFound
from core.composite import GAP, PANEL_HEIGHT
from core.errors import InvalidRequest
from core.ports import ImageProvider
from tests.fakes import gemini_server
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.provider import ScriptedProvider
from tests.fakes.scripted import RecordedRequest
from tests.fakes.slack_server import FakeSlack
from tests.slackkit import ALICE, CHANNEL, mention_and_finish, until
from tests.slackkit import running_easel as running_slack
from tests.test_discord_e2e import running_easel as running_discord

BOB = "U0BOB"
REFUSED = "The model would not draw this one."


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    server = FakeSlack()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    with server.discord_py_overrides():
        yield server
    await server.stop()


def one_failing() -> dict[str, ImageProvider]:
    """nano2 (10 credits at 2K) fails its first image and makes the others."""
    return {"sketch": SketchProvider(),
            "google": ScriptedProvider("google", [InvalidRequest(REFUSED)])}


async def settled(pool: Any) -> dict[str, Any]:
    """What the ledger and the rows say after a batch of nano2 images."""
    rows = await pool.fetch("SELECT id, status::text, compare_group FROM generations ORDER BY id")
    ledger = dict(await pool.fetch("SELECT kind::text, count(*) FROM ledger GROUP BY kind"))
    return {
        "statuses": sorted(r["status"] for r in rows),
        "groups": {r["compare_group"] for r in rows},
        "ledger": ledger,
        "available": await pool.fetchval("SELECT available FROM accounts"),
        "made": [r["id"] for r in rows if r["status"] == "succeeded"],
    }


def grid_panels(data: bytes) -> int:
    """How many panels the grid image has side by side."""
    with Image.open(io.BytesIO(data)) as grid:
        return round((grid.width - GAP) / (PANEL_HEIGHT + GAP))


async def objects_gone(rt: Any, keys: list[str]) -> bool:
    for key in keys:
        try:
            await rt.store.get(key)
        except ObjectNotFound:
            continue
        return False
    return True


async def marked_deleted(pool: Any, count: int) -> bool:
    """The generations are marked deleted: the last step of a delete."""
    return bool(await pool.fetchval(
        "SELECT count(*) FROM generations WHERE deleted_at IS NOT NULL") == count)


async def stored_keys(pool: Any) -> list[str]:
    keys = [r["object_key"] for r in await pool.fetch(
        "SELECT object_key FROM assets WHERE kind = 'output'")]
    keys += [r["composite_key"] for r in await pool.fetch(
        "SELECT composite_key FROM compare_groups WHERE composite_key IS NOT NULL")]
    return keys


# --- Discord ---------------------------------------------------------------------------


async def test_discord_count_4_with_one_failing_charges_3_and_posts_a_grid_of_3(
    database_url: str, tmp_path: Path, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with running_discord(database_url, tmp_path, fake, providers=one_failing()) as rig:
        await rig.answer(await rig.imagine({"prompt": "a castle", "model": "nano2", "count": 4}))
        assert await rig.work() == 4
        pool = rig.app.runtime.pool
        after = await settled(pool)
        assert after["statuses"] == ["failed", "succeeded", "succeeded", "succeeded"]
        assert len(after["groups"]) == 1 and None not in after["groups"]
        assert after["ledger"] == {"grant": 1, "reserve": 4, "confirm": 3, "release": 1}
        assert after["available"] == 50 - 30
        [thread] = fake.threads_of(fake.channel.id)
        [grid] = rig.images(thread.id)
        assert grid_panels(grid.attachments[0].data) == 3
        # One row of buttons per image of the grid, each acting on its own image.
        assert grid.button_rows() == 3
        for made in after["made"]:
            assert f"easel:vary:{made}" in grid.custom_ids()
        status = rig.status_of(thread.id)
        final = status.embeds[0].get("title", "")
        assert "3 of 4 images" in final and "30 of 40 credits charged" in final, final
        assert status.button_rows() == 0
        shown = str(status.embeds)
        assert "refunded" in shown and REFUSED in shown

        # Deleting the grid (by its requester): message and objects gone, ledger as it was.
        keys = await stored_keys(pool)
        assert len(keys) == 4  # three images and the grid
        click = await fake.send_component(grid, f"easel:delete:{after['made'][0]}")
        await fake.wait_for_callback(click)
        await fake.wait_for(lambda: grid.deleted or None)
        await until(lambda: marked_deleted(pool, 3))
        assert await objects_gone(rig.app.runtime, keys)
        assert (await settled(pool))["ledger"] == after["ledger"]


async def test_discord_one_button_row_per_image_and_only_the_requester_deletes(
    database_url: str, tmp_path: Path, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    async with running_discord(database_url, tmp_path, fake) as rig:
        await rig.answer(await rig.imagine({"prompt": "a lighthouse"}))
        assert await rig.work() == 1
        [thread] = fake.threads_of(fake.channel.id)
        mine = [m for m in fake.channel_messages(thread.id)
                if m.author.id == fake.bot_user.id]
        assert sum(m.button_rows() for m in mine) == 1, [m.components for m in mine]
        [image] = rig.images(thread.id)
        assert image.button_rows() == 1
        generation_id = await rig.val("SELECT id FROM generations")
        keys = await stored_keys(rig.app.runtime.pool)
        ledger = await rig.val("SELECT count(*) FROM ledger")

        stranger = fake.add_user("mallory")
        refused = await fake.send_component(image, f"easel:delete:{generation_id}",
                                            user=stranger)
        await fake.wait_for_callback(refused)
        answer = await fake.wait_for(lambda: next(
            (m for m in fake.messages.values() if m.ephemeral and "Only the person" in m.content
             and not m.loading), None))
        assert answer is not None and not image.deleted
        assert not await objects_gone(rig.app.runtime, keys)

        click = await fake.send_component(image, f"easel:delete:{generation_id}")
        await fake.wait_for_callback(click)
        await fake.wait_for(lambda: image.deleted or None)
        await until(lambda: marked_deleted(rig.app.runtime.pool, 1))
        assert await objects_gone(rig.app.runtime, keys)
        assert await rig.val("SELECT count(*) FROM ledger") == ledger
        assert await rig.val("SELECT status::text FROM generations") == "succeeded"


# --- Slack -----------------------------------------------------------------------------


async def test_slack_n_4_with_one_failing_charges_3_and_posts_a_grid_of_3(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack
) -> None:
    async with running_slack(database_url, tmp_path, fake_slack, providers=one_failing()) as rig:
        mention = await mention_and_finish(rig, "a castle --model nano2 --n 4")
        pool = rig.app.runtime.pool
        after = await settled(pool)
        assert after["statuses"] == ["failed", "succeeded", "succeeded", "succeeded"]
        assert after["ledger"] == {"grant": 1, "reserve": 4, "confirm": 3, "release": 1}
        assert after["available"] == 50 - 30
        [grid] = rig.images(mention["ts"])
        assert grid_panels(grid) == 3
        replies = rig.bot_replies(mention["ts"])
        [status] = [m for m in replies if m.texts[0].startswith("⏳")]
        assert "3 of 4 images" in status.text and "30 of 40 credits charged" in status.text
        assert status.button_rows() == 0
        [buttons] = [m for m in replies if m.button_rows()]
        assert buttons.button_rows() == 3  # one row per image of the grid

        keys = await stored_keys(pool)
        await fake_slack.deliver_action(rig.url, "easel_delete", str(after["made"][0]), ALICE,
                                        CHANNEL, buttons.ts, mention["ts"])
        await until(lambda: not rig.images(mention["ts"]))
        await until(lambda: not any(m.button_rows() for m in rig.bot_replies(mention["ts"])))
        await until(lambda: marked_deleted(pool, 3))
        assert await objects_gone(rig.app.runtime, keys)
        assert (await settled(pool))["ledger"] == after["ledger"]


async def test_slack_one_button_row_per_image_and_only_the_requester_deletes(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack
) -> None:
    async with running_slack(database_url, tmp_path, fake_slack) as rig:
        mention = await mention_and_finish(rig, "a lighthouse")
        replies = rig.bot_replies(mention["ts"])
        assert sum(m.button_rows() for m in replies) == 1, [m.blocks for m in replies]
        [buttons] = [m for m in replies if m.button_rows()]
        assert "easel_delete" in buttons.action_ids()
        generation_id = await rig.count("SELECT id FROM generations")
        keys = await stored_keys(rig.app.runtime.pool)
        ledger = await rig.count("SELECT count(*) FROM ledger")

        await fake_slack.deliver_action(rig.url, "easel_delete", str(generation_id), BOB,
                                        CHANNEL, buttons.ts, mention["ts"])
        await until(lambda: any("Only the person" in e.text and e.user == BOB
                                for e in fake_slack.ephemeral))
        assert len(rig.images(mention["ts"])) == 1
        assert not await objects_gone(rig.app.runtime, keys)

        await fake_slack.deliver_action(rig.url, "easel_delete", str(generation_id), ALICE,
                                        CHANNEL, buttons.ts, mention["ts"])
        await until(lambda: not rig.images(mention["ts"]))
        await until(lambda: marked_deleted(rig.app.runtime.pool, 1))
        assert not any(m.button_rows() for m in rig.bot_replies(mention["ts"]))
        assert await objects_gone(rig.app.runtime, keys)
        assert await rig.count("SELECT count(*) FROM ledger") == ledger


# --- the console (a real `easel chat` process, Gemini faked at its HTTP API) -------------


def images_left(grid: Path, root: Path) -> list[Path]:
    return [grid] if grid.exists() else list(root.rglob("*.png"))


class FirstImageBlocked(FakeGemini):
    """The fake Gemini, refusing the first image it is asked for (a safety block)."""

    def __init__(self) -> None:
        super().__init__()
        self.image_requests = 0

    async def _generate(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        config = (recorded.json or {}).get("generationConfig") or {}
        if "IMAGE" in (config.get("responseModalities") or []):
            self.image_requests += 1
            if self.image_requests == 1:
                return gemini_server.finish_blocked().to_response()
        return await super()._generate(request, recorded)


async def test_console_n_4_with_one_failing_then_delete(database_url: str, tmp_path: Path) -> None:
    gemini = FirstImageBlocked()
    await gemini.start()
    env = {**os.environ, "DATABASE_URL": database_url, "EASEL_DATA_DIR": str(tmp_path),
           "GEMINI_API_KEY": gemini_server.DEFAULT_KEY, "GOOGLE_GEMINI_BASE_URL": gemini.base_url}
    for key in ("OPENAI_API_KEY", "GOOGLE_API_KEY", "REPLICATE_API_TOKEN", "S3_BUCKET"):
        env.pop(key, None)
    try:
        chat = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "chat", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        out, err = await asyncio.wait_for(chat.communicate(
            b"a castle --model nano2 --n 4\n/delete\n/credits\n"), 120)
    finally:
        await gemini.stop()
    stdout = out.decode()
    assert chat.returncode == 0, stdout + err.decode()
    assert gemini.image_requests == 4
    assert "4 images · Nano Banana 2 · this batch costs 40 credits" in stdout
    assert "3 of 4 images" in stdout and "30 of 40 credits charged" in stdout, stdout
    [grid] = re.findall(r"Image: (\S+\.png)", stdout)  # one grid, no image alone
    assert "Deleted" in stdout and "Credits: 20 available" in stdout, stdout
    assert not images_left(Path(grid), tmp_path / "images"), "every image of the batch is gone"
    conn = await asyncpg.connect(database_url)
    try:
        ledger = dict(await conn.fetch("SELECT kind::text, count(*) FROM ledger GROUP BY kind"))
        deleted = await conn.fetchval(
            "SELECT count(*) FROM generations WHERE deleted_at IS NOT NULL")
    finally:
        await conn.close()
    assert ledger == {"grant": 1, "reserve": 4, "confirm": 3, "release": 1}
    assert deleted == 3
