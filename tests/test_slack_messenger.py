"""SlackMessenger (the outbound half) against the fake Slack, through the real slack_sdk."""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError

from adapters.slack.messenger import SlackMessenger
from adapters.slack.render import parse_model_choice
from core.models import Button, ImageDelivery, MessageRef, Stage, StatusView, ThreadRef
from tests.fakes.slack_server import FakeSlack

CHANNEL = "C0IMAGES"
PROMPT = "a lighthouse at dusk, oil painting, warm light"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = FakeSlack()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def messenger(fake: FakeSlack) -> AsyncIterator[SlackMessenger]:
    slack = SlackMessenger(fake.bot_token, api_url=fake.api_url)
    yield slack
    await slack.close()


async def thread_of(fake: FakeSlack, messenger: SlackMessenger) -> ThreadRef:
    """A person's mention in the channel, whose ts is the thread the bot answers in."""
    mention = fake.app_mention("draw a lighthouse", channel=CHANNEL)
    return ThreadRef("slack", fake.ident.team_id, CHANNEL, mention["ts"])


def buttons(generation_id: int = 42, models: int = 2) -> tuple[Button, ...]:
    choices = tuple((f"model-{i}", f"Model {i} · 2 cr") for i in range(models))
    return (
        Button("regen", "Regenerate", generation_id),
        Button("vary", "Variations", generation_id),
        Button("upscale", "Upscale to 4K (8 cr)", generation_id),
        Button("continue", "Keep going", generation_id),
        Button("model", "Again with another model…", generation_id, choices),
    )


STAGES = [
    StatusView(Stage.RECEIVED, "⏳ Got it: queued", (f"> {PROMPT}",)),
    StatusView(Stage.GENERATING, "🎨 Generating with sketch…",
               ("✓ understanding · 0.1s", f"Prompt: {PROMPT}"), refined_prompt=PROMPT),
    StatusView(Stage.DONE, "✅ Done in 2.0s · sketch · 2 credits", (f"Prompt: {PROMPT}",),
               is_final=True, succeeded=True, model="sketch", refined_prompt=PROMPT, cost=2,
               elapsed_s=2.0, generation_id=42, buttons=buttons()),
]


async def test_status_is_posted_in_the_thread_and_edited_per_stage(
        fake: FakeSlack, messenger: SlackMessenger) -> None:
    thread = await thread_of(fake, messenger)
    ref = await messenger.post_status(thread, STAGES[0])
    for view in STAGES[1:]:
        await messenger.edit_status(thread, ref, view)
    assert ref == MessageRef(CHANNEL, ref.message_id, thread.thread)
    [_, status] = fake.thread_messages(CHANNEL, thread.thread)
    assert status.ts == ref.message_id and status.thread_ts == thread.thread
    assert status.texts == [view.as_text() for view in STAGES]
    headers = [v.blocks[0]["text"]["text"] for v in status.versions]
    assert headers == [view.headline for view in STAGES]
    final = status.blocks
    quoted = [b["text"]["text"] for b in final if b["type"] == "section"]
    assert quoted == [f"> {PROMPT}"]  # the prompt once, as a quote
    assert status.action_ids() == ["easel_regen", "easel_vary", "easel_upscale",
                                   "easel_continue", "easel_model"]
    assert {el["value"] for el in status.elements() if el["type"] == "button"} == {"42"}


async def test_post_image_uploads_into_the_thread_with_caption_and_buttons(
        fake: FakeSlack, messenger: SlackMessenger) -> None:
    thread = await thread_of(fake, messenger)
    fake.message_event("another thread", channel=CHANNEL)
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    image = ImageDelivery(
        generation_id=42, object_key="images/42.png", content_type="image/png",
        size_bytes=len(data), data=data, url=None, caption="Sketch · 2 credits · 2.0s",
        model="sketch", cost=2, elapsed_s=2.0, refined_prompt=PROMPT, buttons=buttons(models=3))
    ref = await messenger.post_image(thread, image)
    [_, image_message, buttons_message] = fake.thread_messages(CHANNEL, thread.thread)
    assert ref == MessageRef(CHANNEL, image_message.ts, thread.thread)
    [file] = image_message.files
    assert (file.name, file.data, file.mimetype) == ("easel-42.png", data, "image/png")
    assert image_message.text == f"Sketch · 2 credits · 2.0s\n> {PROMPT}"
    assert buttons_message.action_ids() == ["easel_regen", "easel_vary", "easel_upscale",
                                            "easel_continue", "easel_model"]
    [select] = [el for el in buttons_message.elements() if el["type"] == "static_select"]
    values = [o["value"] for o in select["options"]]
    assert values == ["42:model-0", "42:model-1", "42:model-2"]
    assert parse_model_choice(values[1]) == (42, "model-1")


