"""Creating a job: its record, input, queue entry and (for an adaptation) its pending model,
in one transaction that also enforces the tenant's caps (models, active jobs)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import redis

from common.job_errors import TooManyJobs
from common.job_index import JobIndex
from common.keys import JobKind, JobState, Keys, new_id
from common.logs import current_request_id
from common.model_store import ModelStore
from common.queue import JobQueue
from common.telemetry import count_state

logger = logging.getLogger(__name__)
Fields = Mapping[str, str | int | float]


def now() -> float:
    return round(time.time(), 3)


class JobCreation:
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
        fields: Fields,
        *,
        tenant: str,
        new_model: Fields | None = None,
        model_cap: int | None = None,
        max_active: int | None = None,
        guard: Callable[[redis.client.Pipeline], None] | None = None,
        extra: Callable[[redis.client.Pipeline, str], None] | None = None,
        watch: tuple[str, ...] = (),
    ) -> str:
        """Store the input and the record of ``tenant``'s job and enqueue it, atomically; with
        ``new_model``, a pending model too, evicting the tenant's oldest finished models past
        ``model_cap`` (planned inside the transaction's WATCH; None: no cap). ModelCapReached
        when all of the tenant's models are pending; TooManyJobs when it has ``max_active``
        queued and running jobs (None: no limit). ``guard`` may raise to refuse, reading keys
        of ``watch`` after WATCH; ``extra(pipe, job_id)`` adds writes to the same transaction."""
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
        models, queue = self.models, JobQueue(self.client, self.keys, 0)

        def apply(pipe: redis.client.Pipeline) -> None:
            done = self._finished_members(pipe, tenant, max_active)
            room = ([], [])
            if new_model is not None and model_cap is not None:
                room = models.plan_room(pipe, tenant, model_cap)
            if guard is not None:
                guard(pipe)
            pipe.multi()
            if extra is not None:
                extra(pipe, job_id)
            pipe.hset(self.keys.job(job_id), mapping=record)
            pipe.expire(self.keys.job(job_id), self.job_ttl_s)
            pipe.set(self.keys.job_input(job_id), payload, ex=self.job_ttl_s)
            if new_model is not None:
                models.evict_writes(pipe, tenant, *room, model_cap or 0)
                models.create_writes(pipe, dict(new_model), tenant, job_id)
            queue.enqueue_writes(pipe, tenant, job_id)
            self.index.move_writes(pipe, {k: str(v) for k, v in record.items()}, "queued")
            count_state(pipe, self.keys, kind.value, JobState.QUEUED.value)
            active = self.keys.tenant_jobs(tenant)
            pipe.sadd(active, job_id)
            pipe.expire(active, self.job_ttl_s)
            if done:
                pipe.srem(active, *done)

        watched = [self.keys.tenant_jobs(tenant)]
        watched += [self.keys.models_index(tenant)] if new_model else []
        watched += list(watch)
        self.client.transaction(apply, *watched)
        try:
            queue.dispatch()  # wakes an idle worker if none is busy
        except redis.RedisError as error:  # the job is stored: a worker dispatches it later
            logger.warning("job %s stored; dispatching it failed (%s)", job_id, error)
        return job_id

    def _finished_members(
        self, pipe: redis.client.Pipeline, tenant: str, max_active: int | None
    ) -> list[str]:
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
                f"{active} jobs of this tenant are queued or running; the limit is {max_active}:"
                " wait for one to finish or cancel one"
            )
        return done
