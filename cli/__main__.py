"""``python -m cli``: the same as the ``fewshot`` command (torchrun runs it this way)."""

from cli.main import app

app()
