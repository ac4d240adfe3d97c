"""Job records and their life cycle: queued -> running -> succeeded | failed | cancelled.

A job's state changes in one Redis transaction (WATCH + MULTI/EXEC), together with whatever
the change carries (the model's weights and report on success), so a reader never sees a
succeeded job without its results. Each start of a job bumps its ``attempt``; a worker may only
report progress on, or finish, the attempt it started, so a worker whose job was taken over
cannot overwrite the new owner's work.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from common.keys import JobKind, JobState, Keys, ModelState, new_id
from common.logs import current_request_id
from common.telemetry import count_state, observe_seconds

Fields = Mapping[str, str | int | float]
ExtraWrites = Callable[[redis.client.Pipeline], None]


class JobError(Exception):
    """Base of the job life-cycle errors."""


class JobNotFound(JobError):
    pass


class JobConflict(JobError):
    """The job is in a state that does not allow the asked change."""


class Superseded(JobError):
    """The job was taken over by another attempt; the current one must stop."""


class PoisonJob(JobError):
    """The job's attempts so far all reached a handler and none ended: its workers died."""

    def __init__(self, job_id: str, attempts: int) -> None:
        super().__init__(job_id)
        self.attempts = attempts


class CancelRequested(JobError):
    """A cancel was asked while the job runs; the worker stops between steps."""


def now() -> float:
    return round(time.time(), 3)


