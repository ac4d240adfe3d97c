"""The handler of each job kind: ``(context, job, progress, publish_model) -> Publish``."""

from __future__ import annotations

from common.keys import JobKind
from worker.evaluation_job import handle_evaluate
from worker.handlers import handle_adapt
from worker.meta_train import handle_meta_train

HANDLERS = {
    JobKind.ADAPT: handle_adapt,
    JobKind.EVALUATE: handle_evaluate,
    JobKind.META_TRAIN: handle_meta_train,
}
