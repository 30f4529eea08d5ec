"""Submit: one transaction from a person's message to a queued, paid-for generation.

Upserts the user and session, stores the message, applies the limits, reserves
the credits and inserts the generation keyed by its platform event. Any refusal
raises a `core.errors.Refusal` and leaves nothing behind; a repeated event
returns the generation it made the first time and charges nothing.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import asyncpg

from core import thread_facts
from core.catalog import Catalog
from core.config import CoreConfig
from core.errors import (
    BadOption,
    EmptyPrompt,
    InsufficientCredits,
    NotFound,
    NothingToRefine,
    RateLimited,
    Refusal,
    TooManyActive,
)
from core.generations import NOTIFY_CHANNEL
from core.models import Intent, MessageRef, ModelSpec, ThreadRef, UserRef
from core.options import (
    MAX_SEED,
    Options,
    normalise_aspect,
    normalise_resolution,
    parse_inline_options,
    size_words,
)
from core.preferences import Preferences, new_thread_model, preferences_of
from core.styles import Styles, look_params
from core.text import clean_text, is_blank, without_mentions

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

# The whole turn in one statement (migration 0015): `$2` what the plan assumed of the
# thread, `$3` the generations to queue. Refusals come back as errors EA000-EA004.
SUBMIT = "SELECT sid, ids FROM easel_submit($1::jsonb, $2::jsonb, $3::jsonb)"
REPLAN, DUPLICATE, TOO_MANY, RATE, INSUFFICIENT = "EA000", "EA001", "EA002", "EA003", "EA004"
PLAN_ATTEMPTS = 3  # a thread changing under every attempt is a bug, not a race

MAX_COMPARE = 4

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
    count: int | None = None  # several images of one model (`--n`), posted as one grid
    negative: str | None = None  # `--no WORDS`
    style: str | None = None  # `--style NAME` ("none": no style, not even one's default)


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
    styles: Styles | None = None,
) -> Submitted:
    """Queue one generation for `request`, or raise the Refusal to show the person.

    One round trip when the thread is as this process last saw it (always for a new
    thread): the plan is made from those facts and easel_submit() checks them; when they
    differ it answers with the facts and the plan is made again."""
    request = with_inline_options(made_safe(request))
    text = request.text.strip()
    if is_blank(text):
        text = ""  # only zero-width or other invisible characters: nothing was asked
    if not text and request.action is None and not request.uploads:
        raise EmptyPrompt()
    facts, confirmed = thread_facts.assumed(request.thread, request.target_generation_id,
                                            config.default_model), False
    # A person's defaults matter where a thread starts: read them (one more round trip)
    # only for a thread this process has not seen.
    prefs = Preferences()
    if facts["head"] is None and facts["parent"] is None:
        prefs = await preferences_of(pool, request.user)
    look = _Look(styles or Styles(), prefs,
                 new_thread_model(prefs, catalog, available_providers, config.default_model))
    if look.default_model != config.default_model:
        facts = thread_facts.assumed(request.thread, request.target_generation_id,
                                     look.default_model)
    compare = _compare_models(request.compare)
    count = 1 if compare else (request.count or 1)
    events = ([f"{request.source_event}#{m}" for m in compare]
              or [f"{request.source_event}#{i}" for i in range(1, count + 1) if count > 1]
              or [request.source_event])
    for _ in range(PLAN_ATTEMPTS):
        try:
            plan: _Plan | None = _plan(catalog, config, request, text, facts, compare, events,
                                       available_providers, look)
        except Refusal:
            if confirmed:
                raise
            plan = None  # perhaps only because the facts were guessed: ask for them
        turn = _turn(config, request, text, events[0], upload_keys or [], plan)
        turn["default_model"] = look.default_model
        try:
            row = await pool.fetchrow(SUBMIT, turn, facts, plan.items if plan else None)
        except asyncpg.PostgresError as error:
            code = getattr(error, "sqlstate", None)
            detail = getattr(error, "detail", None) or ""
            if code == REPLAN:
                actual = json.loads(detail)
                existing = actual.pop("existing")
                if existing is not None:  # a repeated event: what it made the first time
                    return await _existing(pool, catalog, int(existing))
                facts, confirmed = thread_facts.learned(request.thread, actual), True
                continue
            _refuse(code, detail, getattr(error, "hint", None), config)
            if code == DUPLICATE:
                return await _existing(pool, catalog, int(detail))
            raise
        assert row is not None and plan is not None
        ids = [int(i) for i in row["ids"]]
        thread_facts.queued(request.thread, facts, plan.session_model, plan.head(ids[0]))
        return Submitted(
            ids[0], int(row["sid"]), plan.models[0], plan.resolution, plan.aspect, plan.cost,
            generation_ids=tuple(ids), compare_group=plan.group if plan.compare else None,
        )
    raise RuntimeError(f"the thread changed under {PLAN_ATTEMPTS} submits in a row")


def _refuse(code: str | None, detail: str, hint: str | None, config: CoreConfig) -> None:
    """Raise the Refusal easel_submit() answered with, if it was one."""
    if code == TOO_MANY:
        raise TooManyActive(config.max_active)
    if code == RATE:
        raise RateLimited(config.rate_per_minute)
    if code == INSUFFICIENT:
        raise InsufficientCredits(int(hint or 0), int(detail or 0))


@dataclass(frozen=True)
class _Look:
    """The styles there are, the person's defaults and the model a new thread starts on."""

    styles: Styles
    prefs: Preferences
    default_model: str


