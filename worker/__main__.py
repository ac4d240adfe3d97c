"""``python -m worker``: serve the job queue until SIGTERM."""

from common.logs import configure_logging
from common.settings import get_settings
from worker.runner import main

settings = get_settings()
configure_logging(settings.log_level, settings.log_format)
main(settings)
