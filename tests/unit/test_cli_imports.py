"""`berth serve` must set PROMETHEUS_MULTIPROC_DIR before prometheus-client is first imported
(it reads the variable once): building the command line must not load the registry."""

from __future__ import annotations

import subprocess
import sys


def test_building_the_cli_loads_no_registry_code() -> None:
    code = (
        "import sys\n"
        "from berth.cli import build_parser\n"
        "build_parser()\n"
        "roots = ('registry', 'prometheus_client')\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in roots]\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
