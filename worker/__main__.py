"""``python -m worker``: serve the job queue until SIGTERM (which gives its job back)."""

import logging
import signal
import sys

import redis
import torch

from common.artifacts import ArtifactStoreError
from common.logs import configure_logging
from common.settings import get_settings
from models.core import ConfigError
from models.service import load_base_models
from worker.runner import Worker

settings = get_settings()
configure_logging(settings.log_level, settings.log_format)
if settings.worker_torch_threads:
    torch.set_num_threads(settings.worker_torch_threads)
# torch imports its compiler stack on the first optimizer it makes (~1.5 s on 2 cores): here,
# at start, rather than inside the first job
torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
try:
    worker = Worker(
        settings,
        redis.Redis.from_url(settings.redis_url),
        load_base_models(settings.base_models_dir, settings.default_base_model),
    )
except (ConfigError, ArtifactStoreError) as error:  # a bad device, an unusable artifact store
    logging.getLogger("worker").critical("worker cannot start: %s", error)
    sys.exit(2)


def on_signal(signum: int, _frame: object) -> None:
    logging.getLogger("worker").info("signal %d: finishing up", signum)
    worker.stop.set()


signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)
worker.run()
sys.exit(1 if worker.failed else 0)  # a supervisor (compose: restart) starts a fresh one
