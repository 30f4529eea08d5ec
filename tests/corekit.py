"""Building a core Runtime for tests: real Postgres, local storage, fakes for the rest."""

from __future__ import annotations

import itertools
from pathlib import Path

import asyncpg

from adapters.refiners.rules import RuleRefiner
from adapters.storage.local import LocalObjectStore
from bot.app import load_catalog
from core.config import CoreConfig
from core.models import ThreadRef, UserRef
from core.ports import ImageProvider
from core.runtime import Runtime
from core.service import Easel
from core.submit import SubmitRequest
from tests.fakes.chat import FakeChat
from tests.fakes.provider import ScriptedProvider

_events = itertools.count(1)


def make_runtime(
    pool: asyncpg.Pool,
    images_dir: Path,
    *,
    providers: dict[str, ImageProvider] | None = None,
    chat: FakeChat | None = None,
    **config: object,
) -> Runtime:
    settings = {"status_edit_interval_s": 0.0, "backoff_base_s": 0.01, "lease_s": 5.0}
    settings.update(config)
    return Runtime(
        pool=pool,
        catalog=load_catalog(None),
        config=CoreConfig(**settings),  # type: ignore[arg-type]
        providers=providers if providers is not None else {"sketch": ScriptedProvider()},
        refiner=RuleRefiner(),
        store=LocalObjectStore(images_dir),
        platforms={"console": chat or FakeChat()},
    )


def thread(n: int = 1) -> ThreadRef:
    return ThreadRef("console", "", "terminal", f"thread-{n}")


def user(name: str = "ada") -> UserRef:
    return UserRef("console", "", name, name.title())


def request(text: str, *, who: str = "ada", n: int = 1, **kwargs: object) -> SubmitRequest:
    return SubmitRequest(
        thread=thread(n),
        user=user(who),
        text=text,
        source_event=str(kwargs.pop("event", f"event-{next(_events)}")),
        **kwargs,  # type: ignore[arg-type]
    )


async def ledger_ok(pool: asyncpg.Pool) -> list[str]:
    from core.audit import audit

    async with pool.acquire() as conn:
        return await audit(conn)


__all__ = ["Easel", "FakeChat", "ScriptedProvider", "make_runtime", "request", "thread", "user"]
