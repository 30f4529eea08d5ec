"""The real discord.py client against FakeDiscord: login, gateway, commands, interactions,
threads, rate limits and resume. These prove the fake speaks Discord's wire format well
enough for Easel's inbound adapter tests to build on it."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakes.discord_models import FakeMessage
from tests.fakes.discord_server import FakeDiscord

READY_TIMEOUT_S = 10.0


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    with server.discord_py_overrides():
        yield server
    await server.stop()


@contextlib.asynccontextmanager
async def running(client: discord.Client, token: str) -> AsyncIterator[discord.Client]:
    """Run `client` against the fake until the block ends; yields once it is ready."""
    task = asyncio.create_task(client.start(token))
    try:
        await asyncio.wait_for(client.wait_until_ready(), READY_TIMEOUT_S)
        yield client
    finally:
        await client.close()
        await asyncio.wait_for(task, READY_TIMEOUT_S)


def intents(*, message_content: bool = False) -> discord.Intents:
    chosen = discord.Intents.default()
    chosen.message_content = message_content
    return chosen


async def test_client_logs_in_over_rest_and_gateway(fake: FakeDiscord) -> None:
    client = discord.Client(intents=intents(), guild_ready_timeout=0.1)
    async with running(client, fake.token):
        assert client.user is not None and client.user.id == fake.bot_user.id
        assert client.application_id == fake.app_id
        guild = client.get_guild(fake.guild.id)
        assert guild is not None and guild.me is not None
        assert [c.name for c in guild.text_channels] == ["general"]
        session = await fake.wait_for(lambda: fake.sessions[0] if fake.sessions else None)
        await fake.wait_for(lambda: fake.gateway.heartbeats >= 1)
        assert session.intents == intents().value
        assert session.identify["token"] == fake.token
    assert fake.requests_to("GET", "/users/@me")[0].authorization == f"Bot {fake.token}"
    assert fake.requests_to("GET", "/oauth2/applications/@me")
    assert fake.unhandled == []


async def test_wrong_token_is_refused_at_login(fake: FakeDiscord) -> None:
    client = discord.Client(intents=intents())
    with pytest.raises(discord.LoginFailure):
        await client.login("not-the-token")
    await client.close()


async def test_bot_syncs_slash_command_and_defers_interaction(fake: FakeDiscord) -> None:
    bot = commands.Bot(command_prefix="!", intents=intents(), guild_ready_timeout=0.1)
    received: list[tuple[str, bytes | None]] = []

    @bot.tree.command(name="imagine", description="Make an image")
    async def imagine(interaction: discord.Interaction, prompt: str,
                      image: discord.Attachment | None = None) -> None:
        await interaction.response.defer(thinking=True)
        received.append((prompt, await image.read() if image else None))
        await interaction.followup.send(f"Working on {prompt}")

    async with running(bot, fake.token):
        synced = await bot.tree.sync()
        assert [c.name for c in synced] == ["imagine"]
        await bot.tree.sync(guild=discord.Object(fake.guild.id))
        assert [c["name"] for c in fake.commands[None]] == ["imagine"]
        options = {o["name"]: o["type"] for o in fake.commands[None][0]["options"]}
        assert options == {"prompt": 3, "image": 11}

        upload = fake.add_attachment("fox.png", b"\x89PNG fox bytes")
        interaction = await fake.send_interaction("imagine", {"prompt": "a fox", "image": upload})
        callback = await fake.wait_for_callback(interaction)
        assert callback.type == 5 and callback.latency_s < 3.0
        answer = await fake.wait_for_message(fake.channel.id, lambda m: not m.loading)

    assert received == [("a fox", b"\x89PNG fox bytes")]
    assert fake.cdn_downloads == [upload.id]
    # The follow-up after a "thinking" defer replaces the loading message.
    assert answer.id == interaction.original_message_id
    assert answer.content == "Working on a fox"
    assert [s.flags for s in answer.history] == [128, 0]


async def test_component_click_reaches_a_dynamic_item(fake: FakeDiscord) -> None:
    clicked: list[int] = []

    class Regenerate(discord.ui.DynamicItem[discord.ui.Button[Any]],
                     template=r"easel:regen:(?P<id>[0-9]+)"):
        def __init__(self, generation_id: int) -> None:
            super().__init__(discord.ui.Button(label="Again",
                                               custom_id=f"easel:regen:{generation_id}"))
            self.generation_id = generation_id

        @classmethod
        async def from_custom_id(cls, interaction: discord.Interaction,
                                 item: discord.ui.Item[Any], match: re.Match[str],
                                 ) -> Regenerate:
            return cls(int(match["id"]))

        async def callback(self, interaction: discord.Interaction) -> None:
            clicked.append(self.generation_id)
            await interaction.response.defer()

    client = discord.Client(intents=intents(), guild_ready_timeout=0.1)
    client.add_dynamic_items(Regenerate)
    async with running(client, fake.token):
        channel = client.get_channel(fake.channel.id)
        assert isinstance(channel, discord.TextChannel)
        view = discord.ui.View(timeout=None)
        view.add_item(Regenerate(7))
        sent = await channel.send("done", view=view)
        posted = fake.messages[sent.id]
        assert posted.custom_ids() == ["easel:regen:7"]
        interaction = await fake.send_component(posted, "easel:regen:7")
        callback = await fake.wait_for_callback(interaction)
    assert clicked == [7]
    assert callback.type == 6


async def test_bot_creates_thread_and_hears_replies_in_it(fake: FakeDiscord) -> None:
    heard: list[discord.Message] = []
    client = discord.Client(intents=intents(message_content=True), guild_ready_timeout=0.1)

    @client.event
    async def on_message(message: discord.Message) -> None:
        if message.author.id != fake.bot_user.id:
            heard.append(message)

    async with running(client, fake.token):
        channel = client.get_channel(fake.channel.id)
        assert isinstance(channel, discord.TextChannel)
        anchor = await channel.send("Making: a fox")
        thread = await anchor.create_thread(name="a fox", auto_archive_duration=1440)
        assert thread.id == anchor.id
        assert [t.id for t in fake.threads_of(fake.channel.id)] == [anchor.id]
        with pytest.raises(discord.HTTPException) as second:
            await anchor.create_thread(name="again")
        assert second.value.code == 160004

        photo = fake.add_attachment("photo.png", b"png", channel_id=thread.id)
        await fake.send_message(thread.id, fake.user, "make it darker", attachments=[photo])
        await fake.wait_for(lambda: heard)
        reply = heard[0]
        assert isinstance(reply.channel, discord.Thread) and reply.channel.id == thread.id
        assert reply.content == "make it darker"
        assert await reply.attachments[0].read() == b"png"
        await reply.channel.send("On it")
    assert [m.content for m in fake.channel_messages(thread.id)] == ["make it darker", "On it"]


async def test_without_message_content_intent_only_mentions_carry_text(
        fake: FakeDiscord) -> None:
    heard: list[str] = []
    client = discord.Client(intents=intents(), guild_ready_timeout=0.1)

    @client.event
    async def on_message(message: discord.Message) -> None:
        heard.append(message.content)

    async with running(client, fake.token):
        await fake.send_message(fake.channel.id, fake.user, "no mention here")
        await fake.send_message(fake.channel.id, fake.user, f"{fake.bot_user.mention} draw")
        await fake.wait_for(lambda: len(heard) == 2)
    assert heard == ["", f"{fake.bot_user.mention} draw"]


async def test_thread_creation_refused_with_missing_permissions(fake: FakeDiscord) -> None:
    fake.refuse_thread_creation()
    client = discord.Client(intents=intents(), guild_ready_timeout=0.1)
    async with running(client, fake.token):
        channel = client.get_channel(fake.channel.id)
        assert isinstance(channel, discord.TextChannel)
        anchor = await channel.send("Making: a fox")
        with pytest.raises(discord.Forbidden) as refused:
            await anchor.create_thread(name="a fox")
    assert refused.value.status == 403 and refused.value.code == 50013
    assert fake.threads_of(fake.channel.id) == []


async def test_429_with_via_header_is_waited_out_and_retried(fake: FakeDiscord) -> None:
    fake.rate_limit("POST", "/channels/{channel_id}/messages", times=2, retry_after=0.05)
    client = discord.Client(intents=intents(), guild_ready_timeout=0.1)
    async with running(client, fake.token):
        channel = client.get_channel(fake.channel.id)
        assert isinstance(channel, discord.TextChannel)
        await channel.send("hello")
    posts = fake.requests_to("POST", "/channels/{channel_id}/messages")
    assert [r.status for r in posts] == [429, 429, 200]
    assert [m.content for m in fake.channel_messages(fake.channel.id)] == ["hello"]


async def test_interaction_answer_and_edits_through_the_webhook(fake: FakeDiscord) -> None:
    client = discord.Client(intents=intents(), guild_ready_timeout=0.1)
    tree = app_commands.CommandTree(client)

    @tree.command(name="credits", description="Show credits")
    async def credits(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("You have 10 credits", ephemeral=True)
        await interaction.edit_original_response(content="You have 9 credits")

    async with running(client, fake.token):
        await tree.sync()
        interaction = await fake.send_interaction("credits")
        await fake.wait_for(lambda: fake.requests_to(
            "PATCH", "/webhooks/{app_id}/{token}/messages/@original"))
    answer: FakeMessage = fake.messages[interaction.original_message_id or 0]
    assert answer.ephemeral
    assert [s.content for s in answer.history] == ["You have 10 credits", "You have 9 credits"]
    assert fake.channel_messages(fake.channel.id, include_ephemeral=False) == []


async def test_client_resumes_after_reconnect_and_dropped_connection(fake: FakeDiscord) -> None:
    heard: list[str] = []
    client = discord.Client(intents=intents(message_content=True), guild_ready_timeout=0.1)

    @client.event
    async def on_message(message: discord.Message) -> None:
        heard.append(message.content)

    async with running(client, fake.token):
        session = await fake.wait_until_connected()
        await fake.reconnect_clients()
        await fake.wait_for(lambda: session.resumed_count == 1 and session.connected)
        await fake.drop_connections()
        await fake.send_message(fake.channel.id, fake.user, "sent while disconnected")
        await fake.wait_for(lambda: session.resumed_count == 2, timeout_s=15.0)
        await fake.wait_for(lambda: heard)
    assert heard == ["sent while disconnected"]
    assert len(fake.sessions) == 1  # resumed, never identified again


async def test_autosharded_client_finds_the_gateway_through_gateway_bot(
        fake: FakeDiscord) -> None:
    client = discord.AutoShardedClient(intents=intents(), guild_ready_timeout=0.1)
    async with running(client, fake.token):
        assert client.shard_count == 1
        assert client.get_guild(fake.guild.id) is not None
    assert fake.requests_to("GET", "/gateway/bot")
    assert fake.sessions[0].identify["shard"] == [0, 1]


async def test_rest_reads_and_multipart_edits(fake: FakeDiscord) -> None:
    fake.guild.premium_tier = 2
    client = discord.Client(intents=intents(), guild_ready_timeout=0.1)
    async with running(client, fake.token):
        guild = await client.fetch_guild(fake.guild.id)
        assert guild.premium_tier == 2 and guild.filesize_limit == 50 * 1024 * 1024
        channel = await client.fetch_channel(fake.channel.id)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("first", file=discord.File(io.BytesIO(b"one"), "one.txt"))
        fetched = await channel.fetch_message(sent.id)
        await fetched.edit(content="second", attachments=[
            *fetched.attachments, discord.File(io.BytesIO(b"two"), "two.txt")])
    message = fake.messages[sent.id]
    assert [(a.filename, a.data) for a in message.attachments] == [
        ("one.txt", b"one"), ("two.txt", b"two")]
    assert [(s.content, len(s.attachments)) for s in message.history] == [
        ("first", 1), ("second", 2)]
    edit = fake.requests_to("PATCH", "/channels/{channel_id}/messages/{message_id}")[0]
    assert edit.files == [("two.txt", b"two")]


async def test_component_update_modal_and_followup_with_file(fake: FakeDiscord) -> None:
    submitted: list[str] = []

    class Feedback(discord.ui.Modal, title="Refine"):
        text: discord.ui.TextInput[Feedback] = discord.ui.TextInput(
            label="What to change", custom_id="easel:refine-text")

        async def on_submit(self, interaction: discord.Interaction) -> None:
            submitted.append(self.text.value)
            await interaction.response.defer(thinking=True)
            await interaction.followup.send(
                "Here", file=discord.File(io.BytesIO(b"img"), "fox.png"))

    class Panel(discord.ui.View):
        def __init__(self) -> None:
            super().__init__(timeout=None)

        @discord.ui.button(label="Hide", custom_id="easel:hide")
        async def hide(self, interaction: discord.Interaction,
                       button: discord.ui.Button[Panel]) -> None:
            await interaction.response.edit_message(content="Hidden", view=None)

        @discord.ui.button(label="Refine", custom_id="easel:refine")
        async def refine(self, interaction: discord.Interaction,
                         button: discord.ui.Button[Panel]) -> None:
            modal = Feedback(custom_id="easel:refine-modal")
            await interaction.response.send_modal(modal)

    client = discord.Client(intents=intents(), guild_ready_timeout=0.1)
    async with running(client, fake.token):
        client.add_view(Panel())
        channel = client.get_channel(fake.channel.id)
        assert isinstance(channel, discord.TextChannel)
        panel = fake.messages[(await channel.send("Panel", view=Panel())).id]
        shown = await fake.send_component(panel, "easel:refine")
        assert (await fake.wait_for_callback(shown)).type == 9
        submit = await fake.send_modal_submit("easel:refine-modal",
                                              {"easel:refine-text": "darker"})
        await fake.wait_for(lambda: submit.followup_ids)
        hide = await fake.send_component(panel, "easel:hide")
        assert (await fake.wait_for_callback(hide)).type == 7
    assert submitted == ["darker"]
    answer = fake.messages[submit.followup_ids[0]]
    assert answer.content == "Here" and answer.attachments[0].data == b"img"
    assert [s.content for s in panel.history] == ["Panel", "Hidden"]
    assert panel.components == []


async def test_thread_started_by_a_person_is_announced(fake: FakeDiscord) -> None:
    created: list[int] = []
    client = discord.Client(intents=intents(), guild_ready_timeout=0.1)

    @client.event
    async def on_thread_create(thread: discord.Thread) -> None:
        created.append(thread.id)

    async with running(client, fake.token):
        thread = await fake.create_thread(fake.channel.id, "ideas", owner=fake.user)
        await fake.wait_for(lambda: created)
        assert client.get_channel(thread.id) is not None
    assert created == [thread.id]