@dataclass(frozen=True)
class JobStore:
    client: redis.Redis
    keys: Keys
    job_ttl_s: int
    model_ttl_s: int

    def create(
        self,
        kind: JobKind,
        payload: bytes,
        fields: Fields,
        *,
        tenant: str,
        model_record: Fields | None = None,
        extra: ExtraWrites | None = None,
    ) -> str:
        """Store the input and the record (and a pending model) of ``tenant`` and enqueue,
        atomically."""
        job_id = new_id("job")
        record = {
            "id": job_id,
            "kind": kind.value,
            "state": JobState.QUEUED.value,
            "created": now(),
            "attempt": 0,
            "step": 0,
            "total": 0,
            "cancel_requested": 0,
            "request_id": current_request_id() or "",  # the worker logs under the same id
            "tenant": tenant,
            **fields,
        }
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.keys.job(job_id), mapping=record)
        pipe.expire(self.keys.job(job_id), self.job_ttl_s)
        pipe.set(self.keys.job_input(job_id), payload, ex=self.job_ttl_s)
        if model_record is not None:
            model_id = str(model_record["id"])
            model = {**model_record, "job_id": job_id, "tenant": tenant}
            pipe.hset(self.keys.model(model_id), mapping=model)
            pipe.expire(self.keys.model(model_id), self.model_ttl_s)
            pipe.zadd(self.keys.models_index(tenant), {model_id: float(model_record["created"])})
        pipe.xadd(self.keys.stream, {"job_id": job_id})
        count_state(pipe, self.keys, kind.value, JobState.QUEUED.value)
        if extra is not None:
            extra(pipe)
        pipe.execute()
        return job_id

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
        decide: Callable[[dict[str, str]], Fields | None],
        extra: ExtraWrites | None = None,
    ) -> Fields | None:
        """WATCH the record, let ``decide`` return the new fields (None: no change), apply."""
        key = self.keys.job(job_id)
        result: dict[str, Fields | None] = {}

        def apply(pipe: redis.client.Pipeline) -> None:
            raw = pipe.hgetall(key)
            if not raw:
                raise JobNotFound(job_id)
            job = {k.decode(): v.decode() for k, v in raw.items()}
            changes = decide(job)
            result["changes"] = changes
            if changes is None:
                return
            pipe.multi()
            pipe.hset(key, mapping=changes)
            if "state" in changes:
                self._count(pipe, job, changes)
                if JobState(str(changes["state"])).finished:  # its support set is not needed
                    pipe.delete(self.keys.job_input(job_id))
            if extra is not None:
                extra(pipe)

        self.client.transaction(apply, key)
        return result["changes"]

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

        def decide(job: dict[str, str]) -> Fields | None:
            if JobState(job["state"]).finished:
                return None
            attempts = int(job["attempt"])
            if job["state"] == JobState.RUNNING and attempts >= max_attempts:
                raise PoisonJob(job_id, attempts)
            return {
                "state": JobState.RUNNING.value,
                "attempt": int(job["attempt"]) + 1,
                "worker": worker,
                "started": now(),
                "step": 0,
            }

        changes = self._transition(job_id, decide)
        return None if changes is None else int(changes["attempt"])

    def progress(self, job_id: str, attempt: int, step: int, total: int) -> None:
        """Record progress; raise Superseded or CancelRequested when the worker must stop."""
        key = self.keys.job(job_id)
        current, cancel, state = self.client.hmget(key, ["attempt", "cancel_requested", "state"])
        if current is None or int(current) != attempt or state.decode() != JobState.RUNNING:
            raise Superseded(job_id)
        if cancel == b"1":
            raise CancelRequested(job_id)
        self.client.hset(key, mapping={"step": step, "total": total})

    def finish(
        self,
        job_id: str,
        attempt: int,
        state: JobState,
        *,
        error: dict[str, str] | None = None,
        extra: ExtraWrites | None = None,
    ) -> bool:
        """End the attempt in ``state`` with ``extra`` writes in the same transaction.

        False (and nothing written) when the attempt is no longer the job's current one.
        """

        def decide(job: dict[str, str]) -> Fields | None:
            if int(job["attempt"]) != attempt or job["state"] != JobState.RUNNING:
                return None
            fields: dict[str, str | float] = {"state": state.value, "finished": now()}
            if error is not None:
                fields["error"] = json.dumps(error)
            return fields

        return self._transition(job_id, decide, extra) is not None

    def fail_unstarted(self, job_id: str, error: dict[str, str]) -> bool:
        """Fail a job that is not running under any attempt (a poison job, a lost input)."""

        def decide(job: dict[str, str]) -> Fields | None:
            if JobState(job["state"]).finished:
                return None
            return {"state": JobState.FAILED.value, "finished": now(), "error": json.dumps(error)}

        return self._transition(job_id, decide, self.model_failed_writes(job_id)) is not None

    def requeue(self, job_id: str, attempt: int) -> bool:
        """Give the job back (worker shutting down): queued again, re-enqueued, atomically."""

        def decide(job: dict[str, str]) -> Fields | None:
            if int(job["attempt"]) != attempt or job["state"] != JobState.RUNNING:
                return None
            return {"state": JobState.QUEUED.value, "worker": "", "step": 0}

        def enqueue(pipe: redis.client.Pipeline) -> None:
            pipe.xadd(self.keys.stream, {"job_id": job_id})

        return self._transition(job_id, decide, enqueue) is not None

    def cancel(self, job_id: str) -> str:
        """Cancel a queued job now, or ask a running one to stop; the resulting state."""

        def decide(job: dict[str, str]) -> Fields | None:
            state = JobState(job["state"])
            if state.finished:
                raise JobConflict(f"job {job_id} has already {state.value}")
            if state == JobState.QUEUED:
                return {"state": JobState.CANCELLED.value, "finished": now()}
            return {"cancel_requested": 1}

        changes = self._transition(job_id, decide, None)
        if changes and changes.get("state") == JobState.CANCELLED.value:
            self.mark_model_failed(job_id)
            return JobState.CANCELLED.value
        return JobState.RUNNING.value

    def model_failed_writes(self, job_id: str) -> ExtraWrites:
        """Writes that mark the model an adaptation job was making as failed. An evaluation's
        fate never touches the (ready) model it evaluates: it writes nothing then."""
        kind, model_id = self.client.hmget(self.keys.job(job_id), ["kind", "model_id"])
        makes_the_model = kind is not None and kind.decode() == JobKind.ADAPT

        def write(pipe: redis.client.Pipeline) -> None:
            if makes_the_model and model_id:
                pipe.hset(self.keys.model(model_id.decode()), "state", ModelState.FAILED.value)

        return write

    def mark_model_failed(self, job_id: str) -> None:
        pipe = self.client.pipeline(transaction=True)
        self.model_failed_writes(job_id)(pipe)
        pipe.execute()

    def result(self, job_id: str) -> dict[str, Any] | None:
        raw = self.client.get(self.keys.job_result(job_id))
        return None if raw is None else json.loads(raw)
