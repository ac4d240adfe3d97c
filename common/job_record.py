"""The job record: the one description of a job's hash (``Keys.job``), its fields typed and its
states as enums, read from Redis and written back in the same encoding.

The stores (:mod:`common.jobs`, :mod:`common.job_create`, :mod:`common.job_index`) read a hash
with :meth:`JobRecord.from_hash`, write a new job with :meth:`JobRecord.fields` and a change of
one with :meth:`JobChange.fields`; everything else reads attributes. Fields a record may lack (a
record of an earlier version, a field its job has not reached yet) get their fallback here and
only here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from common.artifacts import BlobRef, blob_or_none
from common.hash_codec import Fields, RawHash, decoded, encoded, json_or_none, moment
from common.job_errors import MODEL_DELETED, JobNotFound
from common.keys import JobKind, JobState


@dataclass(frozen=True)
class JobRecord:
    """A job: what it does, for whom, and where its current attempt stands."""

    id: str
    kind: JobKind
    state: JobState
    tenant: str = ""
    created: float | None = None  # unix seconds
    base_model: str = ""  # adapts or evaluates with it; a meta-training makes it
    settings: str = ""  # JSON of its settings (models.service: AdaptJob, EvaluateJob, ...)
    model_id: str | None = None  # the model an adaptation makes or an evaluation measures
    request_id: str = ""  # the request that made it: the worker logs under the same id
    attempt: int = 0  # how many times a worker started it
    step: int = 0
    total: int = 0  # 0 until the worker knows the job's size
    cancel_requested: bool = False
    worker: str | None = None  # the current attempt's worker ("" once it gave the job back)
    started: float | None = None  # the current attempt's start
    phase: str | None = None  # what the job is doing, in words
    finished: float | None = None
    model_ready: float | None = None  # when an adaptation published its model
    error: dict[str, str] | None = None  # code and message, when it failed or was stopped
    # its blobs in the artifact store (common.job_blobs); None: none, or an earlier version's
    # job whose input or result is a Redis key
    input: BlobRef | None = None  # the images it works on, until it finishes
    snapshot: BlobRef | None = None  # a meta-training's latest snapshot, until it finishes
    result: BlobRef | None = None  # an evaluation's report, once succeeded

    @classmethod
    def from_hash(cls, raw: RawHash) -> JobRecord:
        """The record a job's hash holds; JobNotFound when it lacks id, kind or state (a
        hash a late write left behind after the record expired is no job)."""
        text = decoded(raw)
        if not {"id", "kind", "state"} <= text.keys():
            raise JobNotFound(text.get("id", "(no id)"))
        return cls(
            id=text["id"],
            kind=JobKind(text["kind"]),
            state=JobState(text["state"]),
            tenant=text.get("tenant", ""),
            created=moment(text.get("created")),
            base_model=text.get("base_model", ""),
            settings=text.get("settings", ""),
            model_id=text.get("model_id"),
            request_id=text.get("request_id", ""),
            attempt=int(text.get("attempt", 0)),
            step=int(text.get("step", 0)),
            total=int(text.get("total", 0)),
            cancel_requested=text.get("cancel_requested") == "1",
            worker=text.get("worker"),
            started=moment(text.get("started")),
            phase=text.get("phase"),
            finished=moment(text.get("finished")),
            model_ready=moment(text.get("model_ready")),
            error=json_or_none(text.get("error")),
            input=blob_or_none(text.get("input")),
            snapshot=blob_or_none(text.get("snapshot")),
            result=blob_or_none(text.get("result")),
        )

    def fields(self) -> Fields:
        """The hash that stores this record."""
        return encoded(asdict(self))

    @property
    def published(self) -> bool:
        """An adaptation whose model answers predictions (published while the job goes on, or
        the job succeeded); not one that ended because its model was deleted."""
        if self.kind != JobKind.ADAPT or self.error_code == MODEL_DELETED["code"]:
            return False
        return self.state == JobState.SUCCEEDED or bool(self.model_ready)

    @property
    def error_code(self) -> str | None:
        return None if self.error is None else self.error.get("code")

    @property
    def run_seconds(self) -> float | None:
        """How long its last attempt ran, once finished."""
        if not self.started or not self.finished:
            return None
        return round(self.finished - self.started, 3)


@dataclass(frozen=True)
class JobChange:
    """What a transition (or a progress report) writes of a job; None: left as it is."""

    state: JobState | None = None
    attempt: int | None = None
    worker: str | None = None
    started: float | None = None
    step: int | None = None
    total: int | None = None
    phase: str | None = None
    finished: float | None = None
    model_ready: float | None = None
    error: dict[str, str] | None = None
    snapshot: BlobRef | None = None
    result: BlobRef | None = None

    def fields(self) -> Fields:
        return encoded(asdict(self))
