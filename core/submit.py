"""Submit: one transaction from a person's message to a queued, paid-for generation.

Upserts the user and session, stores the message, applies the limits, reserves
the credits and inserts the generation keyed by its platform event. Any refusal
raises a `core.errors.Refusal` and leaves nothing behind; a repeated event
returns the generation it made the first time and charges nothing.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import asyncpg

from core import credits, sessions
from core.catalog import Catalog
from core.config import CoreConfig
from core.errors import (
    BadOption,
    EmptyPrompt,
    InsufficientCredits,
    ModelRetired,
    ModelUnavailable,
    NotFound,
    NothingToRefine,
    RateLimited,
    TooManyActive,
)
from core.generations import NOTIFY_CHANNEL
from core.models import Intent, MessageRef, ModelSpec, ThreadRef, UserRef
from core.options import (
    Options,
    normalise_aspect,
    normalise_resolution,
    parse_inline_options,
    size_words,
)
from core.text import clean_text, is_blank

LIMITS = """
SELECT a.available,
    (SELECT count(*) FROM generations g WHERE g.user_id = $1
       AND g.status IN ('queued', 'running', 'waiting')) AS active,
    (SELECT count(*) FROM generations g WHERE g.user_id = $1
       AND g.created_at > now() - interval '1 minute') AS recent,
    (SELECT id FROM generations g WHERE g.platform = $2 AND g.source_event = $3) AS existing
FROM accounts a WHERE a.user_id = $1
FOR UPDATE OF a
"""

# Reserves the credits ($14) and queues the generation in one statement: the account is
# debited only if it holds enough, and the generation, its reservation and the ledger
# entry are written only then. `debited` without a generation means the same event was
# queued a moment ago by someone else (the caller's transaction then rolls back).
RESERVE_AND_QUEUE = f"""
WITH {credits.debit_cte("$3", "$14")}, rid AS (
    SELECT nextval(pg_get_serial_sequence('reservations', 'id')) AS id FROM debit
), g AS (
    INSERT INTO generations (session_id, message_id, user_id, platform, source_event, model,
        params, intent, user_prompt, parent_id, compare_group, max_attempts, deadline_at,
        reservation_id, cost, status_message)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
        now() + make_interval(secs => $13), rid.id, $14, $15
    FROM rid
    ON CONFLICT (platform, source_event) DO NOTHING
    RETURNING id AS generation_id, reservation_id AS id
), {credits.reservation_ctes("g", "$3", "$14", "$16", "$17")}, m AS (
    UPDATE messages SET generation_id = g.generation_id FROM g WHERE messages.id = $2
)
SELECT (SELECT generation_id FROM g) AS generation_id, EXISTS (SELECT 1 FROM debit) AS debited,
       (SELECT available FROM accounts WHERE user_id = $3) AS available,
       (SELECT pg_notify($18, generation_id::text) FROM g) AS notified
