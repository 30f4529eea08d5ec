"""Prompt refiners backed by an LLM (OpenAI or Gemini), asking for structured JSON.

Both send the thread's recent turns, the last prompt and the new message under one
system instruction, and validate the answer the same way. Any failure is a
`ProviderError`, on which the pipeline falls back to the offline rule-based refiner.
"""

from __future__ import annotations

import json
from typing import Any

import openai
from google import genai
from google.genai import types

from adapters.providers.google_images import (
    SAFETY_FINISH_REASONS,
    SDK_ERRORS,
    enum_name,
    http_options,
    map_google_error,
)
from adapters.providers.openai_images import map_openai_error
from core.catalog import ASPECT_RATIOS
from core.errors import ContentPolicy, InvalidRequest
from core.models import RESOLUTIONS, Intent, PromptPlan, PromptTarget, Refinement, RefineRequest, Turn

MAX_TURNS = 12  # recent turns are enough context; older ones only cost tokens
MAX_PHRASES = 12  # subjects or constraints kept from an answer
REFINER_INTENTS = (Intent.NEW.value, Intent.EDIT.value, Intent.VARIATION.value)
NEEDS_AN_IMAGE = (Intent.EDIT, Intent.VARIATION)
NOT_JSON = "The prompt model did not answer in the expected format."
EMPTY_PROMPT = "The prompt model returned an empty prompt."

SYSTEM_INSTRUCTION = """\
You write prompts for an image model inside a chat thread.
Read the conversation and the new message, then answer with JSON only:
- "intent": "new" for a different picture, "edit" to change the last image or an
  uploaded image, "variation" for another take on the last image with the same idea.
- "prompt": one self-contained, vivid prompt for the image model (subject, style,
  composition, lighting). For an edit, describe the change to make and what to keep.
  Keep the user's language and never add text the user did not ask for.
- "aspect_ratio": only if the user asked for a shape (e.g. "16:9", "9:16", "1:1"), else null.
- "resolution": "1K", "2K" or "4K" only if the user asked for a size, else null.
- "subjects": the things the picture shows, each a short phrase.
- "style": the medium, style, lighting and mood in a few words, or null if none was asked.
- "constraints": what must hold: things to leave out, text to render exactly, what an
  edit must keep.
Write the prompt for the image model named in the message, in the way that model reads
prompts best.
"""

# How each provider's image models read a prompt (the reference app constructs a prompt
# per provider too); the refiner is told which model it writes for.
PROMPT_DIALECTS = {
    "openai": "it follows long natural-language instructions and renders quoted text "
    "exactly: write full sentences",
    "google": "it follows conversational descriptions: write a descriptive paragraph and, "
    "for an edit, say what to keep",
    "replicate": "it reads a concise comma-separated description, the most important "
    "things first",
    "sketch": "an offline renderer that draws the concrete nouns it knows: keep it short "
    "and concrete",
}

# JSON Schema for OpenAI's strict structured outputs (every key required, nulls explicit).
OPENAI_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "intent": {"type": "string", "enum": list(REFINER_INTENTS)},
        "prompt": {"type": "string"},
        "aspect_ratio": {"type": ["string", "null"], "enum": [*ASPECT_RATIOS, None]},
        "resolution": {"type": ["string", "null"], "enum": [*RESOLUTIONS, None]},
        "subjects": {"type": "array", "items": {"type": "string"}},
        "style": {"type": ["string", "null"]},
        "constraints": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["intent", "prompt", "aspect_ratio", "resolution", "subjects", "style",
                 "constraints"],
    "additionalProperties": False,
}

# The same shape in the OpenAPI subset Gemini's response_schema takes.
GEMINI_SCHEMA = types.Schema(
    type=types.Type.OBJECT,
    properties={
        "intent": types.Schema(type=types.Type.STRING, enum=list(REFINER_INTENTS)),
        "prompt": types.Schema(type=types.Type.STRING),
        "aspect_ratio": types.Schema(
            type=types.Type.STRING, enum=list(ASPECT_RATIOS), nullable=True
        ),
        "resolution": types.Schema(type=types.Type.STRING, enum=list(RESOLUTIONS), nullable=True),
        "subjects": types.Schema(type=types.Type.ARRAY,
                                 items=types.Schema(type=types.Type.STRING)),
        "style": types.Schema(type=types.Type.STRING, nullable=True),
        "constraints": types.Schema(type=types.Type.ARRAY,
                                    items=types.Schema(type=types.Type.STRING)),
    },
    required=["intent", "prompt"],
)


class OpenAIRefiner:
    """PromptRefiner using OpenAI chat completions with a strict JSON schema."""

    name = "openai-refiner"

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        *,
        model: str,
        timeout_s: float = 30.0,
    ) -> None:
        """`model`: the catalog's [[refiner]] id for this provider (ids never live in code)."""
        self._api_key = api_key
        self._model = model
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
        )

    async def refine(self, request: RefineRequest) -> Refinement:
        """Ask the model for the intent and prompt of `request.message`."""
        messages: list[Any] = [{"role": "system", "content": SYSTEM_INSTRUCTION}]
        messages += [{"role": role, "content": text} for role, text in conversation(request)]
        try:
            completion = await self._client.chat.completions.create(
                model=self._model,
                messages=messages,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "refinement", "strict": True, "schema": OPENAI_SCHEMA},
                },
            )
        except openai.OpenAIError as error:
            raise map_openai_error(error, self._api_key) from None
        if not completion.choices:
            raise InvalidRequest(NOT_JSON)
        choice = completion.choices[0]
        if choice.message.refusal or choice.finish_reason == "content_filter":
            raise ContentPolicy()
        return parse_refinement(choice.message.content, request, refiner=self.name)

    async def aclose(self) -> None:
        await self._client.close()


