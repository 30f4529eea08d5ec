"""DiscordMessenger (the outbound half) against FakeDiscord: what a person sees in the thread."""

from __future__ import annotations

import asyncio
import io
import random
import re
from collections.abc import AsyncIterator
from typing import Any

import discord
import discord.http
import pytest
from PIL import Image

from adapters.discord import render
from adapters.discord.messenger import DiscordMessenger, SecretWithheldError
from core.models import (
    PIPELINE_STAGES,
    Button,
    ImageDelivery,
    MessageRef,
    Stage,
    StatusView,
    ThreadRef,
)
from tests.fakes.discord_models import READ_MESSAGE_HISTORY, FakeMessage
from tests.fakes.discord_server import FakeDiscord

GENERATION_ID = 42
MODEL_CHOICES = (("gpt-image-2", "GPT Image 2"), ("nano-banana-2", "Nano Banana 2"))


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    old_base = discord.http.Route.BASE
    yield server
    discord.http.Route.BASE = old_base  # the messenger set it process-wide
    await server.stop()


@pytest.fixture
async def messenger(fake: FakeDiscord) -> AsyncIterator[DiscordMessenger]:
    made = DiscordMessenger(fake.token, api_base_url=fake.api_base)
    await made.start()
    yield made
    await made.close()


@pytest.fixture
async def thread(fake: FakeDiscord) -> ThreadRef:
    anchor = await fake.send_message(fake.channel.id, fake.user, "/imagine a fox")
    made = await fake.create_thread(fake.channel.id, "a fox", message=anchor)
    return ThreadRef("discord", str(fake.guild.id), str(fake.channel.id), str(made.id))


def buttons(generation_id: int = GENERATION_ID) -> tuple[Button, ...]:
    return (
        Button("regen", "Regenerate", generation_id),
        Button("vary", "Variations", generation_id),
        Button("upscale", "Upscale", generation_id),
        Button("continue", "Continue", generation_id),
        Button("model", "Switch model", generation_id, choices=MODEL_CHOICES),
    )


def working(stage: Stage) -> StatusView:
    return StatusView(stage, f"Working: {stage.value}", ("a fox, oil painting",),
                      generation_id=GENERATION_ID)


def png(width: int, height: int, *, noisy: bool = False) -> bytes:
    image = Image.new("RGB", (width, height), (200, 120, 40))
    if noisy:  # random pixels do not compress: a big PNG
        rng = random.Random(7)
        image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def delivery(data: bytes, **changes: object) -> ImageDelivery:
    fields: dict[str, object] = dict(
        generation_id=GENERATION_ID, object_key="images/42.png", content_type="image/png",
        size_bytes=len(data), data=data, url="https://bucket.example/images/42.png?sig=abc",
        caption="<@1> here is your image", model="GPT Image 2", cost=4, elapsed_s=12.34,
        refined_prompt="A red fox in autumn leaves, oil painting", buttons=buttons())
    fields.update(changes)
    return ImageDelivery(**fields)  # type: ignore[arg-type]


def only_message(fake: FakeDiscord, channel_id: str) -> FakeMessage:
    messages = [m for m in fake.channel_messages(int(channel_id)) if m.author.bot]
    assert len(messages) == 1
    return messages[0]


async def test_status_is_posted_in_the_thread_and_edited_through_each_stage(
        fake: FakeDiscord, messenger: DiscordMessenger, thread: ThreadRef) -> None:
    ref = await messenger.post_status(thread, working(Stage.RECEIVED))
    assert ref == MessageRef(thread.channel, ref.message_id, thread.thread)
    for stage in PIPELINE_STAGES:
        await messenger.edit_status(thread, ref, working(stage))
    final = StatusView(Stage.DONE, "Done", ("a fox, oil painting",), is_final=True,
                       succeeded=True, model="GPT Image 2", cost=4, elapsed_s=12.3,
                       generation_id=GENERATION_ID, buttons=buttons())
    await messenger.edit_status(thread, ref, final)

    message = only_message(fake, thread.thread)
    assert str(message.id) == ref.message_id
    titles = [s.embeds[0]["title"] for s in message.history]
    assert titles == ["Working: received", *[f"Working: {s.value}" for s in PIPELINE_STAGES],
                      "Done"]
    assert message.history[0].embeds[0]["color"] == render.COLOUR_WORKING.value
    last = message.embeds[0]
    assert last["color"] == render.COLOUR_SUCCESS.value
    assert last["footer"]["text"] == f"Generation #{GENERATION_ID}"
    assert {f["name"]: f["value"] for f in last["fields"]} == {
        "Model": "GPT Image 2", "Cost": "4 credits", "Time": "12.3 s"}
    assert message.custom_ids() == [f"easel:{a}:42" for a in
                                    ("regen", "vary", "upscale", "continue", "model")]
    # Edits go through the bot token's channel route, never an interaction webhook.
    edits = fake.requests_to("PATCH", "/channels/{channel_id}/messages/{message_id}")
    assert len(edits) == len(PIPELINE_STAGES) + 1
    assert all(r.authorization == f"Bot {fake.token}" for r in edits)
    assert not [r for r in fake.requests if r.path.startswith("/webhooks/")]
    assert fake.sessions == []  # REST only: no gateway connection