"""

MAX_COMPARE = 4

PARENT = """
SELECT id, session_id, model, params, refined_prompt, user_prompt, status
FROM generations WHERE id = $1
"""


@dataclass(frozen=True)
class Upload:
    """An image a person attached, already downloaded by the adapter."""

    data: bytes
    filename: str
    content_type: str = ""


@dataclass(frozen=True)
class SubmitRequest:
    thread: ThreadRef
    user: UserRef
    text: str
    source_event: str
    status_message: MessageRef | None = None
    uploads: tuple[Upload, ...] = ()
    model: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    action: Intent | None = None
    target_generation_id: int | None = None
    platform_message_id: str | None = None
    compare_group: str | None = None
    compare: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class Submitted:
    generation_id: int
    session_id: int
    model: ModelSpec
    resolution: str
    aspect_ratio: str
    cost: int
    duplicate: bool = False
    generation_ids: tuple[int, ...] = ()
    compare_group: str | None = None


class _Duplicate(Exception):
    def __init__(self, generation_id: int) -> None:
        self.generation_id = generation_id


def _seed(source_event: str) -> int:
    return int.from_bytes(hashlib.sha256(source_event.encode()).digest()[:4], "big")


async def submit(
    pool: asyncpg.Pool,
    catalog: Catalog,
    config: CoreConfig,
    request: SubmitRequest,
    *,
    available_providers: frozenset[str],
    upload_keys: list[dict[str, Any]] | None = None,
) -> Submitted:
    """Queue one generation for `request`, or raise the Refusal to show the person."""
    request = with_inline_options(made_safe(request))
    text = request.text.strip()
    if is_blank(text):
        text = ""  # only zero-width or other invisible characters: nothing was asked
    if not text and request.action is None and not request.uploads:
        raise EmptyPrompt()
    try:
        async with pool.acquire() as conn, conn.transaction():
            return await _submit_in(
                conn, catalog, config, request, text, available_providers, upload_keys or []
            )
    except _Duplicate as duplicate:
        return await _existing(pool, catalog, duplicate.generation_id)


async def _submit_in(
    conn: asyncpg.Connection,
    catalog: Catalog,
    config: CoreConfig,
    request: SubmitRequest,
    text: str,
    available_providers: frozenset[str],
    upload_keys: list[dict[str, Any]],
) -> Submitted:
    turn = await sessions.open_turn(
        conn, request.user, request.thread, text, attachments=upload_keys,
        platform_message_id=request.platform_message_id,
        starter_credits=config.starter_credits, default_model=config.default_model,
    )
    user_id, session, message_id = turn.user_id, turn.session, turn.message_id
    compare = _compare_models(request.compare)
    events = [f"{request.source_event}#{m}" for m in compare] or [request.source_event]
    limits = await conn.fetchrow(LIMITS, user_id, request.thread.platform, events[0])
    assert limits is not None
    if limits["existing"] is not None:
        raise _Duplicate(limits["existing"])
    if limits["active"] + len(events) > config.max_active:
        raise TooManyActive(config.max_active)
    if limits["recent"] + len(events) > config.rate_per_minute:
        raise RateLimited(config.rate_per_minute)

    parent_id = request.target_generation_id or session.head_generation_id
    parent = await conn.fetchrow(PARENT, parent_id) if parent_id else None
    if request.target_generation_id and parent is None:
        raise NotFound()
    intent = request.action or Intent.NEW
    if intent in (Intent.REGENERATE, Intent.VARIATION, Intent.UPSCALE) and parent is None:
        raise NothingToRefine()
    names = list(compare) or [
        request.model or _default_model_for(intent, parent, session.model)
    ]
    models = [catalog.get(name) for name in names]
    for model in models:
        if model.provider not in available_providers:
            raise ModelUnavailable(model.name)
        if model.is_retired(date.today()):
            raise ModelRetired(model.display_name, model.retires)
        if request.uploads and not model.can_edit:
            raise BadOption(f"{model.display_name} cannot edit images; pick a model that can.")
    if request.model and request.model != session.model and not compare:
        await sessions.set_model(conn, session.id, models[0].name)

    parent_params: dict[str, Any] = dict(parent["params"]) if parent else {}
    said_aspect, said_resolution = size_words(text)
    wanted_aspect = normalise_aspect(
        request.aspect_ratio
        or said_aspect
        or parent_params.get("aspect_ratio")
        or config.default_aspect_ratio
    )
    wanted_resolution = normalise_resolution(
        "4K"
        if intent is Intent.UPSCALE
        else request.resolution
        or said_resolution
        or parent_params.get("resolution")
        or config.default_resolution
    )
    sizes = [
        _fit_to_model(m, wanted_aspect, wanted_resolution, explicit=intent is Intent.UPSCALE)
        for m in models
    ]
    group = request.compare_group or (
        f"{request.thread.platform}:{request.source_event}" if compare else None
    )
    costs = [m.cost(resolution) for m, (_, resolution) in zip(models, sizes, strict=True)]
    if compare:
        await conn.execute(
            """INSERT INTO compare_groups (id, session_id, platform, models, cost, status_message)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            group, session.id, request.thread.platform, [m.name for m in models], sum(costs),
            request.status_message.to_json() if request.status_message else None,
        )
    seed = _seed_for(request, intent, parent_params, models[0])
    ids = []
    for model, (aspect, resolution), cost, event in zip(models, sizes, costs, events, strict=True):
        row = await conn.fetchrow(
            RESERVE_AND_QUEUE,
            session.id,
            message_id,
            user_id,
            request.thread.platform,
            event,
            model.name,
            {"aspect_ratio": aspect, "resolution": resolution, "seed": seed},
            intent.value,
            text or (parent["user_prompt"] if parent else ""),
            parent["id"] if parent else None,
            group,
            config.max_attempts,
            config.generation_timeout_s,
            cost,
            request.status_message.to_json() if request.status_message else None,
            config.reservation_ttl_s,
            f"{model.name} {resolution}",
            NOTIFY_CHANNEL,
        )
        assert row is not None
        if not row["debited"]:
            raise InsufficientCredits(cost, int(row["available"] or 0))
        if row["generation_id"] is None:  # the same event raced us since the check
            raise _Duplicate(await _find_existing(conn, request.thread.platform, event))
        ids.append(int(row["generation_id"]))
    if upload_keys:
        await conn.execute(
            """INSERT INTO assets (message_id, kind, idx, object_key, content_type,
                                   size_bytes, sha256)
               SELECT $1, 'upload', ord - 1, u->>'key', u->>'content_type',
                      (u->>'size_bytes')::bigint, u->>'sha256'
               FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS t(u, ord)
               ON CONFLICT (object_key) DO NOTHING""",
            message_id,
            upload_keys,
        )
    aspect, resolution = sizes[0]
    return Submitted(
        ids[0], session.id, models[0], resolution, aspect, sum(costs),
        generation_ids=tuple(ids), compare_group=group if compare else None,
    )


