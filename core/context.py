"""Context for a generation: the session's earlier turns, the image it builds on, uploads.

The refiner gets the turns and the last prompt; an edit gets the last image (or the
person's uploads) as input images.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from core import generations as q
from core.context_sql import context_json
from core.errors import ProviderError
from core.models import (
    InputImage,
    Intent,
    ModelSpec,
    PromptTarget,
    Refinement,
    RefineRequest,
    Turn,
)
from core.prompt_plan import kept_plan
from core.runtime import Runtime

log = logging.getLogger("easel.context")

CONTEXT = "SELECT {} AS context".format(
    context_json("$1::bigint", "$2::bigint", "$3::bigint", "$4::bigint", "$5::int")
)


@dataclass(frozen=True)
class Context:
    parent_prompt: str | None
    parent_image: dict[str, str] | None
    uploads: tuple[dict[str, str], ...]
    turns: tuple[Turn, ...]


async def load_context(rt: Runtime, job: q.Job) -> Context:
    """The job's context: what its claim returned, else one query."""
    ctx = job.context
    if ctx is None:
        ctx = await rt.pool.fetchval(
            CONTEXT, job.parent_id, job.message_id, job.session_id, job.message_id or 2**62,
            rt.config.context_turns,
        )
    assert ctx is not None
    turns = tuple(
        Turn(t["role"], t["text"], t["refined_prompt"], bool(t["has_image"])) for t in ctx["turns"]
    )
    return Context(ctx["parent_prompt"], ctx["parent_image"], tuple(ctx["uploads"]), turns)


async def refine(rt: Runtime, job: q.Job, context: Context, params: dict[str, Any]) -> Refinement:
    """The prompt to send: the one an earlier attempt stored (every retry and resumed job
    sends the same prompt, and the refiner is paid once), the parent's for buttons, else
    the refiner's (the offline refiner's when the configured one fails)."""
    intent = Intent(job.intent)
    if job.refined_prompt:  # an earlier attempt (or a parked job) refined it: never twice
        return Refinement(intent, job.refined_prompt)
    target = prompt_target(rt.catalog.get(job.model))
    if intent in (Intent.REGENERATE, Intent.VARIATION, Intent.UPSCALE) and context.parent_prompt:
        return Refinement(intent, context.parent_prompt,
                          plan=kept_plan(intent, context.parent_prompt, target, job.parent_id))
    request = RefineRequest(
        message=job.user_prompt,
        turns=context.turns,
        last_prompt=context.parent_prompt,
        has_last_image=context.parent_image is not None,
        has_uploads=bool(context.uploads),
        aspect_ratio=str(params.get("aspect_ratio", "1:1")),
        resolution=str(params.get("resolution", "2K")),
        target=target,
    )
    try:
        return await rt.refiner.refine(request)
    except ProviderError as error:
        if rt.fallback_refiner is None:
            raise
        log.warning("refiner failed (%s); using the offline refiner", error.kind)
        fallback = await rt.fallback_refiner.refine(request)
        if fallback.plan is None:
            return fallback
        said = f"{fallback.plan.refiner} (after {rt.refiner.name} failed: {error.kind})"
        return replace(fallback, plan=replace(fallback.plan, refiner=said))


def prompt_target(model: ModelSpec) -> PromptTarget:
    """What a refiner is told about the model it writes for (a compare: one per member)."""
    return PromptTarget(model.display_name, model.provider, model.model_id, model.best_for)


async def input_images(
    rt: Runtime, model: ModelSpec, intent: Intent, context: Context
) -> tuple[InputImage, ...]:
    """The person's uploads, else (for an edit a model can make) the image it builds on."""
    inputs = [
        InputImage(await rt.store.get(u["key"]), u["content_type"], u["key"].rsplit("/")[-1])
        for u in context.uploads
    ]
    wants_parent = intent in (Intent.EDIT, Intent.UPSCALE) or (
        intent is Intent.VARIATION and model.can_edit
    )
    if not inputs and wants_parent and context.parent_image and model.can_edit:
        image = context.parent_image
        try:
            data = await rt.store.get(image["key"])
        except KeyError:  # its person deleted it (ObjectNotFound): the prompt alone, then
            return tuple(inputs)
        inputs.append(InputImage(data, image["content_type"], "previous"))
    return tuple(inputs)
