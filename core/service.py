"""What chat adapters call: submit a request, look at credits, switch models, grant.

A thin façade over the core modules, so an adapter needs one object.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from core import credits, sessions
from core.deletion import Deleted, delete_image, last_image
from core.errors import FlowUnavailable, NotAllowed, NotFound
from core.flow import sign_flow_token
from core.links import GrantKind, sign_link
from core.models import MessageRef, ModelSpec, ThreadRef, UserRef
from core.preferences import Preferences, preferences_of, read_change, save_preferences
from core.runtime import Runtime
from core.styles import NO_STYLE
from core.submit import SubmitRequest, Submitted, submit
from core.uploads import check_upload

RECENT_GENERATIONS = """
SELECT g.id, g.model, g.status, g.cost, g.created_at, r.status AS paid FROM generations g
JOIN users u ON u.id = g.user_id
LEFT JOIN reservations r ON r.id = g.reservation_id
WHERE u.platform = $1 AND u.workspace = $2 AND u.external_id = $3
ORDER BY g.id DESC LIMIT 5
"""

FLOW_LINK_TTL_S = 7 * 86_400
ADMIN_LINK_TTL_S = 3600  # an operator's link opens money and every thread: one hour
ADMIN_UNAVAILABLE = "The operator's view needs PUBLIC_URL and EASEL_SECRET_KEY set on this Easel."
NO_HISTORY = "You have no images yet, so there is no history to show. Ask for an image first."
NOT_A_SESSION = "This thread has no images yet, so it has no prompt flow. Ask for an image first."


def _paid(status: str, reservation: str | None, cost: int) -> str:
    """How a generation's credits went: charged, refunded (never "failed (12 cr)"), held."""
    if reservation == "released":
        return f"refunded ({status}, {cost} cr returned)"
    if reservation == "pending":
        return f"{status} ({cost} cr reserved)"
    return f"{status} ({cost} cr)"


@dataclass(frozen=True)
class CreditsView:
    available: int
    reserved: int
    spent: int
    recent: tuple[tuple[int, str, str, int], ...] = ()

    def as_text(self) -> str:
        lines = [
            f"Credits: {self.available} available · {self.reserved} reserved · "
            f"{self.spent} spent"
        ]
        lines += [f"#{gid} {model} {status}" for gid, model, status, _ in self.recent]
        return "\n".join(lines)


