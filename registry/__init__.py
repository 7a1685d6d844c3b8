"""The Berth registry server: the OCI distribution API over a blobstore and SQL metadata."""

from registry.app import create_app
from registry.config import Config, ConfigError
from registry.config_load import load_config

__all__ = ["Config", "ConfigError", "create_app", "load_config"]
