"""The fake Discord's REST API (v10) and CDN, as aiohttp.web routes.

Each handler changes FakeDiscord's state and answers with the JSON Discord would. A middleware
records every request, answers injected failures (429 with `Via` and rate-limit headers, or any
status), checks the bot token, and turns DiscordError into Discord's error body.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.discord_history import history_limit, history_page
from tests.fakes.discord_limits import PAYLOAD, UPLOADS, DiscordError, json_response
from tests.fakes.discord_models import (
    CREATE_PUBLIC_THREADS,
    PUBLIC_THREAD,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    FakeChannel,
    FakeMessage,
    RecordedRequest,
)
from tests.fakes.discord_webhooks import WebhookRoutes

if TYPE_CHECKING:
    from tests.fakes.discord_server import FakeDiscord

API_PREFIX = "/api/v10"
# Routes called with an interaction token instead of the bot token.
_TOKENLESS = ("/webhooks/", "/interactions/")
_SUCCESS_RATE_HEADERS = {"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "49",
                         "X-RateLimit-Reset-After": "1.0"}


def _normalized(route: str) -> str:
    """'/channels/{channel_id}/messages' -> '/channels/{}/messages' (names do not matter)."""
    parts = route.split("/")
    return "/".join("{}" if p.startswith("{") and p.endswith("}") else p for p in parts)


def route_matches(pattern: str, route: str, path: str) -> bool:
    """Whether a pattern ('/channels/{id}/messages', '/webhooks/{a}/{t}/messages/@original'
    or a concrete path) names a request with this route template and path."""
    wanted = _normalized(pattern)
    if wanted in (_normalized(route), path):
        return True
    pattern_parts, path_parts = wanted.split("/"), path.split("/")
    return len(pattern_parts) == len(path_parts) and all(
        p in ("{}", q) for p, q in zip(pattern_parts, path_parts, strict=True))


class RestApi(WebhookRoutes):
    """Route handlers bound to one FakeDiscord."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake

    def routes(self) -> list[web.RouteDef]:
        p = API_PREFIX
        cmd = p + "/applications/{app_id}"
        hook = p + "/webhooks/{app_id}/{token}"
        ch = p + "/channels/{channel_id}"
        return [
            web.get(p + "/users/@me", self.get_me),
            web.get(p + "/users/{user_id}", self.get_user),
            web.get(p + "/oauth2/applications/@me", self.get_application),
            web.get(p + "/applications/@me", self.get_application),
            web.get(p + "/gateway", self.get_gateway),
            web.get(p + "/gateway/bot", self.get_gateway_bot),
            web.get(cmd + "/commands", self.get_commands),
            web.put(cmd + "/commands", self.put_commands),
            web.post(cmd + "/commands", self.post_command),
            web.get(cmd + "/guilds/{guild_id}/commands", self.get_commands),
            web.put(cmd + "/guilds/{guild_id}/commands", self.put_commands),
            web.post(cmd + "/guilds/{guild_id}/commands", self.post_command),
            web.post(p + "/interactions/{interaction_id}/{token}/callback", self.callback),
            web.post(hook, self.post_followup),
            web.get(hook + "/messages/{message_id}", self.get_webhook_message),
            web.patch(hook + "/messages/{message_id}", self.edit_webhook_message),
            web.delete(hook + "/messages/{message_id}", self.delete_webhook_message),
            web.get(ch, self.get_channel),
            web.get(ch + "/messages", self.get_messages),
            web.post(ch + "/messages", self.post_message),
            web.get(ch + "/messages/{message_id}", self.get_message),
            web.patch(ch + "/messages/{message_id}", self.edit_message),
            web.delete(ch + "/messages/{message_id}", self.delete_message),
            web.post(ch + "/messages/{message_id}/threads", self.thread_from_message),
            web.post(ch + "/threads", self.thread_without_message),
            web.post(ch + "/typing", self.no_content),
            web.put(ch + "/messages/{message_id}/reactions/{emoji}/@me", self.react),
            web.get(p + "/guilds/{guild_id}", self.get_guild),
            web.get(p + "/guilds/{guild_id}/channels", self.get_guild_channels),
            web.get(p + "/guilds/{guild_id}/members/{user_id}", self.get_member),
            web.get("/attachments/{channel_id}/{attachment_id}/{filename}", self.cdn),
            web.route("*", p + "/{tail:.*}", self.unknown_route),
        ]

    # --- middleware ---------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX):
            return await handler(request)  # type: ignore[no-any-return]
        payload, uploads = await self._read_body(request)
        request[PAYLOAD], request[UPLOADS] = payload, uploads
        resource = request.match_info.route.resource
        route = resource.canonical[len(API_PREFIX):] if resource else request.path
        path = request.path[len(API_PREFIX):]
        record = RecordedRequest(request.method, path, route, dict(request.query), payload,
                                 [uploads[i] for i in sorted(uploads)],
                                 request.headers.get("Authorization"))
        self.fake.requests.append(record)
        response: web.StreamResponse | None = self.fake._take_injected(
            request.method, route, path)
        if response is None:
            try:
                if not any(path.startswith(t) for t in _TOKENLESS):
                    if request.headers.get("Authorization") != f"Bot {self.fake.token}":
                        raise DiscordError(401, 0, "401: Unauthorized")
                response = await handler(request)
            except DiscordError as error:
                response = error.response()
            for key, value in _SUCCESS_RATE_HEADERS.items():
                response.headers.setdefault(key, value)
            response.headers.setdefault("X-RateLimit-Bucket", f"fake-{_normalized(route)}")
        record.status = response.status
        self.fake._notify()
        return response

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, dict[int, tuple[str, bytes]]]:
        uploads: dict[int, tuple[str, bytes]] = {}
        if request.content_type.startswith("multipart/"):
            payload: Any = {}
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                name = getattr(part, "name", None) or ""
                if name == "payload_json":
                    payload = json.loads(await part.text())  # type: ignore[union-attr]
                elif name.startswith("files[") and name.endswith("]"):
                    data = bytes(await part.read(decode=False))  # type: ignore[union-attr]
                    uploads[int(name[6:-1])] = (getattr(part, "filename", None) or name, data)
            return payload, uploads
        if request.can_read_body:
            raw = await request.read()
            return (json.loads(raw) if raw else None), uploads
        return None, uploads

    # --- login, gateway, application ------------------------------------------------------

    async def get_me(self, request: web.Request) -> web.Response:
        return json_response({**self.fake.bot_user.payload(), "verified": True,
                              "mfa_enabled": False})

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.fake.users.get(int(request.match_info["user_id"]))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return json_response(user.payload())

    async def get_application(self, request: web.Request) -> web.Response:
        return json_response(self.fake.application_payload())

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.fake.gateway_url})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        return json_response({"url": self.fake.gateway_url, "shards": 1, "session_start_limit": {
            "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}})

    def _scope(self, request: web.Request) -> int | None:
        if int(request.match_info["app_id"]) != self.fake.app_id:
            raise DiscordError(403, 50001, "Missing Access")
        guild = request.match_info.get("guild_id")
        return int(guild) if guild else None

    async def get_commands(self, request: web.Request) -> web.Response:
        return json_response(self.fake.commands.get(self._scope(request), []))

    async def put_commands(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        self.fake.commands[scope] = [self._command(c, scope) for c in request[PAYLOAD] or []]
        self.fake.command_syncs.append((scope, request[PAYLOAD]))
        return json_response(self.fake.commands[scope])

    async def post_command(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        made = self._command(request[PAYLOAD], scope)
        rest = [c for c in self.fake.commands.get(scope, []) if c["name"] != made["name"]]
        self.fake.commands[scope] = [*rest, made]
        return json_response(made, status=201)

    def _command(self, data: dict[str, Any], scope: int | None) -> dict[str, Any]:
        known = {c["name"]: c["id"] for c in self.fake.commands.get(scope, [])}
        made = {"type": 1, "options": [], "default_member_permissions": None, "nsfw": False,
                "dm_permission": True, **data, "id": known.get(data["name"]) or
                str(self.fake.ids.next()), "application_id": str(self.fake.app_id),
                "version": str(self.fake.ids.next())}
        if scope is not None:
            made["guild_id"] = str(scope)
        return made

    # --- channels and messages ------------------------------------------------------------

    def _channel(self, request: web.Request) -> FakeChannel:
        channel = self.fake.channels.get(int(request.match_info["channel_id"]))
        if channel is None:
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel

    def _message(self, request: web.Request) -> FakeMessage:
        channel = self._channel(request)
        message = self.fake.messages.get(int(request.match_info["message_id"]))
        if message is None or message.deleted or message.channel_id != channel.id:
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    def _require(self, permission: int) -> None:
        if not self.fake.bot_permissions & permission:
            raise DiscordError(403, 50013, "Missing Permissions")

    async def get_channel(self, request: web.Request) -> web.Response:
        return json_response(self._channel(request).payload(bot_id=self.fake.bot_user.id))

    async def get_messages(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        limit = history_limit(request.query)
        if not self.fake.bot_permissions & READ_MESSAGE_HISTORY:
            return json_response([])  # Discord shows no messages rather than refusing
        found = [m for m in self.fake.channel_messages(channel.id) if not m.ephemeral]
        return json_response([m.payload() for m in history_page(found, request.query, limit)])

    async def post_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        self._require(SEND_MESSAGES_IN_THREADS if channel.is_thread else SEND_MESSAGES)
        message = await self.fake._create_message(
            channel, request[PAYLOAD] or {}, request[UPLOADS], via="bot")
        return json_response(message.payload())

    async def get_message(self, request: web.Request) -> web.Response:
        return json_response(self._message(request).payload(application_id=self.fake.app_id))

    async def edit_message(self, request: web.Request) -> web.Response:
        message = self._message(request)
        if message.author.id != self.fake.bot_user.id:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        await self.fake._edit_message(message, request[PAYLOAD] or {}, request[UPLOADS],
                                      via="bot")
        return json_response(message.payload(application_id=self.fake.app_id))

    async def delete_message(self, request: web.Request) -> web.Response:
        await self.fake._delete_message(self._message(request))
        return web.Response(status=204)

    async def thread_from_message(self, request: web.Request) -> web.Response:
        message = self._message(request)
        self._require(CREATE_PUBLIC_THREADS)
        if message.thread_id is not None:
            raise DiscordError(400, 160004, "A thread has already been created for this message")
        body = request[PAYLOAD] or {}
        thread = await self.fake.create_thread(
            message.channel_id, body.get("name") or "thread", message=message,
            owner=self.fake.bot_user, auto_archive_duration=body.get("auto_archive_duration"))
        return json_response(thread.payload(bot_id=self.fake.bot_user.id), status=201)

    async def thread_without_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        self._require(CREATE_PUBLIC_THREADS)
        body = request[PAYLOAD] or {}
        thread = await self.fake.create_thread(
            channel.id, body.get("name") or "thread", owner=self.fake.bot_user,
            type=int(body.get("type") or PUBLIC_THREAD),
            auto_archive_duration=body.get("auto_archive_duration"))
        return json_response(thread.payload(bot_id=self.fake.bot_user.id), status=201)

    async def react(self, request: web.Request) -> web.Response:
        message = self._message(request)
        self.fake.reactions.append((message.id, request.match_info["emoji"]))
        return web.Response(status=204)

    async def no_content(self, request: web.Request) -> web.Response:
        self._channel(request)
        return web.Response(status=204)

    # --- guilds, CDN, fallthrough ---------------------------------------------------------

    async def get_guild(self, request: web.Request) -> web.Response:
        guild_id = int(request.match_info["guild_id"])
        if guild_id not in self.fake.guilds:
            raise DiscordError(404, 10004, "Unknown Guild")
        return json_response(self.fake.guild_payload(guild_id))

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        guild = self.fake.guilds.get(int(request.match_info["guild_id"]))
        if guild is None:
            raise DiscordError(404, 10004, "Unknown Guild")
        return json_response([self.fake.channels[c].payload() for c in guild.channel_ids
                              if not self.fake.channels[c].is_thread])

    async def get_member(self, request: web.Request) -> web.Response:
        guild_id, user_id = int(request.match_info["guild_id"]), request.match_info["user_id"]
        for member in self.fake.member_payloads(guild_id):
            if member["user"]["id"] == user_id:
                return json_response(member)
        raise DiscordError(404, 10007, "Unknown Member")

    async def cdn(self, request: web.Request) -> web.Response:
        found = self.fake.attachments.get(int(request.match_info["attachment_id"]))
        if found is None or found.filename != request.match_info["filename"]:
            return web.Response(status=404, text="Not Found")
        self.fake.cdn_downloads.append(found.id)
        return web.Response(body=found.data, headers={"Content-Type": found.content_type})

    async def unknown_route(self, request: web.Request) -> web.Response:
        self.fake.unhandled.append(f"{request.method} {request.path[len(API_PREFIX):]}")
        raise DiscordError(404, 0, "404: Not Found")


