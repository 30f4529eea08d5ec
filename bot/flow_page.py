"""The prompt-flow page: a session's lineage as server-rendered HTML (no JavaScript).

Each user turn, the prompt the model actually got, every stage with its timing,
the images, model, cost and outcome; refinements hang under what they built on,
and a compare group sits side by side. Everything from the database is escaped.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from core.flow import Flow, FlowAsset, FlowGeneration, FlowStage, FlowStep, FlowTurn, load_flow
from core.ports import ObjectStore
from core.runtime import Runtime

# Detail keys the page already shows elsewhere, or that mean nothing to a reader.
HIDDEN_DETAIL = frozenset({"prompt", "object_key"})
DETAIL_MAX_CHARS = 200

CSS = """
:root{--bg:#f6f5f2;--card:#fff;--ink:#1d1d1f;--dim:#6b6b70;--line:#d9d6cf;--ok:#1f7a3a;
--bad:#b3261e;--run:#8a5a00;--accent:#3b5bdb}
@media (prefers-color-scheme:dark){:root{--bg:#151517;--card:#202024;--ink:#ececf0;
--dim:#a0a0a8;--line:#3a3a40;--ok:#5cc97b;--bad:#ff7b72;--run:#e0b040;--accent:#8ca4ff}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,sans-serif;-webkit-text-size-adjust:100%}
main{max-width:60rem;margin:0 auto;padding:.75rem}
h1{font-size:1.25rem;margin:.25rem 0}
.meta,.dim{color:var(--dim);font-size:.85rem}
ol.tree{list-style:none;margin:0;padding:0}
ol.tree ol.tree{margin:.5rem 0 0 .35rem;padding-left:.6rem;border-left:2px solid var(--line)}
li.step{margin:0 0 .75rem}
.turn{margin:0 0 .35rem;overflow-wrap:anywhere}
.turn q{font-weight:600}
.who{color:var(--accent);font-weight:600}
.uploads{display:flex;gap:.35rem;flex-wrap:wrap;margin:.25rem 0}
.uploads img{width:4rem;height:4rem;object-fit:cover;border-radius:4px}
.compare{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,9.5rem),1fr));gap:.5rem}
.compare-label{font-size:.8rem;color:var(--dim);margin:0 0 .25rem}
article.gen{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.6rem;
min-width:0;container-type:inline-size}
article.gen.failed{border-color:var(--bad)}
.gen figure{margin:0 0 .4rem}
.gen img.out{display:block;width:100%;max-width:14rem;height:auto;border-radius:6px;
image-rendering:pixelated;background:var(--line)}
/* A card with room puts its image beside the prompt; a narrow one (a phone, a compare column)
   stacks them. */
@container (min-width:20rem){.pictured{display:grid;grid-template-columns:minmax(0,9rem) 1fr;
gap:0 .6rem;align-items:start}.pictured figure{grid-row:span 2}.pictured .prompt{margin-top:0}}
.head{display:flex;flex-wrap:wrap;gap:.25rem .6rem;align-items:baseline;margin-bottom:.3rem}
.model{font-weight:600}
.outcome{font-weight:600;text-transform:uppercase;font-size:.75rem;letter-spacing:.04em}
.succeeded .outcome{color:var(--ok)}.failed .outcome,.cancelled .outcome{color:var(--bad)}
.queued .outcome,.running .outcome,.waiting .outcome{color:var(--run)}
.prompt{margin:.25rem 0;padding:.35rem .5rem;border-left:3px solid var(--accent);
background:var(--bg);font-size:.9rem;overflow-wrap:anywhere}
.error{color:var(--bad);font-size:.9rem;margin:.25rem 0}
ol.stages{list-style:none;margin:.35rem 0 0;padding:0;font-size:.8rem}
ol.stages li{display:grid;grid-template-columns:minmax(0,7.5rem) 1fr auto;gap:.5rem;
border-top:1px dotted var(--line);padding:.1rem 0}
.timing{text-align:right;font-variant-numeric:tabular-nums}
.detail{color:var(--dim);overflow-wrap:anywhere}
"""


def render_flow(
    flow: Flow,
    image_urls: Mapping[int, str],
    *,
    display_names: Mapping[str, str] | None = None,
    expires_at: datetime | None = None,
) -> str:
    """The whole page for `flow`; `image_urls` maps asset ids to what an <img> should load."""
    page = _Page(image_urls, display_names or {})
    generations = flow.generations()
    linked = {g.turn.message_id for g in generations if g.turn is not None}
    loose = [t for t in flow.turns if t.message_id not in linked]
    spent = sum(g.charged for g in generations)
    summary = (
        f"{flow.platform} thread · started {_when(flow.created_at)} · {len(flow.turns)} turns · "
        f"{len(generations)} generations · {spent} credits spent"
    )
    body = [
        "<header><h1>Prompt flow</h1>",
        f'<p class="meta">{_e(summary)}</p></header>',
        page.tree(flow.roots) if flow.roots else '<p class="dim">No generations yet.</p>',
    ]
    if loose:
        body.append('<section><h2 class="meta">Other messages</h2>')
        body.extend(page.turn(t) for t in loose)
        body.append("</section>")
    if expires_at is not None:
        body.append(f'<footer class="dim">This link expires {_e(_when(expires_at))}.</footer>')
    return _document(f"Prompt flow · session {flow.session_id}", "\n".join(body))


def message_page(title: str, text: str) -> str:
    """A small page for a refused link (403) or a missing session (404)."""
    return _document(title, f"<h1>{_e(title)}</h1><p>{_e(text)}</p>")


async def resolve_image_urls(
    store: ObjectStore, flow: Flow, ttl_s: int, local: Callable[[FlowAsset, str], str]
) -> dict[int, str]:
    """Presigned http(s) URLs as they are; a store's local path goes through `local`."""
    urls: dict[int, str] = {}
    for asset in flow.assets():
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
        runtime.store, flow, runtime.config.url_ttl_s, lambda _, path: Path(path).as_uri()
    )
    names = {m.name: m.display_name for m in runtime.catalog.models}
    target = folder / f"{session_id}.html"
    await asyncio.to_thread(_write, target, render_flow(flow, urls, display_names=names))
    return target


