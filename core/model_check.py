"""Is every catalog id still served? Ask each configured provider, before a person finds out.

`easel models --check` prints the result; every worker runs it at start and logs a
warning per problem, and the default model skips the ids found missing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from core.catalog import Catalog
from core.errors import EaselError
from core.ports import ImageProvider, ModelDirectory

log = logging.getLogger("easel.models")

RETIRING_WITHIN = timedelta(days=30)
CHECK_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class ModelProblem:
    """One catalog entry that is missing, retired, retiring soon or could not be checked."""

    name: str  # catalog name ("refiner:openai" for a refiner)
    model_id: str
    problem: str  # "missing" | "retired" | "retiring" | "unchecked"
    detail: str

    def as_text(self) -> str:
        return f"{self.name} ({self.model_id}): {self.detail}"


async def check_models(
    catalog: Catalog, providers: Mapping[str, ImageProvider], today: date
) -> list[ModelProblem]:
    """Problems with the catalog's ids, asking each configured provider that can say."""
    entries = [(m.name, m.provider, m.model_id, m.retires) for m in catalog.models]
    entries += [(f"refiner:{r.provider}", r.provider, r.model_id, r.retires)
                for r in catalog.refiners]
    problems: list[ModelProblem] = []
    for name, provider_name, model_id, retires in entries:
        if retires is not None and retires <= today:
            problems.append(ModelProblem(name, model_id, "retired", f"retired on {retires}"))
            continue
        if retires is not None and retires - today <= RETIRING_WITHIN:
            problems.append(ModelProblem(name, model_id, "retiring", f"retires on {retires}"))
        provider = providers.get(provider_name)
        if not isinstance(provider, ModelDirectory):
            continue
        try:
            exists = await asyncio.wait_for(provider.has_model(model_id), CHECK_TIMEOUT_S)
        except (EaselError, TimeoutError) as error:
            detail = getattr(error, "user_message", "") or "no answer in time"
            problems.append(ModelProblem(name, model_id, "unchecked", f"not checked: {detail}"))
            continue
        if not exists:
            problems.append(ModelProblem(
                name, model_id, "missing", f"{provider_name} does not serve this id any more"))
    return problems


def missing_ids(problems: list[ModelProblem]) -> set[str]:
    """The ids a default must skip."""
    return {p.model_id for p in problems if p.problem in ("missing", "retired")}


def log_problems(problems: list[ModelProblem]) -> None:
    """One warning per problem, for the operator."""
    for problem in problems:
        log.warning("model catalog: %s", problem.as_text())
