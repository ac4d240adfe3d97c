"""The blobs of a job (its input, a meta-training's snapshot, an evaluation's result) as its
record names them: stored before the record names them, read back checked, freed when the job
no longer needs them, and what the sweep must keep. Part of :class:`~common.jobs.JobStore`, the
one owner of job records.

Every blob of a job lives in the artifact store's folder ``jobs/<job id>/``: the input until the
job finishes, the snapshot until it finishes, the result as long as the job's record. A job of
an earlier version whose input or result is a Redis key is served from there.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

from common.artifacts import ArtifactStore, ArtifactStoreError, BlobRef, blob_or_none
from common.job_errors import Superseded
from common.job_record import JobChange, JobRecord
from common.keys import JobState, Keys

logger = logging.getLogger(__name__)
JOBS_FOLDER = "jobs"  # the artifact store's folder of jobs' blobs, one folder a job
Pipeline = redis.client.Pipeline


def job_folder(job_id: str) -> str:
    return f"{JOBS_FOLDER}/{job_id}"


class JobBlobs:
    """:class:`~common.jobs.JobStore`'s blobs (which provides these attributes)."""

    client: redis.Redis
    keys: Keys
    artifacts: ArtifactStore

    def put_input(self, job_id: str, payload: bytes) -> BlobRef:
        """Store a new job's input, before its record names it (ArtifactsUnavailable)."""
        return self.artifacts.put(job_folder(job_id), payload, ".input")

    def input(self, job: JobRecord) -> bytes | None:
        """The job's input (None: it finished, expired or was cancelled), checked against
        its record (ArtifactMissing, ArtifactCorrupt, ArtifactsUnavailable)."""
        if job.input is not None:
            return self.artifacts.get(job.input)
        return self.client.get(self.keys.job_input(job.id))  # an earlier version's

    def put_result(self, job_id: str, result: dict[str, Any]) -> BlobRef:
        """Store an evaluation's result, before the job's success names it."""
        return self.artifacts.put(job_folder(job_id), json.dumps(result).encode(), ".result.json")

    def result_writes(self, pipe: Pipeline, job_id: str, result: BlobRef) -> None:
        """Name the result in the transaction that finishes the job."""
        pipe.hset(self.keys.job(job_id), mapping=JobChange(result=result).fields())

    def result(self, job: JobRecord) -> dict[str, Any] | None:
        """An evaluation's result (None: none), checked against its record."""
        if job.result is not None:
            return json.loads(self.artifacts.get(job.result))
        raw = self.client.get(self.keys.job_result(job.id))  # an earlier version's
        return None if raw is None else json.loads(raw)

    def snapshot(self, job: JobRecord) -> bytes | None:
        """A meta-training's latest snapshot (None: none yet)."""
        if job.snapshot is not None:
            return self.artifacts.get(job.snapshot)
        return self.client.get(self.keys.job_snapshot(job.id))  # an earlier version's

    def keep_snapshot(self, job_id: str, attempt: int, data: bytes) -> None:
        """Store a meta-training's snapshot and name it on the record while ``attempt`` is the
        job's running one (Superseded otherwise: the blob is left to the sweep); the snapshot
        it replaces is deleted once no longer named."""
        ref = self.artifacts.put(job_folder(job_id), data, ".snapshot")
        key = self.keys.job(job_id)
        replaced: list[BlobRef] = []

        def apply(pipe: Pipeline) -> None:
            raw = pipe.hgetall(key)
            job = JobRecord.from_hash(raw) if raw else None
            if job is None or job.attempt != attempt or job.state != JobState.RUNNING:
                raise Superseded(job_id)
            replaced[:] = [job.snapshot] if job.snapshot not in (None, ref) else []
            pipe.multi()
            pipe.hset(key, mapping=JobChange(snapshot=ref).fields())
            pipe.delete(self.keys.job_snapshot(job_id))  # an earlier version's

        self.client.transaction(apply, key)
        self.free_blobs(job_id, replaced)

    def spent_writes(self, pipe: Pipeline, job: JobRecord) -> None:
        """Inside a finishing transaction: the record no longer names its input and snapshot
        (freed by :meth:`free_blobs` once the transaction is applied)."""
        pipe.hdel(self.keys.job(job.id), "input", "snapshot")
        pipe.delete(self.keys.job_input(job.id), self.keys.job_snapshot(job.id))

    def free_blobs(self, job_id: str, refs: list[BlobRef | None]) -> None:
        """Delete blobs the job's record no longer names; a store that refuses leaves them to
        the sweep (logged)."""
        names = [ref.name for ref in refs if ref is not None]
        if not names:
            return
        try:
            self.artifacts.delete(names)
        except ArtifactStoreError as error:
            logger.warning("job %s: %d blob(s) left to the sweep: %s", job_id, len(names), error)

    def kept_job_blobs(self, names: list[str]) -> set[str]:
        """Which of these blob names (``jobs/<id>/...``) the sweep must keep: those a job's
        record names (a finished job's record names its result only)."""
        ids = [name.split("/")[1] if name.count("/") == 2 else "" for name in names]
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(self.keys.job(job_id), ["input", "snapshot", "result"])
        kept = set()
        for name, values in zip(names, pipe.execute(), strict=True):
            refs = [blob_or_none(None if value is None else value.decode()) for value in values]
            if name in {ref.name for ref in refs if ref is not None}:
                kept.add(name)
        return kept
