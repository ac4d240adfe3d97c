"""models/ is pure torch: importing it, every subpackage and module, pulls in no web or queue
library."""

from __future__ import annotations

import subprocess
import sys


def test_models_imports_no_fastapi_or_redis():
    code = (
        "import importlib, pkgutil, sys, models\n"
        "names = [m.name for m in pkgutil.walk_packages(models.__path__, 'models.')]\n"
        "assert len(names) > 35, names\n"
        "for name in names: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'fastapi', 'redis', 'starlette', 'pydantic_settings', 'common', 'app', 'worker'})\n"
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
