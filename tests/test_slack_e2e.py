"""Slack end to end: signed deliveries from the fake Slack → the real Bolt app → core → worker.

Each test boots the whole app (`bot.app.bootstrap`) on a fresh database, starts the
Slack gateway on an aiohttp server on 127.0.0.1, drives it with FakeSlack's signed
HTTP deliveries, runs the worker until the queue is empty, and then looks at what
a person would see in Slack and at the rows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.slack.downloads import SlackFiles
from core.errors import BadUpload
from tests.fakes.provider import ScriptedProvider, tiny_png
from tests.fakes.slack_server import FakeSlack
from tests.slackkit import (
    ALICE,
    CHANNEL,
    Rig,
    mention_and_finish,
    more_generations,
    paid_providers,
    running_easel,
    until,
)

BOB = "U0BOB"
STAGE_WORDS = ("Understanding", "Refining", "Generating", "Uploading", "Finalizing", "Done")


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = FakeSlack()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def rig(database_url: str, tmp_path: Path, fake: FakeSlack) -> AsyncIterator[Rig]:
    async with running_easel(database_url, tmp_path, fake) as running:
        yield running


# --- 1. a mention --------------------------------------------------------------


async def test_a_mention_gets_a_status_through_every_stage_and_an_image(rig: Rig) -> None:
    mention = await mention_and_finish(rig, "a lighthouse at dusk, oil painting")
    [status, *rest] = rig.bot_replies(mention["ts"])
    assert status.thread_ts == mention["ts"]
    assert status.texts[0].startswith("⏳ Got it") and "a lighthouse at dusk" in status.texts[0]
    for word in STAGE_WORDS:
        assert any(word in text for text in status.texts), (word, status.texts)
    assert status.text.startswith("✅ Done")
    [image] = rig.images(mention["ts"])
    assert image.startswith(b"\x89PNG")
    assert any(m.files for m in rest), "the image is a reply in the same thread"
    row = await rig.app.runtime.pool.fetchrow(
        "SELECT g.status, g.source_event, u.external_id, u.display_name FROM generations g "
        "JOIN users u ON u.id = g.user_id")
    assert row is not None and row["status"] == "succeeded"
    assert row["source_event"].startswith("Ev0FAKE") and row["external_id"] == ALICE
    assert row["display_name"] == ALICE.lower()  # from users.info


# --- 2. a plain reply refines ------------------------------------------------------


async def test_a_plain_reply_in_the_thread_refines_the_image(rig: Rig) -> None:
    mention = await mention_and_finish(rig, "a red fox in the snow")
    reply = rig.fake.message_event("make it night", thread_ts=mention["ts"])
    assert (await rig.fake.deliver_event(rig.url, reply)).status == 200
    await until(lambda: more_generations(rig, 1))
    assert await rig.work() == 1
    assert len(rig.images(mention["ts"])) == 2
    rows = await rig.app.runtime.pool.fetch("SELECT id, parent_id FROM generations ORDER BY id")
    assert rows[1]["parent_id"] == rows[0]["id"]
    assert await rig.count("SELECT count(*) FROM sessions") == 1


# --- 3. retries ------------------------------------------------------------------


async def test_a_retried_event_makes_one_generation_and_one_charge(
        database_url: str, tmp_path: Path, fake: FakeSlack) -> None:
    async with running_easel(database_url, tmp_path, fake, providers=paid_providers()) as rig:
        mention = fake.app_mention("a fox in a field --model nano2")
        first = await fake.deliver_event(rig.url, mention, event_id="Ev0RETRIED")
        assert first.status == 200
        await until(lambda: more_generations(rig, 0))
        for retry_num in (1, 2):
            again = await fake.deliver_event(rig.url, mention, event_id="Ev0RETRIED",
                                             retry_num=retry_num)
            assert again.status == 200
        await asyncio.sleep(0.3)  # the repeats' listeners find the event known and stop
        assert await rig.work() == 1
        assert await rig.generations() == 1
        assert await rig.count("SELECT count(*) FROM ledger WHERE kind = 'reserve'") == 1
        assert await rig.count("SELECT count(*) FROM ledger WHERE kind = 'confirm'") == 1
        assert await rig.count("SELECT available FROM accounts") == 50 - 10
        [status] = [m for m in rig.bot_replies(mention["ts"]) if m.texts[0].startswith("⏳")]
        assert status.text.startswith("✅ Done")
        assert len(rig.images(mention["ts"])) == 1


async def test_concurrent_repeats_leave_one_status_message(
        database_url: str, tmp_path: Path, fake: FakeSlack) -> None:
    async with running_easel(database_url, tmp_path, fake, providers=paid_providers()) as rig:
        mention = fake.app_mention("a boat at sea --model nano2")
        answers = await asyncio.gather(*[
            fake.deliver_event(rig.url, mention, event_id="Ev0RACE", retry_num=n or None)
            for n in range(3)])
        assert [a.status for a in answers] == [200, 200, 200]

        def settled() -> bool:  # every status that lost the race was deleted
            posted = len(fake.calls("chat.postMessage"))
            return posted >= 1 and posted == len(fake.calls("chat.delete")) + 1

        await until(lambda: more_generations(rig, 0))
        await until(settled)
        await asyncio.sleep(0.3)
        assert settled()
        assert len(rig.bot_replies(mention["ts"])) == 1
        assert await rig.count("SELECT count(*) FROM ledger WHERE kind = 'reserve'") == 1
        assert await rig.work() == 1
        assert len(rig.images(mention["ts"])) == 1


# --- 4. signatures -------------------------------------------------------------------


async def test_a_bad_signature_gets_401_and_no_work(rig: Rig) -> None:
    mention = rig.fake.app_mention("a forged request")
    forged = await rig.fake.deliver_event(rig.url, mention, bad_signature=True)
    assert forged.status == 401
    stale = await rig.fake.deliver_event(rig.url, mention, timestamp=1_600_000_000)
    assert stale.status == 401
    command = await rig.fake.deliver_command(rig.url, "/imagine", "x", bad_signature=True)
    assert command.status == 401
    await asyncio.sleep(0.3)
    assert await rig.generations() == 0
    assert rig.fake.calls("chat.postMessage") == []


# --- 5. /imagine -----------------------------------------------------------------------


async def test_imagine_is_acked_before_any_work_then_answers_in_its_thread(rig: Rig) -> None:
    # Posting the status waits out a 429 (over a second), so any work done before the
    # ack would show in the ack's timing.
    rig.fake.rate_limit("chat.postMessage", retry_after_s=1)
    acked = await rig.fake.deliver_command(rig.url, "/imagine", "a red boat on a lake")
    assert acked.status == 200 and acked.body == ""
    assert acked.elapsed_s < 1.0
    assert await rig.generations() == 0 and rig.fake.channel_messages(CHANNEL) == []
    await until(lambda: more_generations(rig, 0))
    assert await rig.work() == 1
    [root] = rig.fake.channel_messages(CHANNEL)
    assert root.texts[0].startswith("⏳ Got it") and root.text.startswith("✅ Done")
    [image] = rig.images(root.ts)
    assert image.startswith(b"\x89PNG")
    session_thread = await rig.app.runtime.pool.fetchval("SELECT thread FROM sessions")
    assert session_thread == root.ts


async def test_credits_answers_privately_in_the_ack(rig: Rig) -> None:
    answer = await rig.fake.deliver_command(rig.url, "/credits", user=BOB)
    assert answer.status == 200
    body = answer.json()
    assert body["response_type"] == "ephemeral"
    assert body["text"].startswith("Credits: 50 available")


# --- 6. rate limits on chat.update -------------------------------------------------------


async def test_a_429_on_chat_update_is_waited_out_and_the_final_state_arrives(rig: Rig) -> None:
    mention = rig.fake.app_mention("a castle on a hill")
    await rig.fake.deliver_event(rig.url, mention)
    await until(lambda: more_generations(rig, 0))
    rig.fake.rate_limit("chat.update", retry_after_s=0)
    assert await rig.work() == 1
    updates = rig.fake.calls("chat.update")
    assert updates[0].http_status == 429 and all(u.ok for u in updates[1:])
    [status, *_] = rig.bot_replies(mention["ts"])
    assert status.text.startswith("✅ Done")
    for word in STAGE_WORDS:
        assert any(word in text for text in status.texts), (word, status.texts)


# --- 7. uploads ------------------------------------------------------------------------


async def test_an_uploaded_image_reaches_the_provider_and_a_non_image_is_refused(
        database_url: str, tmp_path: Path, fake: FakeSlack) -> None:
    provider = ScriptedProvider("sketch")
    async with running_easel(database_url, tmp_path, fake,
                             providers={"sketch": provider}) as rig:
        mention = await mention_and_finish(rig, "a cat on a sofa")
        photo = tiny_png((10, 200, 30))
        upload = fake.upload_user_file("my-cat.png", photo)
        reply = fake.message_event("use my cat", thread_ts=mention["ts"], files=[upload])
        await fake.deliver_event(rig.url, reply)
        await until(lambda: more_generations(rig, 1))
        assert await rig.work() == 1
        assert fake.downloads == [(upload.id, True)]
        inputs = provider.requests[1].input_images
        assert any(image.data == photo for image in inputs), "the upload reached the provider"

        reservations = await rig.count("SELECT count(*) FROM reservations")
        notes = fake.upload_user_file("notes.txt", b"not a picture at all")
        bad = fake.message_event("and this", thread_ts=mention["ts"], files=[notes])
        await fake.deliver_event(rig.url, bad)
        await until(lambda: any("🚫" in m.text for m in rig.bot_replies(mention["ts"])))
        refusal = next(m for m in rig.bot_replies(mention["ts"]) if "🚫" in m.text)
        assert "notes.txt is not an image" in refusal.text
        assert await rig.count("SELECT count(*) FROM reservations") == reservations
        assert await rig.generations() == 2


async def test_without_the_token_slack_answers_a_sign_in_page_which_is_refused(
        fake: FakeSlack) -> None:
    upload = fake.upload_user_file("photo.png", tiny_png())
    files = SlackFiles("xoxb-wrong", api_url=fake.api_url, max_bytes=1_000_000)
    with pytest.raises(BadUpload) as refused:
        await files.fetch([upload.to_api()])
    assert "files:read" in refused.value.user_message
    assert "xoxb" not in refused.value.user_message
    assert fake.downloads == [(upload.id, False)]
    elsewhere = {**upload.to_api(), "url_private": "https://evil.example/photo.png",
                 "url_private_download": "https://evil.example/photo.png"}
    with pytest.raises(BadUpload):
        await SlackFiles(fake.bot_token, api_url=fake.api_url, max_bytes=10).fetch([elsewhere])
    assert len(fake.downloads) == 1, "the token is never sent to another host"
    too_big = SlackFiles(fake.bot_token, api_url=fake.api_url, max_bytes=10)
    with pytest.raises(BadUpload, match="upload limit"):
        await too_big.fetch([upload.to_api()])


# --- 8. buttons ---------------------------------------------------------------------------


async def test_a_regenerate_click_by_another_person_is_charged_to_them(
        database_url: str, tmp_path: Path, fake: FakeSlack) -> None:
    async with running_easel(database_url, tmp_path, fake, providers=paid_providers()) as rig:
        mention = await mention_and_finish(rig, "a lighthouse --model nano2")
        first_id = await rig.app.runtime.pool.fetchval("SELECT id FROM generations")
        buttons = next(m for m in rig.bot_replies(mention["ts"])
                       if "easel_regen" in m.action_ids() and not m.texts[0].startswith("⏳"))
        clicked = await fake.deliver_action(rig.url, "easel_regen", str(first_id), BOB, CHANNEL,
                                            buttons.ts)
        assert clicked.status == 200
        await until(lambda: more_generations(rig, 1))
        assert await rig.work() == 1
        row = await rig.app.runtime.pool.fetchrow(
            "SELECT g.intent, g.parent_id, g.model, u.external_id FROM generations g "
            "JOIN users u ON u.id = g.user_id ORDER BY g.id DESC LIMIT 1")
        assert row is not None
        assert (row["intent"], row["parent_id"], row["model"], row["external_id"]) == (
            "regenerate", first_id, "nano2", BOB)
        balances = dict(await rig.app.runtime.pool.fetch(
            "SELECT u.external_id, a.available FROM accounts a JOIN users u ON u.id = a.user_id"))
        assert balances == {ALICE: 40, BOB: 40}
        assert len(rig.images(mention["ts"])) == 2


async def test_the_model_menu_regenerates_with_the_chosen_model(
        database_url: str, tmp_path: Path, fake: FakeSlack) -> None:
    async with running_easel(database_url, tmp_path, fake, providers=paid_providers()) as rig:
        mention = await mention_and_finish(rig, "a windmill")
        first_id = await rig.app.runtime.pool.fetchval("SELECT id FROM generations")
        menu = next(m for m in rig.bot_replies(mention["ts"]) if "easel_model" in m.action_ids())
        await fake.deliver_action(rig.url, "easel_model", f"{first_id}:nano2", BOB, CHANNEL,
                                  menu.ts)
        await until(lambda: more_generations(rig, 1))
        assert await rig.work() == 1
        model = await rig.app.runtime.pool.fetchval(
            "SELECT model FROM generations ORDER BY id DESC LIMIT 1")
        assert model == "nano2"


# --- 9. what is ignored ----------------------------------------------------------------------


async def test_bots_edits_and_threads_that_are_not_sessions_are_ignored(rig: Rig) -> None:
    fake = rig.fake
    mention = await mention_and_finish(rig, "a garden")
    own_status = rig.bot_replies(mention["ts"])[0]
    other_bot = fake.message_event("beep boop", thread_ts=mention["ts"])
    other_bot.update(bot_id="B0OTHER", subtype="bot_message")
    edited = fake.message_event("edited text", thread_ts=mention["ts"])
    edited["subtype"] = "message_changed"
    lunch = fake.message_event("lunch anyone?")
    in_other_thread = fake.message_event("pizza, please", thread_ts=lunch["ts"])
    ignored = [fake.event_for(own_status), other_bot, edited, lunch, in_other_thread]
    for event in ignored:
        assert (await fake.deliver_event(rig.url, event)).status == 200
    # A real reply afterwards, to know the listeners have run.
    reply = fake.message_event("now in winter", thread_ts=mention["ts"])
    await fake.deliver_event(rig.url, reply)
    await until(lambda: more_generations(rig, 1))
    await asyncio.sleep(0.3)
    assert await rig.generations() == 2
    assert rig.bot_replies(lunch["ts"]) == []
    assert await rig.count("SELECT count(*) FROM sessions") == 1


async def test_a_reply_that_mentions_the_bot_is_taken_once(rig: Rig) -> None:
    mention = await mention_and_finish(rig, "a river")
    again = rig.fake.app_mention("now at sunset", thread_ts=mention["ts"])
    message = dict(again, type="message", channel_type="channel")
    for event in (again, message):  # Slack sends both for one message
        await rig.fake.deliver_event(rig.url, event)
    await until(lambda: more_generations(rig, 1))
    await asyncio.sleep(0.3)
    assert await rig.generations() == 2
    parent = await rig.app.runtime.pool.fetchval(
        "SELECT parent_id FROM generations ORDER BY id DESC LIMIT 1")
    assert parent is not None


# --- DMs, options, Home, Socket Mode ------------------------------------------------------------


async def test_a_dm_starts_a_session_and_replies_in_it_refine(rig: Rig) -> None:
    fake = rig.fake
    dm = fake.im_event("a teapot, watercolour")
    await fake.deliver_event(rig.url, dm)
    await until(lambda: more_generations(rig, 0))
    assert await rig.work() == 1
    assert len(rig.images(dm["ts"], dm["channel"])) == 1
    reply = fake.im_event("make it blue", channel=dm["channel"], thread_ts=dm["ts"])
    await fake.deliver_event(rig.url, reply)
    await until(lambda: more_generations(rig, 1))
    assert await rig.work() == 1
    assert len(rig.images(dm["ts"], dm["channel"])) == 2


async def test_a_bad_option_is_answered_in_the_thread(rig: Rig) -> None:
    mention = rig.fake.app_mention("a fox --ar 7:5")
    await rig.fake.deliver_event(rig.url, mention)
    await until(lambda: rig.bot_replies(mention["ts"]))
    [answer] = rig.bot_replies(mention["ts"])
    assert answer.text.startswith("🚫") and "'7:5' is not an aspect ratio" in answer.text
    assert await rig.generations() == 0


async def test_inline_options_reach_the_generation(rig: Rig) -> None:
    await mention_and_finish(rig, "a city skyline --ar 16:9 --res 1k")
    params = await rig.app.runtime.pool.fetchval("SELECT params FROM generations")
    assert (params["aspect_ratio"], params["resolution"]) == ("16:9", "1K")
    prompt = await rig.app.runtime.pool.fetchval("SELECT user_prompt FROM generations")
    assert prompt == "a city skyline"


async def test_the_home_tab_shows_credits(rig: Rig) -> None:
    event = {"type": "app_home_opened", "user": BOB, "channel": "D0BOB", "tab": "home",
             "event_ts": "1700000000.000900"}
    assert (await rig.fake.deliver_event(rig.url, event)).status == 200
    await until(lambda: BOB in rig.fake.home_views)
    texts = [b["text"]["text"] for b in rig.fake.home_views[BOB]["blocks"] if "text" in b]
    assert any("Credits: 50 available" in text for text in texts)


async def test_socket_mode_takes_a_mention_once_despite_a_retry(
        database_url: str, tmp_path: Path, fake: FakeSlack) -> None:
    async with running_easel(database_url, tmp_path, fake,
                             SLACK_APP_TOKEN=fake.app_token) as rig:
        await fake.socket.wait_connected()
        mention = fake.app_mention("a tree on a hill")
        await fake.socket_event(mention, event_id="Ev0SOCKET")
        await until(lambda: more_generations(rig, 0))
        await fake.socket_event(mention, event_id="Ev0SOCKET", retry_attempt=1,
                                retry_reason="timeout")
        await asyncio.sleep(0.3)
        assert await rig.work() == 1
        assert len(rig.images(mention["ts"])) == 1
        assert len([m for m in rig.bot_replies(mention["ts"]) if m.texts[0].startswith("⏳")]) == 1


async def test_compare_makes_one_generation_per_model_in_the_thread(
        database_url: str, tmp_path: Path, fake: FakeSlack) -> None:
    async with running_easel(database_url, tmp_path, fake, providers=paid_providers()) as rig:
        mention = fake.app_mention("a lighthouse --compare sketch,nano2")
        await fake.deliver_event(rig.url, mention)
        await until(lambda: more_generations(rig, 1))
        assert await rig.work() == 2
        rows = await rig.app.runtime.pool.fetch(
            "SELECT id, model, compare_group, status FROM generations ORDER BY id")
        assert [(r["model"], r["status"]) for r in rows] == [
            ("sketch", "succeeded"), ("nano2", "succeeded")]
        assert rows[0]["compare_group"] == rows[1]["compare_group"] is not None
        statuses = [m for m in rig.bot_replies(mention["ts"]) if m.texts[0].startswith("⏳")]
        assert len(statuses) == 1  # one status message for the whole compare
        assert "Compare done" in statuses[0].text
        assert len(rig.images(mention["ts"])) == 3  # side by side, then each model's image
        # "continue with this one": the nano2 image becomes the parent of the next reply
        nano2_id = rows[1]["id"]
        holder = next(m for m in rig.bot_replies(mention["ts"])
                      if "easel_continue" in m.action_ids() and f'"{nano2_id}"' in str(m.blocks)
                      .replace("'", '"'))
        await fake.deliver_action(rig.url, "easel_continue", str(nano2_id), ALICE, CHANNEL,
                                  holder.ts, mention["ts"])
        await until(lambda: session_head_is(rig, nano2_id))
        reply = fake.message_event("make it darker", user=ALICE, channel=CHANNEL,
                                   thread_ts=mention["ts"])
        await fake.deliver_event(rig.url, reply)
        await until(lambda: more_generations(rig, 2))
        await rig.work()
        last = await rig.app.runtime.pool.fetchrow(
            "SELECT parent_id, model FROM generations ORDER BY id DESC LIMIT 1")
        assert (last["parent_id"], last["model"]) == (nano2_id, "nano2")


async def session_head_is(rig: object, generation_id: int) -> bool:
    head = await rig.app.runtime.pool.fetchval(  # type: ignore[attr-defined]
        "SELECT head_generation_id FROM sessions ORDER BY id LIMIT 1")
    return bool(head == generation_id)


async def test_flow_in_a_thread_posts_a_signed_link_that_opens(
        database_url: str, tmp_path: Path, fake: FakeSlack) -> None:
    async with running_easel(database_url, tmp_path, fake, EASEL_SECRET_KEY="flow-secret-1",
                             PUBLIC_URL="https://easel.example.org") as rig:
        mention = await mention_and_finish(rig, "a lighthouse")
        reply = fake.message_event("flow", user=ALICE, channel=CHANNEL, thread_ts=mention["ts"])
        await fake.deliver_event(rig.url, reply)

        def link_posted() -> bool:
            return any("/flow/" in m.text for m in rig.bot_replies(mention["ts"]))

        await until(link_posted)
        [message] = [m for m in rig.bot_replies(mention["ts"]) if "/flow/" in m.text]
        token = message.text.split("/flow/")[1].split()[0].rstrip(">|")
        from core.flow import verify_flow_token

        session = await rig.app.runtime.pool.fetchval("SELECT id FROM sessions")
        assert verify_flow_token(b"flow-secret-1", token, time.time()) == session
        assert await rig.generations() == 1  # "flow" is not an image request
