"""Gemini image models (Nano Banana) through the official `google-genai` SDK (ImageProvider).

Safety blocks are not exceptions in this API: they come back as a 200 whose
candidate ended with a safety finish reason, or whose prompt feedback says blocked.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from adapters.providers.errors import (
    API_KEY_REJECTED,
    TIMED_OUT,
    UNREACHABLE,
    error_for_status,
    parse_retry_after,
)
from core.errors import (
    ContentPolicy,
    InvalidRequest,
    OutcomeUnknown,
    ProviderError,
    RateLimitedByProvider,
    TransientProviderError,
)
from core.models import GeneratedImage, ImageRequest, Images, Parked

# Finish reasons that mean "refused under the content policy", as opposed to "failed".
SAFETY_FINISH_REASONS = frozenset(
    {
        "SAFETY",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",
    }
)
INT32_LIMIT = 2**31
NO_IMAGE = (
    "The image model answered without an image. Try rewording the prompt. Nothing was charged."
)
# What the SDK raises: HTTP errors as APIError; transport errors pass through unwrapped
# from aiohttp (used when installed) or httpx2.
SDK_ERRORS = (genai_errors.APIError, TimeoutError, aiohttp.ClientError, httpx2.TransportError)
# Transport failures before the request left (nothing can have been made or billed).
NOT_SENT = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
    httpx2.ConnectError,
    httpx2.ConnectTimeout,
    httpx2.PoolTimeout,
)


class GoogleImageProvider:
    """`generate_content` with IMAGE output; input images (edits) go in as inline parts."""

    name = "google"

    def __init__(
        self, api_key: str, base_url: str | None = None, timeout_s: float | None = None
    ) -> None:
        """`timeout_s` overrides every model's own `timeout_s` from the catalog (tests)."""
        self._api_key = api_key
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._client = genai.Client(
            api_key=api_key, http_options=http_options(base_url, timeout_s or 120.0)
        )

    async def generate(self, request: ImageRequest) -> Images | Parked:
        """Make the image for `request` and return its bytes."""
        contents: list[Any] = [request.prompt]
        contents += [
            types.Part.from_bytes(data=image.data, mime_type=image.content_type)
            for image in request.input_images
        ]
        model = request.model
        image_config = types.ImageConfig(
            aspect_ratio=request.aspect_ratio,
            # Models without the input (2.5 flash image) make 1K only and may reject it.
            image_size=request.resolution if model.resolution_input else None,
        )
        config = types.GenerateContentConfig(
            response_modalities=["IMAGE"],
            image_config=image_config,
            seed=_int32(request.seed),
            http_options=http_options(self._base_url, self._timeout_s or model.timeout_s),
        )
        try:
            response = await self._client.aio.models.generate_content(
                model=request.model.model_id, contents=contents, config=config
            )
        except SDK_ERRORS as error:
            raise map_google_error(error, self._api_key) from None
        return images_from(response)

    async def resume(self, external_id: str, request: ImageRequest) -> Images | Parked:
        """Gemini answers synchronously, so there is never a parked job to resume."""
        raise InvalidRequest("Gemini image jobs cannot be resumed. Nothing was charged.")

    async def has_model(self, model_id: str) -> bool:
        """Whether the Gemini API knows `model_id` (GET models/{id}); errors mapped."""
        try:
            await self._client.aio.models.get(model=model_id)
        except genai_errors.APIError as error:
            if error.code == 404:
                return False
            raise map_google_error(error, self._api_key) from None
        except SDK_ERRORS as error:
            raise map_google_error(error, self._api_key) from None
        return True

    async def aclose(self) -> None:
        """Close the SDK's HTTP sessions."""
        await self._client.aio.aclose()


def http_options(base_url: str | None, timeout_s: float) -> types.HttpOptions:
    """SDK options: our base URL, a timeout in ms, and no SDK retries (the core retries).

    Setting `retry_options` also turns off the SDK's implicit one-time retry of
    connection errors after a 1-10 s sleep.
    """
    return types.HttpOptions(
        base_url=base_url,
        timeout=int(timeout_s * 1000),
        retry_options=types.HttpRetryOptions(attempts=1),
    )


def images_from(response: types.GenerateContentResponse) -> Images:
    """The final images of a response, or the error its finish/block reason stands for."""
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        if enum_name(feedback.block_reason) != "BLOCKED_REASON_UNSPECIFIED":
            raise ContentPolicy()
    candidate = response.candidates[0] if response.candidates else None
    parts = candidate.content.parts if candidate and candidate.content else None
    images = tuple(
        GeneratedImage(part.inline_data.data, part.inline_data.mime_type or "image/png")
        for part in parts or ()
        # Thinking models also return interim "thought" images: not the answer.
        if part.inline_data is not None and part.inline_data.data and not part.thought
    )
    if images:
        return Images(images)
    if candidate is not None and enum_name(candidate.finish_reason) in SAFETY_FINISH_REASONS:
        raise ContentPolicy()
    raise InvalidRequest(NO_IMAGE)


def map_google_error(error: BaseException, api_key: str) -> ProviderError:
    """The core error for one of `SDK_ERRORS`; never includes the key."""
    if isinstance(error, genai_errors.APIError):
        return _from_api_error(error, api_key)
    if isinstance(error, NOT_SENT):
        return TransientProviderError(UNREACHABLE)
    return OutcomeUnknown(TIMED_OUT)  # sent, and no answer: it may have been made


def _from_api_error(error: genai_errors.APIError, api_key: str) -> ProviderError:
    body = error.details if isinstance(error.details, dict) else {}
    detail_list = (body.get("error") or body).get("details") or []
    reasons = {d.get("reason") for d in detail_list if isinstance(d, dict)}
    # A bad key is a 400 INVALID_ARGUMENT on the Gemini API, not a 401.
    if reasons & {"API_KEY_INVALID", "API_KEY_EXPIRED"}:
        return InvalidRequest(API_KEY_REJECTED)
    headers = getattr(error.response, "headers", None) or {}
    retry_after = headers.get("retry-after") if hasattr(headers, "get") else None
    mapped = error_for_status(
        int(error.code or 0),
        retry_after,
        error.message or "",
        code=error.status,
        secrets=(api_key,),
    )
    if isinstance(mapped, RateLimitedByProvider) and mapped.retry_after_s is None:
        mapped.retry_after_s = _retry_delay(detail_list)
    return mapped


def _retry_delay(details: list[Any]) -> float | None:
    """Seconds from a google.rpc.RetryInfo detail ("retryDelay": "27s"), if present."""
    for detail in details:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            return parse_retry_after(str(detail.get("retryDelay", "")))
    return None


def _int32(seed: int) -> int:
    """The API's seed is an int32; fold wider seeds into range, deterministically."""
    return seed % INT32_LIMIT


def enum_name(value: object) -> str:
    """An SDK enum or plain string as its upper-case name."""
    return str(getattr(value, "value", value) or "").upper()
