"""Replicate as an `ImageProvider`, through the official `replicate` SDK.

With a webhook URL the prediction is created and parked at once (the signed webhook or
the sweeper calls `resume`); without one it is polled here until it finishes. The
SDK does not retry POSTs and the core owns the retry policy, so nothing here retries
beyond status polling. (The SDK's transport still retries GETs on 429/503/504 by
itself, honouring Retry-After; that cannot be turned off through its public API.)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from contextvars import ContextVar
from typing import Any

import httpx
from replicate.client import Client
from replicate.exceptions import ReplicateError
from replicate.prediction import Prediction

from adapters.providers.errors import (
    TIMED_OUT,
    UNREACHABLE,
    error_for_status,
    invalid_request,
    is_content_policy,
)
from core.errors import (
    ContentPolicy,
    GenerationTimedOut,
    InvalidRequest,
    OutcomeUnknown,
    ProviderDown,
    ProviderError,
    TransientProviderError,
)
from core.models import GeneratedImage, ImageRequest, Images, InputImage, Parked

RUNNING = frozenset({"starting", "processing"})
# Transport failures before the request left: nothing was created at Replicate.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
DOWNLOAD_TIMEOUT_S = 60.0
# Replicate's own words for a safety refusal ("NSFW content detected", "flagged as
# sensitive (E005)"), on top of the wording every provider shares.
_REPLICATE_SAFETY = re.compile(r"nsfw|sensitive|safety|flagged", re.IGNORECASE)
# Replicate's wording for a run that died for infrastructure reasons ("Prediction
# interrupted; please retry (code: PA)"): worth another try, not the user's fault.
_REPLICATE_RETRY = re.compile(r"please retry|interrupted", re.IGNORECASE)
CANCELED = (
    "The image job was cancelled at the image provider before it finished. Nothing was charged."
)
EXPIRED = (
    "The finished image expired at the image provider before Easel could fetch it. "
    "Nothing was charged."
)
NO_IMAGE = "The image model finished without returning an image. Nothing was charged."

# Retry-After of the last API response in this task: ReplicateError keeps the status
# but drops the headers, so an httpx response hook remembers it for the error mapping.
_retry_after: ContextVar[str | None] = ContextVar("replicate_retry_after", default=None)


async def _remember_retry_after(response: httpx.Response) -> None:
    _retry_after.set(response.headers.get("retry-after"))


def data_uri(image: InputImage) -> str:
    """An input image as a `data:` URI, which Replicate accepts for file inputs."""
    return f"data:{image.content_type};base64,{base64.b64encode(image.data).decode()}"


def sniff_content_type(data: bytes) -> str | None:
    """The image type from the file's first bytes, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


