"""The console's inbound half: lines typed (or piped, or given as --prompt) become turns.

Goes through exactly the same core as Discord and Slack: submit, the worker,
the pipeline, credits and storage. The worker runs in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path

from adapters.console.platform import ConsolePlatform
from core.errors import DELETED, EaselError, NothingToContinue
from core.models import Intent, Status, ThreadRef, UserRef
from core.runtime import Runtime
from core.service import Easel
from core.status import received_view, refusal_view
from core.submit import SubmitRequest
from core.sweeper import sweep
from core.text import shown
from core.worker import Worker

HELP = (
    "Type what to draw; later lines refine it. Commands: /model NAME, /models, /credits, "
    "/settings, /compare A,B [TEXT], /continue MODEL, /delete [ID], /flow, /new, /help, /quit"
)
TURN_TIMEOUT_S = 900.0


class ConsoleChat:
    """One terminal conversation (a session per `/new`)."""

    def __init__(
        self,
        runtime: Runtime,
        platform: ConsolePlatform,
        *,
        user: str | None = None,
        data_dir: Path | None = None,
        write_flow: Callable[[int, Path], Awaitable[Path]] | None = None,
    ):
        self.rt = runtime
        self.data_dir = data_dir or Path.cwd()
        # Renders a session's prompt-flow page to a file (the web page's HTML, given by bot/).
        self.write_flow = write_flow
        self.easel = Easel(runtime)
        self.platform = platform
        self.user = UserRef("console", "", user or getpass.getuser(), user or getpass.getuser())
        # This terminal's threads share a channel no other `easel chat` has: its worker claims,
        # finishes and shows only them, so two chats at once never see each other's work.
        self.channel = f"terminal-{uuid.uuid4().hex[:12]}"
        runtime.only_channel = self.channel
        self.thread = self._new_thread()
        self.failures = 0
        self.answered = 0

    def _new_thread(self) -> ThreadRef:
        return ThreadRef("console", "", self.channel, uuid.uuid4().hex[:12])

    async def run(self, turns: AsyncIterator[str], *, model: str | None = None) -> int:
        """Answer every turn; exit status 0 after a normal session (a refusal is an answer),
        1 when an image could not be made."""
        worker = Worker(self.rt)
        await sweep(self.rt)
        work = asyncio.create_task(worker.run())
        try:
            if model:
                await self.command(f"/model {model}")
            async for line in turns:
                text = line.strip()
                if not text:
                    continue
                if text in ("/quit", "/exit"):
                    break
                if text.startswith("/"):
                    await self.command(text)
                else:
                    await self.turn(text)
        finally:
            worker.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await work
        return 1 if self.failures else 0

    async def command(self, text: str) -> None:
        name, _, rest = text.partition(" ")
        try:
            if name == "/model" and not rest.strip():
                await self.show_model()
            elif name == "/model":
                model = await self.easel.set_model(self.thread, self.user, rest.strip())
                self.platform.say(f"Model for this thread: {model.display_name} ({model.name})")
            elif name == "/models":
                for m in self.rt.available_models():
                    costs = ", ".join(f"{r} {c} cr" for r, c in m.credits.items())
                    self.platform.say(f"{m.name:10} {m.display_name} · {costs} · {m.best_for}")
            elif name == "/credits":
                self.platform.say((await self.easel.credits(self.user)).as_text())
            elif name == "/settings":  # the person's defaults; /new starts a thread on them
                self.platform.say((await self.easel.settings(self.user, rest)).as_text())
            elif name == "/flow" and self.write_flow is not None:
                session_id = await self.easel.flow_session(self.thread)
                path = await self.write_flow(session_id, self.data_dir / "flow")
                self.platform.say(f"Prompt flow: {path}")
            elif name == "/compare":
                await self.compare(rest)
            elif name == "/continue":
                await self.continue_with(rest)
            elif name == "/delete":
                deleted = await self.easel.delete_image(
                    self.thread, self.user, int(rest) if rest.strip().isdigit() else None)
                self.platform.say(f"{DELETED} (#{', #'.join(map(str, deleted.generation_ids))})")
            elif name == "/new":
                self.thread = self._new_thread()
                self.platform.say("New thread: the next line starts a new image.")
            elif name == "/help":
                self.platform.say(HELP)
            else:
                self.platform.say(f"Unknown command {shown(name)}. {HELP}")
        except EaselError as error:
            self.platform.say(f"🚫 {error.user_message}")

    async def show_model(self) -> None:
        """`/model` alone: this thread's model, then the ones to switch to."""
        current = self.rt.catalog.get(await self.easel.session_model(self.thread))
        self.platform.say(f"Model for this thread: {current.display_name} ({current.name}). "
                          "Switch with /model NAME:")
        for m in self.rt.available_models():
            self.platform.say(f"{'*' if m.name == current.name else ' '} {m.name:10} {m.display_name}")

    async def turn(self, text: str, compare: tuple[str, ...] = ()) -> None:
        """One message: post the status, submit, wait for the image or the reason."""
        status = await self.platform.post_status(self.thread, received_view(text or "again"))
        request = SubmitRequest(
            thread=self.thread,
            user=self.user,
            text=text,
            source_event=f"console-{uuid.uuid4().hex}",
            status_message=status,
            compare=compare,
            action=None if text else Intent.REGENERATE,
        )
        try:
            submitted = await self.easel.submit(request)
        except EaselError as error:  # a refusal is an answer: the session goes on normally
            await self.platform.edit_status(self.thread, status, refusal_view(error))
            return
        outcomes = [await self._wait(g) for g in submitted.generation_ids]
        if submitted.compare_group:
            await self._wait_group(submitted.compare_group)
        if Status.SUCCEEDED not in outcomes:
            self.failures += 1

    async def _wait_group(self, group: str) -> None:
        """Until the compare's side-by-side result and final status are posted."""
        async with asyncio.timeout(TURN_TIMEOUT_S):
            # Another task (or process) finishes the group: the row is what there is to watch.
            while not await self.rt.pool.fetchval(  # noqa: ASYNC110
                "SELECT finished_at IS NOT NULL FROM compare_groups WHERE id = $1", group
            ):
                await asyncio.sleep(0.05)

    async def compare(self, rest: str) -> None:
        """`/compare a,b[,c] [prompt]`: several models side by side (no prompt: the last one)."""
        models, _, prompt = rest.strip().partition(" ")
        await self.turn(prompt.strip(), compare=tuple(m for m in models.split(",") if m))

    async def continue_with(self, choice: str) -> None:
        """`/continue MODEL|ID` after a compare: refine that image next, with that model."""
        # The images of this thread's latest compare: its model names and generation ids.
        rows = await self.rt.pool.fetch(
            """SELECT g.id, g.model FROM generations g JOIN sessions s ON s.id = g.session_id
               WHERE s.platform = 'console' AND s.channel = $1 AND s.thread = $2
                 AND g.status = 'succeeded' AND g.compare_group = (
                   SELECT g2.compare_group FROM generations g2 WHERE g2.session_id = s.id
                     AND g2.compare_group IS NOT NULL ORDER BY g2.id DESC LIMIT 1)
               ORDER BY g.id""",
            self.thread.channel, self.thread.thread,
        )
        if not rows:
            raise NothingToContinue()
        wanted = choice.strip().lower()
        generation_id = next(
            (r["id"] for r in rows if wanted in (r["model"], str(r["id"]))), None)
        if generation_id is None:
            raise NothingToContinue.not_in_compare(choice, [r["model"] for r in rows])
        model = await self.easel.continue_with(self.thread, self.user, generation_id)
        self.platform.say(f"Continuing with {model.display_name} (image #{generation_id}).")

    async def _wait(self, generation_id: int) -> Status:
        async with asyncio.timeout(TURN_TIMEOUT_S):
            while True:
                status = Status(
                    await self.rt.pool.fetchval(
                        "SELECT status FROM generations WHERE id = $1", generation_id
                    )
                )
                if status.is_terminal:
                    await asyncio.sleep(0.05)  # let the final status edit land first
                    return status
                await asyncio.sleep(0.05)


async def lines_from(prompts: Iterable[str]) -> AsyncIterator[str]:
    for prompt in prompts:
        yield prompt


async def lines_from_stdin(interactive: bool) -> AsyncIterator[str]:
    """Lines from stdin without blocking the event loop."""
    while True:
        if interactive:
            sys.stdout.write("you › ")
            sys.stdout.flush()
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        yield line