def _write(target: Path, page: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, "utf-8")


class _Page:
    def __init__(self, image_urls: Mapping[int, str], display_names: Mapping[str, str]) -> None:
        self.urls = image_urls
        self.names = display_names

    def tree(self, steps: tuple[FlowStep, ...]) -> str:
        return '<ol class="tree">' + "".join(self.step(s) for s in steps) + "</ol>"

    def step(self, step: FlowStep) -> str:
        parts = [f'<li class="step" id="step-{step.generations[0].id}">']
        if step.turn is not None:
            parts.append(self.turn(step.turn))
        if step.compare_group is not None:
            label = f"Compare · {len(step.generations)} models side by side"
            parts.append(f'<p class="compare-label">{_e(label)}</p>')
            parts.append(f'<div class="compare" data-compare-group="{_e(step.compare_group)}">')
            parts.extend(self.generation(g) for g in step.generations)
            parts.append("</div>")
        else:
            parts.append(self.generation(step.generations[0]))
        if step.children:
            parts.append(self.tree(step.children))
        parts.append("</li>")
        return "".join(parts)

    def turn(self, turn: FlowTurn) -> str:
        who = f'<span class="who">{_e(turn.author or "someone")}</span>'
        text = f"<q>{_e(turn.text)}</q>" if turn.text else '<span class="dim">(no text)</span>'
        when = f'<time class="dim" datetime="{_e(turn.at.isoformat())}">{_e(_clock(turn.at))}</time>'
        uploads = ""
        if turn.uploads:
            uploads = '<div class="uploads">' + "".join(
                self.image(a, "upload", "an image they attached") for a in turn.uploads
            ) + "</div>"
        return f'<p class="turn">{who} {text} {when}</p>{uploads}'

    def generation(self, g: FlowGeneration) -> str:
        model = self.names.get(g.model)
        model_label = f"{model} ({g.model})" if model and model != g.model else g.model
        head = (
            f'<div class="head"><span class="model">{_e(model_label)}</span>'
            f'<span class="outcome">{_e(g.status)}</span>'
            f'<span class="dim">#{g.id} · {_e(g.intent)} · {_e(_cost(g))}'
            f"{_e(_elapsed(g))}{_e(_seed(g))}</span></div>"
        )
        figure = "".join(
            f"<figure>{self.image(a, 'out', g.refined_prompt or g.user_prompt)}</figure>"
            for a in g.images
        )
        prompt = (
            f'<p class="prompt"><span class="dim">Prompt sent: </span>{_e(g.refined_prompt)}</p>'
            if g.refined_prompt else ""
        )
        error = f'<p class="error">{_e(g.error)}</p>' if g.error and g.status != "succeeded" else ""
        stages = "".join(_stage(s, several_claims=len({x.claim for x in g.stages}) > 1)
                         for s in g.stages)
        return (
            f'<article class="gen {_e(g.status)}" id="gen-{g.id}">{head}'
            f'<div class="{"pictured" if figure else "plain"}">{figure}{prompt}{error}</div>'
            f'<ol class="stages">{stages}</ol></article>'
        )

    def image(self, asset: FlowAsset, css_class: str, alt: str) -> str:
        url = self.urls.get(asset.id)
        if url is None:
            return '<span class="dim">(image unavailable)</span>'
        # A link to the full image, so a phone can open it large without any script.
        return (
            f'<a href="{_e(url)}"><img class="{css_class}" src="{_e(url)}" alt="{_e(alt)}"></a>'
        )


def _stage(stage: FlowStage, *, several_claims: bool) -> str:
    timing = _duration(stage.duration_ms) if stage.duration_ms is not None else ""
    details = [
        f"{key}: {_short(value)}" for key, value in stage.detail.items() if key not in HIDDEN_DETAIL
    ]
    if several_claims:
        details.insert(0, f"claim {stage.claim}")
    detail = f'<span class="detail">{_e(" · ".join(details))}</span>' if details else ""
    return (
        f'<li><span class="stage">{_e(stage.stage)}</span>{detail}'
        f'<span class="timing">{_e(timing)}</span></li>'
    )


def _cost(g: FlowGeneration) -> str:
    if g.status == "succeeded":
        return f"{g.cost} credits"
    if g.status in ("failed", "cancelled"):
        return f"not charged ({g.cost} credits returned)" if g.cost else "not charged"
    return f"{g.cost} credits reserved"


def _seed(g: FlowGeneration) -> str:
    return f" · seed {g.params['seed']}" if g.params.get("seed") is not None else ""


def _elapsed(g: FlowGeneration) -> str:
    return f" · {g.elapsed_s:.1f} s" if g.elapsed_s is not None else ""


def _duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= DETAIL_MAX_CHARS else text[: DETAIL_MAX_CHARS - 1] + "…"


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _clock(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%H:%M:%S")


def _e(text: str | None) -> str:
    return html.escape(text or "", quote=True)


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n"
        f"<body><main>\n{body}\n</main></body></html>\n"
    )
