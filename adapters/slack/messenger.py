"""The outbound half of the Slack adapter: posts and edits through the Web API.

Needs only the bot token, so any worker process can report progress and deliver
images without an Events API or Socket Mode connection. Slack's 429s are waited
out by slack_sdk's rate-limit retry handler (it honours Retry-After); every other
Slack error propagates as `slack_sdk.errors.SlackApiError`, whose text holds the
method URL and Slack's answer, never the token.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.render import (
    MESSAGE_TEXT_MAX_CHARS,
    button_blocks,
    escape_mrkdwn,
    image_caption,
    status_blocks,
    status_text,
    truncate,
)
from core.models import ImageDelivery, MessageRef, StatusView, ThreadRef

log = logging.getLogger("easel.slack")

RATE_LIMIT_RETRIES = 5
BUTTONS_FALLBACK_TEXT = "More options for this image"
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
# find_image reads a thread whole (oldest first); a channel without a thread only its newest
# pages, since the image it looks for was posted minutes ago.
HISTORY_PAGE_SIZE = 200
MAX_THREAD_PAGES = 50
MAX_CHANNEL_PAGES = 5


class SlackMessenger:
    """`core.ports.ChatPlatform` over the Slack Web API (slack_sdk's AsyncWebClient)."""

    name = "slack"

    def __init__(self, token: str, *, api_url: str | None = None) -> None:
        if api_url:
            self._client = AsyncWebClient(token=token, base_url=api_url)
        else:
            self._client = AsyncWebClient(token=token)
        self._client.retry_handlers.append(
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES))
        self._identity: tuple[str, str] | None = None  # (user id, bot id) from auth.test

    @property
    def client(self) -> AsyncWebClient:
        """The Web API client, for `AsyncApp(client=...)` in the inbound half."""
        return self._client

    async def close(self) -> None:
        """Close the pooled HTTP session (a later call opens a new one)."""
        session, self._client.session = self._client.session, None
        if session is not None and not session.closed:
            await session.close()

    async def _api(self) -> AsyncWebClient:
        # One pooled session per messenger, opened inside the running loop; without it
        # slack_sdk opens a new connection (and TLS handshake) for every call.
        if self._client.session is None or self._client.session.closed:
            self._client.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._client.timeout))
        return self._client

    async def post_status(self, thread: ThreadRef, view: StatusView) -> MessageRef:
        """Post a new status message in the thread."""
        client = await self._api()
        response = await client.chat_postMessage(
            channel=thread.channel, thread_ts=thread.thread or None,
            text=status_text(view), blocks=status_blocks(view))
        return MessageRef(str(response["channel"]), str(response["ts"]), thread.thread)

    async def edit_status(self, thread: ThreadRef, message: MessageRef, view: StatusView) -> None:
        """Replace the status message's text and blocks with `view`."""
        client = await self._api()
        await client.chat_update(channel=message.channel, ts=message.message_id,
                                 text=status_text(view), blocks=status_blocks(view))

    async def post_text(self, thread: ThreadRef, text: str) -> MessageRef:
        """Post a plain message in the thread."""
        client = await self._api()
        response = await client.chat_postMessage(
            channel=thread.channel, thread_ts=thread.thread or None,
            text=truncate(escape_mrkdwn(text), MESSAGE_TEXT_MAX_CHARS) or " ")
        return MessageRef(str(response["channel"]), str(response["ts"]), thread.thread)

    async def post_image(self, thread: ThreadRef, image: ImageDelivery) -> MessageRef:
        """Upload the image into the thread with its caption, then the follow-up buttons."""
        client = await self._api()
        upload = await client.files_upload_v2(
            channel=thread.channel, thread_ts=thread.thread or None, content=image.data,
            filename=image_filename(image), title=image_title(image.generation_id),
            initial_comment=image_caption(image))
        file: dict[str, Any] = upload.get("file") or {}
        image_ts = shared_ts(file, thread.channel)
        if image_ts is None and file.get("id"):
            # Slack may answer before the file is shared; files.info usually knows by now.
            info = await client.files_info(file=str(file["id"]))
            image_ts = shared_ts(info.get("file") or {}, thread.channel)
        buttons_ts = None
        if image.buttons:
            response = await client.chat_postMessage(
                channel=thread.channel, thread_ts=thread.thread or None,
                text=BUTTONS_FALLBACK_TEXT, blocks=button_blocks(image.buttons))
            buttons_ts = str(response["ts"])
        message_id = image_ts or buttons_ts or str(file.get("id", ""))
        if image_ts is None:
            log.warning("Slack did not say where file %s was shared", file.get("id"))
        return MessageRef(thread.channel, message_id, thread.thread)

    async def delete_message(self, thread: ThreadRef, message: MessageRef) -> None:
        """Delete a message the bot posted; one already gone is fine."""
        client = await self._api()
        try:
            await client.chat_delete(channel=message.channel, ts=message.message_id)
        except SlackApiError as exc:
            if exc.response.get("error") != "message_not_found":
                raise

    async def find_image(self, thread: ThreadRef, generation_id: int) -> MessageRef | None:
        """The image message `post_image` already posted for this generation in this thread,
        if any (a worker may have died after posting it and before recording it)."""
        user_id, bot_id = await self._bot_identity()
        names = image_filenames(generation_id)
        title = image_title(generation_id)
        async for message in self._history(thread):
            if message.get("user") != user_id and message.get("bot_id") != bot_id:
                continue
            files = message.get("files") or []
            if any(f.get("name") in names or f.get("title") == title for f in files):
                return MessageRef(thread.channel, str(message["ts"]), thread.thread)
        return None

    async def _bot_identity(self) -> tuple[str, str]:
        if self._identity is None:
            client = await self._api()
            auth = await client.auth_test()
            self._identity = (str(auth.get("user_id") or ""), str(auth.get("bot_id") or ""))
        return self._identity

    async def _history(self, thread: ThreadRef) -> AsyncIterator[dict[str, Any]]:
        """The thread's messages oldest first, or the channel's newest first when no thread."""
        client = await self._api()
        cursor: str | None = None
        for _ in range(MAX_THREAD_PAGES if thread.thread else MAX_CHANNEL_PAGES):
            if thread.thread:
                try:
                    page = await client.conversations_replies(
                        channel=thread.channel, ts=thread.thread, limit=HISTORY_PAGE_SIZE,
                        cursor=cursor)
                except SlackApiError as err:
                    if err.response.get("error") == "thread_not_found":
                        return  # a thread that is gone holds no image
                    raise
            else:
                page = await client.conversations_history(
                    channel=thread.channel, limit=HISTORY_PAGE_SIZE, cursor=cursor)
            for message in page.get("messages") or []:
                yield message
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page.get("has_more") or cursor is None:
                return


def image_filename(image: ImageDelivery) -> str:
    """`easel-<generation>.<ext>` from the image's content type."""
    extension = EXTENSIONS.get(image.content_type, "png")
    return f"easel-{image.generation_id}.{extension}"


def image_filenames(generation_id: int) -> set[str]:
    """Every name `image_filename` can give this generation's image, whatever its type."""
    return {f"easel-{generation_id}.{extension}" for extension in EXTENSIONS.values()}


def image_title(generation_id: int) -> str:
    """The title the uploaded file carries; matched exactly, like the name."""
    return f"Easel image {generation_id}"


def shared_ts(file: dict[str, Any], channel: str) -> str | None:
    """The ts of the message that shares `file` in `channel`, if Slack reports it yet."""
    shares = file.get("shares") or {}
    for kind in ("public", "private"):
        entries = (shares.get(kind) or {}).get(channel) or []
        if entries and entries[0].get("ts"):
            return str(entries[0]["ts"])
    return None
