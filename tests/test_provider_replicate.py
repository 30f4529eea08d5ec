"""ReplicateImageProvider and webhook verification, through the real replicate SDK
against the fake Replicate API (tests/fakes/replicate_server.py)."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from adapters.providers.replicate_images import ReplicateImageProvider
from adapters.providers.replicate_webhook import (
    WebhookRejected,
    fetch_webhook_secret,
    verify_replicate_webhook,
)
from core.errors import (
    ContentPolicy,
    GenerationTimedOut,
    InvalidRequest,
    ProviderDown,
    ProviderError,
    ProviderQuotaExhausted,
    RateLimitedByProvider,
    TransientProviderError,
)
from core.models import ImageRequest, Images, InputImage, ModelSpec, Parked
from tests.fakes.replicate_server import (
    DEFAULT_SECRET,
    DEFAULT_TOKEN,
    FakeReplicate,
    png_for,
    replicate_error,
)
from tests.fakes.scripted import Reply

FLUX = ModelSpec(
    name="flux",
    provider="replicate",
    model_id="black-forest-labs/flux-1.1-pro",
    display_name="FLUX 1.1 Pro",
    credits={"1K": 6},
    aspect_ratios=("1:1", "16:9"),
    can_edit=False,
)
CREATE = "models.predictions.create"


def image_request(**changes: Any) -> ImageRequest:
    values: dict[str, Any] = {
        "model": FLUX,
        "prompt": "a lighthouse at dusk, oil painting",
        "aspect_ratio": "16:9",
        "resolution": "1K",
        "seed": 42,
        "generation_id": 1,
    }
    values.update(changes)
    return ImageRequest(**values)


@pytest.fixture
async def fake() -> AsyncIterator[FakeReplicate]:
    server = FakeReplicate()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def provider(fake: FakeReplicate) -> ReplicateImageProvider:
    return ReplicateImageProvider(
        DEFAULT_TOKEN, base_url=fake.base_url, poll_interval_s=0.01, timeout_s=5
    )


def assert_no_token(error: BaseException, token: str = DEFAULT_TOKEN) -> None:
    seen: BaseException | None = error
    while seen is not None:
        assert token not in str(seen) and token not in repr(seen)
        seen = seen.__cause__ or seen.__context__
    if isinstance(error, ProviderError):
        assert token not in error.user_message


# --- poll mode --------------------------------------------------------------------------


async def test_poll_mode_returns_the_image(
    fake: FakeReplicate, provider: ReplicateImageProvider
) -> None:
    result = await provider.generate(image_request())

    assert isinstance(result, Images)
    [prediction] = fake.predictions.values()
    assert result.images[0].data == png_for("a lighthouse at dusk, oil painting", "16:9")
    assert result.images[0].content_type == "image/png"
    [create] = fake.requests_to(CREATE)
    assert create.path == "/v1/models/black-forest-labs/flux-1.1-pro/predictions"
    assert create.headers["authorization"] == f"Bearer {DEFAULT_TOKEN}"
    assert create.json == {
        "input": {
            "prompt": "a lighthouse at dusk, oil painting",
            "aspect_ratio": "16:9",
            "seed": 42,
        }
    }
    assert len(fake.requests_to("predictions.get")) == fake.polls_to_finish
    # The output URL is public: the token is not sent along with the download.
    [download] = fake.requests_to("files")
    assert download.path == f"/files/{prediction.id}.png"
    assert "authorization" not in download.headers


@pytest.mark.parametrize("style", ["list", "data_uri"])
async def test_poll_mode_reads_list_and_data_uri_outputs(
    fake: FakeReplicate, provider: ReplicateImageProvider, style: str
) -> None:
    fake.output_style = style

    result = await provider.generate(image_request(aspect_ratio="1:1"))

    assert isinstance(result, Images)
    assert [image.data for image in result.images] == [
        png_for("a lighthouse at dusk, oil painting", "1:1")
    ]


async def test_input_images_are_sent_as_data_uris(
    fake: FakeReplicate, provider: ReplicateImageProvider
) -> None:
    photo = InputImage(b"\xff\xd8\xff\xe0 a jpeg", "image/jpeg")
    sketch = InputImage(png_for("sketch"), "image/png")

    await provider.generate(image_request(input_images=(photo, sketch)))

    [create] = fake.requests_to(CREATE)
    sent = create.json["input"]
    assert sent["input_image"] == "data:image/jpeg;base64," + base64.b64encode(photo.data).decode()
    assert [uri.split(",")[0] for uri in sent["input_images"]] == [
        "data:image/jpeg;base64",
        "data:image/png;base64",
    ]
    assert base64.b64decode(sent["input_images"][1].split(",")[1]) == sketch.data


async def test_poll_mode_past_the_timeout_cancels_and_gives_up(fake: FakeReplicate) -> None:
    fake.polls_to_finish = 10_000
    provider = ReplicateImageProvider(
        DEFAULT_TOKEN, base_url=fake.base_url, poll_interval_s=0.01, timeout_s=0.1
    )

    with pytest.raises(GenerationTimedOut) as caught:
        await provider.generate(image_request())

    assert not caught.value.retryable, "a retry would pay for a second prediction"
    [prediction] = fake.predictions.values()
    assert prediction.status == "canceled"
    assert len(fake.requests_to("predictions.cancel")) == 1


# --- webhook mode and resume -------------------------------------------------------------


async def test_webhook_mode_parks_with_the_prediction_id(
    fake: FakeReplicate, provider: ReplicateImageProvider
) -> None:
    hook = "https://easel.example/webhooks/replicate?generation=1"

    result = await provider.generate(image_request(webhook_url=hook))

    [prediction] = fake.predictions.values()
    assert result == Parked(prediction.id)
    [create] = fake.requests_to(CREATE)
    assert create.json["webhook"] == hook
    assert create.json["webhook_events_filter"] == ["completed"]
    assert fake.requests_to("predictions.get") == []


async def test_resume_running_then_succeeded(
    fake: FakeReplicate, provider: ReplicateImageProvider
) -> None:
    fake.polls_to_finish = 3
    parked = await provider.generate(image_request(webhook_url="https://easel.example/hook"))
    assert isinstance(parked, Parked)

    hooked = image_request(webhook_url="https://easel.example/hook")
    assert await provider.resume(parked.external_id, hooked) == parked  # processing
    fake.finish(parked.external_id)
    result = await provider.resume(parked.external_id, hooked)

    assert isinstance(result, Images)
    assert result.images[0].data == fake.image_for(parked.external_id)


@pytest.mark.parametrize(
    ("outcome", "error_type"),
    [
        ("failed", InvalidRequest),
        ("nsfw", ContentPolicy),
        ("canceled", InvalidRequest),
        ("interrupted", TransientProviderError),
    ],
)
async def test_resume_of_a_failed_prediction_is_mapped(
    fake: FakeReplicate,
    provider: ReplicateImageProvider,
    outcome: str,
    error_type: type[ProviderError],
) -> None:
    parked = await provider.generate(image_request(webhook_url="https://easel.example/hook"))
    assert isinstance(parked, Parked)
    fake.finish(parked.external_id, outcome)

    with pytest.raises(error_type) as caught:
        await provider.resume(parked.external_id, image_request())

    assert type(caught.value) is error_type
    assert "Nothing was charged" in caught.value.user_message
    assert_no_token(caught.value)


async def test_poll_mode_nsfw_is_content_policy(
    fake: FakeReplicate, provider: ReplicateImageProvider
) -> None:
    fake.outcome = "nsfw"

    with pytest.raises(ContentPolicy):
        await provider.generate(image_request())


async def test_expired_output_is_invalid_request(
    fake: FakeReplicate, provider: ReplicateImageProvider
) -> None:
    parked = await provider.generate(image_request(webhook_url="https://easel.example/hook"))
    assert isinstance(parked, Parked)
    fake.finish(parked.external_id)
    fake.files_expired = True

    with pytest.raises(InvalidRequest) as caught:
        await provider.resume(parked.external_id, image_request())

    assert "expired" in caught.value.user_message


async def test_resume_of_an_unknown_prediction_is_invalid_request(
    provider: ReplicateImageProvider,
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await provider.resume("doesnotexist", image_request())

    assert_no_token(caught.value)


# --- HTTP errors ----------------------------------------------------------------------------


async def test_429_carries_retry_after_and_is_not_retried_by_the_sdk(
    fake: FakeReplicate, provider: ReplicateImageProvider
) -> None:
    fake.script(CREATE, [replicate_error(429, "Request was throttled.", retry_after=7)])

    with pytest.raises(RateLimitedByProvider) as caught:
        await provider.generate(image_request())

    assert caught.value.retry_after_s == 7
    assert caught.value.retryable
    assert len(fake.requests_to(CREATE)) == 1  # the core decides when to try again
    assert_no_token(caught.value)


@pytest.mark.parametrize("route", [CREATE, "predictions.get"])
async def test_500_is_provider_down(
    fake: FakeReplicate, provider: ReplicateImageProvider, route: str
) -> None:
    fake.script(route, [Reply(500, {"detail": "Internal server error", "status": 500})])

    if route == "predictions.get":  # the prediction exists: keep its id, never make another
        parked = await provider.generate(image_request())
        assert parked == Parked(next(iter(fake.predictions)))
        assert len(fake.requests_to(CREATE)) == 1
        return
    with pytest.raises(ProviderDown) as caught:
        await provider.generate(image_request())

    assert caught.value.retryable
    assert_no_token(caught.value)


async def test_402_out_of_credit_is_a_quota_error(
    fake: FakeReplicate, provider: ReplicateImageProvider
) -> None:
    fake.script(CREATE, [replicate_error(402, "You have insufficient credit to run this model",
                                         title="Insufficient credit")])

    with pytest.raises(ProviderQuotaExhausted) as caught:
        await provider.generate(image_request())

    assert not caught.value.retryable and "An admin has been told" in caught.value.user_message


async def test_422_is_invalid_request(
    fake: FakeReplicate, provider: ReplicateImageProvider
) -> None:
    fake.script(CREATE, [replicate_error(422, "- input.aspect_ratio: must be one of 1:1, 16:9")])

    with pytest.raises(InvalidRequest) as caught:
        await provider.generate(image_request())

    assert not caught.value.retryable


async def test_a_wrong_token_is_invalid_request_without_the_token(fake: FakeReplicate) -> None:
    wrong = "r8_WrongTokenWrongToken0123456789abcdef"
    provider = ReplicateImageProvider(wrong, base_url=fake.base_url, poll_interval_s=0.01)

    with pytest.raises(InvalidRequest) as caught:
        await provider.generate(image_request())

    assert "key" in caught.value.user_message
    assert_no_token(caught.value, wrong)
    assert fake.requests_to(CREATE)[0].headers["authorization"] == f"Bearer {wrong}"


async def test_unreachable_api_is_provider_down(fake: FakeReplicate) -> None:
    base_url = fake.base_url
    await fake.stop()
    provider = ReplicateImageProvider(DEFAULT_TOKEN, base_url=base_url)

    with pytest.raises(ProviderDown) as caught:
        await provider.generate(image_request())

    assert_no_token(caught.value)


# --- webhooks ------------------------------------------------------------------------------


@dataclass
class WebhookReceiver:
    """A stand-in for Easel's POST /webhooks/replicate: verifies with the fetched secret."""

    secret: str
    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        try:
            payload = verify_replicate_webhook(request.headers, await request.read(), self.secret)
        except WebhookRejected as exc:
            self.rejected.append(exc.reason)
            return web.Response(status=400, text=exc.reason)
        self.accepted.append(payload)
        return web.Response(status=200, text="ok")


