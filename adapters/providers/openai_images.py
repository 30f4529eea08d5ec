"""OpenAI GPT image models through the official `openai` SDK (ImageProvider)."""

from __future__ import annotations

import base64
import binascii
from typing import Literal

import openai

from adapters.providers.errors import TIMED_OUT, UNREACHABLE, error_for_status
from core.errors import InvalidRequest, ProviderError, TransientProviderError
from core.models import GeneratedImage, ImageRequest, Images, InputImage, Parked

# The three sizes GPT image models accept; the request's aspect ratio picks the nearest.
SQUARE, LANDSCAPE, PORTRAIT = "1024x1024", "1536x1024", "1024x1536"
Quality = Literal["low", "medium", "high"]
QUALITY_BY_RESOLUTION: dict[str, Quality] = {"1K": "low", "2K": "medium", "4K": "high"}
_EXTENSION_BY_TYPE = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class OpenAIImageProvider:
    """`images.generate` for new images, `images.edit` when input images are given."""

    name = "openai"

    def __init__(self, api_key: str, base_url: str | None = None, timeout_s: float = 120.0) -> None:
        self._api_key = api_key
        # The core owns the retry policy, so the SDK must not retry on its own.
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
        )

    async def generate(self, request: ImageRequest) -> Images | Parked:
        """Make the image for `request` and return its PNG bytes."""
        size = size_for(request.aspect_ratio)
        quality = quality_for(request.resolution)
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
                )
            else:
                response = await self._client.images.generate(
                    model=request.model.model_id,
                    prompt=request.prompt,
                    size=size,
                    quality=quality,
                    output_format="png",
                    n=1,
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

    async def aclose(self) -> None:
        """Close the SDK's HTTP connections."""
        await self._client.close()


def size_for(aspect_ratio: str) -> str:
    """The OpenAI size nearest to `aspect_ratio` ("16:9" -> 1536x1024)."""
    width, _, height = aspect_ratio.partition(":")
    try:
        ratio = float(width) / float(height)
    except (ValueError, ZeroDivisionError):
        raise InvalidRequest(
            f"The aspect ratio '{aspect_ratio}' is not one OpenAI images accept. "
            "Nothing was charged."
        ) from None
    if ratio > 1.0:
        return LANDSCAPE
    if ratio < 1.0:
        return PORTRAIT
    return SQUARE


def quality_for(resolution: str) -> Quality:
    """OpenAI's quality for a catalog resolution (1K low, 2K medium, 4K high)."""
    try:
        return QUALITY_BY_RESOLUTION[resolution]
    except KeyError:
        raise InvalidRequest(
            f"The resolution '{resolution}' is not one OpenAI images offer. Nothing was charged."
        ) from None


def map_openai_error(error: openai.OpenAIError, api_key: str) -> ProviderError:
    """The core error for an `openai` SDK error; never includes the key or raw provider text
    that could hold one."""
    if isinstance(error, openai.APITimeoutError):
        return TransientProviderError(TIMED_OUT)
    if isinstance(error, openai.APIConnectionError):
        return TransientProviderError(UNREACHABLE)
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
