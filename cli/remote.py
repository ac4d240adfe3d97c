"""``fewshot adapt | predict | report | base-models``: the client package's commands.

One implementation: they live in ``fewshot_client.cli`` (client/, the ``robust-fewshot-client``
distribution, also the ``fewshot-client`` command); the server's ``fewshot`` registers them.
"""

from __future__ import annotations

from fewshot_client.cli import base_models_app
from fewshot_client.cli.console import DEFAULT_URL, ApiKey, Url
from fewshot_client.cli.remote import adapt, predict, print_report, report

__all__ = [
    "DEFAULT_URL",
    "ApiKey",
    "Url",
    "adapt",
    "base_models_app",
    "predict",
    "print_report",
    "report",
]