class GeminiRefiner:
    """PromptRefiner using Gemini generate_content with a JSON response schema."""

    name = "gemini-refiner"

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        *,
        model: str,
        timeout_s: float = 30.0,
    ) -> None:
        """`model`: the catalog's [[refiner]] id for this provider (ids never live in code)."""
        self._api_key = api_key
        self._model = model
        self._client = genai.Client(api_key=api_key, http_options=http_options(base_url, timeout_s))

    async def refine(self, request: RefineRequest) -> Refinement:
        """Ask the model for the intent and prompt of `request.message`."""
        contents = [
            types.Content(
                role="model" if role == "assistant" else "user", parts=[types.Part(text=text)]
            )
            for role, text in conversation(request)
        ]
        config = types.GenerateContentConfig(
            system_instruction=SYSTEM_INSTRUCTION,
            response_mime_type="application/json",
            response_schema=GEMINI_SCHEMA,
        )
        try:
            response = await self._client.aio.models.generate_content(
                model=self._model, contents=contents, config=config
            )
        except SDK_ERRORS as error:
            raise map_google_error(error, self._api_key) from None
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            raise ContentPolicy()
        candidate = response.candidates[0] if response.candidates else None
        if candidate is None:
            raise InvalidRequest(NOT_JSON)
        if enum_name(candidate.finish_reason) in SAFETY_FINISH_REASONS:
            raise ContentPolicy()
        parts = candidate.content.parts if candidate.content else None
        text = "".join(part.text for part in parts or () if part.text and not part.thought)
        return parse_refinement(text, request, refiner=self.name)

    async def aclose(self) -> None:
        await self._client.aio.aclose()


def conversation(request: RefineRequest) -> list[tuple[str, str]]:
    """(role, text) pairs: recent turns, then the new message with what the model must know.

    Consecutive turns of one role are merged, since Gemini wants roles to alternate.
    """
    pairs = [
        (turn.role if turn.role == "assistant" else "user", _describe(turn))
        for turn in request.turns[-MAX_TURNS:]
    ]
    pairs.append(("user", _new_message(request)))
    merged: list[tuple[str, str]] = []
    for role, text in pairs:
        if merged and merged[-1][0] == role:
            merged[-1] = (role, f"{merged[-1][1]}\n\n{text}")
        else:
            merged.append((role, text))
    return merged


def parse_refinement(text: str | None, request: RefineRequest, *, refiner: str = "") -> Refinement:
    """Validate the model's JSON: unknown intent/ratio/resolution are dropped, an empty
    prompt is an error; subjects, style and constraints become the refinement's plan."""
    try:
        data = json.loads(text or "")
    except ValueError:
        raise InvalidRequest(NOT_JSON) from None
    if not isinstance(data, dict):
        raise InvalidRequest(NOT_JSON)
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest(EMPTY_PROMPT)
    aspect_ratio = data.get("aspect_ratio")
    resolution = data.get("resolution")
    intent = _intent(data.get("intent"), request)
    style = data.get("style")
    plan = PromptPlan(
        intent=intent.value,
        subjects=_phrases(data.get("subjects")),
        style=style.strip() if isinstance(style, str) and style.strip() else None,
        constraints=_phrases(data.get("constraints")),
        prompt=prompt.strip(),
        refiner=refiner,
        target=request.target.display_name if request.target else "",
    )
    return Refinement(
        intent=intent,
        prompt=prompt.strip(),
        aspect_ratio=aspect_ratio if aspect_ratio in ASPECT_RATIOS else None,
        resolution=resolution if resolution in RESOLUTIONS else None,
        plan=plan,
    )


def _phrases(value: object) -> tuple[str, ...]:
    """A list of short strings from the model's answer; anything else is dropped."""
    if not isinstance(value, list):
        return ()
    return tuple(v.strip() for v in value if isinstance(v, str) and v.strip())[:MAX_PHRASES]


def _intent(value: object, request: RefineRequest) -> Intent:
    """The model's intent if it is one a refiner may choose and has an image to work on."""
    has_image = request.has_last_image or request.has_uploads
    if value in REFINER_INTENTS:
        intent = Intent(str(value))
    else:
        # An unknown intent is dropped: a reply beside an image most likely edits it.
        intent = Intent.EDIT if has_image else Intent.NEW
    if intent in NEEDS_AN_IMAGE and not has_image:
        return Intent.NEW
    return intent


def _describe(turn: Turn) -> str:
    if turn.role == "assistant":
        made = (
            f"[Made an image from the prompt: {turn.refined_prompt}]" if turn.refined_prompt else ""
        )
        return "\n".join(part for part in (turn.text, made) if part) or "[replied]"
    attached = " [attached an image]" if turn.has_image else ""
    return f"{turn.text}{attached}".strip() or "[sent an image]"


def _new_message(request: RefineRequest) -> str:
    last_prompt = f'"{request.last_prompt}"' if request.last_prompt else "none"
    settings = f"aspect ratio {request.aspect_ratio}, resolution {request.resolution}"
    return "\n".join(
        (
            f"Current settings: {settings}.",
            f"Prompt of the last image: {last_prompt}.",
            f"There is a last image in this thread: {_yes_no(request.has_last_image)}.",
            f"The new message has uploaded images: {_yes_no(request.has_uploads)}.",
            f"New message: {request.message}",
            *([_target_line(request.target)] if request.target else []),
        )
    )


def _target_line(target: PromptTarget) -> str:
    dialect = PROMPT_DIALECTS.get(target.provider, "write a clear, vivid description")
    best = f"; best for {target.best_for}" if target.best_for else ""
    return (f"Write the prompt for the image model {target.display_name} "
            f"({target.provider} {target.model_id}{best}): {dialect}.")


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"
