"""The JSON API: a generation's state and its live events (Server-Sent Events).

Authorized by the same signed tokens as the pages (core/links.py), sent as
`Authorization: Bearer <token>` or `?token=<token>` (EventSource cannot set headers):
a session link sees that thread's generations, a person's link theirs, an admin
link all. Anything else is 403, the same answer for "no such generation" so ids
cannot be probed.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from aiohttp import web

from bot.flow_page import details_of, stage_label
from core.flow import FlowGeneration, load_generation, may_see
from core.links import Grant, LinkInvalid, verify_link
from core.live import GenerationFeed
from core.prompt_plan import plan_from_events
from core.runtime import Runtime

log = logging.getLogger("easel.api")

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
NO_STORE = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff"}


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    return request.query.get("token", "")


def grant_of(secrets: list[bytes], token: str) -> Grant:
    """The token's grant, or 403 (the token is never logged)."""
    if not secrets:
        raise web.HTTPNotFound(text='{"error": "signed links are not enabled"}',
                               content_type="application/json")
    try:
        return verify_link(secrets, token, time.time())
    except LinkInvalid as refused:
        log.info("api token refused: %s", refused)
        raise _forbidden() from None


async def authorized_generation(
    runtime: Runtime, grant: Grant, generation_id: int
) -> FlowGeneration:
    generation = await load_generation(runtime.pool, generation_id)
    if generation is None or not await may_see(runtime.pool, grant, generation):
        raise _forbidden()
    return generation


def _forbidden() -> web.HTTPForbidden:
    return web.HTTPForbidden(text='{"error": "invalid, expired or not your token"}',
                             content_type="application/json", headers=NO_STORE)


async def image_urls(runtime: Runtime, generation: FlowGeneration, token: str) -> list[dict[str, Any]]:
    """Each output image: a presigned URL from the bucket, else the signed image route."""
    images = []
    for asset in generation.images:
        url = await runtime.store.url(asset.key, runtime.config.url_ttl_s)
        if url is None or not url.startswith(("https://", "http://")):
            url = f"/api/generations/{generation.id}/images/{asset.id}?token={token}"
        images.append({"id": asset.id, "content_type": asset.content_type, "url": url})
    return images


def generation_json(g: FlowGeneration, images: list[dict[str, Any]], model_id: str) -> dict[str, Any]:
    """What GET /api/generations/{id} answers."""
    return {
        "id": g.id, "session_id": g.session_id, "parent_id": g.parent_id,
        "status": g.status, "stage": g.stage, "stage_label": stage_label(g.stage),
        "model": g.model, "model_id": model_id, "intent": g.intent,
        "prompts": {"user": g.user_prompt, "sent": g.refined_prompt},
        "plan": plan_from_events((s.stage, s.detail) for s in g.stages),
        "params": g.params, "cost": g.cost, "charged": g.charged,
        "compare_group": g.compare_group, "error": g.error if g.status != "succeeded" else None,
        "attempts": g.attempts, "created_at": g.created_at.isoformat(),
        "finished_at": g.finished_at.isoformat() if g.finished_at else None,
        "events": [event_json(s) for s in g.stages], "images": images,
    }


def event_json(stage: Any) -> dict[str, Any]:
    return {"id": stage.id, "stage": stage.stage, "label": stage_label(stage.stage),
            "claim": stage.claim, "duration_ms": stage.duration_ms, "detail": stage.detail,
            "summary": details_of(stage), "at": stage.at.isoformat() if stage.at else None}


async def generation_state(runtime: Runtime, g: FlowGeneration, token: str) -> dict[str, Any]:
    spec = next((m for m in runtime.catalog.models if m.name == g.model), None)
    return generation_json(g, await image_urls(runtime, g, token), spec.model_id if spec else "")


async def stream_events(
    request: web.Request, runtime: Runtime, feed: GenerationFeed, grant: Grant,
    generation_id: int, token: str,
) -> web.StreamResponse:
    """SSE: `stage` for each recorded event (id = its row id), `state` on each status or stage
    change, then `done` with the whole generation once it is finished."""
    g = await authorized_generation(runtime, grant, generation_id)
    response = web.StreamResponse(headers={
        **NO_STORE, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no"})
    await response.prepare(request)
    after = request.headers.get("Last-Event-ID") or request.query.get("after") or "0"
    last_event = int(after) if after.isdigit() else 0
    last_state: tuple[str, str, int] | None = None
    wake = feed.subscribe(generation_id)
    try:
        while True:
            wake.clear()  # before reading, so a write during the read wakes us again
            fresh = await load_generation(runtime.pool, generation_id)
            g = fresh or g
            for stage in g.stages:
                if stage.id > last_event:
                    await _send(response, "stage", event_json(stage), event_id=stage.id)
                    last_event = stage.id
            state = (g.status, g.stage, len(g.images))
            if state != last_state:
                last_state = state
                await _send(response, "state", {
                    "status": g.status, "stage": g.stage, "stage_label": stage_label(g.stage),
                    "images": await image_urls(runtime, g, token)})
            if g.status in TERMINAL or fresh is None:
                await _send(response, "done", await generation_state(runtime, g, token))
                break
            if not await feed.wait(wake):
                await response.write(b": still running\n\n")
    except (ConnectionResetError, ConnectionError):
        pass  # the browser went away
    finally:
        feed.unsubscribe(generation_id, wake)
    return response


async def _send(
    response: web.StreamResponse, event: str, data: dict[str, Any], event_id: int | None = None
) -> None:
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = json.dumps(data, separators=(",", ":"), default=str)
    await response.write(f"{head}event: {event}\ndata: {body}\n\n".encode())
