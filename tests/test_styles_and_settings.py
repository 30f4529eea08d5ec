"""Styles, `--no`, personal defaults and the small fixes of issue 16, end to end on the fake
Slack (signed deliveries → the real Bolt app → core → worker → providers' fakes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.errors import ContentPolicy
from core.models import UserRef
from tests.fakes.provider import ScriptedProvider
from tests.fakes.slack_server import FakeSlack
from tests.slackkit import ALICE, Rig, mention_and_finish, more_generations, running_easel, until

NOIR = "black and white film noir, hard shadows"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = FakeSlack()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def providers() -> dict[str, ScriptedProvider]:
    # `sketch` takes a negative prompt (catalog: negative_prompt = true); Gemini does not.
    return {"sketch": ScriptedProvider("sketch"), "google": ScriptedProvider("google")}


@pytest.fixture
async def rig(database_url: str, tmp_path: Path, fake: FakeSlack,
              providers: dict[str, ScriptedProvider]) -> AsyncIterator[Rig]:
    async with running_easel(database_url, tmp_path, fake, providers=dict(providers)) as running:
        yield running


async def _row(rig: Rig, sql: str) -> dict[str, object]:
    row = await rig.app.runtime.pool.fetchrow(sql)
    assert row is not None
    return dict(row)


async def test_a_style_is_added_visibly_and_no_reaches_a_provider_that_takes_it(
        rig: Rig, providers: dict[str, ScriptedProvider]) -> None:
    mention = await mention_and_finish(rig, "a detective in an alley --style noir --no text, people")
    row = await _row(rig, "SELECT params, refined_prompt, user_prompt FROM generations")
    print("refined prompt:", row["refined_prompt"])
    assert NOIR in str(row["refined_prompt"]) and row["user_prompt"] == "a detective in an alley"
    params = row["params"]
    assert isinstance(params, dict)
    assert (params["style"], params["negative"], params["aspect_ratio"]) == (
        "noir", "text, people", "16:9")  # noir suggests 16:9
    [sent] = providers["sketch"].requests
    assert sent.negative_prompt == "text, people" and NOIR in sent.prompt
    assert "Avoid" not in sent.prompt  # sent apart, not folded
    status = rig.bot_replies(mention["ts"])[0]
    assert NOIR in status.text  # the final status shows the prompt with the style's words


async def test_no_is_folded_into_the_prompt_for_a_model_without_a_negative_prompt(
        rig: Rig, providers: dict[str, ScriptedProvider]) -> None:
    await mention_and_finish(rig, "a beach at noon --model nano2 --no umbrellas")
    [sent] = providers["google"].requests
    print("sent to Gemini:", sent.prompt)
    assert sent.negative_prompt is None and "Avoid: umbrellas." in sent.prompt
    refined = await rig.app.runtime.pool.fetchval("SELECT refined_prompt FROM generations")
    assert "Avoid: umbrellas" in refined


async def test_an_unknown_style_is_refused_with_the_ones_there_are(rig: Rig) -> None:
    mention = rig.fake.app_mention("a cat --style cubist")
    await rig.fake.deliver_event(rig.url, mention)
    await until(lambda: any(m.text.startswith("🚫") for m in rig.bot_replies(mention["ts"])))
    [answer] = rig.bot_replies(mention["ts"])
    assert "There is no style called 'cubist'" in answer.text and "noir" in answer.text
    assert await rig.generations() == 0


async def test_settings_apply_to_new_threads_and_a_threads_own_model_wins(rig: Rig) -> None:
    ask = rig.fake.app_mention("settings --model ink --style watercolor --res 1k")
    await rig.fake.deliver_event(rig.url, ask)
    await until(lambda: rig.fake.ephemeral)
    [reply] = rig.fake.ephemeral
    assert reply.user == ALICE and "model: ink" in reply.text and "style: watercolor" in reply.text
    assert await rig.generations() == 0

    first = await mention_and_finish(rig, "a harbour at dawn")
    row = await _row(rig, "SELECT model, params, refined_prompt FROM generations ORDER BY id DESC")
    assert row["model"] == "ink" and "watercolor" in str(row["refined_prompt"])
    assert row["params"]["resolution"] == "1K"  # type: ignore[index]

    # The thread's own model wins over the person's default, in that thread.
    reply_event = rig.fake.message_event("make it night --model sketch", thread_ts=first["ts"])
    await rig.fake.deliver_event(rig.url, reply_event)
    await until(lambda: more_generations(rig, 1))
    await rig.work()
    again = rig.fake.message_event("add a boat", thread_ts=first["ts"])
    await rig.fake.deliver_event(rig.url, again)
    await until(lambda: more_generations(rig, 2))
    await rig.work()
    models = [r["model"] for r in await rig.app.runtime.pool.fetch(
        "SELECT model FROM generations ORDER BY id")]
    assert models == ["ink", "sketch", "sketch"]

    await mention_and_finish(rig, "a lighthouse")  # a new thread: the default again
    assert await rig.app.runtime.pool.fetchval(
        "SELECT model FROM generations ORDER BY id DESC LIMIT 1") == "ink"

    clear = rig.fake.app_mention("settings --model none --style none")
    await rig.fake.deliver_event(rig.url, clear)
    await until(lambda: len(rig.fake.ephemeral) == 2)
    assert "model: not set" in rig.fake.ephemeral[1].text
    stored = await _row(rig, "SELECT model, style, resolution FROM user_preferences")
    assert stored == {"model": None, "style": None, "resolution": "1K"}


async def test_the_home_tab_shows_the_defaults(rig: Rig) -> None:
    await rig.fake.deliver_event(rig.url, rig.fake.app_mention("settings --ar 4:3"))
    await until(lambda: rig.fake.ephemeral)
    event = {"type": "app_home_opened", "user": ALICE, "channel": "D0ALICE", "tab": "home",
             "event_ts": "1700000000.000901"}
    await rig.fake.deliver_event(rig.url, event)
    await until(lambda: ALICE in rig.fake.home_views)
    texts = [b["text"]["text"] for b in rig.fake.home_views[ALICE]["blocks"] if "text" in b]
    assert any("aspect: 4:3" in text for text in texts), texts


async def test_mentions_are_names_in_the_prompt_and_never_ping_in_a_fallback(rig: Rig) -> None:
    rig.fake.add_user("U0BOB00001", "bob", "Bob Builder")
    mention = await mention_and_finish(
        rig, "a sign saying <!channel> hello to <@U0BOB00001> and <!here>")
    row = await _row(rig, "SELECT user_prompt, refined_prompt FROM generations")
    print("user prompt:", row["user_prompt"], "| refined:", row["refined_prompt"])
    for prompt in (str(row["user_prompt"]), str(row["refined_prompt"])):
        assert "U0BOB" not in prompt and "channel" not in prompt and "here" not in prompt
        assert "bob" in prompt.lower() and "saying hello" in prompt
    for message in (m for m in rig.fake.messages if m.bot_id):
        for text in message.texts:
            assert "<!channel>" not in text and "<!here>" not in text and "<@U0BOB" not in text
    assert rig.bot_replies(mention["ts"])


async def test_a_literal_channel_ping_in_a_fallback_is_escaped(rig: Rig) -> None:
    # Slack sends a person's typed "<" as "&lt;": what reaches us as text must go back out
    # escaped, in the notification fallback too.
    mention = await mention_and_finish(rig, "a poster reading &lt;!channel&gt; in red")
    [status, *_] = rig.bot_replies(mention["ts"])
    assert all("<!channel>" not in text for text in status.texts)
    assert any("&lt;!channel&gt;" in text or "channel" not in text for text in status.texts)


async def test_imagine_in_the_channel_says_who_asked_on_every_edit(rig: Rig) -> None:
    rig.fake.add_user(ALICE, "alice", "Alice Liddell")
    await rig.fake.deliver_command(rig.url, "/imagine", "a kite over hills")
    await until(lambda: more_generations(rig, 0))
    await rig.work()
    [status] = [m for m in rig.fake.messages if m.bot_id and m.thread_ts in (None, m.ts)]
    print("status texts:", status.texts)
    assert len(status.texts) > 2
    assert all("Asked by alice" in text for text in status.texts)


async def test_credits_lists_a_refunded_generation_as_refunded(
        rig: Rig, providers: dict[str, ScriptedProvider]) -> None:
    providers["google"].script.append(ContentPolicy())
    await mention_and_finish(rig, "a beach --model nano2")
    await mention_and_finish(rig, "a forest")
    user_id = await rig.app.runtime.pool.fetchval("SELECT workspace FROM users")
    text = (await rig.app.easel.credits(UserRef("slack", user_id, ALICE))).as_text()
    print(text)
    [failed, succeeded] = [line for line in text.splitlines() if line.startswith("#")][::-1]
    assert "nano2 refunded (failed, 10 cr returned)" in failed
    assert succeeded.endswith("sketch succeeded (0 cr)")
