"""One person's request from Discord, taken to the core: status message, uploads, submit.

Every inbound path (/imagine, a reply in a session thread, a button or the model select)
ends here after it has acknowledged Discord. Each request gets a visible answer where it was
made: the status message the worker edits until the image arrives, or the reason it was
refused. A repeated platform event makes nothing new.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import discord

from adapters.discord.messenger import DiscordMessenger
from core.errors import BadUpload, EaselError, InternalError, Refusal
from core.models import Intent, MessageRef, Stage, StatusView, ThreadRef, UserRef
from core.service import Easel
from core.status import received_view, refusal_view
from core.submit import SubmitRequest, Submitted, Upload

log = logging.getLogger("easel.discord")

PLATFORM = "discord"
ALREADY_WORKING = "Already working on this one (see the status message above)."
MAX_REMEMBERED_EVENTS = 10_000
INTERACTION_ALREADY_ACKNOWLEDGED = 40060
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def session_of(channel: Any, guild_id: int | None, channel_id: int | None) -> ThreadRef:
    """The session a Discord channel stands for: a thread is its own session; anywhere else
    (a channel where threads were refused, a DM) the channel itself is."""
    workspace = str(guild_id) if guild_id else ""
    if isinstance(channel, discord.Thread):
        return ThreadRef(PLATFORM, workspace, str(channel.parent_id), str(channel.id))
    here = str(channel.id if channel is not None else channel_id)
    return ThreadRef(PLATFORM, workspace, here, here)


def user_of(user: discord.abc.User, guild_id: int | None) -> UserRef:
    """The person as Easel's ledger knows them (per guild: credits are per workspace)."""
    return UserRef(PLATFORM, str(guild_id) if guild_id else "", str(user.id), user.display_name)


def is_image(attachment: discord.Attachment) -> bool:
    content_type = (attachment.content_type or "").split(";")[0].strip().lower()
    if content_type:
        return content_type.startswith("image/")
    return attachment.filename.lower().endswith(_IMAGE_SUFFIXES)


async def read_uploads(attachments: Iterable[discord.Attachment],
                       max_bytes: int) -> tuple[Upload, ...]:
    """Download attachments at once (their CDN URLs expire); too big ones are refused unread."""
    uploads = []
    for attachment in attachments:
        if attachment.size > max_bytes:
            raise BadUpload(f"{attachment.filename} is {attachment.size // 1_000_000} MB; "
                            f"the limit is {max_bytes // 1_000_000} MB.")
        try:
            data = await attachment.read()
        except discord.HTTPException as exc:
            log.warning("could not download attachment %s: HTTP %s", attachment.id, exc.status)
            raise BadUpload(f"I could not download {attachment.filename}; "
                            "try attaching it again.") from None
        uploads.append(Upload(data, attachment.filename, attachment.content_type or ""))
    return tuple(uploads)


async def acknowledge(interaction: discord.Interaction[Any], *, ephemeral: bool = False) -> bool:
    """Defer the interaction (Discord's 3-second deadline); False when another process
    already acknowledged the same interaction (Discord answers 40060)."""
    try:
        if ephemeral:
            await interaction.response.defer(ephemeral=True, thinking=True)
        else:
            await interaction.response.defer()
    except discord.HTTPException as exc:
        if exc.code == INTERACTION_ALREADY_ACKNOWLEDGED:
            log.info("interaction %s was acknowledged elsewhere; ignoring it", interaction.id)
            return False
        raise
    return True


@dataclass(frozen=True)
class Ask:
    """A request as Discord gave it, already resolved to its session."""

    thread: ThreadRef
    user: UserRef
    text: str
    source_event: str
    label: str | None = None  # what the received status quotes when there is no text
    uploads: tuple[Upload, ...] = ()
    model: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    action: Intent | None = None
    target_generation_id: int | None = None
    platform_message_id: str | None = None
    compare: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """What became of an Ask: queued (`submitted`) or refused (`error`)."""

    status: MessageRef | None
    submitted: Submitted | None = None
    error: EaselError | None = None


class Turns:
    """Takes Asks to the core; shared by the commands, the buttons and the message listener."""

    def __init__(self, easel: Easel, messenger: DiscordMessenger) -> None:
        self.easel = easel
        self.messenger = messenger
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first_delivery(self, source_event: str) -> bool:
        """False when this process already took the event (Discord delivered it twice).

        Synchronous on purpose: two deliveries racing through the same loop cannot both
        pass it. Across processes the database's unique source_event still holds."""
        if source_event in self._seen:
            return False
        self._seen[source_event] = None
        if len(self._seen) > MAX_REMEMBERED_EVENTS:
            self._seen.popitem(last=False)
        return True

    async def already_taken(self, source_event: str) -> bool:
        return await self.easel.is_known_event(PLATFORM, source_event)

    @property
    def max_upload_bytes(self) -> int:
        return self.easel.rt.config.max_upload_bytes

    async def take(self, ask: Ask, status: MessageRef | None = None) -> Outcome:
        """Post the status message (unless given) and submit; refusals are shown on it."""
        if status is None:
            status = await self.messenger.post_status(
                ask.thread, received_view(ask.label or ask.text))
        try:
            submitted = await self.easel.submit(SubmitRequest(
                thread=ask.thread, user=ask.user, text=ask.text, source_event=ask.source_event,
                status_message=status, uploads=ask.uploads, model=ask.model,
                aspect_ratio=ask.aspect_ratio, resolution=ask.resolution, action=ask.action,
                target_generation_id=ask.target_generation_id,
                platform_message_id=ask.platform_message_id, compare=ask.compare))
        except Refusal as error:
            await self.show(ask.thread, status, refusal_view(error))
            return Outcome(status, error=error)
        except Exception:  # the database or Discord failed: still tell the person
            log.exception("discord event %s could not be submitted", ask.source_event)
            internal = InternalError()
            await self.show(ask.thread, status, refusal_view(internal))
            return Outcome(status, error=internal)
        if submitted.duplicate:  # another process took the same event first
            await self.show(ask.thread, status, StatusView(
                Stage.DONE, ALREADY_WORKING, is_final=True, succeeded=False))
        else:
            log.info("discord event %s queued generation %s", ask.source_event,
                     submitted.generation_id)
        return Outcome(status, submitted=submitted)

    async def refuse(self, thread: ThreadRef, error: EaselError) -> MessageRef:
        """Answer a request refused before it reached the core (e.g. an unreadable upload)."""
        return await self.messenger.post_status(thread, refusal_view(error))

    async def show(self, thread: ThreadRef, status: MessageRef, view: StatusView) -> None:
        try:
            await self.messenger.edit_status(thread, status, view)
        except discord.HTTPException as exc:
            log.warning("could not edit status message %s: HTTP %s", status.message_id,
                        exc.status)
