"""The prompt-flow page: a session's lineage rendered by Jinja2 templates (autoescaped).

Each user turn, the prompt the model actually got, every stage with its timing,
the images, model, cost and outcome; refinements hang under what they built on,
and a compare group sits side by side. The templates live in bot/templates and
escape everything from the database; this module only turns rows into words.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from core.flow import Flow, FlowAsset, FlowGeneration, FlowStage, load_flow
from core.models import ModelSpec
from core.ports import ObjectStore
from core.runtime import Runtime

# Detail keys the page already shows elsewhere, or that mean nothing to a reader.
HIDDEN_DETAIL = frozenset({"prompt", "object_key", "plan"})
DETAIL_MAX_CHARS = 200

STAGE_LABELS = {
    "received": "Received",
    "understanding": "Reading the thread",
    "refining_prompt": "Constructing the prompt",
    "generating": "Generating the image",
    "uploading": "Storing the image",
    "finalizing": "Posting to the thread",
    "done": "Done",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "retry": "Retry scheduled",
    "webhook": "Model reported back",
    "poll": "Asked the model (webhook late)",
    "lease_expired": "Worker lost; queued again",
    "plan_intent": "Planning: what is asked",
    "plan_subjects": "Planning: subjects",
    "plan_style": "Thinking: style",
    "plan_constraints": "Thinking: constraints",
    "plan_prompt": "Prompt constructed",
    "admin_retry": "Retried by an admin",
    "retry_of": "A retry of a failed generation",
}
DETAIL_LABELS = {
    "elapsed_s": "total", "size_bytes": "size", "delay_s": "retry in", "kind": "reason",
    "webhook_id": "webhook", "value": "", "for": "for", "reasoning": "why",
}

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("bot", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"], default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class ModelLabel:
    """How a page names a model: its display name once, and the provider's model id."""

    label: str
    model_id: str


def model_labels(models: tuple[ModelSpec, ...] | list[ModelSpec]) -> dict[str, ModelLabel]:
    return {m.name: ModelLabel(m.display_name, m.model_id) for m in models}


def render(template: str, **values: Any) -> str:
    """Render one of bot/templates with the helpers every page uses."""
    return TEMPLATES.get_template(template).render(**HELPERS, **values)


def render_flow(
    flow: Flow,
    image_urls: Mapping[int, str],
    *,
    models: Mapping[str, ModelLabel] | None = None,
    expires_at: datetime | None = None,
    studio_url: str | None = None,
) -> str:
    """The whole page for `flow`; `image_urls` maps asset ids to what an <img> should load."""
    generations = flow.generations()
    linked = {g.turn.message_id for g in generations if g.turn is not None}
    spent = sum(g.charged for g in generations)
    summary = (
        f"{flow.platform} thread · started {_when(flow.created_at)} · {len(flow.turns)} turns · "
        f"{len(generations)} generations · {spent} credits spent"
    )
    return render(
        "flow.html.j2", title=f"Prompt flow · session {flow.session_id}", flow=flow,
        summary=summary, loose=[t for t in flow.turns if t.message_id not in linked],
        urls=image_urls, model_of=model_lookup(models or {}), expires_at=expires_at,
        studio_url=studio_url,
    )


def message_page(title: str, text: str) -> str:
    """A small page for a refused link (403) or a missing session (404)."""
    return render("message.html.j2", title=title, text=text)


async def resolve_image_urls(
    store: ObjectStore, assets: list[FlowAsset], ttl_s: int, local: Callable[[FlowAsset, str], str]
) -> dict[int, str]:
    """Presigned http(s) URLs as they are; a store's local path goes through `local`."""
    urls: dict[int, str] = {}
    for asset in assets:
        url = await store.url(asset.key, ttl_s)
        if url is None:
            continue
        urls[asset.id] = url if url.startswith(("https://", "http://")) else local(asset, url)
    return urls


async def write_flow_file(runtime: Runtime, session_id: int, folder: Path) -> Path:
    """Write the page to `folder/<session>.html` with file:// images (the console's /flow)."""
    flow = await load_flow(runtime.pool, session_id)
    if flow is None:
        raise LookupError(f"no session {session_id}")
    urls = await resolve_image_urls(
        runtime.store, flow.assets(), runtime.config.url_ttl_s, lambda _, path: Path(path).as_uri()
    )
    target = folder / f"{session_id}.html"
    page = render_flow(flow, urls, models=model_labels(runtime.catalog.models))
    await asyncio.to_thread(_write, target, page)
    return target


def _write(target: Path, page: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, "utf-8")


def model_lookup(models: Mapping[str, ModelLabel]) -> Callable[[str], ModelLabel]:
    """A function the templates call with a model's name (an unknown name stands as itself)."""
    return lambda name: models.get(name) or ModelLabel(name, "")


def stage_label(stage: str) -> str:
    return STAGE_LABELS.get(stage) or stage.replace("_", " ").capitalize()


def details_of(stage: FlowStage, several_claims: bool = False) -> str:
    """A stage's detail in words: "size 34.6 KB · provider sketch"."""
    words = [_detail(key, value) for key, value in stage.detail.items()
             if key not in HIDDEN_DETAIL and value not in ("", [], None)]
    if several_claims:
        words.insert(0, f"attempt {stage.claim}")
    return " · ".join(words)


def _detail(key: str, value: object) -> str:
    label = DETAIL_LABELS.get(key, key.replace("_", " "))
    if key == "size_bytes" and isinstance(value, int):
        text = f"{value / 1024:.1f} KB" if value >= 1024 else f"{value} bytes"
    elif key.endswith("_s") and isinstance(value, int | float):
        text = _duration(float(value) * 1000)
    elif isinstance(value, list):
        text = "; ".join(str(v) for v in value)
    else:
        text = str(value).replace("_", " ") if key == "kind" else str(value)
    if len(text) > DETAIL_MAX_CHARS:
        text = text[: DETAIL_MAX_CHARS - 1] + "…"
    return f"{label} {text}" if label else text


def params_of(g: FlowGeneration) -> str:
    """Aspect, resolution and seed, as the model was asked."""
    p = g.params
    parts = [f"aspect {p['aspect_ratio']}" if p.get("aspect_ratio") else "",
             f"resolution {p['resolution']}" if p.get("resolution") else "",
             f"seed {p['seed']}" if p.get("seed") is not None else ""]
    return " · ".join(x for x in parts if x)


def cost_of(g: FlowGeneration) -> str:
    if g.status == "succeeded":
        return f"{g.cost} credits"
    if g.status in ("failed", "cancelled"):
        return f"not charged ({g.cost} credits returned)" if g.cost else "not charged"
    return f"{g.cost} credits reserved"


def elapsed_of(g: FlowGeneration) -> str:
    return f" · {g.elapsed_s:.1f} s" if g.elapsed_s is not None else ""


def duration_of(stage: FlowStage) -> str:
    return _duration(stage.duration_ms) if stage.duration_ms is not None else ""


def _duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _clock(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%H:%M:%S")


HELPERS: dict[str, Any] = {
    "stage_label": stage_label, "details_of": details_of, "params_of": params_of,
    "cost_of": cost_of, "elapsed_of": elapsed_of, "duration_of": duration_of,
    "when": _when, "clock": _clock,
    "when_ts": lambda ts: _when(datetime.fromtimestamp(int(ts), UTC)),
}
