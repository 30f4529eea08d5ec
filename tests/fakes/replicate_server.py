"""A fake Replicate API speaking the real wire format, for the real `replicate` SDK.

Routes (the SDK's `base_url` is `fake.base_url`):
- POST /v1/models/{owner}/{name}/predictions   route key "models.predictions.create"
- POST /v1/predictions (with "version")         route key "predictions.create"
- GET  /v1/predictions/{id}                     route key "predictions.get"
- POST /v1/predictions/{id}/cancel              route key "predictions.cancel"
- GET  /v1/webhooks/default/secret              route key "webhooks.secret"
- GET  /v1/models/{owner}/{name}                 route key "models.get" (404 unless in `models`)
- GET  /files/{id}.png (public, like replicate.delivery)  route key "files"

A prediction is "starting" when created, "processing" on the GETs before the
`polls_to_finish`-th, and then ends as `outcome` says ("succeeded", "failed", "nsfw",
"interrupted", "canceled"). `finish()` ends one at once (webhook-mode tests). The
output is a URL served here with real PNG bytes (Pillow), or a list of it, or a data:
URI (`output_style`). `deliver_webhook()` POSTs the prediction to its webhook URL,
signed as Replicate signs (Standard Webhooks) with the secret the API serves.
Errors in Replicate's shape are queued per route with `script(route, [replicate_error(...)])`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from PIL import Image

from tests.fakes.scripted import RecordedRequest, Reply, ScriptedServer

DEFAULT_TOKEN = "r8_FakeReplicateToken0123456789abcdefXYZ"
# A Standard Webhooks secret: "whsec_" + base64 of the key bytes (deterministic here).
DEFAULT_SECRET = "whsec_" + base64.b64encode(hashlib.sha256(b"easel-fake").digest()[:24]).decode()
CREATED_AT = "2026-11-01T12:00:00.000000Z"
STARTED_AT = "2026-11-01T12:00:01.000000Z"
COMPLETED_AT = "2026-11-01T12:00:04.000000Z"
# The words Replicate uses for these outcomes.
ERRORS = {
    "failed": "Invalid input: the model could not process this prompt",
    "nsfw": "NSFW content detected. Try running it again, or try a different prompt.",
    "interrupted": "Prediction interrupted; please retry (code: PA)",
}
TERMINAL = ("succeeded", "failed", "canceled")
# The input schemas of the models the fake hosts (from their Replicate model pages):
# an input outside an enum is refused with 422, as Replicate refuses it.
MODEL_INPUTS: dict[str, dict[str, Any]] = {
    "black-forest-labs/flux-1.1-pro": {
        "aspect_ratio": {
            "enum": ["custom", "1:1", "16:9", "3:2", "2:3", "4:5", "5:4", "9:16", "3:4", "4:3"]
        },
    },
}


def replicate_error(
    status: int, detail: str, *, title: str | None = None, retry_after: int | None = None
) -> Reply:
    """An API error as Replicate sends it: RFC 7807 problem details."""
    headers = {"Content-Type": "application/problem+json"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    body = {"title": title or detail, "detail": detail, "status": status}
    return Reply(status, body, headers=headers)


def png_for(prompt: str, aspect_ratio: str = "1:1") -> bytes:
    """A real, deterministic PNG whose colour comes from the prompt, 64 px on its long side."""
    try:
        width_part, height_part = (int(p) for p in aspect_ratio.split(":"))
    except ValueError:
        width_part, height_part = 1, 1
    scale = 64 / max(width_part, height_part)
    size = (max(1, round(width_part * scale)), max(1, round(height_part * scale)))
    color = tuple(hashlib.sha256(prompt.encode()).digest()[:3])
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class FakePrediction:
    id: str
    model: str
    version: str
    input: dict[str, Any]
    webhook: str | None
    webhook_events_filter: list[str] | None
    outcome: str
    status: str = "starting"
    polls: int = 0
    error: str | None = None
    output: Any = None


@dataclass(frozen=True)
class WebhookDelivery:
    """One webhook POST the fake sent, and how the receiver answered."""

    url: str
    headers: dict[str, str]
    body: bytes
    status: int
    response_text: str


class FakeReplicate(ScriptedServer):
    """The fake API; `predictions`, `deliveries` and `requests` are its recorded state."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        secret: str = DEFAULT_SECRET,
        polls_to_finish: int = 2,
        outcome: str = "succeeded",
        output_style: str = "url",
    ) -> None:
        super().__init__()
        self.token = token
        self.secret = secret
        self.polls_to_finish = polls_to_finish
        self.outcome = outcome  # for predictions created from now on
        self.output_style = output_style  # "url" | "list" | "data_uri"
        self.files_expired = False
        self.predictions: dict[str, FakePrediction] = {}
        self.deliveries: list[WebhookDelivery] = []
        self.models: set[str] = set(MODEL_INPUTS)  # what GET /v1/models/{owner}/{name} knows
        models_path = "/v1/models/{owner}/{name}/predictions"
        self.add_route("POST", models_path, "models.predictions.create", self._create)
        self.add_route("POST", "/v1/predictions", "predictions.create", self._create)
        self.add_route("GET", "/v1/predictions/{id}", "predictions.get", self._get)
        self.add_route("POST", "/v1/predictions/{id}/cancel", "predictions.cancel", self._cancel)
        self.add_route("GET", "/v1/webhooks/default/secret", "webhooks.secret", self._secret)
        self.add_route("GET", "/files/{id}.png", "files", self._file)
        self.add_route("GET", "/v1/models/{owner}/{name}", "models.get", self._model)

    # --- state a test drives ----------------------------------------------------------

    def finish(self, prediction_id: str, outcome: str | None = None) -> FakePrediction:
        """End a prediction now, as `outcome` (default: the one it was created with)."""
        prediction = self.predictions[prediction_id]
        outcome = outcome or prediction.outcome
        if outcome == "succeeded":
            prediction.status = "succeeded"
            prediction.output = self._output(prediction)
        elif outcome == "canceled":
            prediction.status = "canceled"
        else:
            prediction.status = "failed"
            prediction.error = ERRORS.get(outcome, outcome)
        return prediction

    def image_for(self, prediction_id: str) -> bytes:
        """The PNG bytes a succeeded prediction's output URL serves."""
        prediction = self.predictions[prediction_id]
        return png_for(
            str(prediction.input.get("prompt", "")),
            str(prediction.input.get("aspect_ratio", "1:1")),
        )

    def prediction_json(self, prediction: FakePrediction) -> dict[str, Any]:
        """The prediction as the API (and the webhook body) shows it."""
        api = f"{self.base_url}/v1/predictions/{prediction.id}"
        is_done = prediction.status in TERMINAL
        return {
            "id": prediction.id,
            "model": prediction.model,
            "version": prediction.version,
            "input": prediction.input,
            "logs": "" if prediction.status == "starting" else "Generating...\n",
            "output": prediction.output,
            "data_removed": False,
            "error": prediction.error,
            "status": prediction.status,
            "source": "api",
            "created_at": CREATED_AT,
            "started_at": None if prediction.status == "starting" else STARTED_AT,
            "completed_at": COMPLETED_AT if is_done else None,
            "metrics": {"predict_time": 3.0} if prediction.status == "succeeded" else {},
            "urls": {
                "cancel": f"{api}/cancel",
                "get": api,
                "stream": f"{self.base_url}/v1/streams/{prediction.id}",
                "web": f"https://replicate.com/p/{prediction.id}",
            },
        }

    async def deliver_webhook(
        self,
        prediction_id: str,
        *,
        url: str | None = None,
        signature_ok: bool = True,
        timestamp: int | None = None,
        webhook_id: str | None = None,
        label: str = "v1",
    ) -> WebhookDelivery:
        """POST the prediction to its webhook URL (or `url`), signed like Replicate does."""
        prediction = self.predictions[prediction_id]
        target = url or prediction.webhook
        if not target:
            raise ValueError(f"prediction {prediction_id} has no webhook URL")
        body = json.dumps(self.prediction_json(prediction)).encode()
        sent_at = int(time.time()) if timestamp is None else timestamp
        message_id = webhook_id or f"msg_{len(self.deliveries) + 1:04d}{prediction_id}"
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        if not signature_ok:
            key = hashlib.sha256(b"not the secret").digest()
        signed = f"{message_id}.{sent_at}.".encode() + body
        signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Replicate-Webhooks/1.0",
            "webhook-id": message_id,
            "webhook-timestamp": str(sent_at),
            "webhook-signature": f"{label},{signature}",
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(target, data=body, headers=headers) as response,
        ):
            delivery = WebhookDelivery(
                target, headers, body, response.status, await response.text()
            )
        self.deliveries.append(delivery)
        return delivery

    # --- handlers ------------------------------------------------------------------------

    def _refuse(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return replicate_error(
                401, "You did not pass a valid authentication token", title="Unauthenticated"
            ).to_response()
        return None

    def _new_id(self) -> str:
        digest = hashlib.sha256(f"prediction-{len(self.predictions)}".encode()).digest()
        return base64.b32encode(digest).decode().lower()[:26]

    async def _create(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        if refused := self._refuse(request):
            return refused
        body = recorded.json if isinstance(recorded.json, dict) else {}
        model_input = body.get("input")
        if not isinstance(model_input, dict) or not model_input.get("prompt"):
            return replicate_error(
                422, "- input: prompt is required", title="Input validation failed"
            ).to_response()
        if "owner" in recorded.match:
            model, version = f"{recorded.match['owner']}/{recorded.match['name']}", "hidden"
            if (refused := _invalid_input(model, model_input)) is not None:
                return refused.to_response()
        elif isinstance(body.get("version"), str):
            model, _, version = body["version"].rpartition(":")
            model = model or "fake/versioned-model"
        else:
            return replicate_error(
                422, "The specified version does not exist", title="Invalid version"
            ).to_response()
        prediction = FakePrediction(
            id=self._new_id(),
            model=model,
            version=version,
            input=model_input,
            webhook=body.get("webhook"),
            webhook_events_filter=body.get("webhook_events_filter"),
            outcome=self.outcome,
        )
        self.predictions[prediction.id] = prediction
        return web.json_response(self.prediction_json(prediction), status=201)

    async def _get(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        if refused := self._refuse(request):
            return refused
        prediction = self.predictions.get(recorded.match["id"])
        if prediction is None:
            return replicate_error(404, "Not found.", title="Not found").to_response()
        if prediction.status not in TERMINAL:
            prediction.polls += 1
            if prediction.polls >= self.polls_to_finish:
                self.finish(prediction.id)
            else:
                prediction.status = "processing"
        return web.json_response(self.prediction_json(prediction))

    async def _cancel(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        if refused := self._refuse(request):
            return refused
        prediction = self.predictions.get(recorded.match["id"])
        if prediction is None:
            return replicate_error(404, "Not found.", title="Not found").to_response()
        if prediction.status not in TERMINAL:
            prediction.status = "canceled"
        return web.json_response(self.prediction_json(prediction))

    async def _secret(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        if refused := self._refuse(request):
            return refused
        return web.json_response({"key": self.secret})

    async def _model(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        if refused := self._refuse(request):
            return refused
        model = f"{recorded.match['owner']}/{recorded.match['name']}"
        if model not in self.models:
            return replicate_error(404, "Not found.", title="Not found").to_response()
        owner, name = model.split("/")
        return web.json_response({
            "url": f"https://replicate.com/{model}", "owner": owner, "name": name,
            "description": "A fake model", "visibility": "public", "github_url": None,
            "paper_url": None, "license_url": None, "run_count": 1, "cover_image_url": None,
            "default_example": None, "latest_version": None,
        })

    async def _file(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        prediction = self.predictions.get(recorded.match["id"])
        if self.files_expired or prediction is None or prediction.status != "succeeded":
            return web.Response(status=404, text="Not Found")
        return web.Response(body=self.image_for(prediction.id), content_type="image/png")

    def _output(self, prediction: FakePrediction) -> Any:
        if self.output_style == "data_uri":
            encoded = base64.b64encode(self.image_for(prediction.id)).decode()
            return f"data:image/png;base64,{encoded}"
        url = f"{self.base_url}/files/{prediction.id}.png"
        return [url] if self.output_style == "list" else url


def _invalid_input(model: str, model_input: dict[str, Any]) -> Reply | None:
    """Replicate's 422 for an input value outside the model's schema enum."""
    for name, schema in MODEL_INPUTS.get(model, {}).items():
        value = model_input.get(name)
        if value is not None and value not in schema["enum"]:
            allowed = ", ".join(f"'{v}'" for v in schema["enum"])
            return replicate_error(
                422, f"- input.{name}: {name} must be one of the following: {allowed}",
                title="Input validation failed",
            )
    return None
