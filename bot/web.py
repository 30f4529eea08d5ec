"""Easel's web server: provider webhooks, Slack HTTP mode, flow pages, the JSON API, health
and metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import cast

from aiohttp import web

from adapters.storage.errors import InvalidObjectKey, ObjectNotFound
from bot import api, studio
from bot.flow_page import message_page, model_labels, render_flow, resolve_image_urls
from bot.migrate import pending_migrations
from core.dbhealth import is_connection_error
from core.flow import FlowLinkInvalid, flow_asset, load_flow, verify_flow_token
from core.links import Grant, LinkInvalid, verify_image_link, verify_link
from core.live import GenerationFeed
from core.runtime import Runtime
from core.webhooks import accept_prediction_webhook

log = logging.getLogger("easel.web")

RUNTIME = web.AppKey("runtime", Runtime)
SecretSource = Callable[[bool], Awaitable[str | None]]
SECRET = web.AppKey("replicate_secret", object)
FLOW_SECRET = web.AppKey("flow_secret", bytes)
FEED = web.AppKey("generation_feed", GenerationFeed)
# The page is private to whoever holds the link: never cached, indexed, or leaked as a Referer.
FLOW_HEADERS = {
    "Cache-Control": "private, no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; img-src 'self' https: http:; "
    "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}
# The studio runs one script of its own (studio.js) that reads the event stream.
STUDIO_HEADERS = {**FLOW_HEADERS, "Content-Security-Policy": "default-src 'none'; "
                  "img-src 'self' https: http:; style-src 'unsafe-inline'; script-src 'self'; "
                  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"}
SAFE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})


def build_web_app(
    runtime: Runtime,
    *,
    replicate_secret: Callable[[bool], Awaitable[str | None]] | None = None,
    flow_secret: bytes | None = None,
) -> web.Application:
    """The aiohttp app; other roles add routes (Slack events) before it starts."""
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app[RUNTIME] = runtime
    app[SECRET] = replicate_secret
    app[FLOW_SECRET] = flow_secret or b""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_post("/webhooks/replicate", replicate_webhook)
    app.router.add_get("/flow/{token}", flow_page)
    app.router.add_get(r"/flow/{token}/image/{asset_id:\d{1,18}}", flow_image)
    app.router.add_get(r"/api/generations/{generation_id:\d{1,18}}", api_generation)
    app.router.add_get(r"/api/generations/{generation_id:\d{1,18}}/events", api_events)
    app.router.add_get(r"/api/generations/{generation_id:\d{1,18}}/images/{asset_id:\d{1,18}}",
                       api_image)
    app.router.add_get("/images/{token}", signed_image)
    app.router.add_get("/studio/{token}", studio_page)
    app.router.add_get("/studio/{token}/studio.js", studio_js)
    app.router.add_get(r"/studio/{token}/image/{generation_id:\d{1,18}}/{asset_id:\d{1,18}}",
                       studio_image)
    app.router.add_get(r"/studio/{token}/composite/{generation_id:\d{1,18}}", studio_composite)
    from bot.admin_page import add_admin_routes

    add_admin_routes(app, runtime, flow_secret or b"")
    app[FEED] = GenerationFeed(runtime.connect)
    app.on_cleanup.append(_close_feed)
    from bot.metrics import metrics_handler

    app.router.add_get("/metrics", metrics_handler)
    return app


async def _close_feed(app: web.Application) -> None:
    await app[FEED].close()


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database and the store answer; says how the database has fared."""
    runtime = request.app[RUNTIME]
    checks: dict[str, str] = {}
    started_at = time.monotonic()
    try:
        async with runtime.pool.acquire() as conn:
            pending = await pending_migrations(conn)
        checks["database"] = "ok"
        checks["migrations"] = "ok" if not pending else f"pending: {', '.join(pending)}"
        runtime.health.reached(started_at)
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
        if is_connection_error(exc):
            runtime.health.lost("readyz", exc)
    try:
        await runtime.store.ping()
        checks["storage"] = "ok"
    except Exception as exc:
        checks["storage"] = f"unreachable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    health = runtime.health.snapshot()
    outages = {"database_outages": health.outages,
               "database_down_for_s": _rounded(health.down_for_s),
               "database_last_outage_s": _rounded(health.last_outage_s)}
    return web.json_response({"ready": ready, **checks, **outages},
                             status=200 if ready else 503)


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