@pytest.fixture
async def receiver(provider: ReplicateImageProvider) -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver(secret=await fetch_webhook_secret(provider.client))
    app = web.Application()
    app.router.add_post("/webhooks/replicate", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/replicate"
    yield receiver
    await runner.cleanup()


async def test_fetch_webhook_secret(fake: FakeReplicate, provider: ReplicateImageProvider) -> None:
    assert await fetch_webhook_secret(provider.client) == DEFAULT_SECRET
    [request] = fake.requests_to("webhooks.secret")
    assert request.headers["authorization"] == f"Bearer {DEFAULT_TOKEN}"


async def test_signed_webhook_is_accepted_end_to_end(
    fake: FakeReplicate, provider: ReplicateImageProvider, receiver: WebhookReceiver
) -> None:
    parked = await provider.generate(image_request(webhook_url=receiver.url))
    assert isinstance(parked, Parked)
    fake.finish(parked.external_id)

    delivery = await fake.deliver_webhook(parked.external_id)

    assert delivery.status == 200, delivery.response_text
    [payload] = receiver.accepted
    assert payload["id"] == parked.external_id and payload["status"] == "succeeded"
    result = await provider.resume(payload["id"], image_request())
    assert isinstance(result, Images)


async def test_bad_signature_is_rejected(
    fake: FakeReplicate, provider: ReplicateImageProvider, receiver: WebhookReceiver
) -> None:
    parked = await provider.generate(image_request(webhook_url=receiver.url))
    assert isinstance(parked, Parked)
    fake.finish(parked.external_id)

    delivery = await fake.deliver_webhook(parked.external_id, signature_ok=False)

    assert delivery.status == 400
    assert receiver.rejected == ["bad signature"] and receiver.accepted == []


@pytest.mark.parametrize("age_s", [301, 600, -600])
async def test_stale_or_future_timestamp_is_rejected(
    fake: FakeReplicate, provider: ReplicateImageProvider, receiver: WebhookReceiver, age_s: int
) -> None:
    parked = await provider.generate(image_request(webhook_url=receiver.url))
    assert isinstance(parked, Parked)
    fake.finish(parked.external_id)

    delivery = await fake.deliver_webhook(parked.external_id, timestamp=int(time.time()) - age_s)

    assert delivery.status == 400
    assert receiver.rejected == ["stale timestamp"]


async def test_verify_checks_the_timestamp_against_an_explicit_now(
    fake: FakeReplicate, provider: ReplicateImageProvider, receiver: WebhookReceiver
) -> None:
    parked = await provider.generate(image_request(webhook_url=receiver.url))
    assert isinstance(parked, Parked)
    fake.finish(parked.external_id)
    sent_at = int(time.time()) - 3600
    delivery = await fake.deliver_webhook(parked.external_id, timestamp=sent_at)

    payload = verify_replicate_webhook(
        delivery.headers, delivery.body, DEFAULT_SECRET, now=sent_at + 10
    )

    assert payload["id"] == parked.external_id
    with pytest.raises(WebhookRejected, match="stale timestamp"):
        verify_replicate_webhook(delivery.headers, delivery.body, DEFAULT_SECRET, now=sent_at + 301)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
async def test_missing_header_is_rejected(
    fake: FakeReplicate, provider: ReplicateImageProvider, receiver: WebhookReceiver, missing: str
) -> None:
    parked = await provider.generate(image_request(webhook_url=receiver.url))
    assert isinstance(parked, Parked)
    fake.finish(parked.external_id)
    delivery = await fake.deliver_webhook(parked.external_id)
    headers = {k: v for k, v in delivery.headers.items() if k.lower() != missing}

    with pytest.raises(WebhookRejected) as caught:
        verify_replicate_webhook(headers, delivery.body, DEFAULT_SECRET)

    assert caught.value.reason == f"missing header {missing}"


async def test_tampered_body_and_other_ids_are_rejected(
    fake: FakeReplicate, provider: ReplicateImageProvider, receiver: WebhookReceiver
) -> None:
    parked = await provider.generate(image_request(webhook_url=receiver.url))
    assert isinstance(parked, Parked)
    fake.finish(parked.external_id)
    delivery = await fake.deliver_webhook(parked.external_id)
    tampered = delivery.body.replace(b'"succeeded"', b'"failed"')
    replayed = {**delivery.headers, "webhook-id": "msg_other"}

    for headers, body in [(delivery.headers, tampered), (replayed, delivery.body)]:
        with pytest.raises(WebhookRejected, match="bad signature"):
            verify_replicate_webhook(headers, body, DEFAULT_SECRET)
    with pytest.raises(WebhookRejected, match="bad signature"):
        verify_replicate_webhook(
            {**delivery.headers, "webhook-signature": "v1,not-base64!"},
            delivery.body,
            DEFAULT_SECRET,
        )


def test_a_malformed_secret_is_rejected_without_echoing_it() -> None:
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": "v1,AAAA",
    }
    secret = "whsec_part_two_secret"

    with pytest.raises(WebhookRejected) as caught:
        verify_replicate_webhook(headers, b'{"id": "x"}', secret)

    assert "secret is malformed" in caught.value.reason
    assert secret not in str(caught.value)


async def test_a_long_422_reaches_the_person_shortened(
    fake: FakeReplicate, provider: ReplicateImageProvider
) -> None:
    # Replicate's own validation text for a ratio the model's schema refuses.
    with pytest.raises(InvalidRequest) as caught:
        await provider.generate(image_request(aspect_ratio="21:9"))

    shown = caught.value.user_message
    print(shown)
    assert shown.startswith("The image model could not accept this request: Input validation "
                            "failed - input.aspect_ratio: aspect_ratio must be one of")
    assert shown.endswith("'3:4'… Nothing was charged.")
    assert len(shown) < 240