async def test_failed_status_is_red_and_drops_buttons(
        fake: FakeDiscord, messenger: DiscordMessenger, thread: ThreadRef) -> None:
    ref = await messenger.post_status(thread, StatusView(
        Stage.GENERATING, "Working", generation_id=7, buttons=buttons(7)))
    await messenger.edit_status(thread, ref, StatusView(
        Stage.GENERATING, "Failed", ("The image model refused this prompt.",), is_final=True,
        succeeded=False, generation_id=7))
    message = only_message(fake, thread.thread)
    assert message.embeds[0]["color"] == render.COLOUR_FAILURE.value
    assert message.embeds[0]["description"] == "The image model refused this prompt."
    assert message.components == [] and len(message.history[0].components) == 2


async def test_without_a_thread_the_status_goes_to_the_channel(
        fake: FakeDiscord, messenger: DiscordMessenger) -> None:
    place = ThreadRef("discord", str(fake.guild.id), str(fake.channel.id), "")
    ref = await messenger.post_status(place, working(Stage.RECEIVED))
    await messenger.edit_status(place, ref, working(Stage.GENERATING))
    assert ref.thread == "" and ref.channel == str(fake.channel.id)
    assert len(only_message(fake, place.channel).history) == 2


async def test_image_is_attached_under_an_embed_with_buttons(
        fake: FakeDiscord, messenger: DiscordMessenger, thread: ThreadRef) -> None:
    data = png(64, 48)
    ref = await messenger.post_image(thread, delivery(data))

    message = only_message(fake, thread.thread)
    assert str(message.id) == ref.message_id
    assert [(a.filename, a.data) for a in message.attachments] == [("easel-42.png", data)]
    assert message.content == "<@1> here is your image"
    embed = message.embeds[0]
    assert embed["title"] == "GPT Image 2"
    assert embed["description"] == "A red fox in autumn leaves, oil painting"
    assert {f["name"]: f["value"] for f in embed["fields"]} == {"Cost": "4 credits",
                                                                 "Time": "12.3 s"}
    assert embed["image"]["url"] == message.attachments[0].url
    sent = fake.requests_to("POST", "/channels/{channel_id}/messages")[-1]
    assert sent.json["embeds"][0]["image"]["url"] == "attachment://easel-42.png"

    ids = message.custom_ids()
    assert ids == [f"easel:{a}:42" for a in ("regen", "vary", "upscale", "continue", "model")]
    for custom_id in ids:
        action = custom_id.split(":")[1]
        match = re.fullmatch(render.CUSTOM_ID_TEMPLATES[action], custom_id)
        assert match is not None and match["generation_id"] == "42"
        assert render.parse_custom_id(custom_id) == (action, 42)
    select = message.components[1]["components"][0]
    assert select["type"] == 3
    assert [(o["value"], o["label"]) for o in select["options"]] == list(MODEL_CHOICES)


async def test_long_texts_and_many_choices_are_cut_to_discord_limits(
        fake: FakeDiscord, messenger: DiscordMessenger, thread: ThreadRef) -> None:
    choices = tuple((f"model-{i}", f"Model {i}") for i in range(30))
    many = (*[Button("regen", f"Again {i}" * 20, i) for i in range(30)],
            Button("model", "Switch", 1, choices=choices))
    await messenger.post_image(thread, delivery(
        png(8, 8), model="M" * 300, refined_prompt="word " * 2000, caption="c" * 2500,
        buttons=many))
    message = only_message(fake, thread.thread)  # the fake refuses what Discord refuses
    assert len(message.embeds[0]["title"]) == 256
    assert len(message.embeds[0]["description"]) == 4096
    assert message.embeds[0]["description"].endswith("…")
    assert len(message.content) == 2000
    rows = message.components
    assert len(rows) == 5 and all(len(r["components"]) <= 5 for r in rows)
    assert len(rows[-1]["components"][0]["options"]) == 25


async def test_oversize_image_is_reencoded_under_the_limit(fake: FakeDiscord,
                                                           thread: ThreadRef) -> None:
    data = png(400, 300, noisy=True)
    limit = 120_000
    assert len(data) > limit
    messenger = DiscordMessenger(fake.token, api_base_url=fake.api_base,
                                 filesize_limit_bytes=limit)
    try:
        await messenger.post_image(thread, delivery(data))
    finally:
        await messenger.close()
    message = only_message(fake, thread.thread)
    attachment = message.attachments[0]
    assert attachment.filename == "easel-42.jpg" and attachment.size <= limit
    with Image.open(io.BytesIO(attachment.data)) as sent:
        assert sent.format == "JPEG"
    assert "re-encoded as JPEG" in message.embeds[0]["footer"]["text"]


