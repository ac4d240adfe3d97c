"""What every ``fewshot`` command shares: consoles, error reporting, progress bars (the client
package's, so local and remote commands print alike), and the core's errors as one red line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fewshot_client.cli.console import err, fail, out_console, progress_bar

from models.core import CheckpointError, ConfigError
from models.data import DataError

__all__ = ["clear_errors", "err", "fail", "out_console", "progress_bar"]


@contextmanager
def clear_errors() -> Iterator[None]:
    """Turn the core's domain errors into one red line and exit status 2."""
    try:
        yield
    except (DataError, CheckpointError, ConfigError) as error:
        raise fail(error) from error
