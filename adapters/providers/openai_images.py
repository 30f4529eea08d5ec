"""OpenAI GPT image models through the official `openai` SDK (ImageProvider)."""

from __future__ import annotations

import base64
import binascii
from typing import Literal, cast

import httpx2
import openai

from adapters.providers.errors import TIMED_OUT, UNREACHABLE, error_for_status
from core.errors import InvalidRequest, OutcomeUnknown, ProviderError, TransientProviderError
from core.models import GeneratedImage, ImageRequest, Images, InputImage, ModelSpec, Parked
from core.tiers import openai_size

Quality = Literal["low", "medium", "high", "xhigh", "max"]

# Transport failures before the request left (nothing can have been made or billed).
NOT_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)
_EXTENSION_BY_TYPE = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class OpenAIImageProvider:
    """`images.generate` for new images, `images.edit` when input images are given."""

    name = "openai"

    def __init__(
        self, api_key: str, base_url: str | None = None, timeout_s: float | None = None
    ) -> None:
        """`timeout_s` overrides every model's own `timeout_s` from the catalog (tests)."""
        self._api_key = api_key
        self._timeout_s = timeout_s
        # The core owns the retry policy, so the SDK must not retry on its own.
        self._client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0)

    async def generate(self, request: ImageRequest) -> Images | Parked:
        """Make the image for `request` and return its PNG bytes."""
        size, quality = size_and_quality(request.model, request.aspect_ratio, request.resolution)
        timeout_s = self._timeout_s or request.model.timeout_s
        try:
            if request.input_images:
                response = await self._client.images.edit(
                    model=request.model.model_id,
                    prompt=request.prompt,
                    image=[_as_file(image, i) for i, image in enumerate(request.input_images)],
                    size=size,
                    quality=quality,
                    output_format="png",
                    n=1,
                    timeout=timeout_s,
                )
            else:
                response = await self._client.images.generate(
                    model=request.model.model_id,
                    prompt=request.prompt,
                    size=size,
                    quality=quality,
                    output_format="png",
                    n=1,
                    timeout=timeout_s,
                )
        except openai.OpenAIError as error:
            raise map_openai_error(error, self._api_key) from None
        images = tuple(_decode(item.b64_json) for item in response.data or ())
        if not images:
            raise InvalidRequest("The image model returned no image. Nothing was charged.")
        return Images(images)

    async def resume(self, external_id: str, request: ImageRequest) -> Images | Parked:
        """OpenAI answers synchronously, so there is never a parked job to resume."""
        raise InvalidRequest("OpenAI image jobs cannot be resumed. Nothing was charged.")

    async def has_model(self, model_id: str) -> bool:
        """Whether the account can use `model_id` (GET /v1/models/{id}); errors mapped."""
        try:
            await self._client.models.retrieve(model_id, timeout=self._timeout_s or 30.0)
        except openai.NotFoundError:
            return False
        except openai.OpenAIError as error:
            raise map_openai_error(error, self._api_key) from None
        return True

    async def aclose(self) -> None:
        """Close the SDK's HTTP connections."""
        await self._client.close()


def size_and_quality(model: ModelSpec, aspect_ratio: str, resolution: str) -> tuple[str, Quality]:
    """The `size` ("1536x864") and `quality` a catalog tier sends (core/tiers.py decides)."""
    try:
        width, height = openai_size(model.sizes, aspect_ratio, resolution)
        quality = model.quality[resolution]
    except (KeyError, ValueError):
        raise InvalidRequest(
            f"{model.display_name} does not offer {resolution} at {aspect_ratio}. "
            "Nothing was charged."
        ) from None
    return f"{width}x{height}", cast(Quality, quality)


def map_openai_error(error: openai.OpenAIError, api_key: str) -> ProviderError:
    """The core error for an `openai` SDK error; never includes the key or raw provider text
    that could hold one."""
    if isinstance(error, openai.APIConnectionError):  # APITimeoutError too
        if isinstance(error.__cause__, NOT_SENT):
            return TransientProviderError(UNREACHABLE)
        return OutcomeUnknown(TIMED_OUT)  # sent, and no answer: it may have been made
    if isinstance(error, openai.APIStatusError):
        headers = error.response.headers
        retry_after = headers.get("retry-after")
        if retry_after_ms := headers.get("retry-after-ms"):
            retry_after = _ms_to_seconds(retry_after_ms) or retry_after
        body = error.body if isinstance(error.body, dict) else {}
        message = str(body.get("message") or "")
        return error_for_status(
            error.status_code, retry_after, message, code=error.code, secrets=(api_key,)
        )
    return InvalidRequest()


def _ms_to_seconds(value: str) -> str | None:
    try:
        return str(float(value) / 1000.0)
    except ValueError:
        return None


def _as_file(image: InputImage, index: int) -> tuple[str, bytes, str]:
    """A (filename, bytes, content type) upload; the API checks the type by extension too."""
    extension = _EXTENSION_BY_TYPE.get(image.content_type, "png")
    stem = image.name.rsplit(".", 1)[0] or "image"
    return (f"{stem}-{index}.{extension}", image.data, image.content_type)


def _decode(b64_json: str | None) -> GeneratedImage:
    """PNG bytes from `data[i].b64_json` (we always ask for output_format png)."""
    try:
        data = base64.b64decode(b64_json or "", validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if not data:
        raise InvalidRequest("The image model returned an unreadable image. Nothing was charged.")
    return GeneratedImage(data, "image/png")
