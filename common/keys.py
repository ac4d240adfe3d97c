"""Every Redis key name and every job state. Nothing else spells a key."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import StrEnum

ID_HEX_DIGITS = 20  # ids are "<kind>_<20 hex digits>", e.g. model_0123456789abcdef0123


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EVICTED = "evicted"  # removed to keep its tenant under the model cap; the record says why
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class JobKind(StrEnum):
    ADAPT = "adapt"  # adapt a base model to a support set; makes a model
    EVALUATE = "evaluate"  # robustness report of a model on labelled images
    META_TRAIN = "meta_train"  # meta-train a tenant's own base model on its uploaded classes


class ModelState(StrEnum):
    PENDING = "pending"  # its adaptation job has not succeeded yet
    READY = "ready"
    FAILED = "failed"
    EVICTED = "evicted"  # removed to keep its tenant under the model cap; the record says why
    CANCELLED = "cancelled"  # its adaptation job was cancelled


class ReportState(StrEnum):
    """A ready model's report: the model is published (and answers predictions) before it."""

    PENDING = "pending"  # its adaptation job is still computing it
    DONE = "done"  # written (possibly an unavailable report that says why)
    UNFINISHED = "unfinished"  # its job was cancelled or failed after publishing the model


WORKER_GROUP = "workers"  # the stream's consumer group


def new_id(kind: str) -> str:
    """A fresh id of ``kind`` (job, model)."""
    return f"{kind}_{uuid.uuid4().hex[:ID_HEX_DIGITS]}"


def is_id(kind: str, text: str) -> bool:
    """Whether ``text`` has the form of an id of ``kind``; checked before it names a key."""
    return re.fullmatch(rf"{kind}_[0-9a-f]{{{ID_HEX_DIGITS}}}", text) is not None


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix (tests use a prefix of their own)."""

    prefix: str

    @property
    def stream(self) -> str:
        return f"{self.prefix}:jobs:stream"

    def tenant_queue(self, tenant: str) -> str:
        return f"{self.prefix}:tenant:{tenant}:queue"  # list: its job ids not yet dispatched

    @property
    def queue_tenants(self) -> str:
        return f"{self.prefix}:jobs:tenants"  # sorted set: tenant with queued jobs -> its turn

    @property
    def queue_turns(self) -> str:
        return f"{self.prefix}:jobs:turns"  # int: turns given so far (round-robin clock)

    @property
    def queue_last_turns(self) -> str:
        return f"{self.prefix}:jobs:last-turns"  # hash: tenant -> the turn it was last served

    def tenant_jobs(self, tenant: str) -> str:
        return f"{self.prefix}:tenant:{tenant}:jobs"  # set: ids of its queued and running jobs

    def tenant_job_cell(self, tenant: str, kind: str, state: str) -> str:
        # sorted set: its job ids of that kind in that state -> created (common.job_index)
        return f"{self.prefix}:tenant:{tenant}:jobs:{kind}:{state}"

    def models_index(self, tenant: str) -> str:
        return f"{self.prefix}:tenant:{tenant}:models"  # sorted set: model id -> created (unix s)

    @property
    def api_keys(self) -> str:
        return f"{self.prefix}:apikeys"  # hash: key id -> SHA-256 of the secret token

    def api_key(self, token_sha256: str) -> str:
        return f"{self.prefix}:apikey:{token_sha256}"  # hash: key id, tenant, name, created

    def rate(self, key_id: str, action: str, window: int) -> str:
        return f"{self.prefix}:rate:{key_id}:{action}:{window}"  # int: requests in the window

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"  # sorted set: worker name -> last heartbeat (unix s)

    @property
    def artifact_sweep_lease(self) -> str:
        return f"{self.prefix}:artifacts:sweep-lease"  # string: the worker sweeping (PX lease)

    @property
    def job_counts(self) -> str:
        return f"{self.prefix}:metrics:jobs"  # hash: "kind:state" -> jobs that entered it

    def job_seconds(self, kind: str) -> str:
        return f"{self.prefix}:metrics:seconds:{kind}"  # hash: a histogram of job run times

    def idempotency(self, tenant: str, digest: str) -> str:
        return f"{self.prefix}:tenant:{tenant}:idempotency:{digest}"  # JSON: request -> answer

    def job_recent_seconds(self, kind: str) -> str:
        return f"{self.prefix}:metrics:recent:{kind}"  # list: the last run times, newest first

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"  # hash: the job record

    def job_input(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:input"  # bytes: images + labels (safetensors)

    def job_result(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:result"  # JSON: an evaluation's report

    def job_snapshot(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:snapshot"  # bytes: a meta-training run to resume

    def base_models(self, tenant: str) -> str:
        return f"{self.prefix}:tenant:{tenant}:base-models"  # hash: name -> JSON record

    def base_model(self, tenant: str, name: str) -> str:
        # bytes: weights + card, as an earlier version kept them (now a blob the record names)
        return f"{self.prefix}:tenant:{tenant}:base-model:{name}"

    def base_model_of(self, key: str) -> tuple[str, str] | None:
        """(tenant, name) of a :meth:`base_model` key; None for another key."""
        head = f"{self.prefix}:tenant:"
        tenant, marker, name = key.removeprefix(head).partition(":base-model:")
        if not key.startswith(head) or not marker or ":" in tenant or not name:
            return None
        return tenant, name

    def model(self, model_id: str) -> str:
        return f"{self.prefix}:model:{model_id}"  # hash: the model record

    def model_weights(self, model_id: str) -> str:
        return f"{self.prefix}:model:{model_id}:weights"  # bytes: safetensors

    def model_report(self, model_id: str) -> str:
        return f"{self.prefix}:model:{model_id}:report"  # JSON: the robustness report