async def test_post_image_without_buttons_finds_the_share_through_files_info(
        fake: FakeSlack, messenger: SlackMessenger) -> None:
    fake.workspace.shares_in_complete = False  # Slack sometimes answers before sharing
    thread = await thread_of(fake, messenger)
    image = ImageDelivery(7, "k", "image/jpeg", 3, b"abc", None, "", "sketch", 1, 0.5, "")
    ref = await messenger.post_image(thread, image)
    [_, image_message] = fake.thread_messages(CHANNEL, thread.thread)
    assert ref.message_id == image_message.ts
    assert image_message.files[0].name == "easel-7.jpg"
    assert image_message.text == "sketch · 1 credit · 0.5s"
    assert len(fake.calls("files.info")) == 1


async def test_rate_limited_edit_is_retried_and_the_final_content_arrives(
        fake: FakeSlack, messenger: SlackMessenger) -> None:
    thread = await thread_of(fake, messenger)
    ref = await messenger.post_status(thread, STAGES[0])
    fake.rate_limit("chat.update", times=2, retry_after_s=0)
    await messenger.edit_status(thread, ref, STAGES[-1])
    assert [c.http_status for c in fake.calls("chat.update")] == [429, 429, 200]
    status = fake.message(CHANNEL, ref.message_id)
    assert status is not None and status.texts == [STAGES[0].as_text(), STAGES[-1].as_text()]


async def test_block_kit_limits_hold_for_long_content(
        fake: FakeSlack, messenger: SlackMessenger) -> None:
    thread = await thread_of(fake, messenger)
    long_prompt = "a very detailed prompt " * 500
    view = StatusView(Stage.DONE, "🚫 " + "You need 12 credits for this image. " * 8,
                      tuple(f"line {i}" for i in range(300)), is_final=True,
                      refined_prompt=long_prompt, buttons=buttons(models=150))
    ref = await messenger.post_status(thread, view)  # the fake refuses anything over a limit
    status = fake.message(CHANNEL, ref.message_id)
    assert status is not None and status.blocks[0]["type"] == "section"  # too long for a header
    [select] = [el for el in status.elements() if el["type"] == "static_select"]
    assert len(select["options"]) == 100
    text_msg = await messenger.post_text(thread, "<!channel> see " + "x" * 50_000)
    posted = fake.message(CHANNEL, text_msg.message_id)
    assert posted is not None and posted.text.startswith("&lt;!channel&gt; see")


async def test_user_text_cannot_ping_or_forge_links(
        fake: FakeSlack, messenger: SlackMessenger) -> None:
    thread = await thread_of(fake, messenger)
    sneaky = "<!channel> <https://evil.example|click> & co"
    view = StatusView(Stage.GENERATING, "🎨 Generating…", (f"> {sneaky}",), refined_prompt=sneaky)
    ref = await messenger.post_status(thread, view)
    status = fake.message(CHANNEL, ref.message_id)
    assert status is not None
    texts = [b["text"]["text"] for b in status.blocks if b["type"] == "section"]
    assert texts == ["> &lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; co"]


async def test_errors_carry_no_token(fake: FakeSlack, messenger: SlackMessenger) -> None:
    thread = await thread_of(fake, messenger)
    wrong = SlackMessenger("xoxb-9999-wrong-token-SECRET", api_url=fake.api_url)
    failures: list[BaseException] = []
    for slack, setup in ((wrong, None), (messenger, "channel_not_found")):
        if setup:
            fake.fail_next("chat.update", setup)
        with pytest.raises(SlackApiError) as raised:
            await slack.edit_status(thread, MessageRef(CHANNEL, thread.thread), STAGES[0])
        failures.append(raised.value)
    await wrong.close()
    unreachable = SlackMessenger(fake.bot_token, api_url="http://127.0.0.1:9/api/")
    with pytest.raises(aiohttp.ClientConnectionError) as refused:
        await unreachable.post_text(thread, "hello")
    await unreachable.close()
    failures.append(refused.value)
    assert [f.response["error"] for f in failures[:2]] == [  # type: ignore[attr-defined]
        "invalid_auth", "channel_not_found"]
    for failure in failures:
        shown = "".join(traceback.format_exception(failure)) + repr(failure)
        assert fake.bot_token not in shown and "wrong-token" not in shown
        assert "SECRET" not in shown


