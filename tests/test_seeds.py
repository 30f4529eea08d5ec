"""Seeds: shown under every image, set with `--seed N` (Discord's `seed` option), kept by
Variations where the model honours seeds (the catalog says which), renewed by Regenerate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from core.models import Intent, StatusView
from core.options import parse_inline_options
from core.service import Easel
from core.status import received_view
from core.submit import SubmitRequest
from core.worker import Worker
from tests.corekit import FakeChat, ScriptedProvider, make_runtime, request
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.slack_server import FakeSlack
from tests.slackkit import ALICE, CHANNEL, mention_and_finish, more_generations, until
from tests.slackkit import running_easel as running_slack
from tests.test_discord_e2e import running_easel as running_discord


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


async def _ask(easel: Easel, chat: FakeChat, text: str, **kwargs: Any) -> Any:
    req = request(text, **kwargs)
    status = await chat.post_status(req.thread, received_view(text or "again"))
    return await easel.submit(SubmitRequest(**{**req.__dict__, "status_message": status})), status


def _final_lines(chat: FakeChat, status: Any) -> tuple[str, ...]:
    final = chat.find(status).current
    assert isinstance(final, StatusView) and final.is_final, final
    return final.lines


def test_seed_is_an_inline_option_checked_like_the_others() -> None:
    assert parse_inline_options("a fox --seed 42")[1].seed == 42
    for bad in ("a fox --seed -1", "a fox --seed lots", f"a fox --seed {2**31}"):
        try:
            parse_inline_options(bad)
        except Exception as error:
            assert "seed" in str(error)
        else:
            raise AssertionError(bad)


async def test_a_seed_is_shown_kept_by_variations_and_renewed_by_regenerate(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    chat, provider = FakeChat(), ScriptedProvider("sketch")
    rt = make_runtime(pool, images_dir, chat=chat, providers={"sketch": provider},
                      default_model="sketch")
    easel = Easel(rt)
    first, status = await _ask(easel, chat, "a red fox --seed 4242")
    await Worker(rt).run_until_empty()
    assert provider.requests[0].seed == 4242
    assert "Seed: 4242 (again with --seed 4242)" in _final_lines(chat, status)
    assert "--seed" not in await pool.fetchval("SELECT user_prompt FROM generations")

    _, vary_status = await _ask(easel, chat, "", action=Intent.VARIATION,
                                target_generation_id=first.generation_id)
    _, regen_status = await _ask(easel, chat, "", action=Intent.REGENERATE,
                                 target_generation_id=first.generation_id)
    await Worker(rt).run_until_empty()
    seeds = [r.seed for r in provider.requests]
    print("seeds sent to the provider (first, variation, regenerate):", seeds)
    assert seeds[1] == 4242 and seeds[2] != 4242
    assert any(line.startswith("Seed: 4242") for line in _final_lines(chat, vary_status))
    assert any(line.startswith(f"Seed: {seeds[2]}") for line in _final_lines(chat, regen_status))


async def test_variations_draw_a_new_seed_where_the_model_ignores_seeds(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    chat, provider = FakeChat(), ScriptedProvider("openai")
    rt = make_runtime(pool, images_dir, chat=chat,
                      providers={"sketch": ScriptedProvider(), "openai": provider},
                      default_model="gpt")
    assert not rt.catalog.get("gpt").seeds and rt.catalog.get("sketch").seeds
    easel = Easel(rt)
    first, _ = await _ask(easel, chat, "a red fox --seed 7")
    await Worker(rt).run_until_empty()
    await _ask(easel, chat, "", action=Intent.VARIATION, target_generation_id=first.generation_id)
    await Worker(rt).run_until_empty()
    assert provider.requests[0].seed == 7
    assert provider.requests[1].seed != 7


async def test_slack_shows_the_seed_and_variations_reuse_it(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack
) -> None:
    provider = ScriptedProvider("sketch")
    async with running_slack(database_url, tmp_path, fake_slack,
                             providers={"sketch": provider}) as rig:
        mention = await mention_and_finish(rig, "a lighthouse --seed 31337")
        status = next(m for m in rig.bot_replies(mention["ts"]) if m.texts[0].startswith("⏳"))
        assert "Seed: 31337" in status.text
        final = next(m for m in rig.bot_replies(mention["ts"]) if "easel_vary" in m.action_ids())
        first_id = await rig.app.runtime.pool.fetchval("SELECT id FROM generations")
        await fake_slack.deliver_action(rig.url, "easel_vary", str(first_id), ALICE, CHANNEL,
                                        final.ts)
        await until(lambda: more_generations(rig, 1))
        await rig.work()
        assert [r.seed for r in provider.requests] == [31337, 31337]


async def test_discord_seed_option_reaches_the_provider_and_is_shown(
    database_url: str, tmp_path: Path, fake_discord: FakeDiscord
) -> None:
    provider = ScriptedProvider("sketch")
    async with running_discord(database_url, tmp_path, fake_discord,
                               providers={"sketch": provider}) as rig:
        await rig.answer(await rig.imagine({"prompt": "a castle", "seed": 99}))
        await rig.work()
        [thread] = fake_discord.threads_of(fake_discord.channel.id)
        status = rig.status_of(thread.id)
        shown = " ".join(str(e) for e in status.embeds)
        assert "Seed: 99" in shown, shown
        [image] = rig.images(thread.id)
        first_id = await rig.val("SELECT id FROM generations")
        click = await fake_discord.send_component(image, f"easel:vary:{first_id}")
        await fake_discord.wait_for_callback(click)
        await rig.until_generations(2)
        await rig.work()
        assert [r.seed for r in provider.requests] == [99, 99]
        assert await rig.val("SELECT user_prompt FROM generations WHERE id = $1",
                             first_id) == "a castle"
