"""The ML core, pure PyTorch, in layers (lowest first): core, data, attacks, domain, meta,
evaluation, report, service. A layer imports only itself and the layers below it; the rest of
the project imports a layer through its ``__init__`` (docs/architecture.md,
tests/test_layers.py)."""
