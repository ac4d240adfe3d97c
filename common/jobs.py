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
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from common.job_cancel import JobCancellation, unfinished
from common.job_create import Fields, JobCreation, now
from common.job_errors import (
    MODEL_DELETED,
    CancelRequested,
    JobNotFound,
    PoisonJob,
    Superseded,
)
from common.job_index import JobIndex
from common.keys import JobKind, JobState, Keys, ModelState
from common.model_store import ModelStore
from common.telemetry import count_state, observe_seconds

logger = logging.getLogger(__name__)
ExtraWrites = Callable[[redis.client.Pipeline], None]
ModelWrites = Callable[[redis.client.Pipeline, str], None]  # (pipe, model id)


@dataclass(frozen=True)
class JobStore(JobCreation, JobCancellation):
    client: redis.Redis
    keys: Keys
    job_ttl_s: int
    model_ttl_s: int

    @property
    def models(self) -> ModelStore:
        return ModelStore(self.client, self.keys, self.model_ttl_s)

    @property
    def index(self) -> JobIndex:
        return JobIndex(self.client, self.keys, self.job_ttl_s)

    def get(self, job_id: str, tenant: str | None = None) -> dict[str, str]:
        """The job's record; JobNotFound when absent or (given ``tenant``) another tenant's."""
        record = self.client.hgetall(self.keys.job(job_id))
        if not record:
            raise JobNotFound(job_id)
        job = {k.decode(): v.decode() for k, v in record.items()}
        if tenant is not None and job.get("tenant") != tenant:
            raise JobNotFound(job_id)
        return job

    def _transition(
        self,
        job_id: str,
        decide: Callable[[dict[str, str], str | None], Fields | None],
        extra: ExtraWrites | None = None,
        model_writes: ModelWrites | None = None,
        *,
        publish: bool = False,
    ) -> Fields | None:
        """WATCH the record (and the model an adaptation makes), let ``decide(job, model_state)``
        return the new fields (None: no change; the model's state is None unless it exists and
        is this job's), apply them with ``extra`` and the model's writes (:meth:`_model_change`)."""
        key = self.keys.job(job_id)
        result: dict[str, Fields | None] = {}

        def apply(pipe: redis.client.Pipeline) -> None:
            raw = pipe.hgetall(key)
            if not raw:
                raise JobNotFound(job_id)
            job = {k.decode(): v.decode() for k, v in raw.items()}
            model_id = job.get("model_id", "") if job["kind"] == JobKind.ADAPT else ""
            model_state = self.models.owned_by(pipe, model_id, job_id) if model_id else None
            changes = decide(job, model_state)
            result["changes"] = changes
            if changes is None:
                return
            new_state = JobState(str(changes.get("state", job["state"])))
            model_change = self._model_change(
                pipe, job_id, model_id, model_state, new_state, model_writes, publish
            )
            pipe.multi()
            pipe.hset(key, mapping=changes)
            if new_state != job["state"]:
                self.index.move_writes(pipe, job, new_state.value, job["state"])
            if "state" in changes:
                self._count(pipe, job, changes)
                if new_state.finished:  # its support set is not needed
                    pipe.delete(self.keys.job_input(job_id))
                    pipe.srem(self.keys.tenant_jobs(job.get("tenant", "")), job_id)
            if extra is not None:
                extra(pipe)
            if model_change is not None:
                model_change(pipe, model_id)

        self.client.transaction(apply, key)
        return result["changes"]

    def _model_change(
        self,
        pipe: redis.client.Pipeline,
        job_id: str,
        model_id: str,
        model_state: str | None,
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
            return self.models.plan_unfinished(pipe, model_id, unfinished(job_id, new_state))
        if new_state == JobState.CANCELLED:  # never published, never failed
            return self.models.cancelled_writes
        return model_writes

    def _count(self, pipe: redis.client.Pipeline, job: dict[str, str], changes: Fields) -> None:
        state = str(changes["state"])
        count_state(pipe, self.keys, job["kind"], state)
        if state == JobState.SUCCEEDED and job.get("started"):
            seconds = float(changes["finished"]) - float(job["started"])
            observe_seconds(pipe, self.keys, job["kind"], max(0.0, seconds))

    def start(self, job_id: str, worker: str, max_attempts: int) -> int | None:
        """Claim the job for a new attempt; None when it has already finished.

        PoisonJob when ``max_attempts`` attempts reached a handler already and the last never
        ended (the job is still running under it: its worker died). Deliveries that never
        reached a handler (a Redis blip between delivery and start) do not count.
        """

        def decide(job: dict[str, str], _: str | None) -> Fields | None:
            if JobState(job["state"]).finished:
                return None
            if job.get("cancel_requested") == "1":  # asked while an earlier attempt ran
                return {"state": JobState.CANCELLED.value, "finished": now()}
            attempts = int(job["attempt"])
            if job["state"] == JobState.RUNNING and attempts >= max_attempts:
                raise PoisonJob(job_id, attempts)
            return {
                "state": JobState.RUNNING.value,
                "attempt": int(job["attempt"]) + 1,
                "worker": worker,
                "started": now(),
                "step": 0,
                "phase": "starting",
            }

        changes = self._transition(job_id, decide, model_writes=self.models.failed_writes)
        return None if changes is None or "attempt" not in changes else int(changes["attempt"])

    def progress(
        self, job_id: str, attempt: int, step: int, total: int, phase: str | None = None
    ) -> None:
        """Record progress (and what the job is doing, in words); raise JobNotFound,
        Superseded or CancelRequested when the worker must stop."""
        key = self.keys.job(job_id)
        current, cancel, state = self.client.hmget(key, ["attempt", "cancel_requested", "state"])
        if current is None:  # the record expired or was lost mid-run
            raise JobNotFound(job_id)
        if int(current) != attempt or state.decode() != JobState.RUNNING:
            raise Superseded(job_id)
        if cancel == b"1":
            raise CancelRequested(job_id)
        # Redis full (maxmemory): the job goes on, only its progress figure lags; the worker's
        # heartbeat and the /metrics gauges say that Redis is full
        with contextlib.suppress(redis.exceptions.OutOfMemoryError):
            fields: dict[str, str | int] = {"step": step, "total": total}
            if phase is not None:
                fields["phase"] = phase[:200]
            self.client.hset(key, mapping=fields)

    def publish_model(self, job_id: str, attempt: int, model_writes: ModelWrites) -> None:
        """Publish the adaptation's model while the job goes on (its report): the job records
        when (``model_ready``). Raises Superseded when the attempt is no longer the job's,
        CancelRequested when the job was asked to stop or its model was deleted."""

        def decide(job: dict[str, str], model_state: str | None) -> Fields | None:
            if int(job["attempt"]) != attempt or job["state"] != JobState.RUNNING:
                raise Superseded(job_id)
            if job.get("cancel_requested") == "1" or model_state is None:
                raise CancelRequested(job_id)
            if model_state != ModelState.PENDING:  # published already: nothing to change
                return None
            return {"model_ready": now()}

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

        def decide(job: dict[str, str], model_state: str | None) -> Fields | None:
            if int(job["attempt"]) != attempt or job["state"] != JobState.RUNNING:
                return None
            fields: dict[str, str | float] = {"state": state.value, "finished": now()}
            if job["kind"] == JobKind.ADAPT and model_state is None:
                fields["state"] = JobState.CANCELLED.value
                fields["error"] = json.dumps(MODEL_DELETED)
            elif error is not None:
                fields["error"] = json.dumps(error)
            return fields

        changes = self._transition(job_id, decide, extra, model_writes)
        return None if changes is None else str(changes["state"])

    def fail_unstarted(self, job_id: str, error: dict[str, str]) -> bool:
        """Fail a job that is not running under any attempt (a poison job, a lost input)."""

        def decide(job: dict[str, str], _: str | None) -> Fields | None:
            if JobState(job["state"]).finished:
                return None
            return {"state": JobState.FAILED.value, "finished": now(), "error": json.dumps(error)}

        return self._transition(job_id, decide, model_writes=self.models.failed_writes) is not None

    def requeue(self, job_id: str, attempt: int) -> bool:
        """Give the job back (worker shutting down): queued again, re-enqueued, atomically."""

        cancelled = []

        def decide(job: dict[str, str], _: str | None) -> Fields | None:
            if int(job["attempt"]) != attempt or job["state"] != JobState.RUNNING:
                return None
            if job.get("cancel_requested") == "1":  # nothing to give back: it ends here
                cancelled.append(True)
                return {"state": JobState.CANCELLED.value, "finished": now()}
            return {"state": JobState.QUEUED.value, "worker": "", "step": 0}

        def enqueue(pipe: redis.client.Pipeline) -> None:
            if not cancelled:
                pipe.xadd(self.keys.stream, {"job_id": job_id})

        changes = self._transition(job_id, decide, enqueue, self.models.failed_writes)
        return changes is not None

    def result(self, job_id: str) -> dict[str, Any] | None:
        raw = self.client.get(self.keys.job_result(job_id))
        return None if raw is None else json.loads(raw)