class Easel:
    """The core as the chat adapters see it."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    @property
    def catalog_models(self) -> list[ModelSpec]:
        return list(self.rt.catalog.models)

    async def submit(self, request: SubmitRequest) -> Submitted:
        """Check uploads, store them, and queue the generation (or raise a Refusal)."""
        upload_keys = [await self._store_upload(u) for u in request.uploads]
        return await submit(
            self.rt.intake_pool or self.rt.pool,
            self.rt.catalog,
            self.rt.config,
            request,
            available_providers=self.rt.available_providers,
            upload_keys=upload_keys,
            styles=self.rt.styles,
        )

    async def _store_upload(self, upload: Any) -> dict[str, Any]:
        image = check_upload(
            upload.data, max_bytes=self.rt.config.max_upload_bytes, name=upload.filename
        )
        digest = hashlib.sha256(image.data).hexdigest()
        ext = image.content_type.split("/")[-1].replace("jpeg", "jpg")
        stored = await self.rt.store.put(f"uploads/{digest}.{ext}", image.data, image.content_type)
        return {
            "key": stored.key,
            "content_type": stored.content_type,
            "size_bytes": stored.size_bytes,
            "sha256": stored.sha256,
            "name": upload.filename,
        }

    async def is_known_event(self, platform: str, source_event: str) -> bool:
        """True when this platform event already made a generation (retries are no-ops)."""
        # On the intake connections: a busy worker must not delay the person's first answer.
        found = await (self.rt.intake_pool or self.rt.pool).fetchval(
            """SELECT 1 FROM generations WHERE platform = $1 AND source_event = $2
               UNION ALL SELECT 1 FROM compare_groups WHERE id = $1 || ':' || $2""",
            platform,
            source_event,
        )
        return found is not None

    async def is_session(self, thread: ThreadRef) -> bool:
        """Whether a thread is an Easel session (replies in other threads are ignored)."""
        async with self.rt.pool.acquire() as conn:
            return await sessions.find_session(conn, thread) is not None

    async def credits(self, user: UserRef) -> CreditsView:
        """The person's balance and last generations (creating their account if new)."""
        async with self.rt.pool.acquire() as conn:
            user_id = await sessions.upsert_user(conn, user, self.rt.config.starter_credits)
            balance = await credits.balance(conn, user_id)
            rows = await conn.fetch(RECENT_GENERATIONS, user.platform, user.workspace,
                                    user.external_id)
        assert balance is not None
        recent = tuple((r["id"], r["model"], _paid(str(r["status"]), r["paid"], r["cost"]),
                        r["cost"]) for r in rows)
        return CreditsView(balance.available, balance.reserved, balance.spent, recent)

    async def set_model(self, thread: ThreadRef, user: UserRef, name: str) -> ModelSpec:
        """Switch the thread's session to model `name` (the session is created if needed)."""
        model = self.rt.catalog.usable(name, self.rt.available_providers, date.today())
        async with self.rt.pool.acquire() as conn, conn.transaction():
            user_id = await sessions.upsert_user(conn, user, self.rt.config.starter_credits)
            session = await sessions.upsert_session(conn, thread, model.name, user_id)
            await sessions.set_model(conn, session.id, model.name)
        return model

    async def continue_with(self, thread: ThreadRef, user: UserRef, generation_id: int) -> ModelSpec:
        """After a compare: make this image the next refinement's parent, and its model the
        session's."""
        row = await self.rt.pool.fetchrow(
            """SELECT g.model, g.session_id FROM generations g JOIN sessions s ON s.id = g.session_id
               WHERE g.id = $1 AND g.status = 'succeeded' AND s.platform = $2 AND s.channel = $3
                 AND s.thread = $4""",
            generation_id, thread.platform, thread.channel, thread.thread,
        )
        if row is None:
            raise NotFound()
        async with self.rt.pool.acquire() as conn, conn.transaction():
            await sessions.set_model(conn, row["session_id"], row["model"])
            await sessions.set_head(conn, row["session_id"], generation_id)
        return self.rt.catalog.get(row["model"])

    async def delete_image(self, thread: ThreadRef, user: UserRef, generation_id: int | None, *,
                           is_admin: bool = False, also: MessageRef | None = None) -> Deleted:
        """Delete an image of this thread (its newest when `generation_id` is None): its
        message and stored objects; only its requester or an admin may (the ledger stays)."""
        if generation_id is None:
            generation_id = await last_image(self.rt, thread)
        return await delete_image(self.rt, thread, user, generation_id, is_admin=is_admin,
                                  also=also)
    async def settings(self, user: UserRef, text: str = "") -> Preferences:
        """The person's defaults for new threads, after applying `--model gpt --style none`
        style changes in `text` (the Refusal for a wrong value)."""
        change = read_change(text)
        if change.given.model:  # the same sentence as /model for a model that cannot be used
            self.rt.catalog.usable(change.given.model, self.rt.available_providers, date.today())
        if change.given.style and change.given.style not in NO_STYLE:
            self.rt.styles.get(change.given.style)
        async with self.rt.pool.acquire() as conn, conn.transaction():
            user_id = await sessions.upsert_user(conn, user, self.rt.config.starter_credits)
            current = await preferences_of(conn, user)
            if change.is_empty:
                return current
            updated = change.applied_to(current)
            if updated.style in NO_STYLE:
                updated = replace(updated, style=None)
            await save_preferences(conn, user_id, updated)
        return updated

    def style_names(self, typed: str = "") -> list[tuple[str, str]]:
        """(name, what it adds) of the styles matching `typed`, for autocomplete."""
        return [(s.name, s.description or s.adds) for s in self.rt.styles.matching(typed)]

    async def session_model(self, thread: ThreadRef) -> str:
        """The model a thread's next turn uses."""
        async with self.rt.pool.acquire() as conn:
            session = await sessions.find_session(conn, thread)
        return session.model if session else self.rt.config.default_model

    async def grant(
        self, admin: UserRef, is_admin: bool, target: UserRef, amount: int, key: str
    ) -> CreditsView:
        """An admin's grant (or deduction, when negative) to another person."""
        if not is_admin:
            raise NotAllowed()
        async with self.rt.pool.acquire() as conn:
            user_id = await sessions.upsert_user(conn, target, self.rt.config.starter_credits)
            await credits.adjust(
                conn, user_id, amount, reason=f"by {admin.platform}:{admin.external_id}", key=key
            )
        return await self.credits(target)

    async def flow_session(self, thread: ThreadRef) -> int:
        """The session id of a thread whose prompt flow is wanted (FlowUnavailable if none)."""
        async with self.rt.pool.acquire() as conn:
            session = await sessions.find_session(conn, thread)
        if session is None:
            raise FlowUnavailable(NOT_A_SESSION)
        return session.id

    async def flow_link(
        self,
        thread: ThreadRef,
        secret_key: bytes | None = None,
        public_url: str | None = None,
        ttl_s: int = FLOW_LINK_TTL_S,
    ) -> str:
        """A signed, expiring link to the thread's prompt-flow page on Easel's web server
        (secret and URL default to this Easel's configuration)."""
        secret_key = secret_key or self.rt.config.flow_secret
        public_url = public_url or self.rt.config.public_url
        if not secret_key or not public_url:
            raise FlowUnavailable()
        session_id = await self.flow_session(thread)
        token = sign_flow_token(secret_key, session_id, int(time.time()) + ttl_s)
        return f"{public_url.rstrip('/')}/flow/{token}"

    async def history_link(
        self,
        user: UserRef,
        secret_key: bytes | None = None,
        public_url: str | None = None,
        ttl_s: int = FLOW_LINK_TTL_S,
    ) -> str:
        """A signed link to the person's studio: their threads and generations, live."""
        secret_key = secret_key or self.rt.config.flow_secret
        public_url = public_url or self.rt.config.public_url
        if not secret_key or not public_url:
            raise FlowUnavailable()
        user_id = await self.rt.pool.fetchval(
            "SELECT id FROM users WHERE platform = $1 AND workspace = $2 AND external_id = $3",
            user.platform, user.workspace, user.external_id,
        )
        if user_id is None:
            raise FlowUnavailable(NO_HISTORY)
        token = sign_link(secret_key, GrantKind.PERSON, user_id, int(time.time()) + ttl_s)
        return f"{public_url.rstrip('/')}/studio/{token}"

    async def admin_link(
        self, admin: UserRef | None, is_admin: bool, ttl_s: int = ADMIN_LINK_TTL_S
    ) -> str:
        """A signed link to the operator's view (NotAllowed unless `is_admin`); `admin` None
        is the CLI. The link names who asked, so the page's actions record them."""
        if not is_admin:
            raise NotAllowed()
        secret_key, public_url = self.rt.config.flow_secret, self.rt.config.public_url
        if not secret_key or not public_url:
            raise FlowUnavailable(ADMIN_UNAVAILABLE)
        subject = 0
        if admin is not None:
            async with self.rt.pool.acquire() as conn:
                subject = await sessions.upsert_user(conn, admin, self.rt.config.starter_credits)
        return admin_url(secret_key, public_url, subject, ttl_s)


def admin_url(secret_key: bytes, public_url: str, subject: int, ttl_s: int = ADMIN_LINK_TTL_S
              ) -> str:
    """The operator's view, signed for `subject` (0: the CLI) for `ttl_s` seconds."""
    token = sign_link(secret_key, GrantKind.ADMIN, subject, int(time.time()) + ttl_s)
    return f"{public_url.rstrip('/')}/admin/{token}"
