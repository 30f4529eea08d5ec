"""A small base for scriptable fake HTTP APIs (aiohttp.web on 127.0.0.1, random port).

Each route keeps a queue of scripted `Reply`s; when the queue is empty the fake's
default handler answers. Every request is recorded, so tests assert on what the
real SDK actually sent.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

Handler = Callable[[web.Request, "RecordedRequest"], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a status, a JSON body (or raw text) and headers.

    `delay_s` holds the answer back, to make the client time out.
    """

    status: int = 200
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None
    delay_s: float = 0.0

    def to_response(self) -> web.Response:
        if self.text is not None:
            return web.Response(status=self.status, text=self.text, headers=self.headers)
        return web.Response(
            status=self.status,
            body=json.dumps(self.json if self.json is not None else {}).encode(),
            headers={"Content-Type": "application/json", **self.headers},
        )


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request."""

    field_name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    """What the fake received: route key, path, headers and the decoded body."""

    route: str
    method: str
    path: str
    headers: dict[str, str]
    json: Any = None
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)
    match: dict[str, str] = field(default_factory=dict)

    def field(self, name: str) -> str | None:
        """The first multipart text field called `name`, if any."""
        values = self.fields.get(name)
        return values[0] if values else None


class ScriptedServer:
    """Base class: subclasses call `add_route` in `__init__` and write default handlers."""

    def __init__(self) -> None:
        self._app = web.Application(client_max_size=64 * 1024 * 1024)
        self._runner: web.AppRunner | None = None
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self.requests: list[RecordedRequest] = []
        self.base_url = ""
        self._stopping = asyncio.Event()

    def add_route(self, method: str, path: str, route: str, default: Handler) -> None:
        """Serve `method path`; scripted replies for `route` take precedence over `default`."""

        async def handle(request: web.Request) -> web.StreamResponse:
            recorded = await self._record(route, request)
            scripted = self._scripts[route]
            if scripted:
                reply = scripted.popleft()
                if reply.delay_s:
                    await self._hold(reply.delay_s)
                return reply.to_response()
            return await default(request, recorded)

        self._app.router.add_route(method, path, handle)

    def script(self, route: str, replies: Iterable[Reply]) -> None:
        """Queue replies for `route`; they are used in order before the default answer."""
        self._scripts[route].extend(replies)

    def reset(self) -> None:
        """Forget recorded requests and pending scripts (between tests)."""
        self.requests.clear()
        self._scripts.clear()

    def requests_to(self, route: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.route == route]

    async def start(self) -> str:
        """Listen on a free port of 127.0.0.1; returns the root URL (no trailing slash)."""
        self._stopping.clear()
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        self._stopping.set()  # release delayed replies so shutdown does not wait for them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _hold(self, delay_s: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), delay_s)
        except TimeoutError:
            pass

    async def _record(self, route: str, request: web.Request) -> RecordedRequest:
        recorded = RecordedRequest(
            route=route,
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            match=dict(request.match_info),
        )
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue
                name = part.name or ""
                if part.filename is not None:
                    data = await part.read(decode=False)
                    content_type = part.headers.get("Content-Type", "application/octet-stream")
                    recorded.files.append(UploadedFile(name, part.filename, content_type, data))
                else:
                    recorded.fields.setdefault(name, []).append(await part.text())
        elif request.can_read_body:
            raw = await request.read()
            try:
                recorded.json = json.loads(raw) if raw else None
            except ValueError:
                recorded.json = raw.decode(errors="replace")
        self.requests.append(recorded)
        return recorded
