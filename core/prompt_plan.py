"""Prompt construction made visible: a refiner's plan as generation events, and back.

The refiner returns a `PromptPlan` (intent, subjects, style, constraints, the prompt it
constructed and for which model); the pipeline records each part as one event
(`plan_intent`, `plan_subjects`, `plan_style`, `plan_constraints`, `plan_prompt`), so
the live flow shows them as steps and the API streams them like any stage. The page
reads the plan back from those events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core.models import Intent, PromptPlan, PromptTarget

PLAN_PARTS = ("intent", "subjects", "style", "constraints", "prompt")
PLAN_STAGES = frozenset(f"plan_{part}" for part in PLAN_PARTS)
MAX_PART_CHARS = 2000  # an LLM's answer is bounded before it reaches a row


def plan_events(plan: PromptPlan) -> list[dict[str, Any]]:
    """One event per part of `plan`, in the order the page shows them."""
    parts: dict[str, dict[str, Any]] = {
        "intent": {"value": plan.intent, "refiner": plan.refiner, "reasoning": plan.reasoning},
        "subjects": {"value": list(plan.subjects)},
        "style": {"value": plan.style or ""},
        "constraints": {"value": list(plan.constraints)},
        "prompt": {"value": plan.prompt, "for": plan.target},
    }
    return [
        {"stage": f"plan_{part}", "detail": _bounded(detail), "duration_ms": None}
        for part, detail in parts.items()
    ]


def plan_from_events(events: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, Any] | None:
    """The latest recorded plan as a dict of its parts (None when none was recorded).

    `events` are (stage, detail) pairs in the order they were written; a later attempt's
    plan replaces an earlier one part by part.
    """
    plan: dict[str, Any] = {}
    for stage, detail in events:
        if stage not in PLAN_STAGES:
            continue
        part = stage.removeprefix("plan_")
        plan[part] = detail.get("value")
        for extra in ("refiner", "reasoning", "for"):
            if detail.get(extra):
                plan["target" if extra == "for" else extra] = detail[extra]
    return plan or None


def kept_plan(intent: Intent, prompt: str, target: PromptTarget | None, parent_id: int | None
              ) -> PromptPlan:
    """The plan of a button's generation (regenerate, variation, upscale): nothing to
    construct, the image's own prompt is sent again."""
    whose = f"#{parent_id}" if parent_id else "the image"
    return PromptPlan(
        intent=intent.value, subjects=(), style=None, constraints=(), prompt=prompt,
        refiner="none", reasoning=f"{intent.value}: the prompt of {whose}, kept",
        target=target.display_name if target else "",
    )


def _bounded(detail: dict[str, Any]) -> dict[str, Any]:
    def cut(value: Any) -> Any:
        if isinstance(value, str):
            return value[:MAX_PART_CHARS]
        if isinstance(value, list):
            return [cut(v) for v in value[:20]]
        return value

    return {key: cut(value) for key, value in detail.items()}