async def replicate_webhook(request: web.Request) -> web.Response:
    """Verify the signature, deduplicate by webhook-id, requeue the parked job; reply fast."""
    from adapters.providers.replicate_webhook import WebhookRejected, verify_replicate_webhook

    runtime = request.app[RUNTIME]
    get_secret = cast(SecretSource | None, request.app[SECRET])
    # get_secret(refresh): the signing secret; with refresh, a rotated one or None.
    secret = await get_secret(False) if get_secret is not None else None
    if not secret:
        return web.json_response({"error": "webhooks are not configured"}, status=503)
    body = await request.read()
    try:
        try:
            payload = verify_replicate_webhook(request.headers, body, str(secret), tolerance_s=300)
        except WebhookRejected as rejected:
            # A rotated secret: fetch it again (rate limited by the callable) and retry once.
            is_bad = rejected.reason == "bad signature"
            rotated = await get_secret(True) if is_bad and get_secret is not None else None
            if not rotated:
                raise
            log.info("replicate webhook secret re-fetched after a failed verification")
            payload = verify_replicate_webhook(request.headers, body, rotated, tolerance_s=300)
    except WebhookRejected as rejected:
        log.warning("replicate webhook rejected: %s", rejected.reason)
        return web.json_response({"error": "invalid signature"}, status=401)
    outcome = await accept_prediction_webhook(
        runtime.pool,
        webhook_id=request.headers["webhook-id"],
        source="replicate",
        external_id=str(payload.get("id", "")),
    )
    log.info("replicate webhook %s: %s", payload.get("id"), outcome)
    return web.json_response({"ok": True, "outcome": outcome})


def _flow_session(request: web.Request) -> int:
    """The session a flow link grants; 403 for a forged or expired one (the token is never logged)."""
    secret = request.app[FLOW_SECRET]
    if not secret:
        raise _flow_refusal(web.HTTPNotFound, "Not enabled",
                            "The prompt-flow page is not enabled on this Easel.")
    try:
        return verify_flow_token(secret, request.match_info["token"], time.time())
    except FlowLinkInvalid as refused:
        log.info("flow link refused: %s", refused)
        raise _flow_refusal(web.HTTPForbidden, "Link expired or invalid",
                            "This prompt-flow link is not valid any more. "
                            "Ask for a new one with /flow in the thread.") from None


def _flow_refusal(kind: type[web.HTTPException], title: str, text: str) -> web.HTTPException:
    return kind(text=message_page(title, text), content_type="text/html", headers=FLOW_HEADERS)


async def flow_page(request: web.Request) -> web.Response:
    """A session's prompt flow as HTML; local images go through the signed image route."""
    session_id = _flow_session(request)
    runtime = request.app[RUNTIME]
    flow = await load_flow(runtime.pool, session_id)
    if flow is None:
        raise _flow_refusal(web.HTTPNotFound, "Gone", "This thread's session no longer exists.")
    token = request.match_info["token"]
    # Relative to /flow/<token>, so the page also works behind a path prefix.
    urls = await resolve_image_urls(
        runtime.store, flow.assets(), runtime.config.url_ttl_s,
        lambda asset, _: f"{token}/image/{asset.id}",
    )
    expires_at = datetime.fromtimestamp(int(token.split(".")[1]), UTC)
    page = render_flow(flow, urls, models=model_labels(runtime.catalog.models),
                       expires_at=expires_at, studio_url=f"../studio/{token}")
    return web.Response(text=page, content_type="text/html", headers=FLOW_HEADERS)


async def flow_image(request: web.Request) -> web.Response:
    """The bytes of one image of the linked session (never another session's)."""
    session_id = _flow_session(request)
    runtime = request.app[RUNTIME]
    asset = await flow_asset(runtime.pool, session_id, int(request.match_info["asset_id"]))
    if asset is None:
        raise web.HTTPNotFound()
    return await _image_response(runtime, asset.key, asset.content_type)


async def _image_response(runtime: Runtime, key: str, content_type: str) -> web.Response:
    """Stored bytes by the key the database holds (never a path from the request)."""
    try:
        data = await runtime.store.get(key)
    except ObjectNotFound:
        raise web.HTTPNotFound() from None
    safe_type = content_type if content_type in SAFE_IMAGE_TYPES else "application/octet-stream"
    headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": "default-src 'none'"}
    return web.Response(body=data, content_type=safe_type, headers=headers)


