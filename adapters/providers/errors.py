"""Turning a provider's HTTP failure into a `core.errors.ProviderError`.

Generic on purpose (status code, Retry-After, the provider's own message), so every
provider adapter maps failures the same way. The provider's text is used to
classify, and is shown to the user only when it cannot carry a secret or a URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from core.errors import (
    ContentPolicy,
    InvalidRequest,
    OutcomeUnknown,
    ProviderDown,
    ProviderError,
    ProviderQuotaExhausted,
    RateLimitedByProvider,
    TransientProviderError,
)

# Codes providers use for a safety refusal (OpenAI GPT image models use the first,
# DALL·E and older endpoints the second; `content_filter` is the chat finish reason).
CONTENT_POLICY_CODES = frozenset(
    {"moderation_blocked", "content_policy_violation", "content_filter"}
)
_CONTENT_POLICY_TEXT = re.compile(
    r"safety system|content[ _]polic|moderation[ _](system|block)|by (our )?moderation"
    r"|content[ _]filter|safety (filter|settings|reason)|prohibited content"
    r"|unsafe (content|generation)|violat\w* (our|the) (usage )?polic",
    re.IGNORECASE,
)
# What a provider message must not contain to be shown: URLs, e-mail addresses and
# long opaque tokens (API keys, request ids, signatures).
_UNSAFE_TEXT = re.compile(r"://|www\.|@|\b(sk|rk|pk|AIza|r8)[-_]|[A-Za-z0-9_\-]{24,}")
MAX_DETAIL_CHARS = 160
# A 429 that is billing, not rate limiting: OpenAI's codes, and Gemini's free tier whose
# quota for the model is zero ("... limit: 0, model: gemini-3-pro-image").
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
_ZERO_QUOTA_TEXT = re.compile(r"\blimit: 0\b")
# Answers from a gateway that gave up waiting: the provider behind it may still be
# making (and billing) the image, so they are not retried.
GATEWAY_GAVE_UP = frozenset({502, 504})

API_KEY_REJECTED = (
    "The image model rejected Easel's API key, so nothing could be made. "
    "An admin needs to check the key in Easel's settings. Nothing was charged."
)
NOT_FOUND = (
    "The image model was not found at the provider; an admin should check the model id "
    "in Easel's model catalog. Nothing was charged."
)
TIMED_OUT = (
    "The image model did not answer in time, and Easel never asks twice for one image. "
    "Nothing was charged; try again."
)
UNREACHABLE = "Easel could not reach the image model. Nothing was charged."


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds, an HTTP date, or "7s"."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text.removesuffix("s")))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def is_content_policy(message: str | None, code: str | None = None) -> bool:
    """Whether a provider's error code or message says its safety system refused."""
    if code and code.lower() in CONTENT_POLICY_CODES:
        return True
    return bool(message and _CONTENT_POLICY_TEXT.search(message))


def safe_detail(message: str | None, secrets: Iterable[str] = ()) -> str | None:
    """The provider's message, shortened, if it cannot leak a secret or a URL, else None."""
    if not message:
        return None
    detail = " ".join(message.split()).rstrip(".")
    if not detail or _UNSAFE_TEXT.search(detail):
        return None
    if any(secret and secret in detail for secret in secrets):
        return None
    if len(detail) > MAX_DETAIL_CHARS:
        detail = detail[:MAX_DETAIL_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return detail


def is_quota(status: int, message: str | None, code: str | None = None) -> bool:
    """Whether a refusal means this account is out of quota or credit (billing)."""
    if status == 402:
        return True
    return status == 429 and (
        (code or "").lower() in QUOTA_CODES or bool(_ZERO_QUOTA_TEXT.search(message or ""))
    )


def error_for_status(
    status: int,
    retry_after: str | None,
    message: str,
    *,
    code: str | None = None,
    secrets: Iterable[str] = (),
) -> ProviderError:
    """The ProviderError for an HTTP failure `status` with the provider's `message`/`code`.

    `secrets` (the API key) are never shown even if the provider echoed them.
    """
    if status in (400, 422) and is_content_policy(message, code):
        return ContentPolicy()
    if is_quota(status, message, code):
        return ProviderQuotaExhausted()
    if status in (401, 403):
        return InvalidRequest(API_KEY_REJECTED)
    if status == 404:
        return InvalidRequest(NOT_FOUND)
    if status == 429:
        return RateLimitedByProvider(retry_after_s=parse_retry_after(retry_after))
    if status == 408:
        # The server gave up waiting for the request before working on it.
        return TransientProviderError(retry_after_s=parse_retry_after(retry_after))
    if status == 409:
        # A conflict (e.g. a concurrent request on the same resource) clears by itself.
        return TransientProviderError(retry_after_s=parse_retry_after(retry_after))
    if status in GATEWAY_GAVE_UP:
        return OutcomeUnknown()
    if status >= 500:
        # The provider answered that it failed: no image, nothing billed; retried.
        return ProviderDown(retry_after_s=parse_retry_after(retry_after))
    return invalid_request(message, secrets)


def invalid_request(message: str | None, secrets: Iterable[str] = ()) -> InvalidRequest:
    """InvalidRequest that says what was wrong when the provider's words are safe to show."""
    detail = safe_detail(message, secrets)
    if detail is None:
        return InvalidRequest()
    end = "" if detail.endswith("…") else "."
    return InvalidRequest(
        f"The image model could not accept this request: {detail}{end} Nothing was charged."
    )
