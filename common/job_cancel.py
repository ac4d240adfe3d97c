"""Cancelling a job: a queued one at once, a running one by asking its worker to stop."""

from __future__ import annotations

import json

import redis

from common import redis_scripts
from common.job_blobs import JobBlobs
from common.job_create import now
from common.job_errors import JobConflict, JobNotFound
from common.job_record import JobRecord
from common.keys import JobKind, JobState, Keys
from common.model_store import UnfinishedReport


def unfinished(job_id: str, state: JobState) -> str:
    """Why a published model has no report: its job ended in ``state`` before it."""
    return f"the report was not finished: its job {job_id} was {state.value}"


class JobCancellation(JobBlobs):
    """:meth:`cancel` of :class:`~common.jobs.JobStore` (which provides these attributes)."""

    client: redis.Redis
    keys: Keys
    job_ttl_s: int
    unfinished_report: UnfinishedReport

    def cancel(self, job_id: str) -> str:
        """Cancel a queued job now (its model failed, atomically), or ask a running one to
        stop; the resulting state. One script, allowed even when Redis is full (maxmemory):
        it frees the job's input and changes a few small fields."""
        raw = self.client.hgetall(self.keys.job(job_id))
        if not raw:
            raise JobNotFound(job_id)
        job = JobRecord.from_hash(raw)
        model = (job.model_id or "") if job.kind == JobKind.ADAPT else ""
        keys = [self.keys.job(job_id), self.keys.job_input(job_id), self.keys.job_counts]
        keys.append(self.keys.model(model) if model else keys[0])
        keys += [self.keys.tenant_jobs(job.tenant), self.keys.tenant_queue(job.tenant)]
        keys += [
            self.keys.tenant_job_cell(job.tenant, job.kind, state)
            for state in (JobState.QUEUED, JobState.CANCELLED)
        ]
        keys.append(self.keys.model_report(model) if model else keys[0])
        pending = self.client.get(self.keys.model_report(model)) if model else None
        why = unfinished(job_id, JobState.CANCELLED)
        report, summary = (json.dumps(p) for p in self.unfinished_report(why, pending))
        answer = self.client.eval(
            redis_scripts.CANCEL,
            len(keys),
            *keys,
            now(),
            job.kind.value,
            model and job_id,
            self.job_ttl_s,
            report,
            summary,
        )
        outcome = answer[0].decode()
        if outcome in ("running", "cancelled"):  # the record names neither any more
            self.free_blobs(job_id, [job.input, job.snapshot if outcome == "cancelled" else None])
        if outcome == "missing":
            raise JobNotFound(job_id)
        if outcome == "finished":
            raise JobConflict(f"job {job_id} has already ended: {answer[1].decode()}")
        return outcome