async def signed_image(request: web.Request) -> web.Response:
    """One stored image by a signed link (core/links.py): what Discord links to when an
    image is too large to attach and the images are in a local folder."""
    secret = request.app[FLOW_SECRET]
    try:
        key = verify_image_link([secret] if secret else [], request.match_info["token"],
                                time.time())
    except LinkInvalid as refused:
        log.info("image link refused: %s", refused)
        raise web.HTTPForbidden(text="This image link is not valid any more.") from None
    kind = IMAGE_TYPES.get(key.rsplit(".", 1)[-1].lower(), "application/octet-stream")
    try:
        return await _image_response(request.app[RUNTIME], key, kind)
    except InvalidObjectKey:
        raise web.HTTPNotFound() from None


IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
               "webp": "image/webp", "gif": "image/gif"}


# --- the JSON API (bot/api.py) ---------------------------------------------------------


def _api_grant(request: web.Request) -> tuple[Grant, str]:
    secret = request.app[FLOW_SECRET]
    token = api.bearer(request)
    return api.grant_of([secret] if secret else [], token), token


async def api_generation(request: web.Request) -> web.Response:
    """GET /api/generations/{id}: status, stage, prompts, params, cost, events, image URLs."""
    grant, token = _api_grant(request)
    runtime = request.app[RUNTIME]
    g = await api.authorized_generation(runtime, grant, int(request.match_info["generation_id"]))
    state = await api.generation_state(runtime, g, token)
    return web.json_response(state, headers=api.NO_STORE)


async def api_events(request: web.Request) -> web.StreamResponse:
    """GET /api/generations/{id}/events: Server-Sent Events until the generation finishes."""
    grant, token = _api_grant(request)
    return await api.stream_events(request, request.app[RUNTIME], request.app[FEED], grant,
                                   int(request.match_info["generation_id"]), token)


async def api_image(request: web.Request) -> web.Response:
    """One output image of a generation the token may see."""
    grant, _ = _api_grant(request)
    runtime = request.app[RUNTIME]
    g = await api.authorized_generation(runtime, grant, int(request.match_info["generation_id"]))
    wanted = int(request.match_info["asset_id"])
    asset = next((a for a in g.images if a.id == wanted), None)
    if asset is None:
        raise web.HTTPNotFound()
    return await _image_response(runtime, asset.key, asset.content_type)


# --- the studio (bot/studio.py) ----------------------------------------------------------


def _studio_grant(request: web.Request) -> tuple[Grant, str]:
    secret = request.app[FLOW_SECRET]
    if not secret:
        raise _flow_refusal(web.HTTPNotFound, "Not enabled",
                            "The studio is not enabled on this Easel.")
    token = request.match_info["token"]
    try:
        return verify_link([secret], token, time.time()), token
    except LinkInvalid as refused:
        log.info("studio link refused: %s", refused)
        raise _flow_refusal(web.HTTPForbidden, "Link expired or invalid",
                            "This studio link is not valid any more. "
                            "Ask for a new one with /history or /flow.") from None


def _selected(request: web.Request) -> int | None:
    wanted = request.query.get("g", "")
    return int(wanted) if wanted.isdigit() and len(wanted) < 19 else None


async def studio_page(request: web.Request) -> web.Response:
    grant, token = _studio_grant(request)
    try:
        page = await studio.studio_page(request.app[RUNTIME], grant, token, _selected(request))
    except web.HTTPForbidden:
        raise _flow_refusal(web.HTTPForbidden, "Not yours",
                            "This link does not cover that generation.") from None
    return web.Response(text=page, content_type="text/html", headers=STUDIO_HEADERS)


async def studio_js(request: web.Request) -> web.Response:
    _studio_grant(request)
    return web.Response(text=studio.STUDIO_JS, content_type="text/javascript",
                        headers={"Cache-Control": "private, max-age=300",
                                 "X-Content-Type-Options": "nosniff"})


async def studio_image(request: web.Request) -> web.Response:
    grant, _ = _studio_grant(request)
    runtime = request.app[RUNTIME]
    g = await api.authorized_generation(runtime, grant, int(request.match_info["generation_id"]))
    wanted = int(request.match_info["asset_id"])
    asset = next((a for a in g.images if a.id == wanted), None)
    if asset is None:
        raise web.HTTPNotFound()
    return await _image_response(runtime, asset.key, asset.content_type)


async def studio_composite(request: web.Request) -> web.Response:
    grant, _ = _studio_grant(request)
    runtime = request.app[RUNTIME]
    key = await studio.composite_image(runtime, grant, int(request.match_info["generation_id"]))
    return await _image_response(runtime, key, "image/png")
