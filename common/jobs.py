"""Job records and their life cycle: queued -> running -> succeeded | failed | cancelled.

A job's state changes in one Redis transaction (WATCH + MULTI/EXEC), together with whatever
the change carries (the model's weights and report on success), so a reader never sees a
succeeded job without its results. Each start of a job bumps its ``attempt``; a worker may only
report progress on, or finish, the attempt it started, so a worker whose job was taken over
cannot overwrite the new owner's work. The model an adaptation makes is written through
:class:`~common.model_store.ModelStore`, inside the same transactions, only while it exists.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import redis

from common.artifacts import ArtifactStore
from common.job_cancel import JobCancellation, unfinished
from common.job_create import JobCreation, now
from common.job_errors import (
    MODEL_DELETED,
    CancelRequested,
    JobNotFound,
    PoisonJob,
    Superseded,
)
from common.job_index import JobIndex
from common.job_record import JobChange, JobRecord
from common.keys import JobKind, JobState, Keys, ModelState
from common.model_store import ModelStore, UnfinishedReport
from common.telemetry import count_state, observe_seconds

logger = logging.getLogger(__name__)
ExtraWrites = Callable[[redis.client.Pipeline], None]
ModelWrites = Callable[[redis.client.Pipeline, str], None]  # (pipe, model id)
# (the job as it is, the state of the model it makes or None) -> its change, or None
Decide = Callable[[JobRecord, ModelState | None], JobChange | None]


@dataclass(frozen=True)
class JobStore(JobCreation, JobCancellation):
    client: redis.Redis
    keys: Keys
    job_ttl_s: int
    models: ModelStore
    unfinished_report: UnfinishedReport  # models.report.unfinished_report

    @property
    def artifacts(self) -> ArtifactStore:
        return self.models.artifacts

    @property
    def index(self) -> JobIndex:
        return JobIndex(self.client, self.keys, self.job_ttl_s)

    def exists(self, job_id: str) -> bool:
        """Whether the job's record is still there (not expired, not lost)."""
        return bool(self.client.exists(self.keys.job(job_id)))

    def get(self, job_id: str, tenant: str | None = None) -> JobRecord:
        """The job's record; JobNotFound when absent or (given ``tenant``) another tenant's."""
        raw = self.client.hgetall(self.keys.job(job_id))
        if not raw:
            raise JobNotFound(job_id)
        job = JobRecord.from_hash(raw)
        if tenant is not None and job.tenant != tenant:
            raise JobNotFound(job_id)
        return job

    def _transition(
        self,
        job_id: str,
        decide: Decide,
        extra: ExtraWrites | None = None,
        model_writes: ModelWrites | None = None,
        *,
        publish: bool = False,
    ) -> JobChange | None:
        """WATCH the record (and the model an adaptation makes), let ``decide(job, model_state)``
        return the change (None: no change; the model's state is None unless it exists and
        is this job's), apply it with ``extra`` and the model's writes (:meth:`_model_change`)."""
        key = self.keys.job(job_id)
        result: dict[str, JobChange | None] = {}
        spent: list[JobRecord] = []  # the job, when this change finishes it

        def apply(pipe: redis.client.Pipeline) -> None:
            spent.clear()  # a retry after a concurrent change decides anew
            raw = pipe.hgetall(key)
            if not raw:
                raise JobNotFound(job_id)
            job = JobRecord.from_hash(raw)
            model_id = (job.model_id or "") if job.kind == JobKind.ADAPT else ""
            model_state = self.models.owned_by(pipe, model_id, job_id) if model_id else None
            change = decide(job, model_state)
            result["change"] = change
            if change is None:
                return
            new_state = change.state or job.state
            model_change = self._model_change(
                pipe, job_id, model_id, model_state, new_state, model_writes, publish
            )
            pipe.multi()
            pipe.hset(key, mapping=change.fields())
            if new_state != job.state:
                self.index.move_writes(pipe, job, new_state, job.state)
            if change.state is not None:
                self._count(pipe, job, change.state, change.finished)
                if new_state.finished:  # its input and snapshot are not needed
                    self.spent_writes(pipe, job)
                    spent.append(job)
                    pipe.srem(self.keys.tenant_jobs(job.tenant), job_id)
            if extra is not None:
                extra(pipe)
            if model_change is not None:
                model_change(pipe, model_id)

        self.client.transaction(apply, key)
        for job in spent:
            self.free_blobs(job_id, [job.input, job.snapshot])
        return result["change"]

    def _model_change(
        self,
        pipe: redis.client.Pipeline,
        job_id: str,
        model_id: str,
        model_state: ModelState | None,
        new_state: JobState,
        model_writes: ModelWrites | None,
        publish: bool,
    ) -> ModelWrites | None:
        """What the transition writes of the job's model (read after WATCH, before MULTI):
        nothing unless the model exists and is the job's; ``model_writes`` at once with
        ``publish``, else when the job ends; a published model stays ready whatever ends its
        job, with an unfinished report that says why."""
        if model_writes is None or model_state is None:
            return None
        if publish:
            return model_writes
        if not new_state.finished:
            return None
        if model_state == ModelState.READY and new_state != JobState.SUCCEEDED:
            why = unfinished(job_id, new_state)
            return self.models.plan_unfinished(pipe, model_id, why, self.unfinished_report)
        if new_state == JobState.CANCELLED:  # never published, never failed
            return self.models.cancelled_writes
        return model_writes

    def _count(
        self,
        pipe: redis.client.Pipeline,
        job: JobRecord,
        state: JobState,
        finished: float | None,
    ) -> None:
        """Count the job's entry into ``state``; a success's run time too."""
        count_state(pipe, self.keys, job.kind.value, state.value)
        if state == JobState.SUCCEEDED and job.started and finished is not None:
            observe_seconds(pipe, self.keys, job.kind.value, max(0.0, finished - job.started))

    def start(self, job_id: str, worker: str, max_attempts: int) -> int | None:
        """Claim the job for a new attempt; None when it has already finished.

        PoisonJob when ``max_attempts`` attempts reached a handler already and the last never
        ended (the job is still running under it: its worker died). Deliveries that never
        reached a handler (a Redis blip between delivery and start) do not count.
        """

        def decide(job: JobRecord, _: ModelState | None) -> JobChange | None:
            if job.state.finished:
                return None
            if job.cancel_requested:  # asked while an earlier attempt ran
                return JobChange(state=JobState.CANCELLED, finished=now())
            if job.state == JobState.RUNNING and job.attempt >= max_attempts:
                raise PoisonJob(job_id, job.attempt)
            return JobChange(
                state=JobState.RUNNING,
                attempt=job.attempt + 1,
                worker=worker,
                started=now(),
                step=0,
                phase="starting",
            )

        change = self._transition(job_id, decide, model_writes=self.models.failed_writes)
        return None if change is None else change.attempt

    def progress(
        self, job_id: str, attempt: int, step: int, total: int, phase: str | None = None
    ) -> None:
        """Record progress (and what the job is doing, in words); raise JobNotFound,
        Superseded or CancelRequested when the worker must stop."""
        job = self.get(job_id)  # JobNotFound: the record expired or was lost mid-run
        if job.attempt != attempt or job.state != JobState.RUNNING:
            raise Superseded(job_id)
        if job.cancel_requested:
            raise CancelRequested(job_id)
        # Redis full (maxmemory): the job goes on, only its progress figure lags; the worker's
        # heartbeat and the /metrics gauges say that Redis is full
        with contextlib.suppress(redis.exceptions.OutOfMemoryError):
            change = JobChange(step=step, total=total, phase=None if phase is None else phase[:200])
            self.client.hset(self.keys.job(job_id), mapping=change.fields())

    def publish_model(self, job_id: str, attempt: int, model_writes: ModelWrites) -> None:
        """Publish the adaptation's model while the job goes on (its report): the job records
        when (``model_ready``). Raises Superseded when the attempt is no longer the job's,
        CancelRequested when the job was asked to stop or its model was deleted."""

        def decide(job: JobRecord, model_state: ModelState | None) -> JobChange | None:
            if job.attempt != attempt or job.state != JobState.RUNNING:
                raise Superseded(job_id)
            if job.cancel_requested or model_state is None:
                raise CancelRequested(job_id)
            if model_state != ModelState.PENDING:  # published already: nothing to change
                return None
            return JobChange(model_ready=now())

        self._transition(job_id, decide, model_writes=model_writes, publish=True)

    def finish(
        self,
        job_id: str,
        attempt: int,
        state: JobState,
        *,
        error: dict[str, str] | None = None,
        extra: ExtraWrites | None = None,
        model_writes: ModelWrites | None = None,
    ) -> str | None:
        """End the attempt in ``state`` with ``extra`` (and, while the job's model exists,
        ``model_writes``) in the same transaction; the state written. An adaptation whose
        model was deleted meanwhile ends cancelled and writes nothing of it.

        None (and nothing written) when the attempt is no longer the job's current one.
        """

        def decide(job: JobRecord, model_state: ModelState | None) -> JobChange | None:
            if job.attempt != attempt or job.state != JobState.RUNNING:
                return None
            if job.kind == JobKind.ADAPT and model_state is None:
                return JobChange(state=JobState.CANCELLED, finished=now(), error=MODEL_DELETED)
            return JobChange(state=state, finished=now(), error=error)

        change = self._transition(job_id, decide, extra, model_writes)
        return None if change is None or change.state is None else change.state.value

    def fail_unstarted(self, job_id: str, error: dict[str, str]) -> bool:
        """Fail a job that is not running under any attempt (a poison job, a lost input)."""

        def decide(job: JobRecord, _: ModelState | None) -> JobChange | None:
            if job.state.finished:
                return None
            return JobChange(state=JobState.FAILED, finished=now(), error=error)

        return self._transition(job_id, decide, model_writes=self.models.failed_writes) is not None

    def requeue(self, job_id: str, attempt: int) -> bool:
        """Give the job back (worker shutting down): queued again, re-enqueued, atomically."""

        cancelled = []

        def decide(job: JobRecord, _: ModelState | None) -> JobChange | None:
            if job.attempt != attempt or job.state != JobState.RUNNING:
                return None
            if job.cancel_requested:  # nothing to give back: it ends here
                cancelled.append(True)
                return JobChange(state=JobState.CANCELLED, finished=now())
            return JobChange(state=JobState.QUEUED, worker="", step=0)

        def enqueue(pipe: redis.client.Pipeline) -> None:
            if not cancelled:
                pipe.xadd(self.keys.stream, {"job_id": job_id})

        changes = self._transition(job_id, decide, enqueue, self.models.failed_writes)
        return changes is not None
