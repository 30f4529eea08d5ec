"""The status message: what it says at each stage, and a reporter that coalesces edits.

Edits are coalesced to at most one per `interval_s` per message (platforms rate
limit edits), but the final state is always delivered, with retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from core.errors import EaselError
from core.models import Button, MessageRef, Stage, StatusView, ThreadRef
from core.ports import ChatPlatform
from core.text import clean_text, shown

log = logging.getLogger("easel.status")

FINAL_EDIT_ATTEMPTS = 4
RECEIVED_PROMPT_MAX_CHARS = 300
FINAL_EDIT_BACKOFF_S = 0.5

STAGE_HEADLINES = {
    Stage.RECEIVED: "⏳ Got it: queued",
    Stage.UNDERSTANDING: "🔎 Understanding your request…",
    Stage.REFINING_PROMPT: "✍️ Refining the prompt…",
    Stage.GENERATING: "🎨 Generating with {model}…",
    Stage.UPLOADING: "☁️ Uploading the image…",
    Stage.FINALIZING: "📦 Finalizing…",
}
STAGE_NAMES = {
    Stage.UNDERSTANDING: "understanding",
    Stage.REFINING_PROMPT: "refining prompt",
    Stage.GENERATING: "generating",
    Stage.UPLOADING: "uploading",
    Stage.FINALIZING: "finalizing",
}


def received_view(prompt: str) -> StatusView:
    """What an adapter posts at once, before the core has looked at the request."""
    return StatusView(Stage.RECEIVED, STAGE_HEADLINES[Stage.RECEIVED],
                      (f"> {shown(prompt, RECEIVED_PROMPT_MAX_CHARS)}",))


def with_asker(view: StatusView, name: str) -> StatusView:
    """The view saying who asked (for a status posted outside the person's thread)."""
    line = f"Asked by {shown(name)}"
    return view if line in view.lines else replace(view, lines=(line, *view.lines))


def refusal_view(error: EaselError) -> StatusView:
    """A request refused before any work: the reason, and that nothing was charged."""
    return StatusView(Stage.DONE, f"🚫 {error.user_message}", is_final=True, succeeded=False)


def progress_view(
    stage: Stage,
    *,
    model: str,
    done: Sequence[tuple[Stage, float]],
    refined_prompt: str | None,
    note: str | None = None,
    generation_id: int | None = None,
) -> StatusView:
    """A stage in progress, with a checklist of the stages done and their times."""
    lines = [f"✓ {STAGE_NAMES[s]} · {seconds:.1f}s" for s, seconds in done if s in STAGE_NAMES]
    refined_prompt = clean_text(refined_prompt) if refined_prompt else refined_prompt
    if refined_prompt:
        lines.append(f"Prompt: {refined_prompt}")
    if note:
        lines.append(note)
    return StatusView(
        stage,
        STAGE_HEADLINES[stage].format(model=model),
        tuple(lines),
        model=model,
        refined_prompt=refined_prompt,
        generation_id=generation_id,
    )


def success_view(
    *,
    model: str,
    cost: int,
    elapsed_s: float,
    refined_prompt: str | None,
    generation_id: int,
    buttons: tuple[Button, ...],
    seed: int | None = None,
) -> StatusView:
    """The final state of a finished image (with the seed that reproduces it)."""
    refined_prompt = clean_text(refined_prompt) if refined_prompt else refined_prompt
    lines: tuple[str, ...] = (f"Prompt: {refined_prompt}",) if refined_prompt else ()
    if seed is not None:
        lines += (seed_line(seed),)
    return StatusView(
        Stage.DONE,
        f"✅ Done in {elapsed_s:.1f}s · {model} · {cost} credit{'s' if cost != 1 else ''}",
        lines,
        is_final=True,
        succeeded=True,
        model=model,
        refined_prompt=refined_prompt,
        cost=cost,
        elapsed_s=elapsed_s,
        generation_id=generation_id,
        buttons=buttons,
        seed=seed,
    )


def seed_line(seed: int) -> str:
    """How a seed is shown: the number and how to use it again."""
    return f"Seed: {seed} (again with --seed {seed})"


def failure_view(
    *, message: str, model: str, elapsed_s: float, generation_id: int
) -> StatusView:
    """The final state of a failed image; `message` already says nothing was charged."""
    return StatusView(
        Stage.DONE,
        f"❌ {message}",
        (f"Model: {model} · after {elapsed_s:.1f}s",),
        is_final=True,
        succeeded=False,
        model=model,
        cost=0,
        elapsed_s=elapsed_s,
        generation_id=generation_id,
    )


class StatusReporter:
    """Edits one status message, at most once per `interval_s`, the last view winning."""

    def __init__(
        self,
        platform: ChatPlatform,
        thread: ThreadRef,
        message: MessageRef | None,
        interval_s: float,
    ) -> None:
        self.platform = platform
        self.thread = thread
        self.message = message
        self.interval_s = interval_s
        self._last_edit = 0.0
        self._pending: StatusView | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self.edits = 0
        # Asked before each progress edit: False once the edit is no longer ours to make
        # (the worker's claim on the generation was lost).
        self.guard: Callable[[], Awaitable[bool]] | None = None

    async def show(self, view: StatusView) -> None:
        """Show a progress view now, or soon if an edit was made less than interval_s ago."""
        self._pending = view
        wait_s = self._last_edit + self.interval_s - time.monotonic()
        if wait_s <= 0:
            await self._flush()
        elif self._flush_task is None:
            self._flush_task = asyncio.create_task(self._flush_later(wait_s))

    async def final(self, view: StatusView) -> bool:
        """Deliver the final view, retrying; True when it was delivered."""
        if self._flush_task is not None:
            self._flush_task.cancel()
            self._flush_task = None
        self._pending = None
        for attempt in range(FINAL_EDIT_ATTEMPTS):
            try:
                await self._deliver(view)
                return True
            except Exception as exc:  # any platform error: try again, then give up loudly
                log.warning("final status edit failed (attempt %d): %s", attempt + 1, exc)
                await asyncio.sleep(FINAL_EDIT_BACKOFF_S * 2**attempt)
        return False

    async def close(self) -> None:
        if self._flush_task is not None:
            self._flush_task.cancel()
            self._flush_task = None

    async def _flush_later(self, wait_s: float) -> None:
        await asyncio.sleep(wait_s)
        self._flush_task = None
        await self._flush()

    async def _flush(self) -> None:
        view, self._pending = self._pending, None
        if view is None:
            return
        try:
            if self.guard is not None and not await self.guard():
                return
            await self._deliver(view)
        except Exception as exc:  # a lost progress edit is not worth failing the image
            log.warning("status edit failed: %s", exc)

    async def _deliver(self, view: StatusView) -> None:
        self._last_edit = time.monotonic()
        if self.message is not None and self.message.asked_by:
            view = with_asker(view, self.message.asked_by)
        if self.message is None:
            self.message = await self.platform.post_status(self.thread, view)
        else:
            await self.platform.edit_status(self.thread, self.message, view)
        self.edits += 1
