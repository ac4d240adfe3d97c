"""``python -m app``: the API under uvicorn, with the service's logging and settings."""

import uvicorn

from app.serving import server_config
from common.logs import configure_logging
from common.settings import get_settings

settings = get_settings()
configure_logging(settings.log_level, settings.log_format)
uvicorn.Server(server_config("app.main:app", settings)).run()
