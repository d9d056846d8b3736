"""The partner client is a package the server can import cheaply: no Django, no numpy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def imported_after(statement: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after running ``statement``."""
    probe = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=REPO,
    )
    return {name.split(".")[0] for name in json.loads(proc.stdout)}


def test_importing_the_package_loads_no_django() -> None:
    assert "django" not in imported_after("import exchange.client")
    assert "django" not in imported_after("import exchange")


def test_what_federation_imports_loads_neither_django_nor_numpy_nor_tqdm() -> None:
    loaded = imported_after(
        "import exchange.client.errors, exchange.client.http, exchange.client.verify"
    )
    assert not loaded & {"django", "rest_framework", "numpy", "tqdm"}


def test_no_module_of_the_package_loads_django() -> None:
    statement = (
        "import pkgutil, importlib, exchange.client; "
        "[importlib.import_module(m.name) for m in "
        "pkgutil.walk_packages(exchange.client.__path__, 'exchange.client.')]"
    )
    loaded = imported_after(statement)
    assert "numpy" in loaded  # the probe did import matching
    assert not loaded & {"django", "rest_framework"}


def test_the_command_line_runs_without_django() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.partner_sync", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert "sync" in proc.stdout and "check" in proc.stdout and "match" in proc.stdout
    assert "django" not in imported_after("import scripts.partner_sync")