@dataclass(frozen=True)
class _Plan:
    """What a turn queues, made from the facts of its thread."""

    items: list[dict[str, Any]]
    models: list[ModelSpec]
    aspect: str
    resolution: str
    cost: int
    group: str | None
    set_model: str | None
    session_model: str
    compare: dict[str, Any] | None  # the group to open: a compare, or a batch of one model
    batch: bool = False

    def head(self, generation_id: int) -> dict[str, Any] | None:
        """The parent facts the next turn sees if this one succeeds (a compare sets none)."""
        if self.compare is not None:
            return None
        item = self.items[0]
        return {"id": generation_id, "model": item["model"], "user_prompt": item["user_prompt"],
                **{k: item["params"][k] for k in ("aspect_ratio", "resolution", "seed")}}


def _turn(
    config: CoreConfig, request: SubmitRequest, text: str, event0: str,
    upload_keys: list[dict[str, Any]], plan: _Plan | None,
) -> dict[str, Any]:
    user, thread = request.user, request.thread
    return {
        "user_platform": user.platform, "user_workspace": user.workspace,
        "external_id": user.external_id, "display_name": user.display_name,
        "starter": config.starter_credits, "platform": thread.platform,
        "workspace": thread.workspace, "channel": thread.channel, "thread": thread.thread,
        "default_model": config.default_model, "text": text, "attachments": upload_keys,
        "platform_message_id": request.platform_message_id,
        "target_id": request.target_generation_id, "event0": event0,
        # A batch is one request: easel_submit() counts each image, so the limit on
        # requests at once is raised by the batch's other images.
        "max_active": config.max_active + (len(plan.items) - 1 if plan and plan.batch else 0),
        "rate": config.rate_per_minute,
        "max_attempts": config.max_attempts, "timeout_s": config.generation_timeout_s,
        "ttl_s": config.reservation_ttl_s, "notify": NOTIFY_CHANNEL,
        "status_message": request.status_message.to_json() if request.status_message else None,
        "uploads": upload_keys,
        "set_model": plan.set_model if plan else None,
        "compare": plan.compare if plan else None,
        "group": plan.group if plan else None,
    }


