"""FastAPI dependencies, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.errors import ApiError
from app.services import Services
from common.jobs import JobNotFound
from common.keys import is_id


async def get_services(request: Request) -> Services:
    return request.app.state.services


async def model_id_path(model_id: str) -> str:
    """The path's model id; one not of the id format names no model (checked before Redis)."""
    if not is_id("model", model_id):
        raise ApiError(404, "model_not_found", f"no model with id {model_id[:100]!r}")
    return model_id


async def job_id_path(job_id: str) -> str:
    """The path's job id; one not of the id format names no job (checked before Redis)."""
    if not is_id("job", job_id):
        raise JobNotFound(repr(job_id[:100]))
    return job_id


ServicesDep = Annotated[Services, Depends(get_services)]
ModelIdDep = Annotated[str, Depends(model_id_path)]
JobIdDep = Annotated[str, Depends(job_id_path)]
