"""OpenAIRefiner and GeminiRefiner through the real SDKs against the fake servers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from adapters.refiners.llm import GeminiRefiner, OpenAIRefiner
from bot.app import load_catalog
from core.errors import ContentPolicy, InvalidRequest, ProviderDown, RateLimitedByProvider
from core.models import Intent, PromptPlan, PromptTarget, Refinement, RefineRequest, Turn
from tests.fakes import gemini_server, openai_server
from tests.fakes.gemini_server import ROUTE, FakeGemini
from tests.fakes.openai_server import FakeOpenAI, chat_completion

CHAT = "chat/completions"
# The shipped catalog's refiner models (ids live only there).
_CATALOG = load_catalog(None)
OPENAI_MODEL = _CATALOG.refiner("openai").model_id  # type: ignore[union-attr]
GEMINI_MODEL = _CATALOG.refiner("google").model_id  # type: ignore[union-attr]

TURNS = (
    Turn("user", "a lighthouse at dusk"),
    Turn(
        "assistant",
        "Here it is.",
        refined_prompt="a lighthouse at dusk, oil painting",
        has_image=True,
    ),
    Turn("user", "here is my dog", has_image=True),
)


def refine_request(
    message: str = "make it darker and 16:9",
    *,
    turns: tuple[Turn, ...] = TURNS,
    has_last_image: bool = True,
    has_uploads: bool = False,
    target: PromptTarget | None = None,
) -> RefineRequest:
    return RefineRequest(
        message=message,
        turns=turns,
        last_prompt="a lighthouse at dusk, oil painting",
        has_last_image=has_last_image,
        has_uploads=has_uploads,
        aspect_ratio="1:1",
        resolution="2K",
        target=target,
    )


@pytest_asyncio.fixture(scope="module")
async def servers() -> AsyncIterator[tuple[FakeOpenAI, FakeGemini]]:
    fakes = (FakeOpenAI(), FakeGemini())
    for fake in fakes:
        await fake.start()
    yield fakes
    for fake in fakes:
        await fake.stop()


@pytest_asyncio.fixture
async def openai_fake(servers: tuple[FakeOpenAI, FakeGemini]) -> FakeOpenAI:
    servers[0].reset()
    return servers[0]


@pytest_asyncio.fixture
async def gemini_fake(servers: tuple[FakeOpenAI, FakeGemini]) -> FakeGemini:
    servers[1].reset()
    return servers[1]


@pytest_asyncio.fixture
async def openai_refiner(openai_fake: FakeOpenAI) -> AsyncIterator[OpenAIRefiner]:
    refiner = OpenAIRefiner(
        openai_server.DEFAULT_KEY, base_url=openai_fake.sdk_base_url, model=OPENAI_MODEL
    )
    yield refiner
    await refiner.aclose()


@pytest_asyncio.fixture
async def gemini_refiner(gemini_fake: FakeGemini) -> AsyncIterator[GeminiRefiner]:
    refiner = GeminiRefiner(
        gemini_server.DEFAULT_KEY, base_url=gemini_fake.base_url, model=GEMINI_MODEL
    )
    yield refiner
    await refiner.aclose()


def answer(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "intent": "edit",
        "prompt": "a darker lighthouse at night",
        "aspect_ratio": "16:9",
        "resolution": None,
    }
    return {**base, **fields}


# --- OpenAI ---------------------------------------------------------------------------


async def test_openai_refinement_is_parsed_and_turns_are_sent(
    openai_refiner: OpenAIRefiner, openai_fake: FakeOpenAI
) -> None:
    openai_fake.script(CHAT, [chat_completion(answer(resolution="4K"))])

    result = await openai_refiner.refine(refine_request())

    assert result == Refinement(Intent.EDIT, "a darker lighthouse at night", "16:9", "4K")
    [sent] = openai_fake.requests_to(CHAT)
    assert sent.headers["authorization"] == f"Bearer {openai_server.DEFAULT_KEY}"
    body = sent.json
    assert body["model"] == OPENAI_MODEL == "gpt-5.4-mini"
    assert body["response_format"]["type"] == "json_schema"
    schema = body["response_format"]["json_schema"]
    assert schema["strict"] is True
    assert set(schema["schema"]["required"]) == {
        "intent", "prompt", "aspect_ratio", "resolution", "subjects", "style", "constraints"}
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert body["messages"][1]["content"] == "a lighthouse at dusk"
    assert "a lighthouse at dusk, oil painting" in body["messages"][2]["content"]
    last = body["messages"][3]["content"]
    # The last user turn and the new message are merged (roles alternate).
    assert "here is my dog [attached an image]" in last
    assert "New message: make it darker and 16:9" in last
    assert 'Prompt of the last image: "a lighthouse at dusk, oil painting"' in last


async def test_openai_unknown_fields_are_dropped(
    openai_refiner: OpenAIRefiner, openai_fake: FakeOpenAI
) -> None:
    openai_fake.script(
        CHAT,
        [
            chat_completion(answer(intent="upscale", aspect_ratio="7:3", resolution="8K")),
            chat_completion(answer(intent="weird")),
            chat_completion(answer(intent="edit")),
        ],
    )

    kept_image = await openai_refiner.refine(refine_request())
    unknown = await openai_refiner.refine(refine_request(has_last_image=True))
    no_image = await openai_refiner.refine(refine_request(turns=(), has_last_image=False))

    assert kept_image == Refinement(Intent.EDIT, "a darker lighthouse at night", None, None)
    assert unknown.intent is Intent.EDIT
    assert no_image.intent is Intent.NEW, "nothing to edit: the edit becomes a new image"


async def test_openai_default_model_answer_and_custom_model(openai_fake: FakeOpenAI) -> None:
    refiner = OpenAIRefiner(
        openai_server.DEFAULT_KEY, base_url=openai_fake.sdk_base_url, model="gpt-5.4-nano"
    )
    try:
        result = await refiner.refine(refine_request("a red fox", turns=(), has_last_image=False))
    finally:
        await refiner.aclose()

    assert result == Refinement(Intent.NEW, "a fake refined prompt")
    assert openai_fake.requests_to(CHAT)[0].json["model"] == "gpt-5.4-nano"


@pytest.mark.parametrize("content", ['{"intent": "new", "prompt": "  "}', "not json", "[1, 2]"])
async def test_openai_empty_prompt_or_bad_json_is_invalid_request(
    openai_refiner: OpenAIRefiner, openai_fake: FakeOpenAI, content: str
) -> None:
    openai_fake.script(CHAT, [chat_completion(content)])

    with pytest.raises(InvalidRequest):
        await openai_refiner.refine(refine_request())


async def test_openai_refusal_is_content_policy(
    openai_refiner: OpenAIRefiner, openai_fake: FakeOpenAI
) -> None:
    openai_fake.script(CHAT, [chat_completion("", refusal="I can't help with that.")])

    with pytest.raises(ContentPolicy):
        await openai_refiner.refine(refine_request())


async def test_openai_http_errors_are_provider_errors(
    openai_refiner: OpenAIRefiner, openai_fake: FakeOpenAI
) -> None:
    openai_fake.script(CHAT, [openai_server.rate_limited("4"), openai_server.server_error()])

    with pytest.raises(RateLimitedByProvider) as limited:
        await openai_refiner.refine(refine_request())
    with pytest.raises(ProviderDown):
        await openai_refiner.refine(refine_request())

    assert limited.value.retry_after_s == 4.0
    assert len(openai_fake.requests) == 2, "no SDK retries"


async def test_openai_bad_key_never_shows_the_key(openai_fake: FakeOpenAI) -> None:
    wrong = "sk-proj-WRONGrefinerKey0123456789abcdef"
    refiner = OpenAIRefiner(wrong, base_url=openai_fake.sdk_base_url, model=OPENAI_MODEL)
    try:
        with pytest.raises(InvalidRequest) as caught:
            await refiner.refine(refine_request())
    finally:
        await refiner.aclose()

    assert wrong not in str(caught.value)


# --- Gemini ---------------------------------------------------------------------------


async def test_gemini_refinement_is_parsed_and_turns_are_sent(
    gemini_refiner: GeminiRefiner, gemini_fake: FakeGemini
) -> None:
    gemini_fake.script(ROUTE, [gemini_server.text_response(json.dumps(answer()))])

    result = await gemini_refiner.refine(refine_request())

    assert result == Refinement(Intent.EDIT, "a darker lighthouse at night", "16:9", None)
    [sent] = gemini_fake.requests_to(ROUTE)
    assert sent.path == f"/v1/models/{GEMINI_MODEL}:generateContent"
    assert GEMINI_MODEL == "gemini-3.5-flash"
    assert sent.headers["x-goog-api-key"] == gemini_server.DEFAULT_KEY
    body = sent.json
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][0]["parts"] == [{"text": "a lighthouse at dusk"}]
    assert "a lighthouse at dusk, oil painting" in body["contents"][1]["parts"][0]["text"]
    assert "New message: make it darker and 16:9" in body["contents"][2]["parts"][0]["text"]
    assert "image model" in body["systemInstruction"]["parts"][0]["text"]
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = config["responseSchema"]
    assert schema["properties"]["intent"]["enum"] == ["new", "edit", "variation"]
    assert schema["required"] == ["intent", "prompt"]


async def test_gemini_default_answer(gemini_refiner: GeminiRefiner) -> None:
    result = await gemini_refiner.refine(
        refine_request("a red fox", turns=(), has_last_image=False)
    )

    assert result == Refinement(Intent.NEW, "a fake refined prompt")


async def test_gemini_unknown_values_dropped_and_empty_prompt_refused(
    gemini_refiner: GeminiRefiner, gemini_fake: FakeGemini
) -> None:
    gemini_fake.script(
        ROUTE,
        [
            gemini_server.text_response(
                json.dumps(answer(intent="variation", aspect_ratio="2:1", resolution="2K"))
            ),
            gemini_server.text_response(json.dumps(answer(prompt=""))),
        ],
    )

    dropped = await gemini_refiner.refine(refine_request(has_uploads=True))
    with pytest.raises(InvalidRequest):
        await gemini_refiner.refine(refine_request())

    assert dropped == Refinement(Intent.VARIATION, "a darker lighthouse at night", None, "2K")


@pytest.mark.parametrize(
    "blocked",
    [gemini_server.prompt_blocked("SAFETY"), gemini_server.finish_blocked("PROHIBITED_CONTENT")],
)
async def test_gemini_safety_block_is_content_policy(
    gemini_refiner: GeminiRefiner, gemini_fake: FakeGemini, blocked: Any
) -> None:
    gemini_fake.script(ROUTE, [blocked])

    with pytest.raises(ContentPolicy):
        await gemini_refiner.refine(refine_request())


async def test_gemini_http_errors_are_provider_errors(
    gemini_refiner: GeminiRefiner, gemini_fake: FakeGemini
) -> None:
    gemini_fake.script(ROUTE, [gemini_server.rate_limited("5"), gemini_server.server_error(503)])

    with pytest.raises(RateLimitedByProvider) as limited:
        await gemini_refiner.refine(refine_request())
    with pytest.raises(ProviderDown):
        await gemini_refiner.refine(refine_request())

    assert limited.value.retry_after_s == 5.0
    assert len(gemini_fake.requests) == 2


async def test_gemini_bad_key_never_shows_the_key(gemini_fake: FakeGemini) -> None:
    wrong = "AIzaWRONGrefinerKey0123456789abcdef"
    refiner = GeminiRefiner(wrong, base_url=gemini_fake.base_url, model=GEMINI_MODEL)
    try:
        with pytest.raises(InvalidRequest) as caught:
            await refiner.refine(refine_request())
    finally:
        await refiner.aclose()

    assert wrong not in str(caught.value)
    assert gemini_fake.requests[0].path.endswith(f"/models/{GEMINI_MODEL}:generateContent")


# --- the plan: how the prompt was constructed, and for which model ----------------------

PLANNED = answer(subjects=["a lighthouse", "a stormy sea"], style="oil painting, night",
                 constraints=["keep the lighthouse", "no text"])
GPT = PromptTarget("GPT Image 2", "openai", "gpt-image-2", "text in images")
NANO = PromptTarget("Nano Banana 2", "google", "gemini-3.1-flash-image")


async def test_openai_answers_a_plan_written_for_the_named_model(
    openai_refiner: OpenAIRefiner, openai_fake: FakeOpenAI
) -> None:
    openai_fake.script(CHAT, [chat_completion(PLANNED)])

    result = await openai_refiner.refine(refine_request(target=GPT))

    assert result.plan == PromptPlan(
        intent="edit", subjects=("a lighthouse", "a stormy sea"), style="oil painting, night",
        constraints=("keep the lighthouse", "no text"), prompt="a darker lighthouse at night",
        refiner="openai-refiner", target="GPT Image 2")
    [sent] = openai_fake.requests_to(CHAT)
    schema = sent.json["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["subjects"] == {"type": "array", "items": {"type": "string"}}
    last = sent.json["messages"][-1]["content"]
    print(last.splitlines()[-1])
    assert "Write the prompt for the image model GPT Image 2 (openai gpt-image-2" in last
    assert "full sentences" in last, "the provider's way of reading prompts is named"


async def test_gemini_answers_a_plan_and_bad_parts_are_dropped(
    gemini_refiner: GeminiRefiner, gemini_fake: FakeGemini
) -> None:
    odd = {**PLANNED, "subjects": "not a list", "constraints": [" ", 3, "no text"], "style": ""}
    gemini_fake.script(ROUTE, [gemini_server.text_response(json.dumps(PLANNED)),
                               gemini_server.text_response(json.dumps(odd))])

    planned = await gemini_refiner.refine(refine_request(target=NANO))
    odd_plan = (await gemini_refiner.refine(refine_request(target=NANO))).plan

    assert planned.plan is not None and planned.plan.subjects == ("a lighthouse", "a stormy sea")
    assert planned.plan.target == "Nano Banana 2" and planned.plan.refiner == "gemini-refiner"
    assert odd_plan is not None
    assert (odd_plan.subjects, odd_plan.style, odd_plan.constraints) == ((), None, ("no text",))
    sent = gemini_fake.requests_to(ROUTE)[0].json
    properties = sent["generationConfig"]["responseSchema"]["properties"]
    assert properties["subjects"]["type"] == "ARRAY" and properties["style"]["nullable"] is True
    assert "descriptive paragraph" in sent["contents"][-1]["parts"][0]["text"]
