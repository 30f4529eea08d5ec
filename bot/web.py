"""Easel's web server: provider webhooks, Slack HTTP mode, health and metrics (aiohttp)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.migrate import pending_migrations
from core.runtime import Runtime
from core.webhooks import accept_prediction_webhook

log = logging.getLogger("easel.web")

RUNTIME = web.AppKey("runtime", Runtime)
SECRET = web.AppKey("replicate_secret", object)


def build_web_app(
    runtime: Runtime,
    *,
    replicate_secret: Callable[[], Awaitable[str | None]] | None = None,
) -> web.Application:
    """The aiohttp app; other roles add routes (Slack events) before it starts."""
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app[RUNTIME] = runtime
    app[SECRET] = replicate_secret
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_post("/webhooks/replicate", replicate_webhook)
    from bot.metrics import metrics_handler

    app.router.add_get("/metrics", metrics_handler)
    return app


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    checks: dict[str, str] = {}
    try:
        async with runtime.pool.acquire() as conn:
            pending = await pending_migrations(conn)
        checks["database"] = "ok"
        checks["migrations"] = "ok" if not pending else f"pending: {', '.join(pending)}"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        await runtime.store.ping()
        checks["storage"] = "ok"
    except Exception as exc:
        checks["storage"] = f"unreachable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return web.json_response({"ready": ready, **checks}, status=200 if ready else 503)


async def replicate_webhook(request: web.Request) -> web.Response:
    """Verify the signature, deduplicate by webhook-id, requeue the parked job; reply fast."""
    from adapters.providers.replicate_webhook import WebhookRejected, verify_replicate_webhook

    runtime = request.app[RUNTIME]
    get_secret = request.app[SECRET]
    secret = await get_secret() if callable(get_secret) else None
    if not secret:
        return web.json_response({"error": "webhooks are not configured"}, status=503)
    body = await request.read()
    try:
        payload = verify_replicate_webhook(request.headers, body, str(secret), tolerance_s=300)
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
