"""The prompt flow of a session: its turns and generations as a lineage tree.

A flow page is reached by a signed, expiring link (core/links.py): the token
carries the session id and the expiry, and an HMAC over both with
EASEL_SECRET_KEY, so a link can be neither guessed nor bent to another session.
`load_flow` reads the session with a few queries and returns a frozen tree for a
renderer; `load_generation` reads one generation for the API and the live page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from core.links import Grant, GrantKind, LinkInvalid, sign_link, verify_link

SESSION = """
SELECT id, platform, model, created_at FROM sessions WHERE id = $1 AND deleted_at IS NULL
"""

TURN_COLUMNS = """
SELECT m.id, m.text, m.created_at, coalesce(nullif(u.display_name, ''), u.external_id, '') AS author,
    (SELECT coalesce(jsonb_agg(jsonb_build_object('id', a.id, 'key', a.object_key,
                                                  'content_type', a.content_type) ORDER BY a.idx),
                     '[]')
       FROM assets a WHERE a.message_id = m.id AND a.kind = 'upload') AS uploads
FROM messages m LEFT JOIN users u ON u.id = m.user_id
"""
TURNS = TURN_COLUMNS + "WHERE m.session_id = $1 AND m.role = 'user' ORDER BY m.id"
TURN = TURN_COLUMNS + "WHERE m.id = $1"

GENERATION_COLUMNS = """
SELECT g.id, g.session_id, g.user_id, g.parent_id, g.message_id, g.model, g.intent, g.user_prompt,
    g.refined_prompt,
    g.status::text AS status, g.stage::text AS stage, g.cost, g.compare_group, g.error,
    g.attempts, g.params, g.created_at, g.finished_at,
    (SELECT coalesce(jsonb_agg(jsonb_build_object('id', e.id, 'at', e.at,
                                                  'stage', e.stage, 'claim', e.claim,
                                                  'duration_ms', e.duration_ms, 'detail', e.detail)
                               ORDER BY e.id), '[]')
       FROM generation_events e WHERE e.generation_id = g.id) AS events,
    (SELECT coalesce(jsonb_agg(jsonb_build_object('id', a.id, 'key', a.object_key,
                                                  'content_type', a.content_type) ORDER BY a.idx),
                     '[]')
       FROM assets a WHERE a.generation_id = g.id AND a.kind = 'output') AS images
FROM generations g
"""
GENERATIONS = GENERATION_COLUMNS + "WHERE g.session_id = $1 ORDER BY g.id"
GENERATION = GENERATION_COLUMNS + "WHERE g.id = $1"

# A person sees the generations they asked for and every one of a thread they spoke in.
PERSON_MAY_SEE = """
SELECT EXISTS (SELECT 1 FROM generations g WHERE g.id = $1 AND (g.user_id = $2 OR EXISTS (
    SELECT 1 FROM messages m WHERE m.session_id = g.session_id AND m.user_id = $2)))
"""

ASSET = """
SELECT a.id, a.object_key, a.content_type FROM assets a
LEFT JOIN generations g ON g.id = a.generation_id
LEFT JOIN messages m ON m.id = a.message_id
WHERE a.id = $1 AND coalesce(g.session_id, m.session_id) = $2
"""


FlowLinkInvalid = LinkInvalid  # the name the flow page's callers know


# --- signed links (core/links.py; a session's flow is a SESSION grant) -----------------


def sign_flow_token(secret: bytes, session_id: int, expires_at: int) -> str:
    """A URL-safe token for session `session_id`, valid until unix time `expires_at`."""
    return sign_link(secret, GrantKind.SESSION, session_id, expires_at)


def verify_flow_token(secret: bytes | Sequence[bytes], token: str, now: float) -> int:
    """The session id a token grants, or FlowLinkInvalid (forged, altered, expired, or
    a token of another kind)."""
    grant = verify_link([secret] if isinstance(secret, bytes) else secret, token, now)
    if grant.kind is not GrantKind.SESSION:
        raise LinkInvalid("not a session link")
    return grant.subject


# --- the tree -------------------------------------------------------------------


@dataclass(frozen=True)
class FlowAsset:
    """A stored image: an output of a generation or an upload of a turn."""

    id: int
    key: str
    content_type: str


@dataclass(frozen=True)
class FlowStage:
    """One recorded event of a generation (a stage, a retry, or its outcome)."""

    stage: str
    claim: int
    duration_ms: float | None
    detail: dict[str, Any]
    id: int = 0
    at: datetime | None = None


@dataclass(frozen=True)
class FlowTurn:
    """A person's message in the thread."""

    message_id: int
    text: str
    author: str
    at: datetime
    uploads: tuple[FlowAsset, ...] = ()


@dataclass(frozen=True)
class FlowGeneration:
    """One generation: what was asked, what the model got, how it went."""

    id: int
    parent_id: int | None
    turn: FlowTurn | None
    model: str
    intent: str
    user_prompt: str
    refined_prompt: str | None
    status: str
    stage: str
    cost: int
    compare_group: str | None
    error: str | None
    attempts: int
    params: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None
    stages: tuple[FlowStage, ...]
    images: tuple[FlowAsset, ...]
    session_id: int = 0
    user_id: int = 0

    @property
    def elapsed_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.created_at).total_seconds()

    @property
    def charged(self) -> int:
        """Credits actually spent: the reservation is confirmed only on success."""
        return self.cost if self.status == "succeeded" else 0