class ReplicateImageProvider:
    """`core.ports.ImageProvider` for models hosted on Replicate ("owner/name" ids)."""

    name = "replicate"

    def __init__(
        self,
        api_token: str,
        base_url: str | None = None,
        poll_interval_s: float = 1.0,
        timeout_s: float | None = None,
    ) -> None:
        """`timeout_s` overrides every model's own `timeout_s` from the catalog (tests)."""
        self._api_token = api_token
        self.poll_interval_s = poll_interval_s
        self.timeout_s = timeout_s
        self.client = Client(
            api_token=api_token,
            base_url=base_url,
            event_hooks={"response": [_remember_retry_after]},
        )

    async def generate(self, request: ImageRequest) -> Images | Parked:
        """Create the prediction; park it if a webhook will call back, else wait for it."""
        prediction = await self._api(self._create(request), creates=True)
        if request.webhook_url:
            return Parked(prediction.id)
        return await self._wait(prediction, request)

    async def resume(self, external_id: str, request: ImageRequest) -> Images | Parked:
        """Look at a parked prediction: its images, still `Parked`, or its mapped failure.

        Without a webhook it is polled here again: the same prediction, never a new one.
        """
        try:
            prediction = await self._api(self.client.predictions.async_get(external_id))
        except TransientProviderError:
            return Parked(external_id)  # the sweeper looks again later
        if prediction.status in RUNNING:
            return Parked(external_id) if request.webhook_url else await self._wait(
                prediction, request)
        return await self._finish(prediction)

    async def cancel(self, external_id: str) -> None:
        """Cancel a prediction nobody will collect (`core.ports.CancellableProvider`)."""
        await self._api(self.client.predictions.async_cancel(external_id))

    async def _wait(self, prediction: Prediction, request: ImageRequest) -> Images | Parked:
        """Poll until the prediction ends; past the model's timeout, cancel it and give up.

        A failed poll parks the prediction (its id is kept) instead of failing: a retry
        must resume it, not pay for another.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout_s or request.model.timeout_s)
        try:
            while prediction.status in RUNNING:
                if loop.time() >= deadline:
                    await self._cancel_quietly(prediction.id)
                    raise GenerationTimedOut()
                await asyncio.sleep(self.poll_interval_s)
                try:
                    prediction = await self._api(
                        self.client.predictions.async_get(prediction.id))
                except TransientProviderError:
                    return Parked(prediction.id)
        except asyncio.CancelledError:  # the generation's deadline, or a shutdown
            await asyncio.shield(self._cancel_quietly(prediction.id))
            raise
        return await self._finish(prediction)

    async def has_model(self, model_id: str) -> bool:
        """Whether Replicate has the model "owner/name" (GET /v1/models/{owner}/{name})."""
        try:
            await self.client.models.async_get(model_id)
        except ReplicateError as exc:
            if exc.status == 404:
                return False
            raise self._error_for(exc) from exc
        except httpx.HTTPError as exc:
            raise ProviderDown(UNREACHABLE) from exc
        return True

    def build_input(self, request: ImageRequest) -> dict[str, Any]:
        """The model input; image inputs use the FLUX Kontext names (input_image[s])."""
        model_input: dict[str, Any] = {
            "prompt": request.prompt,
            "aspect_ratio": request.aspect_ratio,
            "seed": request.seed,
        }
        if request.input_images:
            uris = [data_uri(image) for image in request.input_images]
            model_input["input_image"] = uris[0]
            if len(uris) > 1:
                model_input["input_images"] = uris
        return model_input

    async def _create(self, request: ImageRequest) -> Prediction:
        model_input = self.build_input(request)
        if request.webhook_url:
            return await self.client.predictions.async_create(
                model=request.model.model_id,
                input=model_input,
                webhook=request.webhook_url,
                webhook_events_filter=["completed"],
            )
        return await self.client.predictions.async_create(
            model=request.model.model_id, input=model_input
        )

    async def _api(self, call: Any, *, creates: bool = False) -> Prediction:
        """Await an SDK call, mapping its failures to `core.errors` (never with the token).

        A create that was sent and got no answer may have started a prediction that will
        be billed: that is OutcomeUnknown, never retried. A GET is always safe to repeat.
        """
        _retry_after.set(None)
        try:
            prediction: Prediction = await call
        except ReplicateError as exc:
            raise self._error_for(exc) from exc
        except NOT_SENT as exc:
            raise ProviderDown(UNREACHABLE) from exc
        except httpx.HTTPError as exc:
            if creates:
                raise OutcomeUnknown(TIMED_OUT) from exc
            raise TransientProviderError(UNREACHABLE) from exc
        return prediction

    def _error_for(self, exc: ReplicateError) -> ProviderError:
        message = " ".join(part for part in (exc.title, exc.detail) if part)
        status = exc.status or 500
        if status in (400, 422) and _REPLICATE_SAFETY.search(message):
            return ContentPolicy()
        return error_for_status(status, _retry_after.get(), message, secrets=(self._api_token,))

    async def _cancel_quietly(self, prediction_id: str) -> None:
        # Stop paying for a run nobody will wait for.
        try:
            await self.client.predictions.async_cancel(prediction_id)
        except (ReplicateError, httpx.HTTPError):
            pass

    async def _finish(self, prediction: Prediction) -> Images:
        if prediction.status == "succeeded":
            urls = _output_urls(prediction.output)
            if not urls:
                raise InvalidRequest(NO_IMAGE)
            return Images(tuple([await _download(url) for url in urls]))
        if prediction.status == "canceled":
            raise InvalidRequest(CANCELED)
        raise self._failure_for(prediction.error)

    def _failure_for(self, error: Any) -> ProviderError:
        text = str(error or "")
        if is_content_policy(text) or _REPLICATE_SAFETY.search(text):
            return ContentPolicy()
        if _REPLICATE_RETRY.search(text):
            return TransientProviderError()
        return invalid_request(text, secrets=(self._api_token,))


def _output_urls(output: Any) -> list[str]:
    """Output URLs from a string, a `FileOutput`, or a list of either."""
    items = output if isinstance(output, list | tuple) else [output]
    urls: list[str] = []
    for item in items:
        url = getattr(item, "url", item)  # FileOutput wraps https:/data: URLs
        if isinstance(url, str) and url:
            urls.append(url)
    return urls


async def _download(url: str) -> GeneratedImage:
    """The bytes behind an output URL (`data:` URIs are decoded in place)."""
    header_type: str | None = None
    if url.startswith("data:"):
        meta, _, encoded = url.partition(",")
        header_type = meta.removeprefix("data:").split(";", 1)[0] or None
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequest(NO_IMAGE) from exc
    else:
        # Output URLs are public: they get no Authorization header (it is not ours to send).
        try:
            async with httpx.AsyncClient(timeout=DOWNLOAD_TIMEOUT_S) as http:
                response = await http.get(url, follow_redirects=True)
        except httpx.TimeoutException as exc:
            raise TransientProviderError(TIMED_OUT) from exc
        except httpx.HTTPError as exc:
            raise ProviderDown(UNREACHABLE) from exc
        if response.status_code in (404, 410):
            raise InvalidRequest(EXPIRED)
        if response.status_code >= 400:
            raise ProviderDown(UNREACHABLE)
        data = response.content
        header_type = response.headers.get("content-type", "").split(";", 1)[0] or None
    content_type = sniff_content_type(data) or header_type
    if not data or not content_type or not content_type.startswith("image/"):
        raise InvalidRequest(NO_IMAGE)
    return GeneratedImage(data=data, content_type=content_type)
