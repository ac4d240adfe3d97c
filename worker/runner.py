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
from dataclasses import dataclass, field

import redis
import torch

from common.artifact_health import require_usable, warn_if_unshared
from common.artifact_sweep import sweep_artifacts, take_lease
from common.settings import Settings
from common.stores import Stores, UsesStores
from models.core import pick_device
from models.report import unfinished_report
from models.service import BaseModels
from worker.attempts import REDIS_UNUSABLE, JobAttempts
from worker.handlers import HandlerContext

logger = logging.getLogger(__name__)

FORGET_WORKERS_AFTER_S = 3600  # heartbeats older than this are dropped from the workers set
MAX_BACKOFF_S = 5.0  # longest wait between tries while Redis is unavailable or full
MAX_ERRORS_IN_A_ROW = 10  # unexpected errors with nothing served between: the worker stops
START_PROBE_TIMEOUT_S = 10.0  # the artifact store's probe at start-up (object storage retries)


@dataclass
class Worker(JobAttempts, UsesStores):
    settings: Settings
    client: redis.Redis
    base_models: BaseModels
    name: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.stores = Stores.build(self.settings, self.client, unfinished_report)
        device = pick_device(self.settings.device)  # ConfigError: stop at start-up
        warn_if_unshared(self.settings)
        # ArtifactsUnavailable: stop at start-up, rather than fail every job it takes
        require_usable(self.models.artifacts, START_PROBE_TIMEOUT_S)
        self.context = HandlerContext.build(self.stores, self.base_models, device)
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

    def _sweep_until_stopped(self) -> None:
        """Delete, every ``artifact_sweep_s``, the blobs no record names (common.artifact_sweep),
        when no other worker has in that time (the lease); in its own thread, so that a slow
        store never delays a heartbeat."""
        while not self._halted.is_set():
            try:
                if take_lease(self.stores, self.name, self._sweep_s):
                    sweep_artifacts(self.stores, self.settings.artifact_grace_s, stop=self._halted)
            except Exception:  # whatever it was, the next sweep tries again: never a dead thread
                logger.exception("artifact sweep failed; next try in %.0f s", self._sweep_s)
            self._halted.wait(self._sweep_s)

    @property
    def _sweep_s(self) -> float:
        return self.settings.artifact_sweep_s

    def run(self) -> None:
        """Serve until ``stop`` is set; heartbeats come from a thread, even during a job."""
        if not self._start_up():
            return
        self._halted.clear()
        beating = threading.Thread(target=self._beat_until_stopped, name="heartbeat", daemon=True)
        beating.start()
        sweeping = threading.Thread(target=self._sweep_until_stopped, name="sweep", daemon=True)
        sweeping.start()
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
            sweeping.join()
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
