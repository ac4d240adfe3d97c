"""``python -m app``: the API under uvicorn, with the service's logging and settings;
``FEWSHOT_API_PROCESSES`` > 1 runs that many processes on one socket (uvicorn's supervisor
restarts one that dies), each with its own model cache and inference threads."""

import uvicorn
from uvicorn.supervisors import Multiprocess

from app.serving import server_config
from common.logs import configure_logging
from common.settings import get_settings

# also run by each spawned API process (it imports this module as __mp_main__): its logging
settings = get_settings()
configure_logging(settings.log_level, settings.log_format)

if __name__ == "__main__":
    config = server_config("app.main:app", settings)
    if settings.api_processes > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()
