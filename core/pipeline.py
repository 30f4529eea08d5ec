"""The pipeline: one claimed generation through its stages.

understanding → refining_prompt → generating → uploading → finalizing. Each stage
is recorded (fenced on the claim, which also extends the lease) and shown by
editing the status message. Provider errors decide: retry later, or fail and refund.

Side effects outside Postgres are fenced on the claim too: before a status edit, an
object write or a chat post the run confirms its lease (core/lease.py); objects are
stored under a key of their own claim; and an image posted by a claim that then turns
out to be lost is withdrawn unless the generation's record adopted it. The deadline
is enforced here while the image is being made: the provider call is cancelled (and
a started provider job cancelled at the provider) and the person refunded and told.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from core import generations as q
from core.compare import GroupReporter, finish_group
from core.context import input_images, load_context, refine
from core.dbhealth import CONNECTION_ERRORS
from core.errors import EaselError, GenerationTimedOut, InternalError, ProviderError
from core.fencing import PostInFlight, cancel_quietly, withdraw_unadopted_post
from core.lease import Claim
from core.models import (
    ImageDelivery,
    ImageRequest,
    Images,
    MessageRef,
    ModelSpec,
    Parked,
    Stage,
    StatusView,
)
from core.outcomes import report_failure, retry_delay_s
from core.ports import CancellableProvider
from core.prompt_plan import plan_events
from core.runtime import Runtime
from core.status import StatusReporter, failure_view, progress_view, success_view
from core.styles import with_look

log = logging.getLogger("easel.pipeline")

STORED_OUTPUT = """
SELECT object_key, content_type, size_bytes FROM assets
WHERE generation_id = $1 AND kind = 'output' ORDER BY idx, id DESC LIMIT 1
"""


class LeaseLost(Exception):
    """Another worker owns this generation now; stop without writing anything."""


class Pipeline:
    """Runs claimed jobs; one instance per worker process."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.config = runtime.config
        # Generations whose final status edit was delivered; the worker writes them down
        # in batches (a crash before that only means one more, identical, edit).
        self.shown: list[int] = []

    async def run(self, job: q.Job, claim: Claim | None = None) -> None:
        """Take `job` as far as it goes: succeeded, failed, parked or requeued."""
        claim = claim or Claim(job.id, job.claims, self.config.lease_s)
        model = self.rt.catalog.get(job.model)
        platform = self.rt.platforms[job.thread.platform]
        # A platform may say it needs no coalescing (the console); others get the setting.
        interval_s = getattr(platform, "min_edit_interval_s", self.config.status_edit_interval_s)
        reporter = (
            GroupReporter(self.rt, job.compare_group, platform, job.thread, job.status_message,
                          interval_s)
            if job.compare_group
            else StatusReporter(platform, job.thread, job.status_message, interval_s)
        )
        run = _Run(self, job, model, reporter, claim)
        reporter.guard = run.holds_claim  # a delayed progress edit is fenced too
        try:
            await run.stages()
        except LeaseLost:
            log.info("generation %s: lease lost, leaving it to its new owner", job.id)
            await asyncio.shield(run.withdraw_post())
        except asyncio.CancelledError:
            if claim.lost:
                await asyncio.shield(run.withdraw_post())
            else:
                await asyncio.shield(run.give_back())
            raise
        except ProviderError as error:
            await run.handle_error(error)
        except CONNECTION_ERRORS:
            raise  # no write can be made now: the lease runs out and another claim resumes it
        except Exception as exc:  # a bug or an unexpected outage: retry, then fail and refund
            log.exception("generation %s: unexpected error", job.id)
            internal = InternalError()
            internal.retryable = not isinstance(exc, EaselError)
            await run.handle_error(internal)
        finally:
            await reporter.close()
        if job.compare_group:
            try:
                await finish_group(self.rt, job.compare_group)
            except Exception as exc:  # its lease runs out and the sweeper finishes the rest
                log.warning("compare %s not finished: %s", job.compare_group, exc)


