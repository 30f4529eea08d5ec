"""A fake OpenAI API speaking the real wire format, for the real `openai` SDK.

Routes (the SDK's base URL is `fake.base_url + "/v1"`, see `sdk_base_url`):
- POST /v1/images/generations  (JSON)            route key "images/generations"
- POST /v1/images/edits        (multipart image[]) route key "images/edits"
- POST /v1/chat/completions    (JSON)            route key "chat/completions"
- GET  /v1/models/{model}                        route key "models.retrieve" (404 unless in `models`)

Defaults: images answer with real small PNGs (Pillow) as `b64_json`, sized 1/64 of
the requested size so the aspect ratio survives; chat answers `chat_reply` (JSON
text). Requests with a bearer token other than `api_key` get OpenAI's real 401.
"""

from __future__ import annotations

import base64
import io
import json
import time
from typing import Any

from aiohttp import web
from PIL import Image

from tests.fakes.scripted import RecordedRequest, Reply, ScriptedServer

DEFAULT_KEY = "sk-test-fake-openai-key-0123456789"


def png_bytes(
    width: int = 16, height: int = 16, color: tuple[int, int, int] = (40, 90, 200)
) -> bytes:
    """A real, deterministic PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def openai_error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """An error in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return Reply(status, body, headers=headers or {})


def moderation_blocked() -> Reply:
    """The 400 that GPT image models return when the safety system refuses a prompt."""
    return openai_error(
        400,
        "Your request was rejected by the safety system. If you believe this is an error, "
        "contact us at help.openai.com and include the request ID req_123. "
        "safety_violations=[violence].",
        type="image_generation_user_error",
        code="moderation_blocked",
        param="",
    )


def rate_limited(retry_after: str = "1") -> Reply:
    return openai_error(
        429,
        "Rate limit reached for images per minute. Please try again in 1s.",
        type="requests",
        code="rate_limit_exceeded",
        headers={"Retry-After": retry_after},
    )


def server_error() -> Reply:
    return openai_error(
        500, "The server had an error while processing your request.", type="server_error"
    )


def chat_completion(
    content: str | dict[str, Any],
    *,
    refusal: str | None = None,
    finish_reason: str = "stop",
    model: str = "gpt-5-mini",
) -> Reply:
    """A chat.completions answer whose message content is `content` (dicts become JSON)."""
    text = json.dumps(content) if isinstance(content, dict) else content
    return Reply(
        200,
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": finish_reason,
                    "message": {
                        "role": "assistant",
                        "content": None if refusal else text,
                        "refusal": refusal,
                        "annotations": [],
                    },
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        },
    )


class FakeOpenAI(ScriptedServer):
    """Scriptable fake OpenAI server; see the module docstring for routes and defaults."""

    def __init__(self, api_key: str = DEFAULT_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.chat_reply: dict[str, Any] = {
            "intent": "new",
            "prompt": "a fake refined prompt",
            "aspect_ratio": None,
            "resolution": None,
        }
        self.add_route("POST", "/v1/images/generations", "images/generations", self._images)
        self.add_route("POST", "/v1/images/edits", "images/edits", self._images)
        self.add_route("POST", "/v1/chat/completions", "chat/completions", self._chat)
        self.add_route("GET", "/v1/models/{model}", "models.retrieve", self._model)
        # What GET /v1/models/{model} knows (the account's models); others are 404.
        self.models: set[str] = {
            "gpt-image-2", "gpt-image-2.5-flare", "gpt-image-2.5-sunburst",
            "gpt-image-2.6-flare", "gpt-image-2.6-sunburst", "gpt-5.4-mini", "gpt-5.4-nano",
        }

    @property
    def sdk_base_url(self) -> str:
        """What to pass as `AsyncOpenAI(base_url=...)`."""
        return f"{self.base_url}/v1"

    def _unauthorized(self, recorded: RecordedRequest) -> web.Response | None:
        header = recorded.headers.get("authorization", "")
        if header == f"Bearer {self.api_key}":
            return None
        sent = header.removeprefix("Bearer ")
        # The real API echoes (part of) the key; echo it whole so tests prove we never do.
        return openai_error(
            401,
            f"Incorrect API key provided: {sent}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        ).to_response()

    async def _images(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        if (refused := self._unauthorized(recorded)) is not None:
            return refused
        params = (
            recorded.json
            if isinstance(recorded.json, dict)
            else {name: values[0] for name, values in recorded.fields.items()}
        )
        size = str(params.get("size") or "1024x1024")
        width, height = (int(v) for v in size.split("x")) if "x" in size else (1024, 1024)
        count = int(params.get("n") or 1)
        image = base64.b64encode(png_bytes(width // 64, height // 64)).decode()
        return web.json_response(
            {
                "created": int(time.time()),
                "data": [{"b64_json": image} for _ in range(count)],
                "output_format": params.get("output_format", "png"),
                "quality": params.get("quality", "medium"),
                "size": size,
                "usage": {
                    "input_tokens": 10,
                    "input_tokens_details": {"image_tokens": 0, "text_tokens": 10},
                    "output_tokens": 100,
                    "total_tokens": 110,
                },
            }
        )

    async def _model(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        if (refused := self._unauthorized(recorded)) is not None:
            return refused
        model = recorded.match["model"]
        if model not in self.models:
            return openai_error(
                404, f"The model '{model}' does not exist or you do not have access to it.",
                code="model_not_found",
            ).to_response()
        return web.json_response(
            {"id": model, "object": "model", "created": 1_760_000_000, "owned_by": "openai"}
        )

    async def _chat(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        if (refused := self._unauthorized(recorded)) is not None:
            return refused
        return chat_completion(self.chat_reply).to_response()
