"""Files people attach to Slack messages, downloaded with the bot token.

`url_private` needs `Authorization: Bearer <bot token>`; without it (or without
the files:read scope) Slack answers with its HTML sign-in page and status 200,
so the content type is checked rather than the status alone. The token is only
ever sent to Slack's own hosts (or the host of SLACK_API_URL, for tests and
proxies). Whether the bytes are an image Easel can use is the core's check
(`core.uploads.check_upload`): a PDF is passed on and refused there in words.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from core.errors import BadUpload
from core.submit import Upload
from core.text import shown

log = logging.getLogger("easel.slack")

DOWNLOAD_TIMEOUT_S = 60.0
CHUNK_BYTES = 64 * 1024
SLACK_DOMAIN = "slack.com"


class SlackFiles:
    """Downloads the files of one message as `core.submit.Upload`s."""

    def __init__(self, token: str, *, api_url: str | None, max_bytes: int) -> None:
        self._token = token
        self._extra_host = urlsplit(api_url).hostname if api_url else None
        self.max_bytes = max_bytes

    async def fetch(self, files: Sequence[Mapping[str, Any]]) -> tuple[Upload, ...]:
        """Every file's bytes, or BadUpload saying which one could not be fetched."""
        if not files:
            return ()
        timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            return tuple([await self._fetch_one(session, file) for file in files])

    def is_trusted(self, url: str) -> bool:
        """Whether `url` is Slack's (so the bot token may be sent to it)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if host == self._extra_host:
            return True
        return parts.scheme == "https" and (host == SLACK_DOMAIN
                                            or host.endswith("." + SLACK_DOMAIN))

    async def _fetch_one(self, session: aiohttp.ClientSession,
                         file: Mapping[str, Any]) -> Upload:
        name = str(file.get("name") or file.get("title") or "attachment")
        url = str(file.get("url_private_download") or file.get("url_private") or "")
        if not url or not self.is_trusted(url):
            log.warning("slack file %s has no Slack download URL", file.get("id"))
            raise _not_downloaded(name)
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with session.get(url, headers=headers) as response:
                content_type = response.content_type
                if response.status != 200 or _is_sign_in_page(content_type, file):
                    # Never log the URL's query or the headers: only the file id and status.
                    log.warning("slack file %s: download answered %s %s", file.get("id"),
                                response.status, content_type)
                    raise _not_downloaded(name)
                data = await _read_at_most(response, self.max_bytes, name)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("slack file %s: download failed: %s", file.get("id"), type(exc).__name__)
            raise _not_downloaded(name) from None
        return Upload(data, name, content_type)


def _is_sign_in_page(content_type: str, file: Mapping[str, Any]) -> bool:
    # An HTML answer for a file that is not itself HTML is Slack's sign-in page.
    return content_type == "text/html" and file.get("mimetype") != "text/html"


async def _read_at_most(response: aiohttp.ClientResponse, max_bytes: int, name: str) -> bytes:
    """The body, stopping (and refusing) as soon as it passes `max_bytes`."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise BadUpload(
                f"{shown(name)} is larger than the upload limit of {max_bytes:,} bytes. "
                "Nothing was charged.")
        chunks.append(chunk)
    return b"".join(chunks)


def _not_downloaded(name: str) -> BadUpload:
    return BadUpload(
        f"Easel could not download {name} from Slack (the app may lack the files:read "
        "scope). Nothing was charged.")
