"""The Berth registry server: the OCI distribution API over a blobstore and SQL metadata.

Names load on first use (PEP 562), so that reading and checking a config, as `berth serve`
does before anything else, does not wait for the HTTP server and SQL imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry.app import create_app
    from registry.config import Config, ConfigError
    from registry.config_load import load_config

__all__ = ["Config", "ConfigError", "create_app", "load_config"]

_HOMES = {
    "Config": "registry.config",
    "ConfigError": "registry.config",
    "create_app": "registry.app",
    "load_config": "registry.config_load",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'registry' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
