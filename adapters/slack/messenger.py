"""The outbound half of the Slack adapter: posts and edits through the Web API.

Needs only the bot token, so any worker process can report progress and deliver
images without an Events API or Socket Mode connection. Slack's 429s are waited
out by slack_sdk's rate-limit retry handler (it honours Retry-After); every other
Slack error propagates as `slack_sdk.errors.SlackApiError`, whose text holds the
method URL and Slack's answer, never the token.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
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
            filename=image_filename(image), title=f"Easel image {image.generation_id}",
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


def image_filename(image: ImageDelivery) -> str:
    """`easel-<generation>.<ext>` from the image's content type."""
    extension = EXTENSIONS.get(image.content_type, "png")
    return f"easel-{image.generation_id}.{extension}"


def shared_ts(file: dict[str, Any], channel: str) -> str | None:
    """The ts of the message that shares `file` in `channel`, if Slack reports it yet."""
    shares = file.get("shares") or {}
    for kind in ("public", "private"):
        entries = (shares.get(kind) or {}).get(channel) or []
        if entries and entries[0].get("ts"):
            return str(entries[0]["ts"])
    return None