def made_safe(request: SubmitRequest) -> SubmitRequest:
    """The request's text fields without what Postgres refuses (NUL, lone surrogates) and
    what a terminal or chat would act on (control and escape sequences): the door, once."""
    def optional(value: str | None) -> str | None:
        return None if value is None else clean_text(value)

    return replace(
        request,
        text=clean_text(request.text),
        user=replace(request.user, display_name=clean_text(request.user.display_name)),
        model=optional(request.model),
        aspect_ratio=optional(request.aspect_ratio),
        resolution=optional(request.resolution),
        compare=tuple(clean_text(name) for name in request.compare),
    )


def with_inline_options(request: SubmitRequest) -> SubmitRequest:
    """The request with the `--name value` options of its text applied (what the adapter
    set explicitly, e.g. a Discord slash option, wins) and cut out of the text."""
    text, inline = parse_inline_options(request.text)
    if inline == Options():
        return request
    return replace(
        request,
        text=text,
        model=request.model or inline.model,
        aspect_ratio=request.aspect_ratio or inline.aspect_ratio,
        resolution=request.resolution or inline.resolution,
        compare=request.compare or inline.compare,
        seed=request.seed if request.seed is not None else inline.seed,
    )


def _seed_for(
    request: SubmitRequest, intent: Intent, parent_params: dict[str, Any], model: ModelSpec
) -> int:
    """The seed asked for; else Upscale keeps the image's seed, Variations keeps it where the
    model honours seeds, Regenerate draws a new one, and a new request's is its event's."""
    if request.seed is not None:
        return request.seed
    parent_seed = parent_params.get("seed")
    if parent_seed is not None and (
        intent is Intent.UPSCALE or (intent is Intent.VARIATION and model.seeds)
    ):
        return int(parent_seed)
    if intent in (Intent.REGENERATE, Intent.VARIATION):
        return random.getrandbits(31)
    return _seed(request.source_event)


def _compare_models(names: tuple[str, ...]) -> tuple[str, ...]:
    """The distinct models of a compare (2 to MAX_COMPARE), or () when it is not one."""
    distinct = tuple(dict.fromkeys(n.strip().lower() for n in names if n.strip()))
    if not distinct:
        return ()
    if len(distinct) < 2:
        raise BadOption("A compare needs at least two different models, e.g. `nano2,gpt`.")
    if len(distinct) > MAX_COMPARE:
        raise BadOption(f"A compare takes at most {MAX_COMPARE} models.")
    return distinct


def _default_model_for(intent: Intent, parent: asyncpg.Record | None, session_model: str) -> str:
    # Buttons on an image act with that image's model; turns use the session's.
    if parent is not None and intent in (Intent.REGENERATE, Intent.VARIATION, Intent.UPSCALE):
        return str(parent["model"])
    return session_model


def _fit_to_model(
    model: ModelSpec, aspect: str, resolution: str, *, explicit: bool
) -> tuple[str, str]:
    """Keep what the model offers; an explicit ask it cannot meet is refused."""
    if resolution not in model.resolutions:
        if explicit:
            raise BadOption(
                f"{model.display_name} does not offer {resolution}; it offers "
                f"{', '.join(model.resolutions)}."
            )
        resolution = model.resolutions[-1] if model.resolutions else resolution
    if aspect not in model.aspect_ratios:
        aspect = model.aspect_ratios[0]
    return aspect, resolution


async def _find_existing(conn: asyncpg.Connection, platform: str, source_event: str) -> int:
    generation_id = await conn.fetchval(
        "SELECT id FROM generations WHERE platform = $1 AND source_event = $2",
        platform,
        source_event,
    )
    return int(generation_id)


async def _existing(pool: asyncpg.Pool, catalog: Catalog, generation_id: int) -> Submitted:
    row = await pool.fetchrow(
        "SELECT id, session_id, model, params, cost, compare_group FROM generations WHERE id = $1",
        generation_id,
    )
    assert row is not None
    params = dict(row["params"])
    return Submitted(
        row["id"],
        row["session_id"],
        catalog.get(row["model"]),
        str(params.get("resolution", "")),
        str(params.get("aspect_ratio", "")),
        row["cost"],
        duplicate=True,
        generation_ids=(row["id"],),
        compare_group=row["compare_group"],
    )
