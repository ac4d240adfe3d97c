"""The job queue: fair across tenants, then a Redis Stream read by one consumer group,
delivered at least once.

A new job waits in its tenant's list; tenants with waiting jobs take turns (round robin, one
job per turn, a newcomer before the tenant served last): :meth:`JobQueue.dispatch` moves the
next tenant's next job into the stream when no dispatched job is waiting there, so one tenant's
backlog never delays another's job by more than the jobs already running.

An entry stays pending until its worker acknowledges it. A worker keeps its entry's idle time
low while it works (:meth:`JobQueue.touch`); an entry idle longer than ``claim_idle_ms`` belongs
to a dead worker and the next free worker takes it over with XAUTOCLAIM. A job whose workers
died in its handler ``max_deliveries`` times is a poison job (common.jobs).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from common import redis_scripts
from common.keys import WORKER_GROUP, Keys


@dataclass(frozen=True)
class Delivery:
    entry_id: str
    job_id: str
    deliveries: int  # how many times Redis has handed this entry out, this time included


@dataclass(frozen=True)
class JobQueue:
    client: redis.Redis
    keys: Keys
    claim_idle_ms: int

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.keys.stream, WORKER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def _deliveries(self, entry_id: str) -> int:
        pending = self.client.xpending_range(
            self.keys.stream, WORKER_GROUP, min=entry_id, max=entry_id, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 1

    def _delivery(self, entry_id: bytes, fields: dict[bytes, bytes] | None) -> Delivery | None:
        entry = entry_id.decode()
        if not fields or b"job_id" not in fields:  # deleted or malformed entry
            self.ack(entry)
            return None
        return Delivery(entry, fields[b"job_id"].decode(), self._deliveries(entry))

    def enqueue_writes(self, pipe: redis.client.Pipeline, tenant: str, job_id: str) -> None:
        """Queue ``job_id`` behind its tenant's waiting jobs (inside the caller's MULTI). A
        tenant not waiting yet joins the round just before the tenant served last, unless it
        is that tenant (tenants joining in one turn go by name)."""
        pipe.rpush(self.keys.tenant_queue(tenant), job_id)
        turns = int(self.client.get(self.keys.queue_turns) or 0)
        last = self.client.hget(self.keys.queue_last_turns, tenant)
        due = max(turns - 0.5, float(last or "-inf"))  # served just now: it waits its turn
        pipe.zadd(self.keys.queue_tenants, {tenant: due}, nx=True)

    def dispatch(self) -> bool:
        """Move the next tenant's next job into the stream, if none waits there; whether one
        was moved. Workers call it before they read; the API after each new job."""
        head, tail = self.keys.tenant_queue("\0").split("\0")
        keys = (
            self.keys.stream,
            self.keys.queue_tenants,
            self.keys.queue_turns,
            self.keys.queue_last_turns,
        )
        try:
            return bool(
                self.client.eval(redis_scripts.DISPATCH, len(keys), *keys, WORKER_GROUP, head, tail)
            )
        except redis.ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            return False  # no consumer group yet (no worker has started): workers dispatch

    def next(self, consumer: str, block_ms: int) -> Delivery | None:
        """A dead worker's entry if one is idle long enough, else a new entry (blocking)."""
        # Redis 7 answers [cursor, entries, deleted ids]; Redis 6.2 only [cursor, entries]
        claimed = self.client.xautoclaim(
            self.keys.stream, WORKER_GROUP, consumer, self.claim_idle_ms, "0-0", count=1
        )[1]
        for entry_id, fields in claimed:
            delivery = self._delivery(entry_id, fields)
            if delivery is not None:
                return delivery
        self.dispatch()
        response = self.client.xreadgroup(
            WORKER_GROUP, consumer, {self.keys.stream: ">"}, count=1, block=block_ms
        )
        for _, entries in response or []:
            for entry_id, fields in entries:
                delivery = self._delivery(entry_id, fields)
                if delivery is not None:
                    return delivery
        return None

    def touch(self, entry_id: str, consumer: str) -> bool:
        """Reset the entry's idle time: this worker is alive and still on it. False (and
        nothing changed) when the entry is no longer this consumer's: never steal it back."""
        return bool(
            self.client.eval(
                redis_scripts.TOUCH_IF_OWNED, 1, self.keys.stream, WORKER_GROUP, entry_id, consumer
            )
        )

    def ack(self, entry_id: str) -> None:
        """Acknowledge and delete the entry, atomically, in a script: it works even when
        Redis is full (which refuses every command inside MULTI)."""
        self.client.eval(redis_scripts.ACK, 1, self.keys.stream, WORKER_GROUP, entry_id)

    def jobs_ahead(self, job_id: str, tenant: str) -> int | None:
        """How many queued jobs will start before ``job_id`` (a snapshot; 0: it is next), by
        the round robin of :meth:`dispatch`; None when it waits in no tenant queue (it is in the
        stream, waiting for a free worker, or no longer queued)."""
        mine = self.client.lpos(self.keys.tenant_queue(tenant), job_id)
        if mine is None:
            return None
        # tenants in turn order (score, then name, as ZRANGE gives them); each is served once
        # per round, so one before this tenant gets `mine + 1` jobs in ahead, one after it
        # `mine`, as far as it has them
        order = [name.decode() for name in self.client.zrange(self.keys.queue_tenants, 0, -1)]
        place = order.index(tenant) if tenant in order else len(order)
        pipe = self.client.pipeline(transaction=False)
        for name in order:
            pipe.llen(self.keys.tenant_queue(name))
        lengths = pipe.execute()
        ahead = sum(
            min(int(length), mine + (1 if index < place else 0))
            for index, (name, length) in enumerate(zip(order, lengths, strict=True))
            if name != tenant
        )
        waiting_in_stream = self.depth_in_stream()
        return mine + ahead + waiting_in_stream

    def depth_in_stream(self) -> int:
        """Entries dispatched to the stream and not yet delivered to a worker (0 or 1)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xlen(self.keys.stream)
        pipe.xpending(self.keys.stream, WORKER_GROUP)
        try:
            length, pending = pipe.execute()
        except redis.ResponseError:  # no consumer group yet
            return 0
        return max(0, int(length) - int(pending["pending"]))

    def depth_by_state(self) -> tuple[int, int]:
        """(waiting for a worker, delivered and not yet acknowledged)."""
        tenants = [t.decode() for t in self.client.zrange(self.keys.queue_tenants, 0, -1)]
        pipe = self.client.pipeline(transaction=False)  # reads; MULTI is refused when full
        pipe.xlen(self.keys.stream)
        pipe.xpending(self.keys.stream, WORKER_GROUP)
        for tenant in tenants:
            pipe.llen(self.keys.tenant_queue(tenant))
        length, pending, *queued = pipe.execute()
        delivered = int(pending["pending"])
        return int(length) - delivered + sum(queued), delivered
