"""A tenant's base-model record: the one description of what ``keys.base_models(tenant)``
holds for a name (JSON), its states, read from Redis and written back in the same encoding,
fields a newer version wrote kept as they were."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from common.artifacts import BlobRef, blob_or_none
from common.keys import JobState


class BaseModelState(StrEnum):
    """A tenant base model's state: stored (training, ready) or shown (all four)."""

    TRAINING = "training"
    READY = "ready"
    FAILED = "failed"  # shown: its job failed, or the job's record expired
    CANCELLED = "cancelled"  # shown: its job was cancelled


@dataclass(frozen=True)
class TenantBaseModel:
    """One of a tenant's base models as stored; fields that are None are not written."""

    name: str
    state: BaseModelState
    job_id: str  # the meta-training job that makes it: a re-created name is another model
    created: float | None = None  # unix seconds
    classes: int | None = None  # in the uploaded archive
    images: int | None = None
    settings: dict[str, Any] | None = None  # the job's settings but the class split
    validation: list[dict[str, Any]] | None = None  # the latest validation, while it trains
    metrics: dict[str, Any] | None = None  # once ready: its test on unseen classes
    weights: BlobRef | None = None  # once ready: its blob (None: an earlier version's, in Redis)
    # fields a newer version wrote: kept as they were when this version writes the record back
    unknown: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)

    @classmethod
    def training(
        cls, name: str, job_id: str, classes: int, images: int, settings: dict[str, Any]
    ) -> TenantBaseModel:
        """The record written with the job that trains it."""
        return cls(
            name,
            BaseModelState.TRAINING,
            job_id,
            created=time.time(),
            classes=classes,
            images=images,
            settings=settings,
        )

    @classmethod
    def from_json(cls, text: bytes | str) -> TenantBaseModel:
        """A stored record; fields this version does not know are kept aside, unread."""
        stored = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)} - {"unknown"}
        fields = {k: v for k, v in stored.items() if k in known}
        unknown = {k: v for k, v in stored.items() if k not in known}
        state = BaseModelState(stored["state"])
        weights = blob_or_none(json.dumps(stored["weights"])) if "weights" in stored else None
        return cls(**(fields | {"state": state, "weights": weights, "unknown": unknown}))

    def to_dict(self) -> dict[str, Any]:
        """The stored fields (what the API lists of the record), unknown ones included."""
        own = dataclasses.asdict(self)
        own.pop("unknown")
        return self.unknown | {k: v for k, v in own.items() if v is not None}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def ready(
        self, metrics: dict[str, Any], validation: list[dict[str, Any]], weights: BlobRef
    ) -> TenantBaseModel:
        """This record once its job has succeeded and stored its ``weights``."""
        return dataclasses.replace(
            self,
            state=BaseModelState.READY,
            metrics=metrics,
            validation=validation,
            weights=weights,
        )

    def shown(self) -> dict[str, Any]:
        """What a tenant sees of the record: where its weights lie is the service's business."""
        return {k: v for k, v in self.to_dict().items() if k != "weights"}

    def shown_state(self, job_state: JobState | None) -> BaseModelState:
        """The state to show, given its job's (None: the job's record is gone): a record still
        training shows how its job ended."""
        if self.state != BaseModelState.TRAINING:
            return self.state
        if job_state in (JobState.QUEUED, JobState.RUNNING):
            return BaseModelState.TRAINING
        if job_state == JobState.SUCCEEDED:  # read between the job's end and this record's:
            return BaseModelState.TRAINING  # not usable until the record itself is ready
        if job_state == JobState.CANCELLED:
            return BaseModelState.CANCELLED
        return BaseModelState.FAILED

    def cache_key(self, tenant: str) -> str:
        """Its decoded weights' key in a cache (a re-created name is another model)."""
        return f"{tenant}/{self.name}/{self.job_id}"
