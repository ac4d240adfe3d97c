"""The errors of a job's life cycle (common.jobs raises them; app/ and worker/ catch them)."""

from __future__ import annotations

MODEL_DELETED = {
    "code": "model_deleted",
    "message": "the model this adaptation was making was deleted; nothing was stored",
}


class JobError(Exception):
    """Base of the job life-cycle errors."""


class JobNotFound(JobError):
    pass


class JobConflict(JobError):
    """The job is in a state that does not allow the asked change."""


class Superseded(JobError):
    """The job was taken over by another attempt; the current one must stop."""


class PoisonJob(JobError):
    """The job's attempts so far all reached a handler and none ended: its workers died."""

    def __init__(self, job_id: str, attempts: int) -> None:
        super().__init__(job_id)
        self.attempts = attempts


class TooManyJobs(JobError):
    """The tenant has as many queued and running jobs as it may."""


class CancelRequested(JobError):
    """A cancel was asked while the job runs; the worker stops between steps."""
