"""The one owner of adapted models in Redis: records, weights, reports and tenant indexes.

A model is a hash (its record: state, tenant, the job that makes it), its weights, its report,
and an entry in its tenant's index. Every write of them is made here, always with a TTL. The
writes of a job's outcome are queued inside the transaction that finishes the job (JobStore),
and only while the model still exists and belongs to that job: a deleted model stays deleted.

The per-tenant cap: the oldest finished models make room for a new one. An evicted model keeps
a small record (state ``evicted``, when and why) for ``EVICTED_RECORD_TTL_S``, so asking for it
says what happened instead of a bare 404; its weights and report are deleted. Pending models,
and ready models whose report is still being computed, are never evicted while their job's
record exists: a tenant whose cap is all of those must wait.

A model is published (ready, answering predictions) as soon as its adaptation is done; its
report follows from the same job (``report_state`` pending -> done, or unfinished when the job
ends otherwise).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from common.artifacts import ArtifactStore, ArtifactsUnavailable, BlobRef
from common.keys import Keys, ModelState, ReportState
from common.model_blobs import ModelBlobs
from common.model_record import ModelChange, ModelRecord, ModelStatus

logger = logging.getLogger(__name__)
EVICTED_RECORD_TTL_S = 7 * 86400
Pipeline = redis.client.Pipeline


class ModelCapReached(Exception):
    """Every stored model of the tenant is pending or being reported on by a job that still
    exists: none can be evicted."""


# (why, the pending report or None) -> the report and summary of a model whose job ended
# before its report did: models.report.unfinished_report, given by whoever builds the store
UnfinishedReport = Callable[[str, bytes | None], tuple[dict[str, Any], dict[str, Any]]]


@dataclass(frozen=True)
class ModelStore(ModelBlobs):
    client: redis.Redis
    keys: Keys
    model_ttl_s: int
    artifacts: ArtifactStore  # where the weights are (common.artifacts)

    # reads (each a command Redis serves even when it is full)

    def get(self, model_id: str, tenant: str) -> ModelRecord | None:
        """The record; None when absent or another tenant's (callers answer both alike)."""
        raw = self.client.hgetall(self.keys.model(model_id))
        record = ModelRecord.from_hash(raw) if raw else None
        return record if record is not None and record.tenant == tenant else None

    def owned_state(self, model_id: str, job_id: str) -> ModelState | None:
        """The model's state while it exists and is made by ``job_id``, else None."""
        return self._status(self.client, model_id).state_if_made_by(job_id)

    def _status(self, reader: redis.Redis | Pipeline, model_id: str) -> ModelStatus:
        return ModelStatus.from_values(reader.hmget(self.keys.model(model_id), ModelStatus.FIELDS))

    def page(self, tenant: str, offset: int, limit: int) -> tuple[list[ModelRecord], int]:
        """Records of the tenant, newest first, and how many it has; expired ones leave the
        index (ZREM is allowed even when Redis is full)."""
        index = self.keys.models_index(tenant)
        records = []
        for raw_id in self.client.zrevrange(index, offset, offset + limit - 1):
            raw = self.client.hgetall(self.keys.model(raw_id.decode()))
            if raw:
                records.append(ModelRecord.from_hash(raw))
            else:
                self.client.zrem(index, raw_id)
        return records, int(self.client.zcard(index))

    # inside a caller's transaction: reads in immediate mode after WATCH, writes after MULTI

    def plan_room(self, pipe: Pipeline, tenant: str, cap: int) -> tuple[list[str], list[str]]:
        """(models to evict, expired index entries) so that one more model fits under ``cap``.
        Read after WATCH of the tenant's index, so the plan holds when the writes apply."""
        index = self.keys.models_index(tenant)
        excess = int(pipe.zcard(index)) - cap + 1
        victims: list[str] = []
        expired: list[str] = []
        for raw_id in pipe.zrange(index, 0, -1) if excess > 0 else []:
            if len(victims) >= excess:
                break
            model_id = raw_id.decode()
            pipe.watch(self.keys.model(model_id))  # a delete or change meanwhile: plan again
            status = self._status(pipe, model_id)
            if status.state is None:  # expired already: only the index entry is left
                expired.append(model_id)
                excess -= 1
            elif not self._awaited(pipe, status):
                victims.append(model_id)
        if excess > len(victims):
            raise ModelCapReached(
                f"tenant {tenant!r} has reached its limit of models ({cap}) and all are still "
                "being adapted or reported on; wait for one to finish or delete one"
            )
        return victims, expired

    def _awaited(self, pipe: Pipeline, status: ModelStatus) -> bool:
        """A job still makes this model or its report. A job whose record is gone (expired
        or lost) never will, so its model does not hold a slot of the cap."""
        if not status.awaits_a_job:
            return False
        return status.job_id is not None and bool(pipe.exists(self.keys.job(status.job_id)))

    def create_writes(self, pipe: Pipeline, record: ModelRecord) -> None:
        """The model (pending, made by its job), in its tenant's index."""
        pipe.hset(self.keys.model(record.id), mapping=record.fields())
        pipe.expire(self.keys.model(record.id), self.model_ttl_s)
        pipe.zadd(self.keys.models_index(record.tenant), {record.id: record.created})

    def evict_writes(
        self, pipe: Pipeline, tenant: str, victims: list[str], expired: list[str], cap: int
    ) -> None:
        for model_id in victims:  # their blobs, named no more, go with the next sweep
            pipe.delete(self.keys.model_weights(model_id), self.keys.model_report(model_id))
            pipe.hdel(self.keys.model(model_id), "weights", "report_blob", "report_chart")
            evicted = ModelChange(
                state=ModelState.EVICTED,
                evicted=round(time.time(), 3),
                evicted_reason=f"evicted to keep the tenant within its limit of models ({cap}; "
                "the oldest go first among those no job is still making)",
            )
            pipe.hset(self.keys.model(model_id), mapping=evicted.fields())
            pipe.expire(self.keys.model(model_id), EVICTED_RECORD_TTL_S)
        for model_id in victims + expired:
            pipe.zrem(self.keys.models_index(tenant), model_id)

    def owned_by(self, pipe: Pipeline, model_id: str, job_id: str) -> ModelState | None:
        """WATCH the record; its state while it exists and is made by ``job_id``, else None."""
        pipe.watch(self.keys.model(model_id))
        return self._status(pipe, model_id).state_if_made_by(job_id)

    def published_writes(
        self,
        pipe: Pipeline,
        model_id: str,
        weights: BlobRef,
        report: dict | BlobRef,
        summary: dict,
        *,
        done: bool = False,
    ) -> None:
        """Ready: it answers predictions, with ``weights`` (:meth:`put_weights`, stored
        before). Its report is pending until :meth:`report_writes`, unless ``done``
        (published with its finished report)."""
        state = ReportState.DONE if done else ReportState.PENDING
        self._report_writes(pipe, model_id, report, summary, state)
        change = ModelChange(state=ModelState.READY, weights=weights)
        pipe.hset(self.keys.model(model_id), mapping=change.fields())

    def report_writes(
        self, pipe: Pipeline, model_id: str, report: dict | BlobRef, summary: dict
    ) -> None:
        """The finished report of a published model (a blob, :meth:`put_report`)."""
        self._report_writes(pipe, model_id, report, summary, ReportState.DONE)

    def plan_unfinished(
        self, pipe: Pipeline, model_id: str, why: str, unfinished_report: UnfinishedReport
    ) -> Callable[[Pipeline, str], None]:
        """The writes (pipe, model id) for a published model whose job ended (cancelled,
        failed) before its report did. Reads its pending report now: after WATCH, before
        MULTI."""
        report, summary = unfinished_report(why, pipe.get(self.keys.model_report(model_id)))

        def writes(pipe: Pipeline, _: str) -> None:
            self._report_writes(pipe, model_id, report, summary, ReportState.UNFINISHED)

        return writes

    def _report_writes(
        self,
        pipe: Pipeline,
        model_id: str,
        report: dict | BlobRef,
        summary: dict,
        state: ReportState,
    ) -> None:
        """A report in Redis (a dict: pending or unfinished, a few hundred bytes) or named as
        a blob (a finished report, stored before)."""
        ttl = self.model_ttl_s
        blob = report if isinstance(report, BlobRef) else None
        if blob is None:
            pipe.set(self.keys.model_report(model_id), json.dumps(report), ex=ttl)
        else:
            pipe.delete(self.keys.model_report(model_id))
        pipe.expire(self.keys.model_weights(model_id), ttl)
        change = ModelChange(report_state=state, report_summary=summary, report_blob=blob)
        pipe.hset(self.keys.model(model_id), mapping=change.fields())
        pipe.expire(self.keys.model(model_id), ttl)

    def failed_writes(self, pipe: Pipeline, model_id: str) -> None:
        self._state_writes(pipe, model_id, ModelState.FAILED)

    def cancelled_writes(self, pipe: Pipeline, model_id: str) -> None:
        self._state_writes(pipe, model_id, ModelState.CANCELLED)

    def _state_writes(self, pipe: Pipeline, model_id: str, state: ModelState) -> None:
        pipe.hset(self.keys.model(model_id), mapping=ModelChange(state=state).fields())

    # on its own

    def delete(self, model_id: str, tenant: str) -> ModelRecord | None:
        """Delete the model; its record as it was (None when absent or another tenant's).
        Plain DEL and ZREM, no MULTI: Redis allows them even when it is full, and in this
        order a failure between them leaves only an index entry that :meth:`page` drops."""
        record = self.get(model_id, tenant)
        if record is None:
            return None
        keys = self.keys
        self.client.delete(
            keys.model(model_id), keys.model_weights(model_id), keys.model_report(model_id)
        )
        self.client.zrem(keys.models_index(tenant), model_id)
        named = (record.weights, record.report_blob, record.report_chart)
        blobs = [ref.name for ref in named if ref is not None]
        if blobs:  # named no more: a store that is down leaves them to
            try:  # the sweep, which deletes what no record names
                self.artifacts.delete(blobs)
            except ArtifactsUnavailable as error:
                logger.warning("weights of deleted model %s left to the sweep: %s", model_id, error)
        return record
