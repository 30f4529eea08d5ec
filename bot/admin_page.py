"""The operator's view on Easel's web server: `/admin/<token>` and its retry button.

Only an ADMIN grant (core/links.py; `easel admin link`, `/easel admin`) opens it; any
other token, valid or not, is 403. The page is whole without JavaScript: retry is a
form POST that answers with a redirect back to the page (post/redirect/get).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from aiohttp import web

from bot.flow_page import message_page, model_labels, model_lookup, render
from core.admin import overview, retry_failed
from core.errors import Refusal
from core.links import Grant, GrantKind, LinkInvalid, verify_link
from core.runtime import Runtime

log = logging.getLogger("easel.admin")

ADMIN_HEADERS = {
    "Cache-Control": "private, no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
}


def add_admin_routes(app: web.Application, runtime: Runtime, secret: bytes) -> None:
    """GET /admin/{token} (the page) and POST /admin/{token}/retry/{id}."""

    def grant_of(request: web.Request) -> Grant:
        if not secret:
            raise _refusal(web.HTTPNotFound, "Not enabled",
                           "The operator's view needs PUBLIC_URL and EASEL_SECRET_KEY.")
        try:
            grant = verify_link([secret], request.match_info["token"], time.time())
        except LinkInvalid as refused:
            log.info("admin link refused: %s", refused)
            raise _refusal(web.HTTPForbidden, "Link expired or invalid",
                           "This admin link is not valid. Ask for a new one with "
                           "`easel admin link` or /easel admin.") from None
        if grant.kind is not GrantKind.ADMIN:
            log.info("admin page refused a %s token", grant.kind.name.lower())
            raise _refusal(web.HTTPForbidden, "Not an admin link",
                           "This link does not open the operator's view.")
        return grant

    async def page(request: web.Request) -> web.Response:
        grant = grant_of(request)
        notice, kind = _notice(request)
        text = render(
            "admin.html.j2", title="Easel · operator's view", o=await overview(runtime.pool),
            token=request.match_info["token"], expires_at=grant.expires_at,
            now=datetime.now(UTC), notice=notice, notice_kind=kind,
            model_of=model_lookup(model_labels(runtime.catalog.models)),
        )
        return web.Response(text=text, content_type="text/html", headers=ADMIN_HEADERS)

    async def retry(request: web.Request) -> web.Response:
        grant = grant_of(request)
        failed_id = int(request.match_info["generation_id"])
        by = "the CLI admin link" if grant.subject == 0 else f"admin user #{grant.subject}"
        token = request.match_info["token"]
        try:
            retried = await retry_failed(runtime.pool, runtime.config, failed_id, by=by)
        except Refusal as refused:
            log.info("admin retry of %s refused: %s", failed_id, refused.kind)
            raise web.HTTPSeeOther(f"../../{token}?refused={failed_id}&why={refused.kind}",
                                   headers=ADMIN_HEADERS) from None
        log.info("admin retry: generation %s queued again as %s by %s", failed_id,
                 retried.generation_id, by)
        raise web.HTTPSeeOther(f"../../{token}?retried={failed_id}&as={retried.generation_id}",
                               headers=ADMIN_HEADERS)

    app.router.add_get("/admin/{token}", page)
    app.router.add_post(r"/admin/{token}/retry/{generation_id:\d{1,18}}", retry)


def _notice(request: web.Request) -> tuple[str, str]:
    """What the last action did, from the redirect's query (digits and known words only)."""
    q = request.query
    failed, new = q.get("retried", ""), q.get("as", "")
    if failed.isdigit() and new.isdigit():
        return f"#{failed} is queued again as #{new}; it will post in its thread.", "ok"
    refused = q.get("refused", "")
    if refused.isdigit():
        why = {"insufficient_credits": "the person has too few credits for it",
               "not_retryable": "it did not fail", "not_found": "there is no such generation"}
        return f"#{refused} was not retried: {why.get(q.get('why', ''), 'refused')}.", "bad"
    return "", ""


def _refusal(kind: type[web.HTTPException], title: str, text: str) -> web.HTTPException:
    return kind(text=message_page(title, text), content_type="text/html", headers=ADMIN_HEADERS)
