"""The model record: the one description of an adapted model's hash (``Keys.model``), its
fields typed and its states as enums, read from Redis and written back in the same encoding.

:class:`~common.model_store.ModelStore` reads a hash with :meth:`ModelRecord.from_hash` and
writes a new model with :meth:`ModelRecord.fields`; the API's view of a model is built from
the record (``app.schemas.responses.Model.from_record``). Fields a record may lack (records of
an earlier version, fields a model has not reached yet) get their fallback here and only here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar

from common.artifacts import BlobRef, blob_or_none
from common.hash_codec import Fields, RawHash, decoded, encoded, json_or_none, moment
from common.keys import ModelState, ReportState


@dataclass(frozen=True)
class ModelRecord:
    """An adapted model: what it was adapted from and on, its state and its report's."""

    id: str
    tenant: str
    state: ModelState
    created: float  # unix seconds
    base_model: str
    classes: tuple[str, ...]  # its labels, in the order of its outputs
    settings: str  # JSON of the adaptation's settings (models.service.AdaptJob)
    job_id: str | None = None  # the adaptation job that makes it
    name: str = ""
    description: str = ""
    support_size: int = 0  # support images it was adapted on
    validation_size: int = 0  # validation images its report was measured on
    warnings: tuple[str, ...] = ()  # e.g. out-of-domain images that were allowed
    report_state: ReportState | None = None  # as stored: see :attr:`report_progress`
    report_summary: dict[str, Any] | None = None  # headline of its report, once it has one
    evicted: float | None = None  # when it was evicted to keep its tenant under the cap
    evicted_reason: str | None = None
    weights: BlobRef | None = None  # its weights in the artifact store, once published (None:
    # not published, or a record of a version that kept weights in Redis)
    report_blob: BlobRef | None = None  # its finished report in the artifact store (None: a
    # report without figures yet, pending or unfinished, or of a version that kept it in Redis)
    report_chart: BlobRef | None = None  # its finished report drawn (PNG), once first asked for

    @classmethod
    def from_hash(cls, raw: RawHash) -> ModelRecord:
        """The record a model's hash holds; KeyError when it lacks a field every version
        wrote."""
        text = decoded(raw)
        report_state = text.get("report_state")
        return cls(
            id=text["id"],
            tenant=text.get("tenant", ""),
            state=ModelState(text["state"]),
            created=float(text["created"]),
            base_model=text["base_model"],
            classes=tuple(json.loads(text["classes"])),
            settings=text["settings"],
            job_id=text.get("job_id"),
            name=text.get("name", ""),
            description=text.get("description", ""),
            support_size=int(text.get("support_size", 0)),
            validation_size=int(text.get("validation_size", 0)),
            warnings=tuple(json_or_none(text.get("warnings")) or ()),
            report_state=ReportState(report_state) if report_state else None,
            report_summary=json_or_none(text.get("report_summary")),
            evicted=moment(text.get("evicted")),
            evicted_reason=text.get("evicted_reason"),
            weights=blob_or_none(text.get("weights")),
            report_blob=blob_or_none(text.get("report_blob")),
            report_chart=blob_or_none(text.get("report_chart")),
        )

    def fields(self) -> Fields:
        """The hash that stores this record."""
        return encoded(asdict(self))

    @property
    def report_progress(self) -> ReportState | None:
        """pending, done or unfinished for a ready model (its report follows its publication);
        None before. Records from before the report phase hold their report when ready."""
        if self.state != ModelState.READY:
            return None
        return self.report_state or ReportState.DONE

    def unfinished(self, summary: dict[str, Any]) -> ModelRecord:
        """The record shown when its pending report will never come (its job is gone)."""
        return replace(self, report_state=ReportState.UNFINISHED, report_summary=summary)


@dataclass(frozen=True)
class ModelChange:
    """What a write of the store changes of a model; None: left as it is."""

    state: ModelState | None = None
    report_state: ReportState | None = None
    report_summary: dict[str, Any] | None = None
    evicted: float | None = None
    evicted_reason: str | None = None
    weights: BlobRef | None = None
    report_blob: BlobRef | None = None
    report_chart: BlobRef | None = None

    def fields(self) -> Fields:
        return encoded(asdict(self))


@dataclass(frozen=True)
class ModelStatus:
    """The few fields the store reads alone (HMGET of :attr:`FIELDS`) to decide a job's
    transition or an eviction; all None when the model does not exist."""

    FIELDS: ClassVar[tuple[str, ...]] = ("state", "report_state", "job_id")
    state: ModelState | None
    report_state: ReportState | None
    job_id: str | None

    @classmethod
    def from_values(cls, values: list[bytes | None]) -> ModelStatus:
        """The status from HMGET's answer for :attr:`FIELDS`, in that order."""
        state, report_state, job_id = (None if v is None else v.decode() for v in values)
        return cls(
            ModelState(state) if state else None,
            ReportState(report_state) if report_state else None,
            job_id,
        )

    def state_if_made_by(self, job_id: str) -> ModelState | None:
        """Its state while it exists and is made by ``job_id``, else None."""
        return self.state if self.job_id == job_id else None

    @property
    def report_finished(self) -> bool:
        """Ready with its report done (a record from before the report phase: done when
        ready); a pending or unfinished report is not."""
        return self.state == ModelState.READY and self.report_state in (None, ReportState.DONE)

    @property
    def awaits_a_job(self) -> bool:
        """A job is still to make it (pending) or its report (report pending)."""
        return self.state == ModelState.PENDING or self.report_state == ReportState.PENDING
