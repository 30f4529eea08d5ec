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
REST handlers live in discord_rest.py, the websocket in discord_gateway.py, message limits in
discord_limits.py and the data types in discord_models.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from tests.fakes.discord_gateway import INVALID_SESSION, RECONNECT, Gateway, GatewaySession
from tests.fakes.discord_interactions import InteractionBuilder
from tests.fakes.discord_limits import (
    DiscordError,
    NewAttachment,
    compose,
    json_response,
    validate,
)
from tests.fakes.discord_models import (
    BOT_PERMISSIONS,
    CREATE_PUBLIC_THREADS,
    EPHEMERAL,
    EVERYONE_PERMISSIONS,
    FILESIZE_LIMIT_BY_TIER,
    GUILD_TEXT,
    LOADING,
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
    guess_content_type,
    iso_time,
)
from tests.fakes.discord_rest import RestApi, _normalized, answer_flags, route_matches

T = TypeVar("T")
_MENTION = re.compile(r"<@!?(\d+)>")


@dataclass
class _Injection:
    method: str
    route: str
    times: int
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


class FakeDiscord(InteractionBuilder):
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

    # --- used by the REST handlers ---------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _filesize_limit(self, channel: FakeChannel) -> int:
        guild = self.guilds.get(channel.guild_id or 0)
        return guild.filesize_limit if guild else FILESIZE_LIMIT_BY_TIER[0]

    def _make_attachment(self, channel_id: int, filename: str, data: bytes,
                         description: str | None, content_type: str | None = None
                         ) -> FakeAttachment:
        if not self.base_url:
            raise RuntimeError("FakeDiscord.start() first: attachment URLs need the port")
        attachment_id = self.ids.next()
        quoted = urllib.parse.quote(filename)
        url = (f"{self.base_url}/attachments/{channel_id}/{attachment_id}/{quoted}"
               f"?ex={attachment_id % 2**32:08x}&is={attachment_id % 2**31:08x}&hm=fake")
        return FakeAttachment(attachment_id, filename, data,
                              content_type or guess_content_type(filename), url, description)

    def _attachment_maker(self, channel: FakeChannel) -> NewAttachment:
        return lambda name, data, desc: self._make_attachment(channel.id, name, data, desc)

    def _mentions(self, content: str, extra: Iterable[FakeUser] = ()) -> list[FakeUser]:
        found = [self.users[int(i)] for i in _MENTION.findall(content) if int(i) in self.users]
        unique = {u.id: u for u in [*found, *extra]}
        return list(unique.values())

    async def _create_message(self, channel: FakeChannel, payload: dict[str, Any],
                              uploads: dict[int, tuple[str, bytes]], *, via: str,
                              interaction: SentInteraction | None = None) -> FakeMessage:
        draft = compose(None, payload, uploads, self._attachment_maker(channel))
        validate(draft, filesize_limit=self._filesize_limit(channel))
        message = FakeMessage(self.ids.next(), channel.id, channel.guild_id, self.bot_user,
                              draft.content, draft.embeds, draft.components, draft.attachments,
                              draft.flags)
        message.mentions = self._mentions(draft.content)
        if payload.get("message_reference"):
            message.message_reference = payload["message_reference"]
        if interaction is not None:
            message.webhook_id = self.app_id
            message.interaction_metadata = {
                "id": str(interaction.id), "type": interaction.type,
                "user": self._interaction_user(interaction).payload(),
                "authorizing_integration_owners": interaction.payload.get(
                    "authorizing_integration_owners", {})}
        for made in draft.new_uploads:
            self.attachments[made.id] = made
        await self._store(message, channel, via=via)
        return message

    async def _store(self, message: FakeMessage, channel: FakeChannel, *, via: str) -> None:
        if channel.is_thread and channel.archived and not channel.locked:
            channel.archived = False  # sending in an archived thread unarchives it
        message.record(via)
        self.messages[message.id] = message
        channel.last_message_id = message.id
        channel.message_count += 1 if channel.is_thread else 0
        if not message.ephemeral:
            await self.gateway.dispatch("MESSAGE_CREATE", self.gateway_message(message),
                                        message=message)
        self._notify()

    async def _edit_message(self, message: FakeMessage, payload: dict[str, Any],
                            uploads: dict[int, tuple[str, bytes]], *, via: str,
                            clear_loading: bool = False) -> None:
        channel = self.channels[message.channel_id]
        draft = compose(message, payload, uploads, self._attachment_maker(channel))
        if clear_loading:
            draft.flags &= ~LOADING
        validate(draft, filesize_limit=self._filesize_limit(channel))
        for made in draft.new_uploads:
            self.attachments[made.id] = made
        message.content, message.embeds, message.components = (
            draft.content, draft.embeds, draft.components)
        message.attachments, message.flags, message.edited = draft.attachments, draft.flags, True
        message.mentions = self._mentions(draft.content)
        message.record(via)
        if not message.ephemeral:
            await self.gateway.dispatch("MESSAGE_UPDATE", self.gateway_message(message),
                                        message=message)
        self._notify()

    async def _delete_message(self, message: FakeMessage) -> None:
        message.deleted = True
        data = {"id": str(message.id), "channel_id": str(message.channel_id)}
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
        if not message.ephemeral:
            await self.gateway.dispatch("MESSAGE_DELETE", data)
        self._notify()

    async def _answer_interaction(self, interaction: SentInteraction, kind: int,
                                  data: dict[str, Any],
                                  uploads: dict[int, tuple[str, bytes]]) -> FakeMessage | None:
        """Apply a callback (4 message, 5 defer, 6 deferred update, 7 update, 8, 9 modal)."""
        loop = asyncio.get_running_loop()
        interaction.callbacks.append(InteractionCallback(
            interaction.id, interaction.token, kind, data or None,
            [uploads[i] for i in sorted(uploads)], loop.time() - interaction.sent_at))
        channel = self.channels[interaction.channel_id]
        message: FakeMessage | None = None
        if kind in (4, 5):
            payload = data if kind == 4 else {"flags": answer_flags(data, deferred=True)}
            if kind == 4 and int(data.get("flags") or 0) & EPHEMERAL:
                payload = {**data, "flags": EPHEMERAL}
            try:
                message = await self._create_message(channel, payload, uploads,
                                                     via="interaction", interaction=interaction)
            except DiscordError:
                interaction.callbacks.pop()  # Discord does not acknowledge a refused answer
                raise
            interaction.original_message_id = message.id
        elif kind in (6, 7) and interaction.message_id is not None:
            interaction.original_message_id = interaction.message_id
            message = self.messages[interaction.message_id]
            if kind == 7:
                await self._edit_message(message, data, uploads, via="interaction")
            else:
                message = None
        self._notify()
        return message

    def _interaction_user(self, interaction: SentInteraction) -> FakeUser:
        raw = interaction.payload.get("member", {}).get("user") or interaction.payload["user"]
        return self.users[int(raw["id"])]

    # --- payloads ---------------------------------------------------------------------------------

    def gateway_message(self, message: FakeMessage) -> dict[str, Any]:
        """A message as MESSAGE_CREATE / MESSAGE_UPDATE carry it (guild_id and member added)."""
        data = message.payload(application_id=self.app_id)
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
            if message.webhook_id is None:
                member = self.member_payload(message.guild_id, message.author)
                member.pop("user")
                data["member"] = member
        return data

    def application_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.app_id), "name": self.bot_user.username, "icon": None,
            "description": "Easel test application", "summary": "", "type": None,
            "bot_public": True, "bot_require_code_grant": False, "verify_key": "00" * 32,
            "owner": self.user.payload(), "team": None, "flags": self.application_flags,
            "bot": self.bot_user.payload(), "redirect_uris": [], "tags": [],
            "interactions_endpoint_url": None, "approximate_guild_count": len(self.guilds),
            "integration_types_config": {"0": {}},
        }

    def member_payload(self, guild_id: int, user: FakeUser) -> dict[str, Any]:
        guild = self.guilds[guild_id]
        roles = [str(guild.bot_role_id)] if user.id == self.bot_user.id else []
        return {"user": user.payload(), "roles": roles, "joined_at": iso_time(guild.id),
                "deaf": False, "mute": False, "flags": 0, "pending": False, "nick": None,
                "avatar": None, "banner": None, "premium_since": None,
                "communication_disabled_until": None}

    def member_payloads(self, guild_id: int) -> list[dict[str, Any]]:
        guild = self.guilds[guild_id]
        return [self.member_payload(guild_id, self.users[u]) for u in guild.member_ids]

    def guild_payload(self, guild_id: int) -> dict[str, Any]:
        """The guild object (GET /guilds/{id}); premium_tier decides the upload limit."""
        guild = self.guilds[guild_id]

        def role(role_id: int, name: str, permissions: int, managed: bool) -> dict[str, Any]:
            made = {"id": str(role_id), "name": name, "color": 0, "colors": {
                "primary_color": 0, "secondary_color": None, "tertiary_color": None},
                "hoist": False, "icon": None, "unicode_emoji": None, "position": int(managed),
                "permissions": str(permissions), "managed": managed, "mentionable": False,
                "flags": 0}
            if managed:
                made["tags"] = {"bot_id": str(self.bot_user.id)}
            return made

        return {
            "id": str(guild.id), "name": guild.name, "icon": None, "splash": None,
            "discovery_splash": None, "banner": None, "description": None,
            "owner_id": str(guild.owner_id), "afk_channel_id": None, "afk_timeout": 300,
            "verification_level": 0, "default_message_notifications": 0,
            "explicit_content_filter": 0, "features": [], "mfa_level": 0, "nsfw_level": 0,
            "roles": [role(guild.id, "@everyone", EVERYONE_PERMISSIONS, False),
                      role(guild.bot_role_id, self.bot_user.username, self.bot_permissions,
                           True)],
            "emojis": [], "stickers": [], "application_id": None, "system_channel_id": None,
            "system_channel_flags": 0, "rules_channel_id": None, "vanity_url_code": None,
            "premium_tier": guild.premium_tier, "premium_subscription_count": 0,
            "preferred_locale": "en-US", "public_updates_channel_id": None,
            "max_members": 500_000, "premium_progress_bar_enabled": False,
            "safety_alerts_channel_id": None, "max_video_channel_users": 25,
            "approximate_member_count": len(guild.member_ids),
        }

    def guild_create_payload(self, guild_id: int, *, with_members: bool) -> dict[str, Any]:
        """GUILD_CREATE: the guild plus channels, active threads and members."""
        guild = self.guilds[guild_id]
        channels = [self.channels[c] for c in guild.channel_ids]
        bot_member = self.member_payload(guild_id, self.bot_user)
        return {
            **self.guild_payload(guild_id), "joined_at": iso_time(guild.id), "large": False,
            "unavailable": False, "member_count": len(guild.member_ids), "lazy": True,
            "voice_states": [], "presences": [], "stage_instances": [],
            "guild_scheduled_events": [], "soundboard_sounds": [], "embedded_activities": [],
            "members": self.member_payloads(guild_id) if with_members else [bot_member],
            "channels": [c.payload() for c in channels if not c.is_thread],
            "threads": [c.payload(bot_id=self.bot_user.id) for c in channels
                        if c.is_thread and not c.archived],
        }
