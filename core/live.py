"""Live generation events: one LISTEN connection per web server, woken by Postgres.

Migration 0008 makes every recorded stage and every status or stage change NOTIFY
`easel_generation_events` with the generation id, whichever process wrote it. The
feed wakes each subscriber of that id; a subscriber re-reads the rows (the source of
truth) and also re-reads every `POLL_S` on its own, so a lost LISTEN connection only
makes the stream slower, never wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

log = logging.getLogger("easel.live")

CHANNEL = "easel_generation_events"
POLL_S = 2.0
RECONNECT_AFTER_S = 5.0


class GenerationFeed:
    """Subscriptions by generation id, woken by NOTIFY on `CHANNEL`."""

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]] | None) -> None:
        self._connect = connect
        self._conn: asyncpg.Connection | None = None
        self._subscribers: dict[int, set[asyncio.Event]] = {}
        self._last_try = -RECONNECT_AFTER_S
        self._lock = asyncio.Lock()

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def ensure_listening(self) -> None:
        """LISTEN if not already (at most one attempt every RECONNECT_AFTER_S)."""
        if self.listening or self._connect is None:
            return
        async with self._lock:
            loop_now = asyncio.get_running_loop().time()
            if self.listening or loop_now - self._last_try < RECONNECT_AFTER_S:
                return
            self._last_try = loop_now
            try:
                conn = await self._connect()
                await conn.add_listener(CHANNEL, self._on_notify)
            except Exception as exc:  # streams still poll
                log.warning("LISTEN %s unavailable, polling every %.0fs: %s", CHANNEL, POLL_S, exc)
                return
            self._conn = conn
            self._wake_all()  # anything written while we were not listening

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    def subscribe(self, generation_id: int) -> asyncio.Event:
        """An event set whenever the generation may have changed (clear it before reading)."""
        wake = asyncio.Event()
        self._subscribers.setdefault(generation_id, set()).add(wake)
        return wake

    def unsubscribe(self, generation_id: int, wake: asyncio.Event) -> None:
        waiting = self._subscribers.get(generation_id)
        if waiting is not None:
            waiting.discard(wake)
            if not waiting:
                del self._subscribers[generation_id]

    async def wait(self, wake: asyncio.Event) -> bool:
        """Wait for a wake-up or POLL_S; True when woken by a notification."""
        await self.ensure_listening()
        try:
            await asyncio.wait_for(wake.wait(), POLL_S)
        except TimeoutError:
            return False
        return True

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            for wake in self._subscribers.get(int(payload), ()):
                wake.set()

    def _wake_all(self) -> None:
        for waiting in self._subscribers.values():
            for wake in waiting:
                wake.set()
