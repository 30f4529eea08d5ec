"""What this process last saw of each thread, so a turn is planned in one round trip.

A submit plans its generations from the thread's session model and the parent image
(the head, or the image a button was pressed on). easel_submit() checks those facts
under the session's row lock and answers with the real ones when they differ, so what
is kept here is only ever a guess: a wrong or missing entry costs one more round trip,
never a wrong plan. Bounded; the oldest entries go first.
"""

from __future__ import annotations

from typing import Any

from core.models import ThreadRef

MAX_THREADS = 10_000

_threads: dict[tuple[str, str, str, str], dict[str, Any]] = {}
_parents: dict[int, dict[str, Any]] = {}


def _key(thread: ThreadRef) -> tuple[str, str, str, str]:
    return (thread.platform, thread.workspace, thread.channel, thread.thread)


def _bounded(table: dict[Any, Any]) -> None:
    while len(table) > MAX_THREADS:
        del table[next(iter(table))]


def assumed(thread: ThreadRef, target_id: int | None, default_model: str) -> dict[str, Any]:
    """The facts to plan with: the last seen, else those of a new thread."""
    seen = _threads.get(_key(thread), {"model": default_model, "head": None})
    parent_id = target_id or seen["head"]
    return {**seen, "parent": _parents.get(parent_id) if parent_id else None}


def learned(thread: ThreadRef, facts: dict[str, Any]) -> dict[str, Any]:
    """Keep the facts the database answered with; return them to plan with."""
    _remember(thread, facts["model"], facts["head"], facts["parent"])
    return facts


def queued(
    thread: ThreadRef, facts: dict[str, Any], model: str, head: dict[str, Any] | None
) -> None:
    """After a queued turn: its model, and (unless a compare) its image as the next parent."""
    if head is None:
        _remember(thread, model, facts["head"], None)
    else:
        _remember(thread, model, head["id"], head)


def _remember(
    thread: ThreadRef, model: str, head: int | None, parent: dict[str, Any] | None
) -> None:
    key = _key(thread)
    _threads.pop(key, None)
    _threads[key] = {"model": model, "head": head}
    if parent is not None:
        _parents.pop(parent["id"], None)
        _parents[parent["id"]] = parent
    _bounded(_threads)
    _bounded(_parents)
