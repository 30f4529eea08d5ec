"""What a failed provider call leads to: another try, or giving up without paying twice.

Retry only when the provider certainly did no paid work: a 429 without a quota code, a
503 or "overloaded", a connection refused before the request was sent (the errors
marked `retryable`). A timeout or a connection lost after sending is OutcomeUnknown:
the image may have been made and billed, and OpenAI and Gemini take no idempotency
key, so it is failed and refunded, never sent again (the pipeline also cancels a job a
provider is still running, a Replicate prediction, when it gives up on it).
"""

from __future__ import annotations

import logging
import random
from datetime import datetime

from core.config import CoreConfig
from core.errors import EaselError, ProviderQuotaExhausted
from core.models import ModelSpec

log = logging.getLogger("easel.outcomes")


def retry_delay_s(
    error: EaselError, *, attempts: int, max_attempts: int, deadline_at: datetime,
    now: float, config: CoreConfig,
) -> float | None:
    """Seconds to wait before the next attempt, or None: fail and refund now."""
    if not getattr(error, "retryable", False) or attempts >= max_attempts:
        return None
    delay_s = backoff_s(attempts, getattr(error, "retry_after_s", None), config)
    return delay_s if now + delay_s < deadline_at.timestamp() else None


def backoff_s(attempts: int, retry_after_s: float | None, config: CoreConfig) -> float:
    """Exponential backoff with full jitter, never shorter than the provider's Retry-After."""
    ceiling = min(config.backoff_max_s, config.backoff_base_s * 2 ** max(0, attempts - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, retry_after_s or 0.0)


def report_failure(error: EaselError, model: ModelSpec) -> None:
    """Tell the operator about failures only they can fix (the account's quota)."""
    if isinstance(error, ProviderQuotaExhausted):
        log.error("provider %s is out of quota or credit for model %s (%s): add billing or "
                  "quota at the provider", model.provider, model.name, model.model_id)
