"""Running one delivered job: start the attempt, call its handler, store its outcome (retried
while Redis is full), and acknowledge the stream entry once the job has ended. Mixed into
:class:`worker.runner.Worker`, which owns the serve loop, the heartbeat and shutdown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial

import redis

from common.artifacts import ArtifactStoreError
from common.job_record import JobRecord
from common.jobs import (
    CancelRequested,
    JobNotFound,
    JobStore,
    ModelWrites,
    PoisonJob,
    Superseded,
)
from common.keys import JobState
from common.logs import request_context
from common.queue import Delivery, JobQueue
from common.settings import Settings
from worker.handlers import USER_ERRORS, HandlerContext
from worker.registry import HANDLERS

logger = logging.getLogger(__name__)

# Redis cannot serve the worker now: unreachable, or full (maxmemory refuses writes)
REDIS_UNUSABLE = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.OutOfMemoryError)
# raw deliveries (counted by Redis, reaching a handler or not) past max_deliveries times this
DELIVERY_BACKSTOP = 10


class ShutdownRequested(Exception):
    """SIGTERM arrived while a job ran; it is given back to the queue."""


class JobAttempts:
    """The job-running half of a worker; the worker sets these attributes."""

    settings: Settings
    store: JobStore
    queue: JobQueue
    context: HandlerContext
    stop: threading.Event
    _held_entry: str | None
    _last_progress: float
    _back_off: Callable[[Exception], None]  # the pause before Redis is tried again (Worker's)

    def process(self, delivery: Delivery) -> None:
        job_id = delivery.job_id
        if delivery.deliveries > DELIVERY_BACKSTOP * self.settings.max_deliveries:
            # a job that cannot even be started, again and again (e.g. an unreadable record)
            self._fail_poison(delivery, f"was delivered {delivery.deliveries} times")
            return
        try:
            attempt = self.store.start(job_id, self.name, self.settings.max_deliveries)
        except JobNotFound:  # its record expired or was deleted: nothing left to run
            logger.warning("job %s has no record (expired or deleted); dropping its entry", job_id)
            self.queue.ack(delivery.entry_id)
            return
        except PoisonJob as poison:
            self._fail_poison(delivery, f"was started {poison.attempts} times")
            return
        if attempt is None:  # finished already (a redelivery): nothing to do
            self.queue.ack(delivery.entry_id)
            return
        self._last_progress = time.monotonic()
        self._held_entry = delivery.entry_id
        try:
            job = self.store.get(job_id)
            with request_context(job.request_id or None):
                self._run(delivery, job, attempt)
        finally:
            self._held_entry = None

    def _fail_poison(self, delivery: Delivery, how_often: str) -> None:
        job_id = delivery.job_id
        logger.warning("job %s %s without finishing: failing it", job_id, how_often)
        error = {
            "code": "poison_job",
            "message": f"the job {how_often} without finishing (its workers died); "
            "it will not be retried",
        }
        try:
            self.store.fail_unstarted(job_id, error)
        except REDIS_UNUSABLE:
            raise  # Redis is away or full: the entry stays pending
        except Exception:  # a record gone or unreadable: never redeliver it forever
            logger.exception("poison job %s could not be failed; dropping its entry", job_id)
        self.queue.ack(delivery.entry_id)

    def _run(self, delivery: Delivery, job: JobRecord, attempt: int) -> None:
        job_id = delivery.job_id
        logger.info("job %s (%s) attempt %d started", job_id, job.kind.value, attempt)

        def progress(step: int, total: int, phase: str | None = None) -> None:
            if self.stop.is_set():
                raise ShutdownRequested(job_id)
            self.store.progress(job_id, attempt, step, total, phase)
            self._last_progress = time.monotonic()  # the heartbeat refreshes the claim

        ended = True  # False: another attempt owns the job now; its entry is not ours to ack
        try:
            publish_model = partial(self._publish_model, job_id, attempt)
            publish = HANDLERS[job.kind](self.context, job, progress, publish_model)
            final_state = self._stored(
                lambda: self.store.finish(
                    job_id,
                    attempt,
                    JobState.SUCCEEDED,
                    extra=publish.job_writes,
                    model_writes=publish.model_writes,
                )
            )
            ended = final_state is not None
            if ended:
                logger.info("job %s %s", job_id, final_state)
        except Superseded:
            ended = False
        except ShutdownRequested:
            ended = self.store.requeue(job_id, attempt)  # False: taken over meanwhile
            if ended:
                logger.info("job %s given back on shutdown", job_id)
        except JobNotFound:  # its record vanished mid-run (deleted or expired)
            logger.warning("job %s lost its record while running; dropping its entry", job_id)
        except redis.RedisError:
            raise  # the store is unreachable: leave the job pending, to be taken over later
        except CancelRequested:
            ended = self._end(job_id, attempt, JobState.CANCELLED)
        except ArtifactStoreError as error:  # the store is down or full, or a blob is bad
            ended = self._end(job_id, attempt, JobState.FAILED, error.code, str(error))
        except USER_ERRORS as error:
            ended = self._end(job_id, attempt, JobState.FAILED, "invalid_job", str(error))
        except Exception as error:  # a bug: fail loudly, never silently
            logger.exception("job %s failed", job_id)
            message = f"{type(error).__name__}: {error}"
            ended = self._end(job_id, attempt, JobState.FAILED, "internal_error", message)
        if not ended:
            logger.warning("job %s was taken over by another worker; dropping it", job_id)
            return
        self.queue.ack(delivery.entry_id)

    def _publish_model(self, job_id: str, attempt: int, writes: ModelWrites) -> bool:
        """Publish the job's model before its report; False when Redis is full (the job goes
        on and publishes the model with its report, retried until it fits)."""
        try:
            self.store.publish_model(job_id, attempt, writes)
        except redis.exceptions.OutOfMemoryError as error:
            logger.warning(
                "job %s: redis full, its model is published with its report (%s)", job_id, error
            )
            return False
        return True

    def _end(
        self, job_id: str, attempt: int, state: JobState, code: str = "", message: str = ""
    ) -> bool:
        """End the attempt unsuccessfully; False when another attempt owns the job now."""
        final_state = self._stored(
            lambda: self.store.finish(
                job_id,
                attempt,
                state,
                error={"code": code, "message": message} if code else None,
                model_writes=self.store.models.failed_writes,
            )
        )
        return final_state is not None

    def _stored(self, write: Callable[[], str | None]) -> str | None:
        """``write()``, retried with backoff while Redis is full: a finished job's outcome is
        kept until it fits, not thrown away. Raises when the worker is asked to stop."""
        while True:
            try:
                return write()
            except redis.exceptions.OutOfMemoryError as error:
                if self.stop.is_set():
                    raise
                self._back_off(error)
