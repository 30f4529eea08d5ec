"""The studio: a person's threads and generations, the selected one's flow live, its results.

Three panels from one signed link (a person's, or one session's): the list of
sessions newest first; the selected generation's flow stage by stage (readable
names, model and id, aspect, resolution, seed, cost, each stage's time, the prompt
as sent and what changed from its parent); and the results (full size on click, a
compare side by side with each model's own prompt, and its composite). The page is
whole without JavaScript; with it, studio.js follows the generation's event stream
and swaps in the re-rendered panels (the page fetched again) as each stage happens.
"""

from __future__ import annotations

import difflib
import importlib.resources
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.api import authorized_generation
from bot.flow_page import ModelLabel, model_labels, model_lookup, render, resolve_image_urls
from core.flow import FlowGeneration, load_generation, may_see
from core.history import compare_members, composite_key, load_history
from core.links import Grant
from core.prompt_plan import plan_from_events
from core.runtime import Runtime

STUDIO_JS = importlib.resources.files("bot").joinpath("templates/studio.js").read_text("utf-8")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True)
class PromptChange:
    """What a prompt changed from its parent's: words added and removed."""

    parent_id: int
    added: str
    removed: str


def prompt_change(parent: FlowGeneration | None, g: FlowGeneration) -> PromptChange | None:
    if parent is None or not parent.refined_prompt or not g.refined_prompt:
        return None
    # Words without their punctuation, so "storm" -> "storm, at sunrise" reads "+ at sunrise".
    before, after = _words(parent.refined_prompt), _words(g.refined_prompt)
    added: list[str] = []
    removed: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=before, b=after).get_opcodes():
        if op in ("replace", "delete"):
            removed.extend(before[i1:i2])
        if op in ("replace", "insert"):
            added.extend(after[j1:j2])
    return PromptChange(parent.id, " ".join(added), " ".join(removed))


def _words(prompt: str) -> list[str]:
    return [w for w in (word.strip(",.;:!?\"'()") for word in prompt.split()) if w]


def plan_of(g: FlowGeneration) -> dict[str, Any] | None:
    """The refiner's structured plan, when one was recorded (the plan_* events)."""
    return plan_from_events((s.stage, s.detail) for s in g.stages)


async def panels(runtime: Runtime, grant: Grant, token: str, generation_id: int) -> dict[str, Any]:
    """Everything the flow and results panels show for one generation."""
    g = await authorized_generation(runtime, grant, generation_id)
    parent = await load_generation(runtime.pool, g.parent_id) if g.parent_id else None
    if parent is not None and not await may_see(runtime.pool, grant, parent):
        parent = None
    members = [g]
    composite = None
    if g.compare_group:
        members = [m for m in [await load_generation(runtime.pool, i)
                               for i in await compare_members(runtime.pool, g.compare_group)]
                   if m is not None]
        if await composite_key(runtime.pool, g.compare_group):
            composite = f"{token}/composite/{g.id}"
    assets = [a for m in members for a in m.images]
    urls = await resolve_image_urls(
        runtime.store, assets, runtime.config.url_ttl_s,
        lambda asset, _: f"{token}/image/{_owner(members, asset.id)}/{asset.id}",
    )
    return {
        "g": g, "members": members, "composite": composite, "urls": urls,
        "change": prompt_change(parent, g), "plan": plan_of(g),
        "live": g.status not in TERMINAL, "plans": {m.id: plan_of(m) for m in members},
    }


def _owner(members: list[FlowGeneration], asset_id: int) -> int:
    return next(m.id for m in members if any(a.id == asset_id for a in m.images))


async def studio_page(runtime: Runtime, grant: Grant, token: str, selected: int | None) -> str:
    history = await load_history(runtime.pool, grant)
    newest = next((g.id for s in history for g in s.generations), None)
    chosen = selected or newest
    values: dict[str, Any] = {"g": None, "live": False}
    if chosen is not None:
        values = await panels(runtime, grant, token, chosen)
    return render(
        "studio.html.j2", title="Easel studio", history=history, selected=chosen, token=token,
        model_of=_labels(runtime), expires_at=grant.expires_at, **values,
    )


async def composite_image(runtime: Runtime, grant: Grant, generation_id: int) -> str:
    """The composite's object key for a compare member the grant may see (404 if none)."""
    g = await authorized_generation(runtime, grant, generation_id)
    key = await composite_key(runtime.pool, g.compare_group) if g.compare_group else None
    if key is None:
        raise web.HTTPNotFound()
    return key


def _labels(runtime: Runtime) -> Callable[[str], ModelLabel]:
    return model_lookup(model_labels(runtime.catalog.models))