async def test_image_that_cannot_fit_is_posted_as_a_link(fake: FakeDiscord,
                                                         thread: ThreadRef) -> None:
    messenger = DiscordMessenger(fake.token, api_base_url=fake.api_base,
                                 filesize_limit_bytes=300)
    try:
        await messenger.post_image(thread, delivery(png(400, 300, noisy=True)))
    finally:
        await messenger.close()
    message = only_message(fake, thread.thread)
    assert message.attachments == []
    assert "https://bucket.example/images/42.png?sig=abc" in message.content
    assert "more than Discord accepts" in message.content
    assert "image" not in message.embeds[0]
    assert len(message.custom_ids()) == 5


async def test_text_is_posted_and_long_text_split(
        fake: FakeDiscord, messenger: DiscordMessenger, thread: ThreadRef) -> None:
    ref = await messenger.post_text(thread, "Models: gpt-image-2, nano-banana-2")
    long_text = "\n".join(f"line {i} " + "x" * 60 for i in range(50))
    await messenger.post_text(thread, long_text)
    texts = [m.content for m in fake.channel_messages(int(thread.thread)) if m.author.bot]
    assert texts[0] == "Models: gpt-image-2, nano-banana-2"
    assert len(texts) == 3 and all(len(t) <= 2000 for t in texts)
    assert "\n".join(texts[1:]) == long_text
    assert ref.message_id == str(fake.channel_messages(int(thread.thread))[0].id)


async def test_rate_limited_edit_is_waited_out(
        fake: FakeDiscord, messenger: DiscordMessenger, thread: ThreadRef) -> None:
    ref = await messenger.post_status(thread, working(Stage.RECEIVED))
    fake.rate_limit("PATCH", "/channels/{channel_id}/messages/{message_id}", retry_after=0.05)
    await messenger.edit_status(thread, ref, working(Stage.GENERATING))
    assert len(only_message(fake, thread.thread).history) == 2
    assert len(fake.injected_responses) == 1


async def test_discord_errors_propagate_without_the_token(
        fake: FakeDiscord, messenger: DiscordMessenger, thread: ThreadRef) -> None:
    missing = ThreadRef("discord", str(fake.guild.id), "123", "")
    with pytest.raises(discord.NotFound) as not_found:
        await messenger.post_text(missing, "hello")
    fake.fail_next("POST", "/channels/{channel_id}/messages", status=403, code=50013,
                   message="Missing Permissions")
    with pytest.raises(discord.Forbidden) as forbidden:
        await messenger.post_status(thread, working(Stage.RECEIVED))
    fake.rate_limit("POST", "/channels/{channel_id}/messages", retry_after=120.0)
    with pytest.raises(discord.RateLimited) as limited:
        await messenger.post_text(thread, "hello")
    assert limited.value.retry_after == 120.0
    fake.fail_next("POST", "/channels/{channel_id}/messages", status=400, code=50035,
                   message=f"Invalid token {fake.token} in request")
    with pytest.raises(SecretWithheldError) as withheld:
        await messenger.post_text(thread, "hello")
    errors: list[BaseException] = [not_found.value, forbidden.value, limited.value,
                                   withheld.value]
    for error in errors:
        assert fake.token not in f"{error!s} {error!r}"
    assert withheld.value.__cause__ is None and withheld.value.__suppress_context__


async def test_bad_token_fails_at_start_without_revealing_it(fake: FakeDiscord) -> None:
    messenger = DiscordMessenger("secret-wrong-token", api_base_url=fake.api_base)
    with pytest.raises(discord.LoginFailure) as refused:
        await messenger.start()
    assert "secret-wrong-token" not in f"{refused.value!s} {refused.value!r}"
    await messenger.close()


async def test_upload_refused_by_discord_propagates(
        fake: FakeDiscord, messenger: DiscordMessenger, thread: ThreadRef) -> None:
    fake.guild.filesize_limit_override = 100  # the guild accepts less than the messenger thinks
    with pytest.raises(discord.HTTPException) as refused:
        await messenger.post_image(thread, delivery(png(64, 48)))
    assert refused.value.status == 413 and refused.value.code == 40005
    assert [m for m in fake.channel_messages(int(thread.thread)) if m.author.bot] == []


