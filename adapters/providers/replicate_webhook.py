"""Verifying Replicate's signed webhooks (Standard Webhooks) with the SDK's own validator.

Replicate signs `"{webhook-id}.{webhook-timestamp}.{body}"` with HMAC-SHA256 under the
base64 key after "whsec_", and sends `v1,<base64 signature>` (space-separated when the
key is being rotated). The signing secret comes from GET /v1/webhooks/default/secret.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
from replicate.client import Client
from replicate.exceptions import ReplicateError
from replicate.webhook import (
    InvalidSecretKeyError,
    InvalidSignatureError,
    InvalidTimestampError,
    MissingWebhookBodyError,
    MissingWebhookHeaderError,
    Webhooks,
    WebhookSigningSecret,
)

from adapters.providers.errors import UNREACHABLE, error_for_status
from core.errors import ProviderDown

DEFAULT_TOLERANCE_S = 300
REQUIRED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
SIGNATURE_LABEL = "v1,"
REFETCH_EVERY_S = 60.0


class WebhookRejected(Exception):
    """The request is not a genuine, fresh Replicate webhook; `reason` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def verify_replicate_webhook(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> dict[str, Any]:
    """The prediction payload of a genuine webhook, or WebhookRejected.

    Checks the three headers, the timestamp (within `tolerance_s` of `now`, default the
    clock) and the signature. The caller deduplicates on the `webhook-id` header.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    missing = [name for name in REQUIRED_HEADERS if not lowered.get(name)]
    if missing:
        raise WebhookRejected(f"missing header {', '.join(missing)}")
    _check_timestamp(lowered["webhook-timestamp"], tolerance_s, now)
    # Only "v1," is Standard Webhooks' symmetric scheme; the SDK ignores the label, so a
    # "v0," or "v1a," signature would otherwise be checked as if it were one.
    signatures = [s for s in lowered["webhook-signature"].split() if s.startswith(SIGNATURE_LABEL)]
    if not signatures:
        raise WebhookRejected("no v1 signature")
    lowered["webhook-signature"] = " ".join(signatures)
    try:
        text = body.decode("utf-8")
        # The SDK compares against its own clock; with an explicit `now` (tests, replays)
        # the check above is the one that counts.
        Webhooks.validate(
            headers=lowered,
            body=text,
            secret=WebhookSigningSecret(key=secret),
            tolerance=tolerance_s if now is None else None,
        )
    except MissingWebhookHeaderError as exc:
        raise WebhookRejected("missing header") from exc
    except MissingWebhookBodyError as exc:
        raise WebhookRejected("empty body") from exc
    except InvalidTimestampError as exc:
        raise WebhookRejected("stale timestamp") from exc
    except InvalidSecretKeyError:
        # The SDK's message quotes the secret itself.
        raise WebhookRejected("the configured webhook secret is malformed") from None
    except InvalidSignatureError as exc:
        raise WebhookRejected("bad signature") from exc
    except ValueError as exc:  # undecodable body or signature, not base64
        raise WebhookRejected("bad signature") from exc
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise WebhookRejected("body is not JSON") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
        raise WebhookRejected("body is not a prediction")
    return payload


def _check_timestamp(value: str, tolerance_s: int, now: float | None) -> None:
    try:
        sent_at = int(value)
    except ValueError:
        raise WebhookRejected("invalid timestamp") from None
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_s:
        raise WebhookRejected("stale timestamp")


async def fetch_webhook_secret(client: Client) -> str:
    """The account's webhook signing secret ("whsec_..."), via GET /v1/webhooks/default/secret."""
    try:
        secret = await client.webhooks.default.async_secret()
    except ReplicateError as exc:
        raise error_for_status(exc.status or 500, None, exc.detail or "") from exc
    except httpx.HTTPError as exc:
        raise ProviderDown(UNREACHABLE) from exc
    key: str = secret.key
    return key


class WebhookSecret:
    """The signing secret from Replicate's API, fetched once and again (at most every
    `refetch_every_s`) when a webhook fails verification: the secret may have been rotated."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[str]],
        *,
        refetch_every_s: float = REFETCH_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._refetch_every_s = refetch_every_s
        self._clock = clock
        self._secret: str | None = None
        self._fetched_at = 0.0

    async def current(self) -> str:
        """The secret, fetched on first use."""
        if self._secret is None:
            await self._load()
        assert self._secret is not None
        return self._secret

    async def refetched(self) -> str | None:
        """A freshly fetched secret if it changed, or None (unchanged, or fetched too recently)."""
        if self._secret is not None and self._clock() - self._fetched_at < self._refetch_every_s:
            return None
        before = self._secret
        await self._load()
        return self._secret if self._secret != before else None

    async def _load(self) -> None:
        self._secret = await self._fetch()
        self._fetched_at = self._clock()
