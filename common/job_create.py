"""Creating a job: its input stored as a blob, then its record, queue entry and (for an
adaptation) its pending model, in one transaction that also enforces the tenant's caps (models,
active jobs)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

import redis

from common.job_blobs import JobBlobs
from common.job_errors import TooManyJobs
from common.job_index import JobIndex
from common.job_record import JobRecord
from common.keys import JobKind, JobState, Keys, ModelState, new_id
from common.logs import current_request_id
from common.model_record import ModelRecord
from common.model_store import ModelStore
from common.queue import JobQueue
from common.telemetry import count_state

logger = logging.getLogger(__name__)
Pipeline = redis.client.Pipeline


def now() -> float:
    return round(time.time(), 3)


class JobCreation(JobBlobs):
    """:meth:`create` of :class:`~common.jobs.JobStore` (which provides these attributes)."""

    client: redis.Redis
    keys: Keys
    job_ttl_s: int
    models: ModelStore
    index: JobIndex

    def create(
        self,
        kind: JobKind,
        payload: bytes,
        *,
        tenant: str,
        base_model: str,
        settings: str,
        model_id: str | None = None,
        new_model: ModelRecord | None = None,
        model_cap: int | None = None,
        max_active: int | None = None,
        guard: Callable[[Pipeline], None] | None = None,
        extra: Callable[[Pipeline, str], None] | None = None,
        watch: tuple[str, ...] = (),
    ) -> str:
        """Store the input (``payload``) and the record of ``tenant``'s job and enqueue it,
        atomically; with ``new_model``, that model too (pending, made by the job), evicting the
        tenant's oldest finished models past ``model_cap`` (planned inside the transaction's
        WATCH; None: no cap). ModelCapReached when all of the tenant's models are pending;
        TooManyJobs when it has ``max_active`` queued and running jobs (None: no limit).
        ``guard`` may raise to refuse, reading keys of ``watch`` after WATCH;
        ``extra(pipe, job_id)`` adds writes to the same transaction. ``model_id``: the model
        the job works on (an evaluation's); a job that makes ``new_model`` works on that one."""
        job_id = new_id("job")
        stored_input = self.put_input(job_id, payload)  # before the record that names it
        model = None
        if new_model is not None:  # pending, made by this job
            model = replace(new_model, state=ModelState.PENDING, job_id=job_id, tenant=tenant)
        job = JobRecord(
            id=job_id,
            kind=kind,
            state=JobState.QUEUED,
            tenant=tenant,
            created=now(),
            base_model=base_model,
            settings=settings,
            model_id=model.id if model is not None else model_id,
            request_id=current_request_id() or "",  # the worker logs under the same id
            input=stored_input,
        )

        def apply(pipe: Pipeline) -> None:
            done = self._finished_members(pipe, job.tenant, max_active)
            room = ([], [])
            if model is not None and model_cap is not None:
                room = self.models.plan_room(pipe, job.tenant, model_cap)
            if guard is not None:
                guard(pipe)
            pipe.multi()
            if extra is not None:
                extra(pipe, job.id)
            self._job_writes(pipe, job, done)
            if model is not None:
                self.models.evict_writes(pipe, job.tenant, *room, model_cap or 0)
                self.models.create_writes(pipe, model)

        watched = [self.keys.tenant_jobs(job.tenant)]
        watched += [self.keys.models_index(job.tenant)] if model else []
        try:
            self.client.transaction(apply, *watched, *watch)
        except (redis.ConnectionError, redis.TimeoutError):
            raise  # it may have been applied: the input is left to the sweep if not
        except Exception:  # refused (caps, guard, Redis full): no record names the input
            self.free_blobs(job.id, [stored_input])
            raise
        self._dispatch(job.id)
        return job.id

    def _job_writes(self, pipe: Pipeline, job: JobRecord, done: list[str]) -> None:
        """The queued job (record, queue entry, index cell, count) and its tenant's
        set of active jobs, less ``done`` (finished or gone), inside the caller's MULTI."""
        pipe.hset(self.keys.job(job.id), mapping=job.fields())
        pipe.expire(self.keys.job(job.id), self.job_ttl_s)
        JobQueue(self.client, self.keys, 0).enqueue_writes(pipe, job.tenant, job.id)
        self.index.move_writes(pipe, job, JobState.QUEUED)
        count_state(pipe, self.keys, job.kind.value, JobState.QUEUED.value)
        active = self.keys.tenant_jobs(job.tenant)
        pipe.sadd(active, job.id)
        pipe.expire(active, self.job_ttl_s)
        if done:
            pipe.srem(active, *done)

    def _dispatch(self, job_id: str) -> None:
        """Wake an idle worker if none is busy."""
        try:
            JobQueue(self.client, self.keys, 0).dispatch()
        except redis.RedisError as error:  # the job is stored: a worker dispatches it later
            logger.warning("job %s stored; dispatching it failed (%s)", job_id, error)

    def _finished_members(self, pipe: Pipeline, tenant: str, max_active: int | None) -> list[str]:
        """Ids in the tenant's set of active jobs that are finished or gone (read after WATCH);
        TooManyJobs when the others reach ``max_active``."""
        members = [raw.decode() for raw in pipe.smembers(self.keys.tenant_jobs(tenant))]
        done = []
        for member in members:
            state = pipe.hget(self.keys.job(member), "state")
            if state is None or JobState(state.decode()).finished:
                done.append(member)
        active = len(members) - len(done)
        if max_active is not None and active >= max_active:
            raise TooManyJobs(
                f"this tenant has reached its limit of queued or running jobs ({max_active}): "
                "wait for one to finish or cancel one"
            )
        return done