@dataclass(frozen=True)
class FlowStep:
    """A node of the lineage tree: one generation, or a compare group side by side."""

    generations: tuple[FlowGeneration, ...]
    children: tuple[FlowStep, ...] = ()

    @property
    def compare_group(self) -> str | None:
        return self.generations[0].compare_group

    @property
    def turn(self) -> FlowTurn | None:
        return self.generations[0].turn


@dataclass(frozen=True)
class Flow:
    """A session's prompt flow: every turn, and the generations as a tree."""

    session_id: int
    platform: str
    model: str
    created_at: datetime
    turns: tuple[FlowTurn, ...]
    roots: tuple[FlowStep, ...]

    def generations(self) -> list[FlowGeneration]:
        """Every generation in the tree, depth first."""
        found: list[FlowGeneration] = []
        stack = list(reversed(self.roots))
        while stack:
            step = stack.pop()
            found.extend(step.generations)
            stack.extend(reversed(step.children))
        return found

    def assets(self) -> list[FlowAsset]:
        """Every image the page shows: uploads and outputs."""
        uploads = [a for turn in self.turns for a in turn.uploads]
        return uploads + [a for g in self.generations() for a in g.images]


async def load_flow(pool: asyncpg.Pool, session_id: int) -> Flow | None:
    """The flow of a live session, or None when it does not exist (or was deleted)."""
    async with pool.acquire() as conn:
        session = await conn.fetchrow(SESSION, session_id)
        if session is None:
            return None
        turn_rows = await conn.fetch(TURNS, session_id)
        generation_rows = await conn.fetch(GENERATIONS, session_id)
    turns = tuple(_turn(r) for r in turn_rows)
    by_message = {t.message_id: t for t in turns}
    generations = [_generation(r, by_message) for r in generation_rows]
    return Flow(session["id"], session["platform"], session["model"], session["created_at"],
                turns, _tree(generations))


async def flow_asset(pool: asyncpg.Pool, session_id: int, asset_id: int) -> FlowAsset | None:
    """An image of this session (None if the asset belongs to another session)."""
    row = await pool.fetchrow(ASSET, asset_id, session_id)
    return FlowAsset(row["id"], row["object_key"], row["content_type"]) if row else None


async def load_generation(pool: asyncpg.Pool, generation_id: int) -> FlowGeneration | None:
    """One generation with its stages and images (None if there is no such generation)."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(GENERATION, generation_id)
        if row is None:
            return None
        turn = None
        if row["message_id"] is not None:
            turn_row = await conn.fetchrow(TURN, row["message_id"])
            if turn_row is not None:
                turn = _turn(turn_row)
    return _generation(row, {turn.message_id: turn} if turn else {})


async def may_see(pool: asyncpg.Pool, grant: Grant, generation: FlowGeneration) -> bool:
    """Whether a verified grant covers this generation."""
    if grant.kind is GrantKind.ADMIN:
        return True
    if grant.kind is GrantKind.SESSION:
        return generation.session_id == grant.subject
    return bool(await pool.fetchval(PERSON_MAY_SEE, generation.id, grant.subject))


def _turn(r: asyncpg.Record) -> FlowTurn:
    return FlowTurn(r["id"], r["text"], r["author"], r["created_at"], _assets(r["uploads"]))


def _assets(items: list[dict[str, Any]]) -> tuple[FlowAsset, ...]:
    return tuple(FlowAsset(int(a["id"]), str(a["key"]), str(a["content_type"])) for a in items)


def _generation(row: asyncpg.Record, turns: dict[int, FlowTurn]) -> FlowGeneration:
    stages = tuple(
        FlowStage(str(e["stage"]), int(e["claim"]), e["duration_ms"], dict(e["detail"] or {}),
                  int(e["id"]), datetime.fromisoformat(e["at"]))
        for e in row["events"]
    )
    return FlowGeneration(
        id=row["id"], parent_id=row["parent_id"], turn=turns.get(row["message_id"]),
        model=row["model"], intent=row["intent"], user_prompt=row["user_prompt"],
        refined_prompt=row["refined_prompt"], status=row["status"], stage=row["stage"],
        cost=row["cost"], compare_group=row["compare_group"], error=row["error"],
        attempts=row["attempts"], params=dict(row["params"]), created_at=row["created_at"],
        finished_at=row["finished_at"], stages=stages, images=_assets(row["images"]),
        session_id=row["session_id"], user_id=row["user_id"],
    )


def _tree(generations: list[FlowGeneration]) -> tuple[FlowStep, ...]:
    """Group compare siblings into one step, then hang each step under its parent's step."""
    groups: dict[str, list[FlowGeneration]] = {}
    members: list[list[FlowGeneration]] = []
    for g in generations:  # in id order, so a step sits where its first member was asked
        if g.compare_group is None:
            members.append([g])
        elif g.compare_group in groups:
            groups[g.compare_group].append(g)
        else:
            groups[g.compare_group] = [g]
            members.append(groups[g.compare_group])
    step_of = {g.id: index for index, group in enumerate(members) for g in group}
    children: dict[int | None, list[int]] = {}
    for index, group in enumerate(members):
        parent = group[0].parent_id
        # A parent outside this session (or inside the same step) makes this step a root.
        parent_step = step_of.get(parent) if parent is not None else None
        children.setdefault(parent_step if parent_step != index else None, []).append(index)

    def build(index: int) -> FlowStep:
        return FlowStep(tuple(members[index]), tuple(build(c) for c in children.get(index, [])))

    return tuple(build(index) for index in children.get(None, []))
