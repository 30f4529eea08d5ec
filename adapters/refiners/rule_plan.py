"""The offline refiner's plan: the same shape an LLM answers, read from its own prompt.

The rules build a prompt as comma-separated phrases ("a fox in the snow, at night,
watercolor style, without the moon"); each phrase is sorted into subjects, style or
constraints, and the options the message named (aspect, size) are constraints too,
so the studio shows a keyless thread the way it shows one refined by a model.
"""

from __future__ import annotations

import re

from adapters.refiners.edits import MODIFIER_PHRASES, STYLES
from core.models import PromptPlan, Refinement, RefineRequest

_STYLE_PHRASE = re.compile(
    rf"^(?:(?:{STYLES})(?:\s+style)?|.+\s+style|close-up|wide view"
    rf"|{'|'.join(re.escape(p) for p in set(MODIFIER_PHRASES.values()))})$",
    re.I,
)
_CONSTRAINT_PHRASE = re.compile(r"^(?:without|no)\s+", re.I)


def rule_plan(
    request: RefineRequest, refinement: Refinement, *, refiner: str, rule: str
) -> PromptPlan:
    """The plan of a refinement the rules made (`rule`: the name of the rule that decided)."""
    subjects: list[str] = []
    styles: list[str] = []
    constraints: list[str] = []
    for phrase in (p.strip() for p in refinement.prompt.split(",")):
        if not phrase:
            continue
        if _CONSTRAINT_PHRASE.match(phrase):
            constraints.append(phrase)
        elif _STYLE_PHRASE.match(phrase):
            styles.append(phrase)
        else:
            subjects.append(phrase)
    if refinement.aspect_ratio:
        constraints.append(f"aspect {refinement.aspect_ratio}")
    if refinement.resolution:
        constraints.append(f"resolution {refinement.resolution}")
    return PromptPlan(
        intent=refinement.intent.value,
        subjects=tuple(subjects),
        style=", ".join(styles) or None,
        constraints=tuple(constraints),
        prompt=refinement.prompt,
        refiner=refiner,
        reasoning=rule,
        target=request.target.display_name if request.target else "",
    )
