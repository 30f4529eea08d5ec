"""The fake Discord gateway: a websocket speaking Discord's gateway protocol (v10, JSON).

Plain JSON text frames, no compression (discord.py asks for zlib-stream but parses text frames
as they come). Supports HELLO, IDENTIFY -> READY + GUILD_CREATE, heartbeats, RESUME (replays
missed dispatches), RECONNECT, INVALID_SESSION, REQUEST_GUILD_MEMBERS, and intent filtering:
guild messages need GUILD_MESSAGES, and without MESSAGE_CONTENT their text, embeds,
attachments and components are empty unless the bot is mentioned or wrote them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.fakes.discord_models import FakeMessage

if TYPE_CHECKING:
    from tests.fakes.discord_server import FakeDiscord

# Opcodes.
DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, RESUME, RECONNECT = 0, 1, 2, 3, 6, 7
REQUEST_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 8, 9, 10, 11
# Intents.
GUILDS, GUILD_MEMBERS, GUILD_MESSAGES = 1 << 0, 1 << 1, 1 << 9
DIRECT_MESSAGES, MESSAGE_CONTENT = 1 << 12, 1 << 15
_GUILD_EVENTS = ("GUILD_CREATE", "THREAD_CREATE", "THREAD_UPDATE", "THREAD_DELETE",
                 "CHANNEL_CREATE", "CHANNEL_UPDATE", "CHANNEL_DELETE")
_MESSAGE_EVENTS = ("MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE")


@dataclass
class GatewaySession:
    """One identified session; survives a dropped connection so that it can be resumed."""

    session_id: str
    intents: int
    identify: dict[str, Any]
    sequence: int = 0
    backlog: list[dict[str, Any]] = field(default_factory=list)
    ws: web.WebSocketResponse | None = None
    resumed_count: int = 0
    heartbeats: int = 0
    presence_updates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def connected(self) -> bool:
        return self.ws is not None and not self.ws.closed

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Dispatches sent to this session (`{"t", "s", "d"}`), optionally of one type."""
        return [f for f in self.backlog if name is None or f["t"] == name]


