"""Errors a user may see, each carrying the sentence to show.

Adapters render `error.user_message`; they never invent their own sentences.
Provider errors are raised by provider adapters (mapped from SDK errors) and
decide the retry policy (core/outcomes.py): `retryable` means the provider certainly
did no paid work (429 without a quota code, 503, refused before sending), so it is
retried with backoff; the others fail at once and refund.
"""

from __future__ import annotations

from core.text import shown


class EaselError(Exception):
    """Base of every error with a sentence for the user."""

    kind = "error"
    default_message = "Something went wrong."

    def __init__(self, user_message: str | None = None) -> None:
        self.user_message = user_message or self.default_message
        super().__init__(self.user_message)


# --- refusals at submit time (nothing reserved) -------------------------------


class Refusal(EaselError):
    """A request refused before any work; nothing is reserved or charged."""

    kind = "refused"


class InsufficientCredits(Refusal):
    kind = "insufficient_credits"

    def __init__(self, needed: int, available: int) -> None:
        self.needed = needed
        self.available = available
        super().__init__(
            f"You need {needed} credits for this image but have {available}. "
            "Nothing was charged. Ask an admin for more credits or pick a cheaper model."
        )


class TooManyActive(Refusal):
    kind = "too_many_active"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"You already have {limit} images in progress. "
            "Wait for one to finish, then try again. Nothing was charged."
        )


class RateLimited(Refusal):
    kind = "rate_limited"

    def __init__(self, per_minute: int) -> None:
        super().__init__(
            f"You can start at most {per_minute} images a minute. "
            "Try again in a moment. Nothing was charged."
        )


def _usable(models: list[str]) -> str:
    return f" Models you can use here: {', '.join(models)}." if models else ""


class UnknownModel(Refusal):
    """No model of that name in the catalog (`known`: the models this Easel can use)."""

    kind = "unknown_model"

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"There is no model called '{shown(name)}'.{_usable(known)}")


class ModelUnavailable(Refusal):
    """In the catalog, but its provider's key is not set here; the same sentence wherever
    the model is asked for (/model, a compare, --model, a Discord option)."""

    kind = "model_unavailable"

    def __init__(self, name: str, usable: list[str] | None = None) -> None:
        super().__init__(
            f"The model '{shown(name)}' is not configured on this Easel (its API key is not set)."
            + _usable(usable or [])
        )


class ModelRetired(Refusal):
    kind = "model_retired"

    def __init__(self, display_name: str, retired_on: object) -> None:
        super().__init__(
            f"{display_name} was shut down by its provider on {retired_on}. "
            "Pick another model (see the model list). Nothing was charged."
        )


class BadOption(Refusal):
    kind = "bad_option"


class BadUpload(Refusal):
    kind = "bad_upload"


class NothingToRefine(Refusal):
    kind = "nothing_to_refine"
    default_message = "There is no earlier image in this thread to work from."


class EmptyPrompt(Refusal):
    kind = "empty_prompt"
    default_message = "Tell me what to draw, e.g. `a lighthouse at dusk, oil painting`."


class NothingToContinue(Refusal):
    """`continue` in a thread without a compare, or naming a model the compare did not use."""

    kind = "nothing_to_continue"
    default_message = (
        "There is no compare in this thread to continue from. Compare two models first "
        "(for example /compare sketch,ink a fox at dusk), then continue with one of them."
    )

    @classmethod
    def not_in_compare(cls, choice: str, models: list[str]) -> NothingToContinue:
        """`choice` names no image of the thread's compare (empty: none was named)."""
        if not choice.strip():
            return cls(f"Say which image to continue with: {', '.join(models)}.")
        return cls(f"The compare in this thread has no image from '{shown(choice)}'. "
                   f"Continue with one of: {', '.join(models)}.")


class NotFound(Refusal):
    kind = "not_found"
    default_message = "That image or thread no longer exists."


class NotAllowed(Refusal):
    kind = "not_allowed"
    default_message = "Only Easel admins can do that."


class NotRetryable(Refusal):
    kind = "not_retryable"
    default_message = "Only a failed generation can be retried; this one did not fail."


class FlowUnavailable(Refusal):
    """No prompt-flow link: the feature is not configured, or the thread has no session."""

    kind = "flow_unavailable"
    default_message = "The prompt-flow page needs PUBLIC_URL and EASEL_SECRET_KEY set on this Easel."


# --- provider errors (raised during work) -------------------------------------


class ProviderError(EaselError):
    """A provider failed; `retryable` decides whether the pipeline tries again."""

    retryable = False
    retry_after_s: float | None = None


class ContentPolicy(ProviderError):
    kind = "content_policy"
    default_message = (
        "The image model refused this prompt under its content policy. "
        "Try rewording it. Nothing was charged."
    )


class InvalidRequest(ProviderError):
    kind = "invalid_request"
    default_message = "The image model could not accept this request. Nothing was charged."


class TransientProviderError(ProviderError):
    """Rate limited, overloaded or unreachable before anything was sent: the provider
    did no paid work, so another try after a pause is safe."""

    kind = "transient"
    retryable = True
    default_message = (
        "The image model is busy and did not recover. Nothing was charged."
    )

    def __init__(self, user_message: str | None = None, retry_after_s: float | None = None):
        super().__init__(user_message)
        self.retry_after_s = retry_after_s


class RateLimitedByProvider(TransientProviderError):
    kind = "provider_rate_limited"
    default_message = (
        "The image model is rate limiting this Easel and did not recover in time. "
        "Nothing was charged."
    )


class ProviderDown(TransientProviderError):
    kind = "provider_down"
    default_message = "The image model is not answering right now. Nothing was charged."


class OutcomeUnknown(ProviderError):
    """The request reached the provider and no answer came back (a timeout or a connection
    lost after sending): it may have made, and billed, the image, and neither OpenAI nor
    Gemini takes an idempotency key. Never sent again: failed and refunded."""

    kind = "outcome_unknown"
    default_message = (
        "The image model did not answer in time, and Easel never asks twice for one image. "
        "Nothing was charged; try again."
    )


class ProviderQuotaExhausted(ProviderError):
    """The provider refused because this Easel's account is out of quota or credit (OpenAI
    429 insufficient_quota, Gemini "limit: 0", Replicate 402): no retry can help."""

    kind = "provider_quota"
    default_message = (
        "This Easel's account at the image provider is out of quota or credit, so nothing "
        "could be made. An admin has been told. Nothing was charged."
    )


class GenerationTimedOut(ProviderError):
    kind = "timeout"
    default_message = "The image took too long and was given up. Nothing was charged."


class WorkerLost(ProviderError):
    kind = "worker_lost"
    default_message = (
        "The worker making this image stopped and it could not be finished. "
        "Nothing was charged."
    )


class InternalError(ProviderError):
    kind = "internal"
    default_message = "Easel hit an internal error making this image. Nothing was charged."


DELETED = "Deleted: the image and its stored file are gone (what it cost stays spent)."


class NotYourImage(Refusal):
    kind = "not_your_image"
    default_message = "Only the person who asked for this image (or an Easel admin) can delete it."
