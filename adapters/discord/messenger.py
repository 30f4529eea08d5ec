"""The outbound half of the Discord adapter: core.ports.ChatPlatform over Discord's REST API.

Any process (a worker with no gateway connection) can post and edit Easel's messages with only
the bot token. Status edits go through the bot token's channel-message route, never through an
interaction webhook, whose token dies 15 minutes after the command.

Errors from Discord (discord.HTTPException, Forbidden, NotFound, RateLimited) propagate: the
core decides about retries. discord.py still waits out 429s itself when Discord asks for at
most MAX_RATELIMIT_WAIT_S; a longer wait raises discord.RateLimited (with `retry_after`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from typing import Any

import discord
from discord.http import HTTPClient, Route, handle_message_parameters

from adapters.discord import render
from adapters.discord.shrink import shrink_to_fit
from core.models import ImageDelivery, MessageRef, StatusView, ThreadRef

DEFAULT_FILESIZE_LIMIT_BYTES = 10 * 1024 * 1024
# discord.py's floor for max_ratelimit_timeout; longer waits become discord.RateLimited.
MAX_RATELIMIT_WAIT_S = 30.0
# Captions may name the requester; nobody else (and never @everyone) gets pinged.
ALLOWED_MENTIONS = discord.AllowedMentions(everyone=False, roles=False, users=True)
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
# find_image reads the newest messages only: the image it looks for was posted minutes ago.
HISTORY_PAGE_SIZE = 100  # Discord's maximum per request
MAX_HISTORY_PAGES = 5
# Appended to the embed footer of an image posted as a link: with no attachment to name, the
# footer is what find_image recognises (status embeds carry a bare "Generation #<id>").
LINK_FOOTER_NOTE = "too large to attach, linked above"


class SecretWithheldError(RuntimeError):
    """Raised instead of an error whose text contained the bot token."""


class DiscordMessenger:
    """Posts and edits Easel's messages in Discord threads through the REST API."""

    name = "discord"

    def __init__(self, token: str, *, api_base_url: str | None = None,
                 filesize_limit_bytes: int = DEFAULT_FILESIZE_LIMIT_BYTES) -> None:
        self._token = token
        self._api_base_url = api_base_url.rstrip("/") if api_base_url else None
        self.filesize_limit_bytes = filesize_limit_bytes
        self._http: HTTPClient | None = None
        self._user_id: str | None = None  # the bot's own user id, from the login
        self._start_lock = asyncio.Lock()

    async def start(self) -> None:
        """Open the HTTP session and check the token (GET /users/@me). Idempotent."""
        async with self._start_lock:
            if self._http is not None:
                return
            if self._api_base_url:
                # discord.py's only base-URL override is this class attribute (process-wide).
                Route.BASE = self._api_base_url
            http = HTTPClient(asyncio.get_running_loop(),
                              max_ratelimit_timeout=MAX_RATELIMIT_WAIT_S)
            try:
                async with self._scrubbed():
                    me = await http.static_login(self._token)
            except BaseException:
                await http.close()
                raise
            self._http, self._user_id = http, str(me["id"])

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def post_status(self, thread: ThreadRef, view: StatusView) -> MessageRef:
        """Post a status message (an embed, with buttons when the view has them)."""
        return await self._post(thread, embed=render.status_embed(view),
                                view=render.components(view.buttons))

    async def edit_status(self, thread: ThreadRef, message: MessageRef, view: StatusView) -> None:
        """Replace the status message's embed and buttons (buttons removed when none)."""
        http = await self._client()
        channel_id = int(message.thread or message.channel)
        with handle_message_parameters(embed=render.status_embed(view),
                                       view=render.components(view.buttons),
                                       allowed_mentions=ALLOWED_MENTIONS) as params:
            async with self._scrubbed():
                await http.edit_message(channel_id, int(message.message_id), params=params)

    async def post_image(self, thread: ThreadRef, image: ImageDelivery) -> MessageRef:
        """Post the image as an attachment under an embed, re-encoded as JPEG when it is over
        the upload limit; when even that does not fit, post its link instead."""
        data, content_type, note = image.data, image.content_type, None
        if len(data) > self.filesize_limit_bytes:
            shrunk = await asyncio.to_thread(shrink_to_fit, data, self.filesize_limit_bytes)
            if shrunk is None:
                return await self._post_link(thread, image)
            note = (f"re-encoded as JPEG ({_size(len(data))} → "
                    f"{_size(len(shrunk))}) to fit Discord's upload limit")
            data, content_type = shrunk, "image/jpeg"
        filename = image_filename(image.generation_id, content_type)
        fields: dict[str, Any] = {}
        if image.caption:
            fields["content"] = render.truncate(image.caption, render.CONTENT_MAX)
        return await self._post(
            thread,
            embed=render.image_embed(image, attachment_name=filename, note=note),
            file=discord.File(io.BytesIO(data), filename=filename),
            view=render.components(image.buttons),
            **fields,
        )

    async def delete_message(self, thread: ThreadRef, message: MessageRef) -> None:
        """Delete a message the bot posted; one already gone is fine."""
        http = await self._client()
        with contextlib.suppress(discord.NotFound):
            async with self._scrubbed():
                await http.delete_message(int(message.thread or message.channel),
                                          int(message.message_id))

    async def find_image(self, thread: ThreadRef, generation_id: int) -> MessageRef | None:
        """The image message `post_image` already posted for this generation in this thread,
        if any (a worker may have died after posting it and before recording it)."""
        http = await self._client()
        channel_id = int(thread.thread or thread.channel)
        names = {image_filename(generation_id, t) for t in _EXTENSIONS}
        footer = link_footer(generation_id)
        before: int | None = None
        for _ in range(MAX_HISTORY_PAGES):
            async with self._scrubbed():
                page = await http.logs_from(channel_id, HISTORY_PAGE_SIZE, before=before)
            for message in page:  # newest first
                if str(message["author"]["id"]) != self._user_id:
                    continue
                attached = {a["filename"] for a in message.get("attachments", [])}
                footers = {e["footer"]["text"] for e in message.get("embeds", []) if "footer" in e}
                if attached & names or footer in footers:
                    return MessageRef(channel=thread.channel, message_id=str(message["id"]),
                                      thread=thread.thread)
            if len(page) < HISTORY_PAGE_SIZE:
                return None
            before = int(page[-1]["id"])
        return None

    async def post_text(self, thread: ThreadRef, text: str) -> MessageRef:
        """Post plain text; longer than one message allows, it is split at line breaks and
        the first message is returned."""
        chunks = _split(text, render.CONTENT_MAX)
        first = await self._post(thread, content=chunks[0])
        for chunk in chunks[1:]:
            await self._post(thread, content=chunk)
        return first

    async def _post_link(self, thread: ThreadRef, image: ImageDelivery) -> MessageRef:
        size = _size(len(image.data))
        limit = _size(self.filesize_limit_bytes)
        if image.url:
            notice = f"This image is {size}, more than Discord accepts here ({limit}): {image.url}"
        else:
            notice = f"This image is {size}, more than Discord accepts here ({limit})."
        room = render.CONTENT_MAX - len(notice) - 1
        caption = render.truncate(image.caption, room) if room > 0 and image.caption else ""
        content = render.truncate(f"{caption}\n{notice}" if caption else notice,
                                  render.CONTENT_MAX)
        embed = render.image_embed(image, attachment_name=None)
        embed.set_footer(text=link_footer(image.generation_id))
        return await self._post(thread, content=content, embed=embed,
                                view=render.components(image.buttons))

    async def _post(self, thread: ThreadRef, **fields: Any) -> MessageRef:
        http = await self._client()
        # Messages go into the thread when there is one, else into the channel itself.
        channel_id = int(thread.thread or thread.channel)
        with handle_message_parameters(allowed_mentions=ALLOWED_MENTIONS, **fields) as params:
            async with self._scrubbed():
                data = await http.send_message(channel_id, params=params)
        return MessageRef(channel=thread.channel, message_id=str(data["id"]),
                          thread=thread.thread)

    async def _client(self) -> HTTPClient:
        if self._http is None:
            await self.start()
        assert self._http is not None
        return self._http

    @contextlib.asynccontextmanager
    async def _scrubbed(self) -> AsyncIterator[None]:
        """Let Discord's errors through unless their text would reveal the token."""
        try:
            yield
        except Exception as exc:
            text = f"{exc!s} {exc!r} {getattr(exc, 'text', '')}"
            if self._token and self._token in text:
                raise SecretWithheldError(
                    f"Discord request failed with {type(exc).__name__}; "
                    "its message was withheld because it contained the bot token"
                ) from None
            raise


def image_filename(generation_id: int, content_type: str) -> str:
    """`easel-<generation>.<ext>`: the attachment's name, which find_image matches exactly."""
    return f"easel-{generation_id}.{_EXTENSIONS.get(content_type, 'png')}"


def link_footer(generation_id: int) -> str:
    """The embed footer of an image posted as a link, which find_image matches exactly."""
    return f"Generation #{generation_id} · {LINK_FOOTER_NOTE}"


def _split(text: str, limit: int) -> list[str]:
    """Pieces of at most `limit` characters, cut at line breaks where possible."""
    pieces: list[str] = []
    rest = text or "\u200b"  # Discord refuses an empty message
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        cut = cut if cut > 0 else limit
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    pieces.append(rest)
    return pieces


def _size(size_bytes: int) -> str:
    """A size for people: '8.4 MB', '512 KB'."""
    if size_bytes >= 1024 * 1024:
        return f"{size_bytes / (1024 * 1024):.1f} MB"
    return f"{max(1, round(size_bytes / 1024))} KB"
