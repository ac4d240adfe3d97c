"""Every job of a tenant, by kind and state, for ``GET /v1/jobs``: one sorted set (job id ->
created) per (tenant, kind, state) cell, written in the transaction that changes the state.

A job sits in exactly one cell. Job records expire ``job_ttl_s`` after creation; reads drop
the ids older than that (and any whose record is gone), so the cells never outgrow the live
jobs. A page merges the newest ids of the matching cells (at most 3 kinds x 5 states).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis

from common.job_errors import JobNotFound
from common.job_record import JobRecord
from common.keys import JobKind, JobState, Keys

LISTED_STATES = tuple(s for s in JobState if s != JobState.EVICTED)  # jobs are never evicted
MAX_OFFSET = 10_000  # a page costs cells x (offset + limit) reads: deeper pages are refused


@dataclass(frozen=True)
class JobIndex:
    client: redis.Redis
    keys: Keys
    job_ttl_s: int

    def cell(self, tenant: str, kind: str, state: str) -> str:
        return self.keys.tenant_job_cell(tenant, kind, state)

    def move_writes(
        self,
        pipe: redis.client.Pipeline,
        job: JobRecord,
        new_state: JobState,
        old_state: JobState | None = None,
    ) -> None:
        """File ``job`` under ``new_state`` (and out of ``old_state``), inside the caller's
        MULTI."""
        if old_state is not None:
            pipe.zrem(self.cell(job.tenant, job.kind, old_state), job.id)
        target = self.cell(job.tenant, job.kind, new_state)
        pipe.zadd(target, {job.id: float(job.created or 0.0)})
        pipe.expire(target, self.job_ttl_s)

    def page(
        self,
        tenant: str,
        *,
        offset: int,
        limit: int,
        kinds: Iterable[str] = tuple(JobKind),
        states: Iterable[str] = LISTED_STATES,
    ) -> tuple[list[JobRecord], int]:
        """The tenant's jobs of those kinds and states, newest first: one page of records and
        the total."""
        cells = [self.cell(tenant, kind, state) for kind in kinds for state in states]
        oldest_live = time.time() - self.job_ttl_s
        pipe = self.client.pipeline()  # one MULTI: a job moving between cells is seen once
        for cell in cells:
            pipe.zremrangebyscore(cell, "-inf", f"({oldest_live}")
        for cell in cells:
            pipe.zcard(cell)
        for cell in cells:
            pipe.zrevrange(cell, 0, offset + limit - 1, withscores=True)
        answers = pipe.execute()
        total = sum(answers[len(cells) : 2 * len(cells)])
        newest = heapq.merge(
            *(
                [(-score, member.decode(), cell) for member, score in ranked]
                for ranked, cell in zip(answers[2 * len(cells) :], cells, strict=True)
            )
        )
        chosen = list(newest)[offset : offset + limit]
        pipe = self.client.pipeline(transaction=False)
        for _, job_id, _ in chosen:
            pipe.hgetall(self.keys.job(job_id))
        records = []
        for (_, job_id, cell), raw in zip(chosen, pipe.execute(), strict=True):
            try:
                records.append(JobRecord.from_hash(raw))
            except JobNotFound:  # deleted or expired early (or a stray write): unlist it
                self.client.zrem(cell, job_id)
                total -= 1
        return records, total
