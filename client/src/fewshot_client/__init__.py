"""A small typed Python client of the robust-fewshot API (httpx only; no torch, no server code).

from fewshot_client import ApiError, FewShotClient
"""

from fewshot_client.api import ApiError, FewShotClient, JobFailed

__version__ = "0.1.0"  # the distribution's version too; the server's (../pyproject.toml)

__all__ = ["ApiError", "FewShotClient", "JobFailed", "__version__"]
