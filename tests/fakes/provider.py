"""An in-memory ImageProvider that plays a script of outcomes (for core tests and bench)."""

from __future__ import annotations

import asyncio
import io
from collections import deque
from collections.abc import Iterable

from PIL import Image

from core.errors import ProviderError
from core.models import GeneratedImage, ImageRequest, Images, Parked


def tiny_png(colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, "PNG")
    return buffer.getvalue()


Outcome = Images | Parked | ProviderError


class ScriptedProvider:
    """Each call takes the next outcome from the script; an empty script succeeds."""

    def __init__(
        self, name: str = "sketch", script: Iterable[Outcome] = (), latency_s: float = 0.0
    ) -> None:
        self.name = name
        self.script: deque[Outcome] = deque(script)
        self.latency_s = latency_s
        self.requests: list[ImageRequest] = []
        self.resumed: list[str] = []
        self.png = tiny_png()

    async def generate(self, request: ImageRequest) -> Images | Parked:
        self.requests.append(request)
        return await self._next()

    async def resume(self, external_id: str, request: ImageRequest) -> Images | Parked:
        self.resumed.append(external_id)
        return await self._next()

    async def _next(self) -> Images | Parked:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        outcome = self.script.popleft() if self.script else None
        if isinstance(outcome, ProviderError):
            raise outcome
        return outcome or Images((GeneratedImage(self.png, "image/png"),))