class _Run:
    """The state of one job through the stages."""

    def __init__(self, pipeline: Pipeline, job: q.Job, model: ModelSpec,
                 reporter: StatusReporter, claim: Claim | None = None):
        self.p = pipeline
        self.claim = claim or Claim(job.id, job.claims, pipeline.config.lease_s)
        # An image this claim posted but has not recorded yet (withdrawn if the claim is lost).
        self.post = PostInFlight()
        self.rt = pipeline.rt
        self.job = job
        self.model = model
        self.reporter = reporter
        self.done: list[tuple[Stage, float]] = []
        self.refined_prompt = job.refined_prompt
        self.params: dict[str, Any] = dict(job.params)
        self._stage_started = time.monotonic()
        self._unwritten: list[dict[str, Any]] = []

    async def stages(self) -> None:
        job = self.job
        if job.image_message is not None:  # delivered before a crash: only settle
            await self._succeed(job.image_message.to_json(), elapsed_s=self._elapsed())
            return
        if job.stage is Stage.FINALIZING:  # made and stored before a crash: deliver it once
            stored_output = await self._stored_output()
            if stored_output is not None:
                await self._finalize(*stored_output, data=None)
                return
        image = await self._within_deadline(self._make_image())
        if image is None:  # parked for its webhook, or given up at the deadline
            return

        await self._show(Stage.UPLOADING)
        # A key of this claim's own: a stalled claim that wakes up cannot overwrite the
        # object another claim stored and recorded.
        key = f"sessions/{job.session_id}/{job.id}/{job.claims}-0.{_extension(image.content_type)}"
        await self._hold_claim()
        stored = await self.rt.store.put(key, image.data, image.content_type)
        self._done(Stage.UPLOADING, {"object_key": key, "size_bytes": stored.size_bytes})
        # Recording this also checks and extends the lease: past it, we may post.
        await self._record(
            Stage.FINALIZING, asset=(key, stored.content_type, stored.size_bytes, stored.sha256)
        )

        await self._finalize(key, stored.content_type, stored.size_bytes, data=image.data)

    async def _within_deadline(self, making: Coroutine[Any, Any, Any]) -> Any | None:
        """Await `making` until the generation's deadline; past it, fail and refund (None)."""
        remaining_s = (self.job.deadline_at - datetime.now(UTC)).total_seconds()
        deadline = asyncio.timeout(max(0.0, remaining_s))
        try:
            async with deadline:
                return await making
        except TimeoutError:
            if not deadline.expired():
                raise
        log.warning("generation %s: past its deadline, giving up", self.job.id)
        await self.fail(GenerationTimedOut())  # which cancels it at the provider
        return None

    async def _cancel_at_provider(self) -> None:
        provider = self.rt.providers.get(self.model.provider)
        if self.job.external_id and isinstance(provider, CancellableProvider):
            await cancel_quietly(provider, self.job.external_id)

    async def _make_image(self) -> Any | None:
        """Understand, refine and generate: the image, or None when parked for a webhook."""
        job = self.job
        await self._show(Stage.UNDERSTANDING)
        context = await load_context(self.rt, job)
        self._done(Stage.UNDERSTANDING, {})

        await self._show(Stage.REFINING_PROMPT)
        refinement = await refine(self.rt, job, context, self.params)
        # The style's words and the negative prompt, visibly part of the prompt sent.
        self.refined_prompt, negative = with_look(refinement.prompt, self.params, self.model)
        if refinement.aspect_ratio in self.model.aspect_ratios:
            self.params["aspect_ratio"] = refinement.aspect_ratio
        if refinement.plan is not None:  # each part of how the prompt was built: an event
            self._unwritten += plan_events(refinement.plan)
        self._done(Stage.REFINING_PROMPT,
                   {"prompt": self.refined_prompt, "intent": refinement.intent.value}
                   | ({"negative_prompt": negative} if negative else {}))
        # Written (and the lease checked) before the provider is paid to work.
        await self._record(Stage.GENERATING, refined_prompt=self.refined_prompt,
                           intent=refinement.intent.value)

        await self._show(Stage.GENERATING)
        request = ImageRequest(
            model=self.model,
            prompt=self.refined_prompt or job.user_prompt,
            aspect_ratio=str(self.params["aspect_ratio"]),
            resolution=str(self.params["resolution"]),
            seed=int(self.params.get("seed", 0)),
            generation_id=job.id,
            input_images=await input_images(self.rt, self.model, refinement.intent, context),
            webhook_url=self.rt.webhook_url(),
            negative_prompt=negative,
        )
        provider = self.rt.providers[self.model.provider]
        if job.external_id:
            result = await provider.resume(job.external_id, request)
        else:
            result = await provider.generate(request)
        if isinstance(result, Parked):
            await self._park(result.external_id)
            return None
        image = _first_image(result)
        self._done(Stage.GENERATING, {"provider": provider.name})
        return image

    async def _finalize(
        self, key: str, content_type: str, size_bytes: int, *, data: bytes | None
    ) -> None:
        """Post the stored image into the thread (once), then settle and say so.

        `data` is the image this worker just made; None means it was made before a
        crash, so it is read back from the store (and may already be in the thread).
        """
        recovered = data is None
        job = self.job
        await self._show(Stage.FINALIZING)
        elapsed_s = self._elapsed()
        if job.compare_group:  # the group's finisher posts every member side by side
            await self._succeed(None, elapsed_s=elapsed_s)
            return
        platform = self.reporter.platform
        # A worker that died after posting but before recording it: the image is there.
        posted = await platform.find_image(job.thread, job.id) if recovered else None
        if posted is None:
            await self._hold_claim()
            delivery = ImageDelivery(
                generation_id=job.id,
                object_key=key,
                content_type=content_type,
                size_bytes=size_bytes,
                data=data if data is not None else await self.rt.store.get(key),
                url=await self.rt.image_url(key),
                caption=f"{self.model.display_name} · {job.cost} credits · {elapsed_s:.1f}s",
                model=self.model.display_name,
                cost=job.cost,
                elapsed_s=elapsed_s,
                refined_prompt=self.refined_prompt or "",
                buttons=self._buttons(),
            )
            posted = await self._post_image(delivery)
        await self._succeed(posted.to_json(), elapsed_s=elapsed_s)
        self.post.posted = None

    async def _post_image(self, delivery: ImageDelivery) -> MessageRef:
        """Post the image; a lost claim that cancels us mid-post still learns what it posted
        (so that it can withdraw it)."""
        return await self.post.run(self.reporter.platform.post_image(self.job.thread, delivery))

    async def _stored_output(self) -> tuple[str, str, int] | None:
        row = await self.rt.pool.fetchrow(STORED_OUTPUT, self.job.id)
        return (row["object_key"], row["content_type"], row["size_bytes"]) if row else None

    def _buttons(self) -> tuple[Any, ...]:
        if self.job.compare_group:
            return ()
        return self.rt.follow_up_buttons(
            self.model, self.job.id, str(self.params.get("resolution", ""))
        )

    async def holds_claim(self) -> bool:
        """Whether this run still holds its claim (asks the database when unsure)."""
        return await self.claim.confirm(self.rt.pool)

    async def _hold_claim(self) -> None:
        """Raise LeaseLost unless this run still holds its claim: call before a side effect."""
        if not await self.holds_claim():
            raise LeaseLost()

    async def withdraw_post(self) -> None:
        """The claim is lost: delete the image it posted unless the record adopted that post."""
        posted, self.post.posted = self.post.posted, None
        if posted is not None:
            await withdraw_unadopted_post(self.rt.pool, self.reporter.platform, self.job.thread,
                                          self.job.id, posted, self.p.config.lease_s)

    async def _show(self, stage: Stage) -> None:
        await self._hold_claim()
        self._stage_started = time.monotonic()
        await self.reporter.show(
            progress_view(
                stage,
                model=self.model.display_name,
                done=self.done,
                refined_prompt=self.refined_prompt,
                generation_id=self.job.id,
            )
        )

    def _done(self, stage: Stage, detail: dict[str, Any]) -> None:
        """A stage completed; it is written with the next `_record`."""
        seconds = time.monotonic() - self._stage_started
        self.done.append((stage, seconds))
        self._unwritten.append({"stage": stage.value, "detail": detail,
                                "duration_ms": round(seconds * 1000, 3)})

    async def _record(
        self,
        next_stage: Stage,
        *,
        refined_prompt: str | None = None,
        intent: str | None = None,
        asset: tuple[str, str, int, str] | None = None,
    ) -> None:
        """Write the completed stages, move to `next_stage`, extend the lease (fenced)."""
        key, content_type, size_bytes, sha256 = asset or (None, None, None, None)
        sent_at = time.monotonic()
        row = await self.rt.pool.fetchval(
            q.RECORD_STAGES,
            self.job.id,
            self.job.claims,
            next_stage.value,
            self._unwritten,
            refined_prompt,
            intent,
            {k: v for k, v in self.params.items() if k == "aspect_ratio"},
            self.p.config.lease_s,
            key,
            content_type,
            size_bytes,
            sha256,
        )
        if row is None:
            self.claim.lost = True
            raise LeaseLost()
        self.claim.renewed(sent_at)
        self._unwritten = []

    async def _park(self, external_id: str) -> None:
        self.claim.released = True
        row = await self.rt.pool.fetchrow(
            q.PARK, self.job.id, self.job.claims, external_id, self.p.config.webhook_grace_s
        )
        if row is None:
            raise LeaseLost()
        if row["arrived"]:  # its webhook beat us here: queued again already
            await q.notify(self.rt.pool, self.job.id)
        view = progress_view(
            Stage.GENERATING,
            model=self.model.display_name,
            done=self.done,
            refined_prompt=self.refined_prompt,
            note="The model is working on it; the image will appear here.",
            generation_id=self.job.id,
        )
        await self.reporter.show(view)

    async def _succeed(self, image_message: dict[str, str] | None, *, elapsed_s: float) -> None:
        self.claim.released = True
        row = await self.rt.pool.fetchrow(
            q.SUCCEED,
            self.job.id,
            self.job.claims,
            None,
            "generation succeeded",
            {"elapsed_s": round(elapsed_s, 3)},
            self.refined_prompt or "",
            image_message,
        )
        if row is None:
            raise LeaseLost()
        log.info("succeeded with %s in %.2fs, %d credits", self.model.name, elapsed_s,
                 self.job.cost)
        await self._final(
            success_view(
                model=self.model.display_name,
                cost=self.job.cost,
                elapsed_s=elapsed_s,
                refined_prompt=self.refined_prompt,
                generation_id=self.job.id,
                buttons=(),  # the image carries them: one row of buttons per image
                seed=_seed_of(self.params),
            )
        )

    async def handle_error(self, error: ProviderError) -> None:
        """Retry a transient error later, or fail, refund and tell the person."""
        job = self.job
        delay_s = retry_delay_s(error, attempts=job.attempts, max_attempts=job.max_attempts,
                                deadline_at=job.deadline_at, now=time.time(),
                                config=self.p.config)
        if delay_s is not None:
            self.claim.released = True
            requeued = await self.rt.pool.fetchval(
                q.REQUEUE, job.id, job.claims, delay_s, error.kind, error.user_message
            )
            if requeued is not None:
                log.info("%s error; retrying in %.1fs (attempt %d of %d)", error.kind, delay_s,
                         job.attempts + 1, job.max_attempts)
                await q.notify(self.rt.pool, job.id)
                await self.reporter.show(
                    progress_view(
                        Stage.GENERATING,
                        model=self.model.display_name,
                        done=self.done,
                        refined_prompt=self.refined_prompt,
                        note=f"The model is busy; trying again in {delay_s:.0f}s "
                        f"(attempt {job.attempts + 1} of {job.max_attempts}).",
                        generation_id=job.id,
                    )
                )
            return
        await self.fail(error)

    async def fail(self, error: EaselError) -> None:
        self.claim.released = True
        row = await self.rt.pool.fetchrow(
            q.FAIL,
            self.job.id,
            self.job.claims,
            error.kind,
            error.user_message,
            {"kind": error.kind},
            error.user_message,
            None,
        )
        if row is None:
            return  # someone else finished it
        log.warning("failed (%s) and refunded after %d attempt(s)", error.kind, self.job.attempts)
        report_failure(error, self.model)
        await self._cancel_at_provider()  # a prediction still running there
        await self._final(
            failure_view(
                message=error.user_message,
                model=self.model.display_name,
                elapsed_s=self._elapsed(),
                generation_id=self.job.id,
            )
        )

    async def _final(self, view: StatusView) -> None:
        if await self.reporter.final(view):
            self.p.shown.append(self.job.id)

    async def give_back(self) -> None:
        """On shutdown: put the job back in the queue for another worker, at once."""
        try:
            await self.rt.pool.fetchval(
                q.REQUEUE, self.job.id, self.job.claims, 0.0, "shutdown", "worker shutting down"
            )
            await q.notify(self.rt.pool, self.job.id)
        except CONNECTION_ERRORS as exc:  # its lease runs out and the sweeper requeues it
            self.rt.health.lost("give back", exc)

    def _elapsed(self) -> float:
        return (datetime.now(UTC) - self.job.created_at).total_seconds()


def _seed_of(params: dict[str, Any]) -> int | None:
    seed = params.get("seed")
    return int(seed) if seed is not None else None


def _first_image(result: Images) -> Any:
    if not result.images:
        raise InternalError("The image model returned no image. Nothing was charged.")
    return result.images[0]


def _extension(content_type: str) -> str:
    return {"image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}.get(content_type, "png")
