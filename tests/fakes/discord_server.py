"""FakeDiscord: a local Discord (REST v10 + gateway + CDN) that the real discord.py logs in to.

    fake = FakeDiscord()
    await fake.start()
    with fake.discord_py_overrides():      # Route.BASE and DiscordWebSocket.DEFAULT_GATEWAY
        client = discord.Client(intents=discord.Intents.default())
        ...
    fake.channel_messages(fake.channel.id)  # what a user sees, with every edit in .history

The world starts with a bot user (`bot_user`, whose id is also `app_id`), a person (`user`), a
guild (`guild`) and its text channel (`channel`). Tests inject what Discord would send
(`send_interaction`, `send_component`, `send_modal_submit`, `send_message`, `create_thread`)
and failures (`rate_limit`, `fail_next`, `refuse_thread_creation`, `expire_interaction`).
Modules: discord_rest.py (REST routes, middleware, CDN), discord_webhooks.py (interaction
callback and webhook), discord_gateway.py (websocket), discord_interactions.py (interaction
payloads), discord_store.py (message changes), discord_payloads.py (guild/member JSON),
discord_limits.py (what Discord refuses) and discord_models.py (the data types).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from tests.fakes.discord_gateway import INVALID_SESSION, RECONNECT, Gateway, GatewaySession
from tests.fakes.discord_interactions import InteractionBuilder
from tests.fakes.discord_limits import json_response
from tests.fakes.discord_models import (
    BOT_PERMISSIONS,
    CREATE_PUBLIC_THREADS,
    GUILD_TEXT,
    PUBLIC_THREAD,
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeMessage,
    FakeUser,
    InteractionCallback,
    RecordedRequest,
    SentInteraction,
    Snowflakes,
)
from tests.fakes.discord_rest import RestApi, _normalized, route_matches
from tests.fakes.discord_store import MessageStore

T = TypeVar("T")


@dataclass
class _Injection:
    method: str
    route: str
    times: int
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


class FakeDiscord(MessageStore, InteractionBuilder):
    """A deterministic local Discord for discord.py and for Easel's Discord adapters."""

    def __init__(self, *, token: str = "fake-bot-token", heartbeat_interval_ms: int = 41_250,
                 premium_tier: int = 0) -> None:
        self.token = token
        self.ids = Snowflakes()
        self.users: dict[int, FakeUser] = {}
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, FakeChannel] = {}
        self.messages: dict[int, FakeMessage] = {}
        self.attachments: dict[int, FakeAttachment] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}  # None = global
        self.command_syncs: list[tuple[int | None, Any]] = []  # every bulk overwrite (PUT)
        self.interactions: dict[int, SentInteraction] = {}
        self.requests: list[RecordedRequest] = []
        self.unhandled: list[str] = []  # "METHOD /path" of routes the fake does not know
        self.reactions: list[tuple[int, str]] = []  # (message id, emoji)
        self.cdn_downloads: list[int] = []  # attachment ids fetched from the CDN
        self.injected_responses: list[str] = []  # "METHOD /path" answered by an injection
        self.bot_permissions = BOT_PERMISSIONS
        self.application_flags = 0
        self.base_url = ""
        self.bot_user = self.add_user("easel", bot=True)
        self.app_id = self.bot_user.id
        self.guild = self.add_guild("Easel Test", premium_tier=premium_tier)
        self.user = self.add_user("alice", global_name="Alice")
        self.channel = self.add_channel(self.guild.id, "general")
        self.gateway = Gateway(self, heartbeat_interval_ms)
        self._rest = RestApi(self)
        self._injected: list[_Injection] = []
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> str:
        """Serve on 127.0.0.1 (random port); returns the base URL (`api_base` is REST's)."""
        app = web.Application(middlewares=[self._rest.middleware],
                              client_max_size=200 * 1024 * 1024)
        app.router.add_get("/ws", self.gateway.handle)
        app.router.add_get("/ws/", self.gateway.handle)
        app.router.add_routes(self._rest.routes())
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        await self.gateway.drop_connections(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_base(self) -> str:
        """What `discord.http.Route.BASE` must be set to."""
        return self.base_url + "/api/v10"

    @property
    def gateway_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/ws"

    @contextlib.contextmanager
    def discord_py_overrides(self) -> Iterator[None]:
        """Point discord.py's REST base and default gateway here; restored on exit."""
        import discord.gateway
        import discord.http
        import yarl

        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    # --- the world ---------------------------------------------------------------------------

    def add_user(self, username: str, *, bot: bool = False, global_name: str | None = None,
                 guild_id: int | None = None) -> FakeUser:
        """A user, made a member of `guild_id` (default: every existing guild)."""
        user = FakeUser(self.ids.next(), username, bot, global_name)
        self.users[user.id] = user
        for guild in self.guilds.values():
            if guild_id in (None, guild.id):
                guild.member_ids.append(user.id)
        return user

    def add_guild(self, name: str, *, premium_tier: int = 0) -> FakeGuild:
        guild = FakeGuild(self.ids.next(), name, owner_id=self.bot_user.id,
                          bot_role_id=self.ids.next(), premium_tier=premium_tier,
                          member_ids=[self.bot_user.id])
        self.guilds[guild.id] = guild
        return guild

    def add_channel(self, guild_id: int, name: str, *, type: int = GUILD_TEXT) -> FakeChannel:
        channel = FakeChannel(self.ids.next(), guild_id, name, type)
        self.channels[channel.id] = channel
        self.guilds[guild_id].channel_ids.append(channel.id)
        return channel

    async def create_thread(self, channel_id: int, name: str, *,
                            message: FakeMessage | None = None, owner: FakeUser | None = None,
                            type: int = PUBLIC_THREAD,
                            auto_archive_duration: int | None = None) -> FakeChannel:
        """A thread in `channel_id` (id == message id when started from a message);
        dispatches THREAD_CREATE as Discord does."""
        parent = self.channels[channel_id]
        owner = owner or self.user
        thread = FakeChannel(message.id if message else self.ids.next(), parent.guild_id, name,
                             type, parent_id=parent.id, owner_id=owner.id,
                             auto_archive_duration=auto_archive_duration or 1440,
                             bot_is_member=owner.id == self.bot_user.id)
        if message is not None:
            message.thread_id = thread.id
        self.channels[thread.id] = thread
        if parent.guild_id is not None:
            self.guilds[parent.guild_id].channel_ids.append(thread.id)
        await self.gateway.dispatch("THREAD_CREATE", {
            **thread.payload(bot_id=self.bot_user.id), "newly_created": True})
        self._notify()
        return thread

    def add_attachment(self, filename: str, data: bytes, *, content_type: str | None = None,
                       channel_id: int | None = None,
                       description: str | None = None) -> FakeAttachment:
        """A file served by the fake CDN (for user uploads: options or send_message)."""
        made = self._make_attachment(channel_id or self.channel.id, filename, data, description,
                                     content_type)
        self.attachments[made.id] = made
        return made

    def refuse_thread_creation(self, refuse: bool = True) -> None:
        """Make thread creation answer 403 code 50013 Missing Permissions (or allow it again)."""
        if refuse:
            self.bot_permissions &= ~CREATE_PUBLIC_THREADS
        else:
            self.bot_permissions |= CREATE_PUBLIC_THREADS

    def expire_interaction(self, interaction: SentInteraction) -> None:
        """Its token dies, as after 15 minutes: callbacks 404 (10062), webhooks 401 (50027)."""
        interaction.expired = True

    # --- what a test reads ---------------------------------------------------------------------

    def channel_messages(self, channel_id: int, *,
                         include_ephemeral: bool = True) -> list[FakeMessage]:
        """Messages in a channel or thread, oldest first, without deleted ones."""
        return [m for m in sorted(self.messages.values(), key=lambda m: m.id)
                if m.channel_id == channel_id and not m.deleted
                and (include_ephemeral or not m.ephemeral)]

    def threads_of(self, channel_id: int) -> list[FakeChannel]:
        return [c for c in self.channels.values() if c.is_thread and c.parent_id == channel_id]

    def requests_to(self, method: str, route: str) -> list[RecordedRequest]:
        """Recorded requests matching a template ('/channels/{id}/messages') or a path."""
        return [r for r in self.requests
                if r.method == method and route_matches(route, r.route, r.path)]

    @property
    def callbacks(self) -> list[InteractionCallback]:
        return [c for i in self.interactions.values() for c in i.callbacks]

    @property
    def sessions(self) -> list[GatewaySession]:
        return self.gateway.sessions

    async def wait_for(self, predicate: Callable[[], T | None], timeout_s: float = 5.0) -> T:
        """Wait until `predicate()` is truthy and return its value (TimeoutError otherwise)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not (result := predicate()):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"FakeDiscord: condition not met within {timeout_s}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))
        return result

    async def wait_for_callback(self, interaction: SentInteraction,
                                timeout_s: float = 5.0) -> InteractionCallback:
        return await self.wait_for(
            lambda: interaction.callbacks[0] if interaction.callbacks else None, timeout_s)

    async def wait_for_message(self, channel_id: int,
                               predicate: Callable[[FakeMessage], bool] | None = None,
                               timeout_s: float = 5.0) -> FakeMessage:
        def found() -> FakeMessage | None:
            return next((m for m in reversed(self.channel_messages(channel_id))
                         if predicate is None or predicate(m)), None)

        return await self.wait_for(found, timeout_s)

    async def wait_until_connected(self, timeout_s: float = 5.0) -> GatewaySession:
        return await self.wait_for(
            lambda: next((s for s in self.sessions if s.connected), None), timeout_s)

    # --- injected failures and gateway control -----------------------------------------------

    def rate_limit(self, method: str, route: str, *, times: int = 1, retry_after: float = 0.05,
                   is_global: bool = False) -> None:
        """The next `times` requests to route answer 429 as Discord does (JSON body, `Via`,
        X-RateLimit-* and Retry-After headers)."""
        headers = {"Via": "1.1 google", "Retry-After": str(max(1, round(retry_after))),
                   "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                   "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                   "X-RateLimit-Bucket": f"fake-{_normalized(route)}",
                   "X-RateLimit-Scope": "global" if is_global else "user"}
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {"message": "You are being rate limited.", "retry_after": retry_after,
                "global": is_global, "code": 0}
        self._injected.append(_Injection(method, _normalized(route), times, 429, body, headers))

    def fail_next(self, method: str, route: str, *, status: int, code: int = 0,
                  message: str = "Injected failure", times: int = 1) -> None:
        """The next `times` requests to route answer `status` with Discord's error body."""
        body = {"message": message, "code": code}
        self._injected.append(_Injection(method, _normalized(route), times, status, body, {}))

    def _take_injected(self, method: str, route: str, path: str) -> web.Response | None:
        for injection in self._injected:
            if injection.method == method and route_matches(injection.route, route, path):
                injection.times -= 1
                if injection.times <= 0:
                    self._injected.remove(injection)
                self.injected_responses.append(f"{method} {path}")
                return json_response(injection.body, injection.status, injection.headers)
        return None

    async def reconnect_clients(self) -> None:
        """Send RECONNECT (op 7): clients close and RESUME."""
        await self.gateway.send_op(RECONNECT, None)

    async def invalidate_sessions(self) -> None:
        """Send INVALID_SESSION (op 9, not resumable): clients IDENTIFY again."""
        await self.gateway.send_op(INVALID_SESSION, False)

    async def drop_connections(self, code: int = 4000) -> None:
        await self.gateway.drop_connections(code)

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send any raw dispatch event to every connected session."""
        await self.gateway.dispatch(event, data)

    # --- person-side events --------------------------------------------------------------------

    async def send_message(self, channel_id: int, author: FakeUser | None = None,
                           content: str = "", *,
                           attachments: Iterable[FakeAttachment | tuple[str, bytes]] = (),
                           mentions: Iterable[FakeUser] = (),
                           reply_to: FakeMessage | None = None) -> FakeMessage:
        """A person posts in a channel or thread: stored, then MESSAGE_CREATE is dispatched."""
        files = [a if isinstance(a, FakeAttachment) else
                 self.add_attachment(a[0], a[1], channel_id=channel_id) for a in attachments]
        channel = self.channels[channel_id]
        message = FakeMessage(self.ids.next(), channel_id, channel.guild_id, author or self.user,
                              content, attachments=files)
        message.mentions = self._mentions(content, mentions)
        if reply_to is not None:
            message.message_reference = {"message_id": str(reply_to.id),
                                         "channel_id": str(reply_to.channel_id)}
        await self._store(message, channel, via="user")
        return message

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
