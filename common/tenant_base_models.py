"""Base models a tenant meta-trained on its own classes: records, weights, lookup.

A record (``keys.base_models(tenant)``, name -> JSON) is written with the meta-training job
that makes it, in the same transaction; the job stores the weights in the artifact store
(``base-models/t-<tenant>/<name>/``), then its success names them and marks the record ready, in
the transaction that finishes the job. A record still ``training`` whose job
failed, was cancelled or expired is shown with that job's state. Shipped base models and a
tenant's own share one namespace: a tenant cannot take a shipped name.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis

from common.artifacts import ArtifactStore, ArtifactStoreError, BlobRef, blob_or_none
from common.keys import JobState, Keys
from common.lru import LruCache

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{1,39}")
BASES_FOLDER = "base-models"  # the artifact store's folder of tenants' base models
logger = logging.getLogger(__name__)


class BaseModelNameTaken(Exception):
    pass


class BaseModelUnavailable(LookupError):
    """No shipped base model and no ready one of the tenant's has that name."""


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


def blob_folder(tenant: str, name: str) -> str:
    """Its blobs' folder (``t-``: a tenant named "." or ".." is no path step)."""
    return f"{BASES_FOLDER}/t-{tenant}/{name}"


@dataclass(frozen=True)
class TenantBaseModels:
    client: redis.Redis
    keys: Keys
    artifacts: ArtifactStore

    def records(self, tenant: str) -> list[TenantBaseModel]:
        raw = self.client.hgetall(self.keys.base_models(tenant))
        return sorted((TenantBaseModel.from_json(v) for v in raw.values()), key=lambda r: r.name)

    def record(self, tenant: str, name: str) -> TenantBaseModel | None:
        raw = self.client.hget(self.keys.base_models(tenant), name)
        return None if raw is None else TenantBaseModel.from_json(raw)

    def check_free(self, pipe: redis.client.Pipeline, tenant: str, name: str, cap: int) -> None:
        """Raise BaseModelNameTaken or ValueError (cap) while ``pipe`` WATCHes the records."""
        key = self.keys.base_models(tenant)
        if pipe.hexists(key, name):
            raise BaseModelNameTaken(f"you already have a base model named {name!r}")
        if pipe.hlen(key) >= cap:
            raise ValueError(f"you have reached the limit of base models ({cap}): delete one first")

    def create_writes(
        self, pipe: redis.client.Pipeline, tenant: str, record: TenantBaseModel
    ) -> None:
        pipe.hset(self.keys.base_models(tenant), record.name, record.to_json())

    def show_validation(
        self, tenant: str, name: str, job_id: str, validation: list[dict[str, Any]]
    ) -> bool:
        """Show the latest ``validation`` on the record that ``job_id`` trains for; False
        (nothing written) when the tenant deleted it (checked under WATCH: a deleted record
        is never revived)."""
        key = self.keys.base_models(tenant)
        written = [False]

        def apply(pipe: redis.client.Pipeline) -> None:
            raw = pipe.hget(key, name)
            current = None if raw is None else TenantBaseModel.from_json(raw)
            if current is None or current.job_id != job_id:
                return
            pipe.multi()
            updated = dataclasses.replace(current, validation=validation)
            pipe.hset(key, name, updated.to_json())
            written[0] = True

        self.client.transaction(apply, key)
        return written[0]

    def put_weights(self, tenant: str, name: str, blob: bytes) -> BlobRef:
        """Store a trained base model, before its ready record names it."""
        return self.artifacts.put(blob_folder(tenant, name), blob, ".safetensors")

    def ready_writes(
        self, pipe: redis.client.Pipeline, tenant: str, record: TenantBaseModel
    ) -> None:
        """Name its weights (stored by :meth:`put_weights`) and mark it ready."""
        pipe.hset(self.keys.base_models(tenant), record.name, record.to_json())

    def weights(self, tenant: str, record: TenantBaseModel) -> bytes | None:
        """Its weights, checked against the record (None: an earlier version's, gone)."""
        if record.weights is not None:
            return self.artifacts.get(record.weights)
        return self.client.get(self.keys.base_model(tenant, record.name))

    def delete(self, tenant: str, name: str) -> TenantBaseModel | None:
        record = self.record(tenant, name)
        if record is None:
            return None
        pipe = self.client.pipeline()
        pipe.hdel(self.keys.base_models(tenant), name)
        pipe.delete(self.keys.base_model(tenant, name))
        pipe.execute()
        if record.weights is not None:
            try:
                self.artifacts.delete([record.weights.name])
            except ArtifactStoreError as error:
                logger.warning(
                    "base model %s/%s: weights left to the sweep: %s", tenant, name, error
                )
        return record

    def kept_blobs(self, names: list[str]) -> set[str]:
        """Which of these blob names (``base-models/t-<tenant>/<name>/...``) the sweep must
        keep: those a record names, and those of a record still training (its job stored them
        and names them when it ends)."""
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            parts = name.split("/")
            tenant = parts[1][2:] if len(parts) == 4 and parts[1].startswith("t-") else ""
            pipe.hget(self.keys.base_models(tenant), parts[2] if tenant else "")
        kept = set()
        for name, raw in zip(names, pipe.execute(), strict=True):
            record = None if raw is None else TenantBaseModel.from_json(raw)
            if record is None:
                continue
            named = record.weights is not None and record.weights.name == name
            if named or record.state == BaseModelState.TRAINING:
                kept.add(name)
        return kept


@dataclass(frozen=True)
class BaseModelResolver:
    """Base models by name for a tenant: a shipped one (``shipped``: models.service.base_models
    BaseModels), else the tenant's own ready one, ``decode(name, stored bytes)``-d once and kept
    in ``cache`` (keyed by its training job: a re-created name is another model)."""

    shipped: Any
    store: TenantBaseModels
    decode: Callable[[str, bytes], Any]
    cache: LruCache

    def get(self, tenant: str, name: str | None) -> Any:
        if name is None or name in self.shipped.by_name:
            return self.shipped.get(name)
        record = self.store.record(tenant, name)
        if record is None or record.state != BaseModelState.READY:
            known = sorted(self.shipped.by_name) + [r.name for r in self.store.records(tenant)]
            state = "" if record is None else f" (it is {record.state})"
            raise BaseModelUnavailable(
                f"no ready base model {name!r}{state}; known: {', '.join(known)}"
            )
        key = record.cache_key(tenant)
        loaded = self.cache.get(key)
        if loaded is None:
            blob = self.store.weights(tenant, record)
            if blob is None:
                raise BaseModelUnavailable(
                    f"the weights of base model {name!r} are gone; train it again"
                )
            loaded = self.decode(name, blob)
            self.cache.put(key, loaded)
        return loaded

    def forget(self, tenant: str, record: TenantBaseModel) -> None:
        """Drop ``record``'s decoded weights (it was deleted)."""
        self.cache.drop(record.cache_key(tenant))
