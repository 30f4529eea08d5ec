"""Discord end to end: the real discord.py bot logged in to FakeDiscord → core → worker.

Each test boots the whole app (`bot.app.bootstrap`) on a fresh database, starts the Discord
gateway as a task (the same `run_discord_gateway` that `easel run` starts), drives it with
FakeDiscord's interactions and messages, runs the worker until the queue is empty, and then
looks at what a person would see in Discord and at the rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from adapters.discord.commands import thread_name
from adapters.discord.gateway import run_discord_gateway
from adapters.discord.invite import invite_url, invite_url_for
from adapters.discord.messenger import DiscordMessenger
from adapters.providers.sketch import SketchProvider
from bot.app import App, bootstrap
from bot.settings import Settings
from core.ports import ImageProvider
from core.worker import Worker
from tests.fakes.discord_models import FakeMessage, FakeUser, SentInteraction
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.provider import ScriptedProvider, tiny_png

POLL_S = 0.02
STAGE_WORDS = ("Got it", "Understanding", "Refining", "Generating", "Uploading", "Finalizing",
               "Done")


@dataclass
class Rig:
    """A running Easel with its Discord gateway, and the fake Discord it talks to."""

    fake: FakeDiscord
    app: App
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def start_gateway(self) -> None:
        self.stop = asyncio.Event()
        sessions = len(self.fake.sessions)
        self.task = asyncio.create_task(run_discord_gateway(self.app, None, self.stop))
        await self.fake.wait_for(
            lambda: len(self.fake.sessions) > sessions and self.fake.sessions[-1].connected
            and self.fake.sessions[-1].events("GUILD_CREATE"), timeout_s=10)

    async def stop_gateway(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)
            self.task = None

    async def work(self) -> int:
        return await Worker(self.app.runtime).run_until_empty()

    async def val(self, sql: str, *args: object) -> Any:
        return await self.app.runtime.pool.fetchval(sql, *args)

    async def until_generations(self, count: int, timeout_s: float = 10.0) -> None:
        """Wait until `count` generations are queued (the bot submits after acknowledging)."""
        for _ in range(int(timeout_s / POLL_S)):
            if await self.val("SELECT count(*) FROM generations") >= count:
                return
            await asyncio.sleep(POLL_S)
        raise TimeoutError(f"fewer than {count} generations after {timeout_s}s")

    async def imagine(self, options: dict[str, Any], **kwargs: Any) -> SentInteraction:
        sent = await self.fake.send_interaction("imagine", options, **kwargs)
        callback = await self.fake.wait_for_callback(sent)
        assert callback.type == 5 and callback.latency_s < 3.0
        return sent

    async def answer(self, sent: SentInteraction, timeout_s: float = 10.0) -> FakeMessage:
        """The deferred answer, once it is no longer 'thinking'."""
        def done() -> FakeMessage | None:
            message = self.fake.messages.get(sent.original_message_id or 0)
            return message if message is not None and not message.loading else None

        return await self.fake.wait_for(done, timeout_s)

    def status_of(self, thread_id: int) -> FakeMessage:
        return next(m for m in self.fake.channel_messages(thread_id)
                    if m.author.id == self.fake.bot_user.id and m.embeds)

    def images(self, thread_id: int) -> list[FakeMessage]:
        return [m for m in self.fake.channel_messages(thread_id) if m.attachments
                and m.author.id == self.fake.bot_user.id]


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    with server.discord_py_overrides():
        yield server
    await server.stop()


@contextlib.asynccontextmanager
async def running_easel(database_url: str, tmp_path: Path, fake: FakeDiscord, *,
                        providers: dict[str, ImageProvider] | None = None,
                        **extra: object) -> AsyncIterator[Rig]:
    settings = Settings.model_validate({
        "DATABASE_URL": database_url, "DISCORD_TOKEN": fake.token,
        "EASEL_DATA_DIR": str(tmp_path), "EASEL_STATUS_EDIT_INTERVAL_S": 0,
        "EASEL_DEFAULT_MODEL": "sketch", **extra})
    messenger = DiscordMessenger(fake.token)
    async with bootstrap(settings, platforms={"discord": messenger}, providers=providers,
                         pool_size=4) as app:
        rig = Rig(fake, app)
        await rig.start_gateway()
        try:
            yield rig
        finally:
            await rig.stop_gateway()
            await messenger.close()


async def test_imagine_opens_a_thread_and_ends_with_an_image(
        database_url: str, tmp_path: Path, fake: FakeDiscord) -> None:
    async with running_easel(database_url, tmp_path, fake) as rig:
        assert {c["name"] for c in fake.commands[None]} == {"imagine", "credits", "model", "flow",
                                                             "history", "easel", "settings"}
        sent = await rig.imagine({"prompt": "a lighthouse at dusk"})
        answer = await rig.answer(sent)
        [thread] = fake.threads_of(fake.channel.id)
        assert thread.name == "a lighthouse at dusk"
        assert answer.ephemeral and answer.content == f"Working on it in <#{thread.id}>."
        assert await rig.work() == 1

        status = rig.status_of(thread.id)
        titles = [s.embeds[0].get("title", "") for s in status.history]
        for word in STAGE_WORDS:
            assert any(word in t for t in titles), (word, titles)
        [image] = rig.images(thread.id)
        assert image.attachments[0].data.startswith(b"\x89PNG")
        generation_id = await rig.val("SELECT id FROM generations")
        assert f"easel:regen:{generation_id}" in image.custom_ids()
        assert f"easel:vary:{generation_id}" in image.custom_ids()
        row = await rig.app.runtime.pool.fetchrow(
            "SELECT s.platform, s.workspace, s.channel, s.thread, g.status, g.source_event "
            "FROM generations g JOIN sessions s ON s.id = g.session_id")
        assert tuple(row.values()) == ("discord", str(fake.guild.id), str(fake.channel.id),
                                       str(thread.id), "succeeded", str(sent.id))
    assert fake.unhandled == []


async def test_a_reply_in_the_thread_refines_the_image(
        database_url: str, tmp_path: Path, fake: FakeDiscord) -> None:
    async with running_easel(database_url, tmp_path, fake) as rig:
        await rig.answer(await rig.imagine({"prompt": "a red fox"}))
        await rig.work()
        [thread] = fake.threads_of(fake.channel.id)
        await fake.send_message(thread.id, fake.user, "make it night",
                                attachments=[("photo.png", tiny_png())])
        await rig.until_generations(2)
        assert await rig.work() == 1
        assert len(rig.images(thread.id)) == 2
        first, second = await rig.app.runtime.pool.fetch(
            "SELECT id, parent_id, user_prompt FROM generations ORDER BY id")
        assert second["parent_id"] == first["id"] and second["user_prompt"] == "make it night"
        assert await rig.val("SELECT count(*) FROM assets WHERE kind = 'upload'") == 1
        # Talk outside a session thread is not a request.
        await fake.send_message(fake.channel.id, fake.user, "nice fox!")
        other = await fake.create_thread(fake.channel.id, "chat", owner=fake.user)
        await fake.send_message(other.id, fake.user, "draw a cat")
        await asyncio.sleep(0.2)
        assert await rig.val("SELECT count(*) FROM generations") == 2


async def test_a_button_still_works_after_a_restart(
        database_url: str, tmp_path: Path, fake: FakeDiscord) -> None:
    bob = fake.add_user("bob")
    async with running_easel(database_url, tmp_path, fake) as rig:
        await rig.answer(await rig.imagine({"prompt": "a castle"}))
        await rig.work()
        [thread] = fake.threads_of(fake.channel.id)
        [image] = rig.images(thread.id)
        first_id = await rig.val("SELECT id FROM generations")

        await rig.stop_gateway()
        await rig.start_gateway()
        click = await fake.send_component(image, f"easel:regen:{first_id}", user=bob)
        assert (await fake.wait_for_callback(click)).type == 6
        await rig.until_generations(2)
        assert await rig.work() == 1
        assert len(rig.images(thread.id)) == 2
        row = await rig.app.runtime.pool.fetchrow(
            "SELECT g.intent, g.parent_id, g.source_event, u.external_id FROM generations g "
            "JOIN users u ON u.id = g.user_id ORDER BY g.id DESC LIMIT 1")
        assert tuple(row.values()) == ("regenerate", first_id, str(click.id), str(bob.id))


async def test_the_model_select_regenerates_with_the_chosen_model(
        database_url: str, tmp_path: Path, fake: FakeDiscord) -> None:
    providers: dict[str, ImageProvider] = {"sketch": SketchProvider(),
                                           "google": ScriptedProvider("google")}
    async with running_easel(database_url, tmp_path, fake, providers=providers) as rig:
        await rig.answer(await rig.imagine({"prompt": "a castle"}))
        await rig.work()
        [thread] = fake.threads_of(fake.channel.id)
        [image] = rig.images(thread.id)
        first_id = await rig.val("SELECT id FROM generations")
        pick = await fake.send_component(image, f"easel:model:{first_id}", values=["nano2"])
        assert (await fake.wait_for_callback(pick)).type == 6
        await rig.until_generations(2)
        await rig.work()
        model, parent = (await rig.app.runtime.pool.fetchrow(
            "SELECT model, parent_id FROM generations ORDER BY id DESC LIMIT 1")).values()
        assert (model, parent) == ("nano2", first_id)


async def test_compare_posts_side_by_side_and_continue_picks_one(
        database_url: str, tmp_path: Path, fake: FakeDiscord) -> None:
    providers: dict[str, ImageProvider] = {"sketch": SketchProvider(),
                                           "google": ScriptedProvider("google")}
    async with running_easel(database_url, tmp_path, fake, providers=providers) as rig:
        await rig.answer(await rig.imagine({"prompt": "a castle", "compare": "sketch,nano2"}))
        assert await rig.work() == 2
        [thread] = fake.threads_of(fake.channel.id)
        composite, *singles = rig.images(thread.id)
        assert composite.attachments[0].data.startswith(b"\x89PNG") and len(singles) == 2
        ids = [r["id"] for r in await rig.app.runtime.pool.fetch(
            "SELECT id FROM generations ORDER BY id")]
        assert f"easel:continue:{ids[1]}" in singles[1].custom_ids()
        status = rig.status_of(thread.id)
        assert "Compare done" in status.history[-1].embeds[0].get("title", "")
        click = await fake.send_component(singles[1], f"easel:continue:{ids[1]}")
        await fake.wait_for_callback(click)
        await fake.send_message(thread.id, fake.user, "make it darker")
        await rig.until_generations(3)
        await rig.work()
        model, parent = (await rig.app.runtime.pool.fetchrow(
            "SELECT model, parent_id FROM generations ORDER BY id DESC LIMIT 1")).values()
        assert (model, parent) == ("nano2", ids[1])


async def test_a_duplicate_interaction_makes_one_generation(
        database_url: str, tmp_path: Path, fake: FakeDiscord) -> None:
    async with running_easel(database_url, tmp_path, fake) as rig:
        sent = await rig.imagine({"prompt": "a windmill"})
        await fake.dispatch("INTERACTION_CREATE", sent.payload)
        await rig.answer(sent)
        await asyncio.sleep(0.3)
        await rig.work()
        assert await rig.val("SELECT count(*) FROM generations") == 1
        assert len(fake.threads_of(fake.channel.id)) == 1
        assert len(sent.callbacks) == 1
        # Delivered again to another gateway process (which never saw it): Discord refuses the
        # second acknowledgement (40060) and nothing new is made.
        await rig.stop_gateway()
        await rig.start_gateway()
        await fake.dispatch("INTERACTION_CREATE", sent.payload)
        await fake.wait_for(lambda: fake.injected_responses or any(
            r.status == 400 for r in fake.requests_to("POST", f"/interactions/{sent.id}/"
                                                      f"{sent.token}/callback")))
        await asyncio.sleep(0.2)
        assert await rig.val("SELECT count(*) FROM generations") == 1
        assert len(fake.threads_of(fake.channel.id)) == 1
        assert len(fake.channel_messages(fake.channel.id, include_ephemeral=False)) == 1


async def test_no_credits_gets_a_clear_answer_and_no_reservation(
        database_url: str, tmp_path: Path, fake: FakeDiscord) -> None:
    providers: dict[str, ImageProvider] = {"sketch": SketchProvider(),
                                           "google": ScriptedProvider("google")}
    async with running_easel(database_url, tmp_path, fake, providers=providers,
                             EASEL_STARTER_CREDITS=0) as rig:
        sent = await rig.imagine({"prompt": "a fox", "model": "nano2"})
        answer = await rig.answer(sent)
        assert "You need 10 credits" in answer.content and "Nothing was charged" in answer.content
        [thread] = fake.threads_of(fake.channel.id)
        status = rig.status_of(thread.id)
        assert "You need 10 credits" in status.embeds[0]["title"]
        assert await rig.val("SELECT count(*) FROM reservations") == 0
        assert await rig.val("SELECT count(*) FROM generations") == 0
        assert await rig.val("SELECT coalesce(sum(reserved + spent), 0) FROM accounts") == 0


async def test_refused_thread_answers_in_the_channel(
        database_url: str, tmp_path: Path, fake: FakeDiscord) -> None:
    fake.refuse_thread_creation()
    async with running_easel(database_url, tmp_path, fake) as rig:
        answer = await rig.answer(await rig.imagine({"prompt": "a boat"}))
        assert "Create Public Threads" in answer.content and "below" in answer.content
        await rig.work()
        assert fake.threads_of(fake.channel.id) == []
        assert len(rig.images(fake.channel.id)) == 1
        assert await rig.val("SELECT thread FROM sessions") == str(fake.channel.id)


async def test_credits_model_and_grant(
        database_url: str, tmp_path: Path, fake: FakeDiscord) -> None:
    admin = fake.add_user("admin")
    providers: dict[str, ImageProvider] = {"sketch": SketchProvider(),
                                           "google": ScriptedProvider("google")}
    async with running_easel(database_url, tmp_path, fake, providers=providers,
                             EASEL_ADMINS=str(admin.id)) as rig:
        credits = await rig.answer(await fake.send_interaction("credits"))
        assert credits.ephemeral and credits.content.startswith("Credits: 50 available")

        typed = await fake.send_interaction("model", {"name": "nano"}, focused="name")
        choices = (await fake.wait_for_callback(typed)).data or {}
        by_value = {c["value"]: c["name"] for c in choices["choices"]}
        # "nano" (gemini-2.5-flash-image) is retired: not offered.
        assert "nano2" in by_value and "nano" not in by_value and "sketch" not in by_value
        assert by_value["nano2"] == "Nano Banana 2 · 7/10/14 cr (1K/2K/4K)"

        refused = await rig.answer(await _grant(fake, fake.user, fake.user, 5))
        assert refused.content == "Only Easel admins can do that."
        granted = await rig.answer(await _grant(fake, admin, fake.user, 25))
        assert "Credits: 75 available" in granted.content

        await rig.answer(await rig.imagine({"prompt": "a kite"}))
        [thread] = fake.threads_of(fake.channel.id)
        switched = await rig.answer(await fake.send_interaction(
            "model", {"name": "nano2"}, channel_id=thread.id))
        assert "Nano Banana 2" in switched.content
        assert await rig.val("SELECT model FROM sessions") == "nano2"


async def _grant(fake: FakeDiscord, by: FakeUser, to: FakeUser, amount: int) -> SentInteraction:
    """`/easel grant user:<to> amount:<n>` (a subcommand, with the user in `resolved`)."""
    [command] = [c for c in fake.commands[None] if c["name"] == "easel"]
    member = fake.member_payload(fake.guild.id, to)
    member.pop("user")
    data = {"id": command["id"], "name": "easel", "type": 1, "options": [
        {"name": "grant", "type": 1, "options": [
            {"name": "user", "type": 6, "value": str(to.id)},
            {"name": "amount", "type": 4, "value": amount}]}],
        "resolved": {"users": {str(to.id): to.payload()}, "members": {str(to.id): member}}}
    return await fake._dispatch_interaction(2, data, by, fake.channel)


def test_invite_url_asks_for_the_scopes_and_permissions_easel_needs() -> None:
    url = invite_url_for(1234)
    assert "client_id=1234" in url and "scope=bot+applications.commands" in url
    # View Channels, Send Messages, Embed Links, Attach Files, Read Message History,
    # Create Public Threads, Send Messages in Threads.
    wanted = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 35) | (1 << 38)
    assert f"permissions={wanted}" in url


async def test_imagine_with_an_image_and_inside_a_thread(
        database_url: str, tmp_path: Path, fake: FakeDiscord) -> None:
    provider = ScriptedProvider()
    async with running_easel(database_url, tmp_path, fake,
                             providers={"sketch": provider}) as rig:
        photo = fake.add_attachment("photo.png", tiny_png())
        await rig.answer(await rig.imagine({"prompt": "make it a painting", "image": photo,
                                            "aspect": "16:9"}))
        assert fake.cdn_downloads == [photo.id]
        await rig.work()
        [thread] = fake.threads_of(fake.channel.id)
        assert provider.requests[0].input_images
        assert provider.requests[0].aspect_ratio == "16:9"

        again = await rig.answer(await rig.imagine({"prompt": "a second one"},
                                                   channel_id=thread.id))
        assert again.content == f"Working on it in <#{thread.id}>."
        await rig.work()
        assert len(fake.threads_of(fake.channel.id)) == 1
        assert len(rig.images(thread.id)) == 2
        assert await rig.val("SELECT count(DISTINCT session_id) FROM generations") == 1


async def test_without_the_message_content_intent_mentions_still_refine(
        database_url: str, tmp_path: Path, fake: FakeDiscord) -> None:
    async with running_easel(database_url, tmp_path, fake) as rig:
        await rig.answer(await rig.imagine({"prompt": "a red fox"}))
        await rig.work()
        [thread] = fake.threads_of(fake.channel.id)
        await asyncio.sleep(2.5)  # let discord.py finish its ready delay before the drop
        sessions = len(fake.sessions)
        await fake.drop_connections(4014)  # Disallowed intents: not enabled in the portal
        await fake.wait_for(lambda: len(fake.sessions) > sessions and fake.sessions[-1].connected
                            and fake.sessions[-1].events("GUILD_CREATE"), timeout_s=10)
        assert not fake.sessions[-1].intents & (1 << 15)
        await fake.send_message(thread.id, fake.user, "make it night")  # unreadable: ignored
        await fake.send_message(thread.id, fake.user, f"{fake.bot_user.mention} make it night",
                                mentions=[fake.bot_user])
        await rig.until_generations(2)
        await asyncio.sleep(0.2)
        assert await rig.val("SELECT count(*) FROM generations") == 2
        assert await rig.val(
            "SELECT user_prompt FROM generations ORDER BY id DESC LIMIT 1") == "make it night"


async def test_invite_url_names_the_application(fake: FakeDiscord) -> None:
    url = await invite_url(Settings.model_validate({"DISCORD_TOKEN": fake.token}))
    assert url.startswith(f"https://discord.com/oauth2/authorize?client_id={fake.app_id}")


async def test_sharded_gateway_with_guild_commands(
        database_url: str, tmp_path: Path, fake: FakeDiscord) -> None:
    async with running_easel(database_url, tmp_path, fake, DISCORD_SHARD_COUNT=1,
                             DISCORD_SHARD_IDS="0", DISCORD_GUILD_IDS=str(fake.guild.id)) as rig:
        assert fake.sessions[-1].identify["shard"] == [0, 1]
        assert None not in fake.commands or not fake.commands[None]
        assert {c["name"] for c in fake.commands[fake.guild.id]} == {
            "imagine", "credits", "model", "flow", "history", "easel", "settings"}
        await rig.answer(await rig.imagine({"prompt": "a harbour"}))
        assert await rig.work() == 1
        [thread] = fake.threads_of(fake.channel.id)
        assert len(rig.images(thread.id)) == 1


def test_thread_names_are_one_line_and_fit_discord() -> None:
    assert thread_name("a fox\n\nin   snow") == "a fox in snow"
    long = thread_name("word " * 60)
    assert len(long) == 100 and long.endswith("…")
    assert thread_name("   ") == "Easel image"


async def test_flow_in_a_thread_answers_with_a_signed_link(
        database_url: str, tmp_path: Path, fake: FakeDiscord) -> None:
    async with running_easel(database_url, tmp_path, fake, EASEL_SECRET_KEY="flow-secret-2",
                             PUBLIC_URL="https://easel.example.org") as rig:
        await rig.answer(await rig.imagine({"prompt": "a kite"}))
        await rig.work()
        [thread] = fake.threads_of(fake.channel.id)
        answer = await rig.answer(await fake.send_interaction("flow", channel_id=thread.id))
        assert answer.ephemeral and "https://easel.example.org/flow/" in answer.content
        token = answer.content.split("/flow/")[1].split()[0]
        from core.flow import verify_flow_token

        session = await rig.val("SELECT id FROM sessions")
        assert verify_flow_token(b"flow-secret-2", token, time.time()) == session
        outside = await rig.answer(await fake.send_interaction("flow"))
        assert "flow" in outside.content.lower() and "/flow/" not in outside.content
        # The person's own studio: from /flow in the thread, and /history anywhere.
        from core.links import GrantKind, verify_link

        person = await rig.val("SELECT user_id FROM generations")
        for reply in (answer, await rig.answer(await fake.send_interaction("history"))):
            assert reply.ephemeral and "https://easel.example.org/studio/" in reply.content
            studio = reply.content.split("/studio/")[1].split()[0]
            grant = verify_link([b"flow-secret-2"], studio, time.time())
            assert (grant.kind, grant.subject) == (GrantKind.PERSON, person)


async def test_easel_admin_answers_admins_only_with_a_private_admin_link(
        database_url: str, tmp_path: Path, fake: FakeDiscord) -> None:
    from core.links import GrantKind, verify_link

    admin = fake.add_user("operator")
    async with running_easel(database_url, tmp_path, fake, EASEL_ADMINS=str(admin.id),
                             EASEL_SECRET_KEY="admin-secret-3",
                             PUBLIC_URL="https://easel.example.org") as rig:
        [command] = [c for c in fake.commands[None] if c["name"] == "easel"]
        data = {"id": command["id"], "name": "easel", "type": 1,
                "options": [{"name": "admin", "type": 1, "options": []}]}
        refused = await rig.answer(await fake._dispatch_interaction(2, data, fake.user,
                                                                    fake.channel))
        assert refused.ephemeral and refused.content == "Only Easel admins can do that."
        answer = await rig.answer(await fake._dispatch_interaction(2, data, admin, fake.channel))
        assert answer.ephemeral and "https://easel.example.org/admin/" in answer.content
        token = answer.content.split("/admin/")[1].split()[0]
        grant = verify_link([b"admin-secret-3"], token, time.time())
        who = await rig.val("SELECT id FROM users WHERE external_id = $1", str(admin.id))
        assert (grant.kind, grant.subject) == (GrantKind.ADMIN, who)
        assert grant.expires_at - time.time() <= 3600
