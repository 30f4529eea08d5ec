"""A fake Slack speaking the Web API wire format, for the real slack_sdk / slack_bolt.

Point `AsyncWebClient(token=fake.bot_token, base_url=await fake.start())` at it.
Routes on 127.0.0.1 (random port):
- GET|POST /api/{method}      Web API (query, form or JSON fields; Bearer token checked)
- POST /upload/v1/{file_id}   upload URL from files.getUploadURLExternal (raw bytes or multipart)
- GET /files-pri/{team}-{file}/[download/]{name}  url_private; without the bot token Slack
  redirects to a sign-in HTML page (status 200, text/html), and so does this fake
- POST /response/{n}          response_url handed out with commands and actions
- GET /socket-mode/link       Socket Mode websocket (URL from apps.connections.open)

What a person would see is in `fake.thread_messages(channel, thread_ts)`; the app is
driven with `deliver_event` / `deliver_command` / `deliver_action` (HTTP, signed) or
`socket_event` / `socket_command` / `socket_action` (Socket Mode).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from tests.fakes import slack_payloads as payloads
from tests.fakes.slack_payloads import SlackIdentity
from tests.fakes.slack_routes import SlackRoutes
from tests.fakes.slack_socket import SocketAck, SocketModeHub
from tests.fakes.slack_state import (
    EphemeralMessage,
    FakeChannel,
    FakeFile,
    FakeMessage,
    FakeUser,
    QueuedReply,
    RecordedCall,
    ResponseContext,
    ResponseUrlPost,
)
from tests.fakes.slack_webapi import SlackWorkspace

BOT_TOKEN = "xoxb-1111-2222-fakebottokenSECRET"
APP_TOKEN = "xapp-1-A0FAKEAPP-3333-fakeapptokenSECRET"
SIGNING_SECRET = "fake-signing-secret-0123456789abcdef"
DEFAULT_USER = "U0ALICE"
DEFAULT_CHANNEL = "C0GENERAL"

@dataclass(frozen=True)
class Delivery:
    """What the app answered to one delivery, and how long it took."""

    status: int
    body: str
    elapsed_s: float
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class FakeSlack:
    """A Slack workspace with one bot, served over HTTP on 127.0.0.1."""

    def __init__(self, *, bot_token: str = BOT_TOKEN, app_token: str = APP_TOKEN,
                 signing_secret: str = SIGNING_SECRET, identity: SlackIdentity | None = None):
        self.bot_token, self.app_token, self.signing_secret = bot_token, app_token, signing_secret
        self.ident = identity or SlackIdentity()
        self.workspace = SlackWorkspace(self.ident)
        self.socket = SocketModeHub(self.ident.api_app_id)
        self.requests: list[RecordedCall] = []
        self.downloads: list[tuple[str, bool]] = []  # (file_id, was the bot token sent)
        self.response_posts: list[ResponseUrlPost] = []
        self.deliveries: list[dict[str, Any]] = []  # bodies sent to the app, in order
        self._queued: dict[str, list[QueuedReply]] = {}
        self.response_contexts: dict[str, ResponseContext] = {}  # response_url n -> where
        self._event_n = 0
        self._runner: web.AppRunner | None = None
        self.root_url = ""

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> str:
        """Listen on a random port; returns the Web API base URL (".../api/")."""
        app = SlackRoutes(self).application()
        self._runner = web.AppRunner(app, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.root_url = self.workspace.root_url = f"http://127.0.0.1:{port}"
        return self.api_url

    async def stop(self) -> None:
        await self.socket.disconnect_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_url(self) -> str:
        return f"{self.root_url}/api/"

    # --- what a person sees ----------------------------------------------------

    @property
    def messages(self) -> list[FakeMessage]:
        return [m for m in self.workspace.messages if not m.deleted]

    @property
    def files(self) -> dict[str, FakeFile]:
        return self.workspace.files

    @property
    def ephemeral(self) -> list[EphemeralMessage]:
        return self.workspace.ephemeral

    @property
    def home_views(self) -> dict[str, dict[str, Any]]:
        return self.workspace.home_views

    def thread_messages(self, channel: str, thread_ts: str) -> list[FakeMessage]:
        """The thread's root and replies, oldest first (deleted ones left out)."""
        return self.workspace.thread(channel, thread_ts)

    def channel_messages(self, channel: str) -> list[FakeMessage]:
        """Top-level messages of the channel (thread replies left out)."""
        return [m for m in self.messages
                if m.channel == channel and (m.thread_ts is None or m.thread_ts == m.ts)]

    def message(self, channel: str, ts: str) -> FakeMessage | None:
        return self.workspace.find_message(channel, ts)

    def calls(self, method: str) -> list[RecordedCall]:
        return [c for c in self.requests if c.method == method]

    # --- setting the scene -----------------------------------------------------

    def add_channel(self, channel_id: str, name: str = "", *, is_private: bool = False,
                    is_member: bool = True) -> FakeChannel:
        channel = FakeChannel(channel_id, name or channel_id.lower(),
                              is_im=channel_id.startswith("D"), is_private=is_private,
                              is_member=is_member)
        self.workspace.channels[channel_id] = channel
        return channel

    def add_user(self, user_id: str, name: str, real_name: str = "") -> FakeUser:
        self.workspace.users[user_id] = FakeUser(user_id, name, real_name)
        return self.workspace.users[user_id]

    def rate_limit(self, method: str, times: int = 1, retry_after_s: int = 0) -> None:
        """The next `times` calls of `method` ("upload" = the upload URL) answer HTTP 429.

        slack_sdk's retry handler reads only the first character of Retry-After
        (`int(value[0])`), so keep `retry_after_s` below 10.
        """
        self._queued.setdefault(method, []).extend(
            QueuedReply("ratelimited", retry_after_s) for _ in range(times))

    def fail_next(self, method: str, error: str, times: int = 1) -> None:
        """The next `times` calls of `method` answer `{"ok": false, "error": error}`."""
        self._queued.setdefault(method, []).extend(QueuedReply(error) for _ in range(times))

    def upload_user_file(self, name: str, data: bytes, *, user: str = DEFAULT_USER) -> FakeFile:
        """A file a person uploaded (bytes behind url_private), to attach to a message event."""
        file = self.workspace.new_file(name, user)
        file.data, file.is_completed = data, True
        return file

    # --- events a person causes ----------------------------------------------------

    def app_mention(self, text: str, *, user: str = DEFAULT_USER, channel: str = DEFAULT_CHANNEL,
                    thread_ts: str | None = None,
                    files: Sequence[FakeFile] = ()) -> dict[str, Any]:
        """Post a person's message mentioning the bot; returns its `app_mention` event."""
        mention = f"<@{self.ident.bot_user_id}>"
        full = text if mention in text else f"{mention} {text}"
        return self._user_post("app_mention", full, user, channel, thread_ts, files, "channel")

    def message_event(self, text: str, *, user: str = DEFAULT_USER,
                      channel: str = DEFAULT_CHANNEL, thread_ts: str | None = None,
                      files: Sequence[FakeFile] = (),
                      channel_type: str = "channel") -> dict[str, Any]:
        """Post a person's message (a reply when `thread_ts`); returns its `message` event."""
        return self._user_post("message", text, user, channel, thread_ts, files, channel_type)

    def im_event(self, text: str, *, user: str = DEFAULT_USER, channel: str | None = None,
                 thread_ts: str | None = None, files: Sequence[FakeFile] = ()) -> dict[str, Any]:
        """A direct message to the bot (`message.im`)."""
        im = channel or f"D{user[1:]}"
        self.workspace.channel(im).im_user = user
        return self._user_post("message", text, user, im, thread_ts, files, "im")

    def _user_post(self, kind: str, text: str, user: str, channel: str, thread_ts: str | None,
                   files: Sequence[FakeFile], channel_type: str) -> dict[str, Any]:
        self.workspace.user(user)
        message = self.workspace.add_message(channel, user, text, thread_ts=thread_ts,
                                             files=list(files),
                                             subtype="file_share" if files else None)
        for file in files:
            file.shares.setdefault("public", {}).setdefault(channel, []).append({"ts": message.ts})
        return self.event_for(message, kind, channel_type)

    def event_for(self, message: FakeMessage, kind: str = "message",
                  channel_type: str | None = None) -> dict[str, Any]:
        """The event Slack sends for a stored message (the bot's own ones carry bot_id)."""
        root = self.workspace.find_message(message.channel, message.thread_ts or "")
        channel = self.workspace.channel(message.channel)
        return payloads.message_event(
            kind=kind, text=message.text, user=message.user, channel=message.channel,
            ts=message.ts, team_id=self.ident.team_id, thread_ts=message.thread_ts,
            files=[f.to_api() for f in message.files],
            channel_type=channel_type or ("im" if channel.is_im else "channel"),
            parent_user_id=root.user if root else None, bot_id=message.bot_id,
            subtype=message.subtype)

    def new_event_id(self) -> str:
        self._event_n += 1
        return f"Ev0FAKE{self._event_n:06d}"

    def event_body(self, event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
        """The Events API envelope for `event` (a fresh event_id unless given)."""
        return payloads.event_envelope(self.ident, event, event_id or self.new_event_id())

    def command_fields(self, command: str = "/imagine", text: str = "", *,
                       user: str = DEFAULT_USER, channel: str = DEFAULT_CHANNEL) -> dict[str, str]:
        """A slash command's fields, with a response_url served by this fake."""
        response_url, trigger_id = self._response_url_for(ResponseContext(channel, user))
        return payloads.command_form(
            self.ident, command=command, text=text, user=user,
            user_name=self.workspace.user(user).name, channel=channel,
            channel_name=self.workspace.channel(channel).name, response_url=response_url,
            trigger_id=trigger_id)

    def action_payload(self, action_id: str, value: str, user: str = DEFAULT_USER,
                       channel: str = DEFAULT_CHANNEL, message_ts: str = "",
                       thread_ts: str | None = None) -> dict[str, Any]:
        """The block_actions payload for clicking `action_id` on the message at `message_ts`.

        The element's type and block_id come from the stored message, so a static_select
        yields `selected_option` with the option whose value is `value`.
        """
        message = self.workspace.find_message(channel, message_ts)
        element = next((el for el in (message.elements() if message else [])
                        if el.get("action_id") == action_id), None)
        thread_ts = thread_ts or (message.thread_ts if message else None)
        response_url, trigger_id = self._response_url_for(
            ResponseContext(channel, user, message_ts, thread_ts))
        return payloads.block_actions_payload(
            self.ident, action=payloads.action_for(element, action_id, value,
                                                   self.workspace.clock.next()),
            user=user, user_name=self.workspace.user(user).name, channel=channel,
            channel_name=self.workspace.channel(channel).name, message_ts=message_ts,
            thread_ts=thread_ts,
            message=message.to_api(self.ident.team_id) if message else None,
            response_url=response_url, trigger_id=trigger_id)

    def _response_url_for(self, context: ResponseContext) -> tuple[str, str]:
        n = str(len(self.response_contexts) + 1)
        self.response_contexts[n] = context
        return f"{self.root_url}/response/{n}", f"{n}.fake.trigger{n}"

    # --- delivery over HTTP (signed) ----------------------------------------------

    async def deliver_event(self, app_url: str, event: dict[str, Any], *,
                            event_id: str | None = None, retry_num: int | None = None,
                            retry_reason: str | None = None, signing_secret: str | None = None,
                            bad_signature: bool = False,
                            timestamp: int | None = None) -> Delivery:
        """POST the event's envelope to the app (with Slack's retry headers when `retry_num`)."""
        body = payloads.json_body(self.event_body(event, event_id))
        headers = {"Content-Type": "application/json"}
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        return await self._post_signed(app_url, body, headers, signing_secret, bad_signature,
                                       timestamp)

    async def deliver_command(self, app_url: str, command: str = "/imagine", text: str = "", *,
                              user: str = DEFAULT_USER, channel: str = DEFAULT_CHANNEL,
                              signing_secret: str | None = None,
                              bad_signature: bool = False) -> Delivery:
        fields = self.command_fields(command, text, user=user, channel=channel)
        return await self._post_signed(
            app_url, payloads.form_body(fields),
            {"Content-Type": "application/x-www-form-urlencoded"}, signing_secret, bad_signature)

    async def deliver_action(self, app_url: str, action_id: str, value: str,
                             user: str = DEFAULT_USER, channel: str = DEFAULT_CHANNEL,
                             message_ts: str = "", thread_ts: str | None = None, *,
                             signing_secret: str | None = None,
                             bad_signature: bool = False) -> Delivery:
        payload = self.action_payload(action_id, value, user, channel, message_ts, thread_ts)
        body = payloads.form_body({"payload": json.dumps(payload)})
        return await self._post_signed(
            app_url, body, {"Content-Type": "application/x-www-form-urlencoded"},
            signing_secret, bad_signature)

    async def _post_signed(self, app_url: str, body: bytes, headers: dict[str, str],
                           signing_secret: str | None, bad_signature: bool,
                           timestamp: int | None = None) -> Delivery:
        # A bare base URL means Bolt's default endpoint.
        url = app_url.rstrip("/") + "/slack/events" if urlsplit(app_url).path in ("", "/") \
            else app_url
        headers = {**headers, **payloads.signed_headers(
            signing_secret or self.signing_secret, body, timestamp=timestamp,
            bad_signature=bad_signature)}
        self.deliveries.append({"url": url, "body": body.decode()})
        started = time.perf_counter()
        async with aiohttp.ClientSession() as session, \
                session.post(url, data=body, headers=headers) as resp:
            text = await resp.text()
        return Delivery(resp.status, text, time.perf_counter() - started, dict(resp.headers))

    # --- delivery over Socket Mode ---------------------------------------------------

    async def socket_event(self, event: dict[str, Any], *, event_id: str | None = None,
                           retry_attempt: int = 0, retry_reason: str = "") -> SocketAck:
        return await self.socket.send("events_api", self.event_body(event, event_id),
                                      retry_attempt=retry_attempt, retry_reason=retry_reason)

    async def socket_command(self, command: str = "/imagine", text: str = "", *,
                             user: str = DEFAULT_USER, channel: str = DEFAULT_CHANNEL) -> SocketAck:
        return await self.socket.send(
            "slash_commands", dict(self.command_fields(command, text, user=user, channel=channel)))

    async def socket_action(self, action_id: str, value: str, user: str = DEFAULT_USER,
                            channel: str = DEFAULT_CHANNEL, message_ts: str = "",
                            thread_ts: str | None = None) -> SocketAck:
        return await self.socket.send("interactive", self.action_payload(
            action_id, value, user, channel, message_ts, thread_ts))

    def pop_queued(self, method: str) -> QueuedReply | None:
        """The next queued 429 / error for `method`, if a test asked for one."""
        queue = self._queued.get(method)
        return queue.pop(0) if queue else None
