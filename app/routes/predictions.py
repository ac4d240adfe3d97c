"""Predictions of an adapted model: images as multipart files, or as base64 in JSON."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.auth import Caller, PredictCallerDep, charge
from app.deps import ModelIdDep, ServicesDep
from app.errors import API_ERRORS, ApiError
from app.prediction_request import REQUEST_BODY, Asked, parse_form, parse_json, read_json_body
from app.routes.models import ready_record
from app.schemas.responses import Predictions, documented
from app.services import ServedModel, Services
from app.uploads import decode_named, read_form
from common.tenant_base_models import BaseModelUnavailable
from models.core import CheckpointError
from models.data import InputSpec
from models.service import (
    PREDICT_ATTACK,
    BaseModel,
    UnknownBaseModel,
    label_survives,
    probabilities,
)
from models.service import answers as predict_answers

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/models", tags=["models"], responses=API_ERRORS)

# a robustness prediction runs PREDICT_ATTACK: a forward and a backward pass per step, per image
ROBUSTNESS_COST = 1 + 2 * PREDICT_ATTACK.budget  # rate-limit units (a plain request: 1)


@router.post(
    "/{model_id}/predictions",
    openapi_extra=REQUEST_BODY,
    response_model=None,
    responses=documented(Predictions, "one prediction per image, in upload order"),
)
async def predict(
    caller: PredictCallerDep, model_id: ModelIdDep, request: Request, services: ServicesDep
) -> JSONResponse:
    """Labels and top-k probabilities in upload order; optionally whether each label survives
    an attack at ``eps`` (``robustness=true``; which one: PREDICT_ATTACK). Send multipart
    ``images`` files, or JSON ``{"images": [{"name": ..., "data": BASE64}], ...}``."""
    await _ready(services, model_id, caller.tenant)
    if request.headers.get("content-type", "").lower().startswith("application/json"):
        body = await read_json_body(request, services.settings)
        parse = partial(parse_json, body, services.settings)
    else:
        form = await read_form(request, services.settings)
        parse = partial(parse_form, form, services.settings)
    prepared = await services.off_loop(_prepare, parse, services, model_id, caller)
    answers = await _answers(prepared, services)
    # already plain JSON types: no jsonable_encoder pass over every probability
    return JSONResponse({"model_id": model_id, "predictions": answers})


async def _ready(services: Services, model_id: str, tenant: str) -> None:
    """404/409/410 unless the model is ready; a ready record is trusted for
    ``model_record_cache_s`` (a deleted model stops answering within that bound)."""
    if services.ready_records.get((model_id, tenant)) is None:
        record = await services.off_loop(ready_record, services, model_id, tenant)
        services.ready_records.put((model_id, tenant), record)


@dataclass(frozen=True)
class Prepared:
    """What the batched forward pass needs of a request, and how to answer it."""

    asked: Asked
    model_id: str
    served: ServedModel
    images: torch.Tensor  # uint8 [n, C, S, S]
    base: BaseModel | None  # its out-of-domain check applies; None: no check


def _prepare(
    parse: Callable[[], Asked], services: Services, model_id: str, caller: Caller
) -> Prepared:
    """Check the request, charge a robustness check, load the model, decode the images: one
    trip to a blocking thread."""
    asked = parse()
    if asked.robust:  # an attack per image: charged by its cost (1 unit is paid)
        charge(services, caller, "predictions", ROBUSTNESS_COST - 1)
    served = services.cache.load(model_id, lambda: services.store.models.weights(model_id))
    if served is None:
        raise ApiError(404, "model_not_found", f"the weights of model {model_id} have expired")
    spec = InputSpec(**served.info["spec"])
    images = torch.from_numpy(decode_named(asked.named, spec, services.settings))
    base = _base_of(services, caller.tenant, served.info)
    checked = base if base is not None and base.spec == spec and base.domain else None
    return Prepared(asked, model_id, served, images, checked)


async def _answers(prepared: Prepared, services: Services) -> list[dict[str, Any]]:
    """Run the request in a batch with concurrent ones of the same model; its answers."""
    asked, base = prepared.asked, prepared.base
    key = (prepared.model_id, base.identity if base is not None else None)
    if asked.robust:
        compute = partial(_attack_rows, prepared.served, base, asked.eps)
        rows = await services.attack_batches.run((*key, asked.eps), prepared.images, compute)
    else:
        compute = partial(_plain_rows, prepared.served.forward, base)
        rows = await services.plain_batches.run(key, prepared.images, compute)
    answers = predict_answers(
        torch.stack([row[0] for row in rows]),
        prepared.served.info["classes"],
        top_k=asked.top_k,
        survives=[row[2] for row in rows] if asked.robust else None,
        attack=PREDICT_ATTACK,
        eps=asked.eps if asked.robust else None,
    )
    for answer, row in zip(answers, rows, strict=True):
        verdict = row[1]
        answer["in_domain"] = None if verdict is None else verdict.in_domain
        if verdict is not None and not verdict.in_domain:
            answer["domain_warning"] = verdict.reason
    return answers


def _plain_rows(
    forward: Callable[[torch.Tensor], torch.Tensor], base: BaseModel | None, images: torch.Tensor
) -> list[tuple]:
    """(probabilities, domain verdict) per image of a batch: on the inference thread."""
    scores = probabilities(forward, images)
    verdicts = base.check_domain(images) if base is not None else None
    return list(zip(scores, verdicts or [None] * len(images), strict=True))


def _attack_rows(
    served: ServedModel, base: BaseModel | None, eps: float, images: torch.Tensor
) -> list[tuple]:
    """(probabilities, domain verdict, label survives) per image of a batch."""
    rows = _plain_rows(served.model, base, images)  # the attacked model's own labels
    scores = torch.stack([row[0] for row in rows])
    survives = label_survives(
        served.model, images, scores.argmax(1), eps=eps, attack=PREDICT_ATTACK
    )
    return [(*row, alive) for row, alive in zip(rows, survives, strict=True)]


def _base_of(services: Services, tenant: str, info: dict[str, Any]) -> BaseModel | None:
    """The base model a model was adapted from, if it is still the same one (a tenant may
    delete a base model and make another of the same name); None when it is gone."""
    try:
        base = services.base_model(tenant, info["base_model"])
    except (UnknownBaseModel, BaseModelUnavailable):
        return None
    except CheckpointError as error:
        logger.error("base model %s of tenant %s unreadable: %s", info["base_model"], tenant, error)
        return None
    same = info.get("base_identity", base.identity) == base.identity
    return base if same else None
