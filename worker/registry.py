"""The handler of each job kind: ``(context, job, progress, publish_model) -> Publish``."""

from __future__ import annotations

from common.keys import JobKind
from worker.evaluation_job import handle_evaluate
from worker.handlers import handle_adapt
from worker.meta_train import handle_meta_train

HANDLERS = {
    JobKind.ADAPT.value: handle_adapt,
    JobKind.EVALUATE.value: handle_evaluate,
    JobKind.META_TRAIN.value: handle_meta_train,
}
