"""The worker process: one non-forking consumer of the job stream per device.

It claims a job (a dead worker's first, via XAUTOCLAIM), runs its handler, publishes the result
and the job's final state in one transaction, then acknowledges the stream entry. SIGTERM makes
it give back the job it holds (re-queued at once) at the next step, then exit.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import redis
import torch

from common.jobs import (
    CancelRequested,
    JobNotFound,
    JobStore,
    ModelWrites,
    PoisonJob,
    Superseded,
)
from common.keys import JobState, Keys
from common.logs import request_context
from common.queue import Delivery, JobQueue
from common.settings import Settings
from models.base_models import BaseModels
from worker.handlers import HANDLERS, USER_ERRORS, HandlerContext, pick_device

logger = logging.getLogger(__name__)

FORGET_WORKERS_AFTER_S = 3600  # heartbeats older than this are dropped from the workers set
MAX_BACKOFF_S = 5.0  # longest wait between tries while Redis is unavailable or full
# Redis cannot serve the worker now: unreachable, or full (maxmemory refuses writes)
REDIS_UNUSABLE = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.OutOfMemoryError)
MAX_ERRORS_IN_A_ROW = 10  # unexpected errors with nothing served between: the worker stops
# raw deliveries (counted by Redis, reaching a handler or not) past max_deliveries times this
DELIVERY_BACKSTOP = 10


class ShutdownRequested(Exception):
    """SIGTERM arrived while a job ran; it is given back to the queue."""


@dataclass
class Worker:
    settings: Settings
    client: redis.Redis
    base_models: BaseModels
    name: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.keys = Keys(self.settings.key_prefix)
        self.store = JobStore(
            self.client, self.keys, self.settings.job_ttl_s, self.settings.model_ttl_s
        )
        self.queue = JobQueue(self.client, self.keys, self.settings.claim_idle_ms)
        self.context = HandlerContext(
            self.client,
            self.keys,
            self.base_models,
            pick_device(self.settings.device),
            self.settings.model_ttl_s,
        )
        self._outage_s = 0.0
        self._errors_in_a_row = 0  # unexpected errors since the last delivery served
        self.failed = False  # True: stopped by MAX_ERRORS_IN_A_ROW (exit non-zero, restart)
        self._held_entry: str | None = None  # the stream entry of the job being run
        self._warned_entry: str | None = None  # the entry last warned about (warn once)
        self._last_progress = 0.0  # monotonic time of the held job's start or last progress
        self._halted = threading.Event()  # set once the serve loop has ended

    def heartbeat(self) -> None:
        """Say this worker is alive: in Redis (for /readyz), in its alive file (for the
        container's health check, ``python -m worker.alive``), and to the queue, by keeping the
        entry it holds fresh, however long the job goes between progress reports."""
        self.settings.worker_alive_file.touch()  # the process is alive, whatever Redis does
        moment = time.time()
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.zadd(self.keys.workers, {self.name: moment})
            pipe.zremrangebyscore(self.keys.workers, "-inf", moment - FORGET_WORKERS_AFTER_S)
            pipe.execute()
        finally:
            self._refresh_claim()  # a script Redis runs even when full: the job stays held

    def _refresh_claim(self) -> None:
        """Keep the held entry fresh while its job reports progress now and then; a job
        silent longer than ``max_silent_s`` is presumed stuck and left to be taken over."""
        held = self._held_entry
        if held is None:
            return
        silent_s = time.monotonic() - self._last_progress
        if silent_s > self.settings.max_silent_s:
            self._warn_once(held, "job of entry %s silent for %.0f s: no longer claimed", silent_s)
        elif not self.queue.touch(held, self.name) and self._held_entry == held:
            self._warn_once(held, "entry %s was taken over by another worker")

    def _warn_once(self, entry: str, message: str, *args: object) -> None:
        """A warning about ``entry`` once, not at every heartbeat."""
        if self._warned_entry != entry:
            logger.warning(message, entry, *args)
            self._warned_entry = entry

    def _beat_until_stopped(self) -> None:
        # until the serve loop has ended, not merely been asked to stop: a job being given
        # back on shutdown is still held until its next progress call
        while not self._halted.wait(self.settings.heartbeat_s):
            try:
                self.heartbeat()
            except (redis.RedisError, OSError):
                logger.exception("heartbeat failed; retrying in %.1f s", self.settings.heartbeat_s)

    def run(self) -> None:
        """Serve until ``stop`` is set; heartbeats come from a thread, even during a job."""
        if not self._start_up():
            return
        self._halted.clear()
        beating = threading.Thread(target=self._beat_until_stopped, name="heartbeat", daemon=True)
        beating.start()
        logger.info(
            "worker %s serving on %s with %d torch thread(s)",
            self.name,
            self.context.device,
            torch.get_num_threads(),
        )
        try:
            while not self.stop.is_set():
                self._serve_one()
        finally:
            self.stop.set()
            self._halted.set()
            beating.join()
            self.settings.worker_alive_file.unlink(missing_ok=True)
            self._deregister()
        logger.info("worker %s stopped", self.name)

    def _start_up(self) -> bool:
        """The consumer group and a first heartbeat, retried with backoff while Redis is away
        or full (never a crash loop under a supervisor); False when stopped meanwhile."""
        while not self.stop.is_set():
            try:
                self.queue.ensure_group()
                self.heartbeat()
                self._outage_s = 0.0
                return True
            except REDIS_UNUSABLE as error:
                self._back_off(error)
        return False

    def _back_off(self, error: Exception) -> None:
        self._outage_s = min(MAX_BACKOFF_S, max(0.1, 2 * self._outage_s))
        what = "full" if isinstance(error, redis.exceptions.OutOfMemoryError) else "unavailable"
        logger.warning("redis %s (%s); retrying in %.1f s", what, error, self._outage_s)
        self.stop.wait(self._outage_s)

    def _serve_one(self) -> None:
        """Take and process one delivery; ride out a Redis outage (the job it held, if any,
        stays pending and is taken over once Redis is back)."""
        try:
            delivery = self.queue.next(self.name, self.settings.worker_block_ms)
            if delivery is not None:
                self.process(delivery)
            self._outage_s = 0.0
            self._errors_in_a_row = 0
        except REDIS_UNUSABLE as error:
            self._back_off(error)
        except redis.ResponseError as error:
            if "NOGROUP" not in str(error):
                self._survive(error)
                return
            logger.warning("the queue's consumer group is gone (Redis lost its data); recreating")
            try:
                self.queue.ensure_group()
            except REDIS_UNUSABLE as unusable:
                self._back_off(unusable)
        except Exception as error:  # no one job may end the loop; its entry stays pending
            self._survive(error)

    def _survive(self, error: Exception) -> None:
        """Log an unexpected error and pause: the entry it came from stays pending, is taken
        over after ``claim_idle_ms`` and fails as a poison job after ``max_deliveries``."""
        logger.error("unexpected error serving the queue: %r", error, exc_info=error)
        self._errors_in_a_row += 1
        if self._errors_in_a_row >= MAX_ERRORS_IN_A_ROW:  # this worker is broken, not one job
            logger.critical("%d unexpected errors in a row: stopping", self._errors_in_a_row)
            self.failed = True
            self.stop.set()
            return
        self.stop.wait(MAX_BACKOFF_S)

    def _deregister(self) -> None:
        try:
            self.client.zrem(self.keys.workers, self.name)
        except redis.RedisError as error:
            logger.warning("could not deregister from Redis on exit: %s", error)

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
            with request_context(job.get("request_id") or None):
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

    def _run(self, delivery: Delivery, job: dict[str, str], attempt: int) -> None:
        job_id = delivery.job_id
        logger.info("job %s (%s) attempt %d started", job_id, job["kind"], attempt)

        def progress(step: int, total: int, phase: str | None = None) -> None:
            if self.stop.is_set():
                raise ShutdownRequested(job_id)
            self.store.progress(job_id, attempt, step, total, phase)
            self._last_progress = time.monotonic()  # the heartbeat refreshes the claim

        ended = True  # False: another attempt owns the job now; its entry is not ours to ack
        try:
            publish_model = partial(self._publish_model, job_id, attempt)
            publish = HANDLERS[job["kind"]](self.context, job, progress, publish_model)
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
