"""An in-memory chat platform that records what a person in each thread would see."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from core.models import ImageDelivery, MessageRef, StatusView, ThreadRef


@dataclass
class Shown:
    """One message in a thread, with its edit history."""

    id: str
    kind: str  # "status" | "image" | "text"
    history: list[StatusView | str] = field(default_factory=list)
    image: ImageDelivery | None = None

    @property
    def current(self) -> StatusView | str:
        return self.history[-1]


class FakeChat:
    """A ChatPlatform whose threads are lists of `Shown` messages."""

    def __init__(self, name: str = "console", *, fail_edits: int = 0) -> None:
        self.name = name
        self.threads: dict[tuple[str, str], list[Shown]] = {}
        self._ids = itertools.count(1)
        self.fail_edits = fail_edits  # the next N edits raise, as a flaky platform would
        self.edit_calls = 0

    def thread(self, thread: ThreadRef) -> list[Shown]:
        return self.threads.setdefault((thread.channel, thread.thread), [])

    def find(self, message: MessageRef) -> Shown:
        for messages in self.threads.values():
            for shown in messages:
                if shown.id == message.message_id:
                    return shown
        raise KeyError(message.message_id)

    def images(self, thread: ThreadRef) -> list[ImageDelivery]:
        return [m.image for m in self.thread(thread) if m.image is not None]

    async def post_status(self, thread: ThreadRef, view: StatusView) -> MessageRef:
        shown = Shown(str(next(self._ids)), "status", [view])
        self.thread(thread).append(shown)
        return MessageRef(thread.channel, shown.id, thread.thread)

    async def edit_status(self, thread: ThreadRef, message: MessageRef, view: StatusView) -> None:
        self.edit_calls += 1
        if self.fail_edits > 0:
            self.fail_edits -= 1
            raise ConnectionError("edit failed")
        self.find(message).history.append(view)

    async def post_image(self, thread: ThreadRef, image: ImageDelivery) -> MessageRef:
        shown = Shown(str(next(self._ids)), "image", [image.caption], image)
        self.thread(thread).append(shown)
        return MessageRef(thread.channel, shown.id, thread.thread)

    async def delete_message(self, thread: ThreadRef, message: MessageRef) -> None:
        messages = self.thread(thread)
        messages[:] = [m for m in messages if m.id != message.message_id]

    async def find_image(self, thread: ThreadRef, generation_id: int) -> MessageRef | None:
        for shown in self.thread(thread):
            if shown.image is not None and shown.image.generation_id == generation_id:
                return MessageRef(thread.channel, shown.id, thread.thread)
        return None

    async def post_text(self, thread: ThreadRef, text: str) -> MessageRef:
        shown = Shown(str(next(self._ids)), "text", [text])
        self.thread(thread).append(shown)
        return MessageRef(thread.channel, shown.id, thread.thread)