def _plan(
    catalog: Catalog, config: CoreConfig, request: SubmitRequest, text: str,
    facts: dict[str, Any], compare: tuple[str, ...], events: list[str],
    available_providers: frozenset[str],
    look: _Look,
) -> _Plan:
    """The generations a turn queues, given what is known of its thread (or a Refusal)."""
    parent: dict[str, Any] | None = facts["parent"]
    session_model = str(facts["model"])
    if request.target_generation_id and parent is None:
        raise NotFound()
    intent = request.action or Intent.NEW
    if intent in (Intent.REGENERATE, Intent.VARIATION, Intent.UPSCALE) and parent is None:
        raise NothingToRefine()
    style = look.styles.style_for(request.style, None, look.prefs.style)
    names = list(compare) or [
        request.model
        or (style.model if style and request.style else None)  # the style's suggestion
        or _default_model_for(intent, parent, session_model)
    ] * len(events)
    models = [catalog.usable(name, available_providers, date.today()) for name in names]
    for model in models:
        if request.uploads and not model.can_edit:
            raise BadOption(f"{model.display_name} cannot edit images; pick a model that can.")
    set_model = (models[0].name if request.model and request.model != session_model
                 and not compare else None)

    parent_params: dict[str, Any] = parent or {}
    said_aspect, said_resolution = size_words(text)
    wanted_aspect = normalise_aspect(
        request.aspect_ratio
        or said_aspect
        or (style.aspect_ratio if style and request.style else None)
        or parent_params.get("aspect_ratio")
        or look.prefs.aspect_ratio
        or config.default_aspect_ratio
    )
    wanted_resolution = normalise_resolution(
        "4K"
        if intent is Intent.UPSCALE
        else request.resolution
        or said_resolution
        or parent_params.get("resolution")
        or look.prefs.resolution
        or config.default_resolution
    )
    sizes = [
        _fit_to_model(m, wanted_aspect, wanted_resolution, explicit=intent is Intent.UPSCALE)
        for m in models
    ]
    grouped = len(events) > 1  # a compare, or a batch of `--n` images of one model
    group = request.compare_group or (
        f"{request.thread.platform}:{request.source_event}" if grouped else None
    )
    costs = [m.cost(resolution) for m, (_, resolution) in zip(models, sizes, strict=True)]
    seed = _seed_for(request, intent, parent_params, models[0])
    # A batch's images differ by their seeds: the first is the one asked for.
    seeds = [seed if compare else (seed + n) % (MAX_SEED + 1) for n in range(len(events))]
    items = [
        {"event": event, "model": model.name, "intent": intent.value,
         "params": {"aspect_ratio": aspect, "resolution": resolution, "seed": seed,
                    **look_params(style, request.negative)},
         "user_prompt": text or (parent["user_prompt"] if parent else ""),
         "parent_id": parent["id"] if parent else None, "cost": cost,
         "reason": f"{model.name} {resolution}"}
        for model, (aspect, resolution), cost, event, seed in zip(
            models, sizes, costs, events, seeds, strict=True)
    ]
    return _Plan(
        items, models, sizes[0][0], sizes[0][1], sum(costs), group, set_model,
        set_model or session_model,
        {"id": group, "models": [m.name for m in models], "cost": sum(costs)}
        if grouped else None,
        batch=grouped and not compare,
    )


def made_safe(request: SubmitRequest) -> SubmitRequest:
    """The request's text fields without what Postgres refuses (NUL, lone surrogates) and
    what a terminal or chat would act on (control and escape sequences): the door, once."""
    def optional(value: str | None) -> str | None:
        return None if value is None else clean_text(value)

    return replace(
        request,
        text=without_mentions(clean_text(request.text)),
        user=replace(request.user, display_name=clean_text(request.user.display_name)),
        model=optional(request.model),
        aspect_ratio=optional(request.aspect_ratio),
        resolution=optional(request.resolution),
        compare=tuple(clean_text(name) for name in request.compare),
        negative=optional(request.negative),
        style=optional(request.style),
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
        count=request.count or inline.count,
        negative=request.negative or inline.negative,
        style=request.style or inline.style,
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


def _default_model_for(intent: Intent, parent: dict[str, Any] | None, session_model: str) -> str:
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