async def test_find_image_returns_the_message_post_image_posted(
        fake: FakeDiscord, messenger: DiscordMessenger, thread: ThreadRef) -> None:
    await messenger.post_status(thread, working(Stage.RECEIVED))
    posted = await messenger.post_image(thread, delivery(png(64, 48)))
    await fake.send_message(int(thread.thread), fake.user, "make it darker")
    assert await messenger.find_image(thread, GENERATION_ID) == posted
    [read] = fake.requests_to("GET", "/channels/{channel_id}/messages")
    assert read.path == f"/channels/{thread.thread}/messages" and read.query == {"limit": "100"}


async def test_find_image_matches_the_generation_exactly_and_only_the_bots_messages(
        fake: FakeDiscord, messenger: DiscordMessenger, thread: ThreadRef) -> None:
    posted = await messenger.post_image(thread, delivery(png(8, 8), generation_id=123))
    # The status of generation 12 carries "Generation #12"; a person uploads "easel-12.png".
    await messenger.post_status(thread, StatusView(Stage.DONE, "Done", generation_id=12))
    await fake.send_message(int(thread.thread), fake.user, "mine",
                            attachments=[("easel-12.png", png(8, 8))])
    assert await messenger.find_image(thread, 12) is None
    assert await messenger.find_image(thread, 23) is None
    assert await messenger.find_image(thread, 123) == posted


async def test_find_image_in_an_empty_thread_is_none(
        fake: FakeDiscord, messenger: DiscordMessenger, thread: ThreadRef) -> None:
    assert await messenger.find_image(thread, GENERATION_ID) is None
    await messenger.post_text(thread, "easel-42.png")
    assert await messenger.find_image(thread, GENERATION_ID) is None


async def test_find_image_recognises_the_reencoded_and_the_linked_image(
        fake: FakeDiscord, thread: ThreadRef) -> None:
    noisy = png(400, 300, noisy=True)
    shrinking = DiscordMessenger(fake.token, api_base_url=fake.api_base,
                                 filesize_limit_bytes=120_000)
    linking = DiscordMessenger(fake.token, api_base_url=fake.api_base, filesize_limit_bytes=300)
    try:
        shrunk = await shrinking.post_image(thread, delivery(noisy, generation_id=7))
        linked = await linking.post_image(thread, delivery(noisy, generation_id=8))
        assert await linking.find_image(thread, 7) == shrunk
        assert await shrinking.find_image(thread, 8) == linked
        assert await linking.find_image(thread, 9) is None
    finally:
        await shrinking.close()
        await linking.close()
    message = fake.messages[int(linked.message_id)]
    assert message.attachments == []
    assert message.embeds[0]["footer"]["text"] == "Generation #8 · too large to attach, linked above"


async def test_find_image_pages_back_through_a_busy_channel(
        fake: FakeDiscord, messenger: DiscordMessenger) -> None:
    place = ThreadRef("discord", str(fake.guild.id), str(fake.channel.id), "")
    posted = await messenger.post_image(place, delivery(png(8, 8)))
    for i in range(150):
        await fake.send_message(fake.channel.id, fake.user, f"chatter {i}")
    assert await messenger.find_image(place, GENERATION_ID) == posted
    reads = fake.requests_to("GET", "/channels/{channel_id}/messages")
    oldest_on_first_page = fake.channel_messages(fake.channel.id)[-100].id
    assert [r.query for r in reads] == [
        {"limit": "100"}, {"limit": "100", "before": str(oldest_on_first_page)}]
    assert await messenger.find_image(place, 43) is None
    assert len(fake.requests_to("GET", "/channels/{channel_id}/messages")) == 4


async def test_fake_history_pages_like_discord(fake: FakeDiscord, thread: ThreadRef) -> None:
    channel_id = int(thread.thread)
    ids = [(await fake.send_message(channel_id, fake.user, f"m{i}")).id for i in range(10)]

    def listed(page: list[Any]) -> list[int]:
        return [int(m["id"]) for m in page]

    with fake.discord_py_overrides():
        http = discord.http.HTTPClient(asyncio.get_running_loop())
        await http.static_login(fake.token)
        try:
            assert listed(await http.logs_from(channel_id, 3)) == ids[:-4:-1]  # newest first
            assert listed(await http.logs_from(channel_id, 3, before=ids[5])) == ids[4:1:-1]
            # The oldest three after ids[2], still listed newest first.
            assert listed(await http.logs_from(channel_id, 3, after=ids[2])) == ids[5:2:-1]
            assert listed(await http.logs_from(channel_id, 4, around=ids[5])) == ids[6:2:-1]
            with pytest.raises(discord.HTTPException) as refused:
                await http.logs_from(channel_id, 101)
            assert (refused.value.status, refused.value.code) == (400, 50035)
            fake.bot_permissions &= ~READ_MESSAGE_HISTORY  # Discord then shows no messages
            assert await http.logs_from(channel_id, 3) == []
        finally:
            await http.close()
