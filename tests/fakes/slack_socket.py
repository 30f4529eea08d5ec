"""Socket Mode for the fake Slack: the websocket `apps.connections.open` points to.

Slack's protocol: on connect the server sends `{"type": "hello", ...}`; each delivery
is an envelope `{"envelope_id", "type": "events_api" | "slash_commands" |
"interactive", "payload", "accepts_response_payload", "retry_attempt",
"retry_reason"}` that the app acknowledges by sending back `{"envelope_id", "payload"?}`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web


@dataclass(frozen=True)
class SocketAck:
    """The app's acknowledgement of one envelope."""

    envelope_id: str
    payload: dict[str, Any] | None
    elapsed_s: float


class SocketModeHub:
    """Accepts Socket Mode connections and sends envelopes over the newest one."""

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self.connections: list[web.WebSocketResponse] = []
        self.connected = asyncio.Event()
        self.connect_count = 0
        self.envelopes: list[dict[str, Any]] = []  # everything sent, in order
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._next = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections.append(ws)
        self.connect_count += 1
        await ws.send_json({
            "type": "hello", "num_connections": len(self.connections),
            "debug_info": {"host": "fake-slack", "approximate_connection_time": 3600},
            "connection_info": {"app_id": self.app_id}})
        self.connected.set()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_ack(json.loads(msg.data))
        finally:
            self.connections.remove(ws)
            if not self.connections:
                self.connected.clear()
        return ws

    def _on_ack(self, ack: dict[str, Any]) -> None:
        future = self._pending.pop(str(ack.get("envelope_id")), None)
        if future is not None and not future.done():
            future.set_result(ack)

    async def wait_connected(self, timeout_s: float = 5.0) -> None:
        await asyncio.wait_for(self.connected.wait(), timeout_s)

    async def send(self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0,
                   retry_reason: str = "", timeout_s: float = 5.0) -> SocketAck:
        """Send one envelope and wait for the app's ack (TimeoutError if none comes)."""
        await self.wait_connected(timeout_s)
        self._next += 1
        envelope_id = f"fake-envelope-{self._next:06d}"
        envelope = {"envelope_id": envelope_id, "type": kind, "payload": payload,
                    "accepts_response_payload": kind != "events_api"}
        if kind == "events_api":
            envelope.update({"retry_attempt": retry_attempt, "retry_reason": retry_reason})
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[envelope_id] = future
        self.envelopes.append(envelope)
        started = time.perf_counter()
        await self.connections[-1].send_json(envelope)
        try:
            ack = await asyncio.wait_for(future, timeout_s)
        finally:
            self._pending.pop(envelope_id, None)
        return SocketAck(envelope_id, ack.get("payload"), time.perf_counter() - started)

    async def disconnect_all(self, *, reason: str | None = None) -> None:
        """Close every connection (sending Slack's `disconnect` message first if `reason`)."""
        for ws in list(self.connections):
            if reason:
                await ws.send_json({"type": "disconnect", "reason": reason,
                                    "debug_info": {"host": "fake-slack"}})
            await ws.close()
