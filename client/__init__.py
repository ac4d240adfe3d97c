"""A small typed Python client of the robust-fewshot API (httpx)."""

from client.api import ApiError, FewShotClient, JobFailed

__all__ = ["ApiError", "FewShotClient", "JobFailed"]
