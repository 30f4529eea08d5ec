"""The console as a chat platform: the outbound half draws the thread in a terminal.

On a terminal the status message is redrawn in place (rich); through a pipe each
change is one plain line, so the output can be read by a script or a test.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from core.models import ImageDelivery, MessageRef, StatusView, ThreadRef


class ConsolePlatform:
    """ChatPlatform for `easel chat`."""

    name = "console"
    min_edit_interval_s = 0.0  # a terminal has no edit rate limit: show every stage

    def __init__(self, out: TextIO, *, interactive: bool, images_dir: Path | None = None) -> None:
        self.out = out
        # The local image folder, when images are stored on this machine: the person at the
        # terminal opens the file itself (the chat serves no web pages).
        self.images_dir = images_dir.expanduser().absolute() if images_dir else None
        self.interactive = interactive
        self.console = Console(file=out, force_terminal=interactive, highlight=False)
        self._ids = itertools.count(1)
        self._live: dict[str, Live] = {}
        self._last: dict[str, str] = {}
        self._details: dict[str, set[str]] = {}
        self.images: list[ImageDelivery] = []
        self.deleted: list[MessageRef] = []

    async def post_status(self, thread: ThreadRef, view: StatusView) -> MessageRef:
        message_id = f"status-{next(self._ids)}"
        self._draw(message_id, view)
        return MessageRef(thread.channel, message_id, thread.thread)

    async def edit_status(self, thread: ThreadRef, message: MessageRef, view: StatusView) -> None:
        self._draw(message.message_id, view)

    async def post_image(self, thread: ThreadRef, image: ImageDelivery) -> MessageRef:
        self.images.append(image)
        if self.images_dir is not None:
            where = str(self.images_dir.joinpath(*image.object_key.split("/")))
        else:
            where = image.url or image.object_key
        self._line(f"🖼  Image: {where}")
        return MessageRef(thread.channel, f"image-{next(self._ids)}", thread.thread)

    async def delete_message(self, thread: ThreadRef, message: MessageRef) -> None:
        self.deleted.append(message)
        self._line(f"(image message {message.message_id} removed)")

    async def find_image(self, thread: ThreadRef, generation_id: int) -> MessageRef | None:
        for image in self.images:
            if image.generation_id == generation_id:
                return MessageRef(thread.channel, f"image-of-{generation_id}", thread.thread)
        return None

    async def post_text(self, thread: ThreadRef, text: str) -> MessageRef:
        self._line(text)
        return MessageRef(thread.channel, f"text-{next(self._ids)}", thread.thread)

    def say(self, text: str) -> None:
        """A line from Easel that is not a chat message (help, errors, credits)."""
        self._line(text)

    def _draw(self, message_id: str, view: StatusView) -> None:
        if not self.interactive:
            self._plain(message_id, view)
            return
        body = Text("\n".join(view.lines)) if view.lines else Text("")
        panel = Panel(body, title=view.headline, title_align="left", expand=False)
        live = self._live.get(message_id)
        if live is None:
            live = Live(panel, console=self.console, auto_refresh=False, transient=False)
            live.start()
            self._live[message_id] = live
        live.update(panel, refresh=True)
        if view.is_final:
            live.stop()
            del self._live[message_id]

    def _plain(self, message_id: str, view: StatusView) -> None:
        # One line per change; a detail line (the prompt, a retry note, a model's state in a
        # compare) is printed when it is new, and every detail of the final view.
        if self._last.get(message_id) == view.headline:
            return
        self._line(view.headline)
        self._last[message_id] = view.headline
        seen = self._details.setdefault(message_id, set())
        for line in view.lines:
            if line.startswith("✓") or (line in seen and not view.is_final):
                continue
            seen.add(line)
            self._line(f"   {line}")

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)