async def test_close_then_reuse(fake: FakeSlack, messenger: SlackMessenger) -> None:
    thread = await thread_of(fake, messenger)
    await messenger.post_text(thread, "one")
    await messenger.close()
    await messenger.post_text(thread, "two")
    assert messenger.client.base_url == fake.api_url
    assert [m.text for m in fake.thread_messages(CHANNEL, thread.thread)][1:] == ["one", "two"]


def image_of(generation_id: int, content_type: str = "image/png") -> ImageDelivery:
    data = b"\x89PNG\r\n\x1a\n" + generation_id.to_bytes(4, "big") * 64
    return ImageDelivery(generation_id, f"images/{generation_id}.png", content_type, len(data),
                         data, None, "sketch · 2 credits · 1.0s", "sketch", 2, 1.0, PROMPT,
                         buttons=buttons(generation_id))


async def test_find_image_returns_the_message_post_image_posted(
        fake: FakeSlack, messenger: SlackMessenger) -> None:
    thread = await thread_of(fake, messenger)
    await messenger.post_status(thread, STAGES[0])
    posted = await messenger.post_image(thread, image_of(42, "image/webp"))
    fake.message_event("make it darker", channel=CHANNEL, thread_ts=thread.thread)
    assert await messenger.find_image(thread, 42) == posted
    [replies] = fake.calls("conversations.replies")
    assert (replies.args["ts"], replies.args["limit"]) == (thread.thread, "200")


async def test_find_image_matches_the_generation_exactly_and_only_the_bots_files(
        fake: FakeSlack, messenger: SlackMessenger) -> None:
    thread = await thread_of(fake, messenger)
    posted = await messenger.post_image(thread, image_of(123))
    # A person re-uploads a file with the name the bot would give generation 12.
    copy = fake.upload_user_file("easel-12.png", b"\x89PNG copy")
    fake.message_event("look", channel=CHANNEL, thread_ts=thread.thread, files=[copy])
    assert await messenger.find_image(thread, 12) is None
    assert await messenger.find_image(thread, 1) is None
    assert await messenger.find_image(thread, 123) == posted
    assert len(fake.calls("auth.test")) == 1  # the bot's identity is asked once


async def test_find_image_in_an_empty_thread_is_none(
        fake: FakeSlack, messenger: SlackMessenger) -> None:
    thread = await thread_of(fake, messenger)
    assert await messenger.find_image(thread, 42) is None
    await messenger.post_status(thread, STAGES[-1])  # status and text carry no file
    await messenger.post_text(thread, "easel-42.png")
    assert await messenger.find_image(thread, 42) is None
    gone = ThreadRef("slack", fake.ident.team_id, CHANNEL, "1600000000.000100")
    assert await messenger.find_image(gone, 42) is None  # Slack: thread_not_found


async def test_find_image_reads_every_page_of_a_long_thread(
        fake: FakeSlack, messenger: SlackMessenger) -> None:
    thread = await thread_of(fake, messenger)
    for i in range(450):
        fake.workspace.add_message(CHANNEL, "U0PERSON", f"reply {i}", thread_ts=thread.thread)
    posted = await messenger.post_image(thread, image_of(7))
    assert await messenger.find_image(thread, 7) == posted
    cursors = [c.args.get("cursor") for c in fake.calls("conversations.replies")]
    assert cursors == [None, "200", "400"]


async def test_find_image_without_a_thread_reads_the_channel_history(
        fake: FakeSlack, messenger: SlackMessenger) -> None:
    place = ThreadRef("slack", fake.ident.team_id, CHANNEL, "")
    posted = await messenger.post_image(place, image_of(5))
    other = await thread_of(fake, messenger)
    await messenger.post_image(other, image_of(6))  # a reply: not in the channel's history
    assert posted.thread == "" and await messenger.find_image(place, 5) == posted
    assert await messenger.find_image(place, 6) is None
    assert fake.calls("conversations.replies") == []
    assert {c.args["limit"] for c in fake.calls("conversations.history")} == {"200"}
