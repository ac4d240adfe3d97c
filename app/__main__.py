"""``python -m app``: the API under uvicorn, with the service's logging and settings."""

import uvicorn

from common.logs import configure_logging
from common.settings import get_settings

settings = get_settings()
configure_logging(settings.log_level, settings.log_format)
uvicorn.run(
    "app.main:app",
    host=settings.host,
    port=settings.port,
    log_config=None,  # keep the JSON root handler set above
    access_log=False,  # app.metrics logs each request with its id
    proxy_headers=True,
)