class Gateway:
    """Websocket handler plus dispatch to every identified session."""

    def __init__(self, fake: FakeDiscord, heartbeat_interval_ms: int) -> None:
        self.fake = fake
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.sessions: list[GatewaySession] = []
        self.connections: list[web.WebSocketResponse] = []
        self.heartbeats = 0  # on every connection, including before IDENTIFY
        self._session_count = 0

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.connections.append(ws)
        await self._send(ws, {"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms},
                              "s": None, "t": None})
        session: GatewaySession | None = None
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            session = await self._on_frame(ws, session, frame) or session
        if session is not None and session.ws is ws:
            session.ws = None
        self.fake._notify()
        return ws

    async def _on_frame(self, ws: web.WebSocketResponse, session: GatewaySession | None,
                        frame: dict[str, Any]) -> GatewaySession | None:
        op: Any = frame.get("op")
        data: Any = frame.get("d")
        if op == HEARTBEAT:
            self.heartbeats += 1
            if session is not None:
                session.heartbeats += 1
            await self._send(ws, {"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == IDENTIFY:
            return await self._identify(ws, data)
        elif op == RESUME:
            return await self._resume(ws, data)
        elif op == PRESENCE and session is not None:
            session.presence_updates.append(data)
        elif op == REQUEST_MEMBERS and session is not None:
            await self._send_member_chunk(session, data)
        return None

    async def _identify(self, ws: web.WebSocketResponse,
                        data: dict[str, Any]) -> GatewaySession | None:
        if data.get("token") != self.fake.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        self._session_count += 1
        session = GatewaySession(f"fake-session-{self._session_count}",
                                 int(data.get("intents", 0)), data, ws=ws)
        self.sessions.append(session)
        fake = self.fake
        ready: dict[str, Any] = {
            "v": 10, "user": {**fake.bot_user.payload(), "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(g), "unavailable": True} for g in fake.guilds],
            "session_id": session.session_id, "session_type": "normal",
            "resume_gateway_url": fake.gateway_url,
            "application": {"id": str(fake.app_id), "flags": fake.application_flags},
            "private_channels": [], "relationships": [], "presences": [],
            "guild_join_requests": [], "geo_ordered_rtc_regions": [], "_trace": ["fake-discord"],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        await self._dispatch_to(session, "READY", ready)
        for guild_id in fake.guilds:
            await self._dispatch_to(session, "GUILD_CREATE", fake.guild_create_payload(
                guild_id, with_members=bool(session.intents & GUILD_MEMBERS)))
        fake._notify()
        return session

    async def _resume(self, ws: web.WebSocketResponse,
                      data: dict[str, Any]) -> GatewaySession | None:
        found = [s for s in self.sessions if s.session_id == data.get("session_id")]
        if not found or data.get("token") != self.fake.token:
            await self._send(ws, {"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return None
        session = found[0]
        session.ws = ws
        session.resumed_count += 1
        last_seen = int(data.get("seq") or 0)
        for frame in session.backlog:
            if frame["s"] > last_seen:
                await self._send(ws, frame)
        await self._dispatch_to(session, "RESUMED", {"_trace": ["fake-discord"]})
        self.fake._notify()
        return session

    async def _send_member_chunk(self, session: GatewaySession, data: dict[str, Any]) -> None:
        guild_id = int(data["guild_id"])
        members = self.fake.member_payloads(guild_id)
        query = data.get("query") or ""
        wanted = {str(u) for u in data.get("user_ids") or []}
        members = [m for m in members if m["user"]["username"].startswith(query)
                   and (not wanted or m["user"]["id"] in wanted)]
        chunk: dict[str, Any] = {"guild_id": str(guild_id), "members": members,
                                 "chunk_index": 0, "chunk_count": 1, "not_found": []}
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        await self._dispatch_to(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def dispatch(self, event: str, data: dict[str, Any], *,
                       message: FakeMessage | None = None) -> None:
        """Send a dispatch to every session whose intents let it see the event."""
        for session in self.sessions:
            payload = self._filtered(session, event, data, message)
            if payload is not None:
                await self._dispatch_to(session, event, payload)

    def _filtered(self, session: GatewaySession, event: str, data: dict[str, Any],
                  message: FakeMessage | None) -> dict[str, Any] | None:
        if event in _GUILD_EVENTS and not session.intents & GUILDS:
            return None
        if event not in _MESSAGE_EVENTS:
            return data
        in_guild = "guild_id" in data
        if not session.intents & (GUILD_MESSAGES if in_guild else DIRECT_MESSAGES):
            return None
        bot = self.fake.bot_user
        may_read = (not in_guild or session.intents & MESSAGE_CONTENT or message is None
                    or message.author.id == bot.id or bot in message.mentions)
        if may_read:
            return data
        return {**data, "content": "", "embeds": [], "attachments": [], "components": []}

    async def _dispatch_to(self, session: GatewaySession, event: str,
                           data: dict[str, Any]) -> None:
        session.sequence += 1
        frame = {"op": DISPATCH, "t": event, "s": session.sequence, "d": data}
        session.backlog.append(frame)
        if session.ws is not None and not session.ws.closed:
            await self._send(session.ws, frame)

    async def send_op(self, op: int, data: Any) -> None:
        """Send a raw opcode (e.g. RECONNECT, INVALID_SESSION) to every live session."""
        for session in self.sessions:
            if session.ws is not None and not session.ws.closed:
                await self._send(session.ws, {"op": op, "d": data, "s": None, "t": None})

    async def drop_connections(self, code: int = 4000) -> None:
        """Close every websocket from the server side, as a network failure would."""
        for ws in list(self.connections):
            if not ws.closed:
                await ws.close(code=code)

    @staticmethod
    async def _send(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        if not ws.closed:
            await ws.send_str(json.dumps(frame))
