"""``python -m worker``: serve the job queue until SIGTERM."""

import logging

from common.settings import get_settings
from worker.runner import main

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
main(get_settings())
