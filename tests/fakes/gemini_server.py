"""A fake Gemini API speaking the real wire format, for the real `google-genai` SDK.

google-genai 3.4 with `HttpOptions(base_url=...)` calls
`POST {base}/{api_version}/models/{model}:generateContent` with the key in
`x-goog-api-key`; api_version is "v1" unless GOOGLE_GENAI_API_VERSION says otherwise,
so the fake serves any version (route key "generateContent").

Defaults: when the request asks for IMAGE output, one real PNG as `inlineData`;
otherwise a text part holding `text_reply` as JSON (for the refiner). A wrong key
gets Google's real answer to a bad key: 400 INVALID_ARGUMENT, reason API_KEY_INVALID.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aiohttp import web

from tests.fakes.openai_server import png_bytes
from tests.fakes.scripted import RecordedRequest, Reply, ScriptedServer

DEFAULT_KEY = "AIza-test-fake-gemini-key-0123456789"
ROUTE = "generateContent"
_SIDE_PX = {"1K": 16, "2K": 32, "4K": 64}


def google_error(
    status: int,
    message: str,
    status_name: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """An error in Google's shape: {"error": {"code", "message", "status", "details"}}."""
    error: dict[str, Any] = {"code": status, "message": message, "status": status_name}
    if details:
        error["details"] = details
    return Reply(status, {"error": error}, headers=headers or {})


def rate_limited(retry_after: str | None = "2", retry_delay: str | None = None) -> Reply:
    """429 RESOURCE_EXHAUSTED, with a Retry-After header and/or a RetryInfo detail."""
    details = []
    if retry_delay is not None:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
        )
    return google_error(
        429,
        "You exceeded your current quota, please check your plan and billing details.",
        "RESOURCE_EXHAUSTED",
        details=details,
        headers={"Retry-After": retry_after} if retry_after is not None else {},
    )


def server_error(status: int = 500) -> Reply:
    name = {500: "INTERNAL", 503: "UNAVAILABLE"}.get(status, "INTERNAL")
    return google_error(status, "An internal error has occurred.", name)


def image_response(
    data: bytes,
    *,
    mime_type: str = "image/png",
    text: str | None = None,
    thought_image: bytes | None = None,
) -> Reply:
    """A successful generateContent answer carrying `data` as an inline image."""
    parts: list[dict[str, Any]] = []
    if text is not None:
        parts.append({"text": text})
    if thought_image is not None:
        parts.append(
            {
                "inlineData": {
                    "mimeType": "image/png",
                    "data": base64.b64encode(thought_image).decode(),
                },
                "thought": True,
            }
        )
    parts.append({"inlineData": {"mimeType": mime_type, "data": base64.b64encode(data).decode()}})
    return _candidates(
        [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}]
    )


def text_response(text: str) -> Reply:
    return _candidates(
        [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ]
    )


def finish_blocked(reason: str = "IMAGE_SAFETY") -> Reply:
    """A candidate that ended without an image because of `reason` (not an HTTP error)."""
    return _candidates(
        [
            {
                "finishReason": reason,
                "index": 0,
                "finishMessage": "Unable to show the generated image.",
            }
        ]
    )


def prompt_blocked(reason: str = "PROHIBITED_CONTENT") -> Reply:
    """The prompt itself was blocked: no candidates, promptFeedback.blockReason."""
    return Reply(
        200,
        {
            "promptFeedback": {"blockReason": reason},
            "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
            "modelVersion": "fake",
        },
    )


def _candidates(candidates: list[dict[str, Any]]) -> Reply:
    return Reply(
        200,
        {
            "candidates": candidates,
            "usageMetadata": {
                "promptTokenCount": 8,
                "candidatesTokenCount": 1290,
                "totalTokenCount": 1298,
            },
            "modelVersion": "fake",
            "responseId": "fake-response",
        },
    )


class FakeGemini(ScriptedServer):
    """Scriptable fake Gemini API; see the module docstring."""

    def __init__(self, api_key: str = DEFAULT_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.text_reply: dict[str, Any] = {
            "intent": "new",
            "prompt": "a fake refined prompt",
            "aspect_ratio": None,
            "resolution": None,
        }
        self.add_route("POST", "/{version}/models/{model_action}", ROUTE, self._generate)
        self.add_route("GET", "/{version}/models/{model}", "models.get", self._model)
        # What GET models/{model} knows; others are 404 (gemini-2.5-flash-image is shut down).
        self.models: set[str] = {"gemini-3.1-flash-image", "gemini-3-pro-image", "gemini-3.5-flash"}

    async def _model(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        model = recorded.match["model"]
        if recorded.headers.get("x-goog-api-key") != self.api_key:
            return google_error(400, "API key not valid.", "INVALID_ARGUMENT").to_response()
        if model not in self.models:
            return google_error(
                404, f"models/{model} is not found for API version v1beta, or is not supported.",
                "NOT_FOUND",
            ).to_response()
        return web.json_response({
            "name": f"models/{model}", "version": "001", "displayName": model,
            "supportedGenerationMethods": ["generateContent"],
        })

    async def _generate(
        self, request: web.Request, recorded: RecordedRequest
    ) -> web.StreamResponse:
        _model, _, action = recorded.match.get("model_action", "").partition(":")
        if action != "generateContent":
            return google_error(404, f"Method {action} not found.", "NOT_FOUND").to_response()
        if recorded.headers.get("x-goog-api-key") != self.api_key:
            return google_error(
                400,
                "API key not valid. Please pass a valid API key.",
                "INVALID_ARGUMENT",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                    }
                ],
            ).to_response()
        config = (recorded.json or {}).get("generationConfig") or {}
        if "IMAGE" in (config.get("responseModalities") or []):
            image_config = config.get("imageConfig") or {}
            side = _SIDE_PX.get(image_config.get("imageSize", "1K"), 16)
            width, height = _shape(image_config.get("aspectRatio", "1:1"), side)
            return image_response(png_bytes(width, height)).to_response()
        return text_response(json.dumps(self.text_reply)).to_response()


def _shape(aspect_ratio: str, side: int) -> tuple[int, int]:
    """A small width x height with roughly the requested ratio (longest side `side`)."""
    w, _, h = aspect_ratio.partition(":")
    ratio_w, ratio_h = (int(w), int(h)) if w.isdigit() and h.isdigit() else (1, 1)
    if ratio_w >= ratio_h:
        return side, max(1, side * ratio_h // ratio_w)
    return max(1, side * ratio_w // ratio_h), side
