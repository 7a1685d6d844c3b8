"""Build a `Config` from YAML text, environment variables and overrides, checking every value.

Every section is a dataclass in registry/config.py, built strictly by `build`: an unknown key
or a value of the wrong type is a ConfigError naming the key. A dataclass checks its own
values in `__post_init__` by raising ConfigError("key: why"), the key relative to itself;
`build` prefixes the section's path. Raw sections (`auth`) are checked by their own parser
here, so that `berth serve` refuses a bad config before any worker starts.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml

from registry.config import Config, ConfigError

ENV_PREFIX: Final = "BERTH_"
_RAW_SECTIONS: Final = ("auth",)
_DURATION: Final = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d)?$")
_UNITS: Final = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_KEYS: Final = {
    "draintimeout",
    "age",
    "interval",
    "timeout",
    "grace",
    "olderthan",
    "backoff",
    "ttl",
}
_SIZE_KEYS: Final = {"limit"}  # integers that take units: 512MiB, 10GiB, 2GB, or bytes
_SIZE: Final = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)b?$", re.IGNORECASE)
_TRUE: Final = {"true", "yes", "on", "1"}
_FALSE: Final = {"false", "no", "off", "0"}
# Distribution's spellings of keys Berth names otherwise: environment variable -> path.
_ENV_ALIASES: Final = {f"{ENV_PREFIX}LOG_ACCESSLOG_DISABLED": ("log", "accesslog", "disabled")}

# Sections Berth accepts but does not act on yet. Refused while non-empty, so that nobody
# believes a cache or webhooks are running; delete a line when its feature lands.
NOT_YET_ACTED_ON: Final[dict[str, str]] = {}

T = TypeVar("T")


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Config:
    """Defaults, then the YAML file at `path`, then BERTH_* variables, then `overrides`
    (dotted keys such as "http.addr", from CLI flags)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        data = parse_yaml(text, str(path))
    _apply_env(data, os.environ if environ is None else environ)
    for dotted, value in (overrides or {}).items():
        _set_path(data, dotted.split("."), value)
    _accept_distribution_spellings(data)
    config = build(Config, data, "")
    check_sections(config)
    return config


def check_sections(config: Config) -> None:
    """What `build` cannot see: raw sections, and sections not acted on yet."""
    for name, why in NOT_YET_ACTED_ON.items():
        section = getattr(config, name)
        if section != type(section)():
            raise ConfigError(f"{name}: Berth does not act on this section yet ({why}); remove it")
    if config.proxy.dockerconfig:
        _check_docker_config(config.proxy.dockerconfig)
    from registry.auth.config import parse_auth_config  # loads only when there is a config

    try:
        parse_auth_config(config.auth)
    except ValueError as exc:  # its messages name the key (auth.token.realm: ...)
        raise ConfigError(str(exc)) from None


def _check_docker_config(path: str) -> None:
    """proxy.dockerconfig must be a readable JSON object now, not at the first pull."""
    import json

    try:
        document = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"proxy.dockerconfig: cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise ConfigError(f"proxy.dockerconfig: {path} is not JSON") from None
    if not isinstance(document, dict):
        raise ConfigError(f"proxy.dockerconfig: {path} is not a JSON object")


def _accept_distribution_spellings(data: dict[str, Any]) -> None:
    """`log.accesslog: {disabled: true}` (Distribution) is `log.accesslog: false` (Berth)."""
    log = data.get("log")
    if isinstance(log, dict) and isinstance(log.get("accesslog"), Mapping):
        access = log["accesslog"]
        for key in access:
            if key != "disabled":
                raise ConfigError(f"log.accesslog.{key}: unknown configuration key")
        disabled = _convert(bool, access.get("disabled", False), "log.accesslog.disabled")
        log["accesslog"] = not disabled


def parse_yaml(text: str, source: str = "config") -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, not {type(loaded).__name__}")
    return loaded


def env_names(cls: type[Any] = Config, path: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """Every leaf key's environment variable name -> its path."""
    names: dict[str, tuple[str, ...]] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        here = (*path, f.name)
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            names.update(env_names(hint, here))  # type: ignore[arg-type]  # a dataclass type
        else:
            names[ENV_PREFIX + "_".join(here).upper()] = here
    return names


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    known = env_names()
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = known.get(name) or _ENV_ALIASES.get(name)
        if path is not None:
            _set_path(data, list(path), _EnvValue(name, value))
            continue
        raw = False
        for section in _RAW_SECTIONS:
            head = f"{ENV_PREFIX}{section.upper()}_"
            if name.startswith(head) and len(name) > len(head):
                rest = name[len(head) :].lower().split("_")
                _set_path(data, [section, *rest], _yaml_scalar(value))
                raw = True
        if not raw and name.split("_")[1].lower() in _sections():
            # Within a section's namespace but no key of it: a typo, not someone else's variable.
            raise ConfigError(f"{name}: no such configuration key (see config.example.yaml)")


def _sections() -> set[str]:
    hints = typing.get_type_hints(Config)
    return {f.name for f in dataclasses.fields(Config) if dataclasses.is_dataclass(hints[f.name])}


class _EnvValue(str):
    """A string from the environment, remembered so errors can name the variable."""

    variable: str

    def __new__(cls, variable: str, value: str) -> _EnvValue:
        obj = super().__new__(cls, value)
        obj.variable = variable
        return obj


def _structured(hint: Any) -> bool:
    """Mappings and lists of mappings: what an environment variable gives as YAML."""
    origin = typing.get_origin(hint)
    if hint is dict or origin is dict:
        return True
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return dataclasses.is_dataclass(item) or item is dict or typing.get_origin(item) is dict
    return False


def _yaml_scalar(value: str) -> object:
    try:
        return yaml.safe_load(value) if value else ""
    except yaml.YAMLError:
        return value


def _set_path(data: dict[str, Any], path: list[str], value: object) -> None:
    node = data
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def build(cls: type[T], data: object, where: str) -> T:
    """Construct dataclass `cls` from a mapping, converting and checking every field."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]  # cls is a dataclass
    for key in data:
        if key not in names:
            full = f"{where}.{key}" if where else str(key)
            raise ConfigError(f"{full}: unknown configuration key")
    values: dict[str, Any] = {}
    for name in names:
        if name in data:
            key = f"{where}.{name}" if where else name
            values[name] = _convert(hints[name], data[name], key)
    try:
        return cls(**values)
    except ConfigError as exc:  # from the dataclass's own __post_init__ check
        raise ConfigError(f"{where}.{exc}" if where else str(exc)) from None


def _convert(hint: Any, value: object, key: str) -> object:
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key)  # type: ignore[arg-type]  # a dataclass type
    origin = typing.get_origin(hint)
    shown = f"{key}: {value!r}"
    if isinstance(value, _EnvValue):
        shown += f" (from {value.variable})"
        if _structured(hint):  # a list or mapping, written in YAML flow style (or JSON)
            value = _yaml_scalar(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(f"{shown} is not a boolean (true or false)")
    if hint is int and key.rsplit(".", 1)[-1] in _SIZE_KEYS:
        return _size(value, shown)
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{shown} is not an integer")
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ConfigError(f"{shown} is not an integer") from None
        if number < 0:
            raise ConfigError(f"{shown} must not be negative")
        return number
    if hint is float:
        return _duration(value, shown, key.rsplit(".", 1)[-1] in _DURATION_KEYS)
    if hint is str:
        if isinstance(value, dict | list):
            raise ConfigError(f"{shown} is not a string")
        return "" if value is None else str(value)
    if origin is dict:
        if isinstance(value, str) and not value:
            return {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{shown} is not a mapping")
        return dict(value)
    if origin is tuple and typing.get_args(hint)[0] is str:
        return _strings(value, shown, key)
    if origin is tuple:
        if value is None:
            return ()
        item_type = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise ConfigError(f"{shown} is not a list")
        if dataclasses.is_dataclass(item_type):
            return tuple(build(item_type, item, f"{key}[{i}]") for i, item in enumerate(value))  # type: ignore[arg-type]  # a dataclass type
        for item in value:
            if not isinstance(item, Mapping):
                raise ConfigError(f"{key}: {item!r} is not a mapping")
        return tuple(dict(item) for item in value)
    raise ConfigError(f"{key}: unsupported type {hint!r}")  # pragma: no cover


def _strings(value: object, shown: str, key: str) -> tuple[str, ...]:
    """A list of strings; from the environment, comma-separated."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{shown} is not a list of strings")
    if key.rsplit(".", 1)[-1] == "trustedproxies":
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ConfigError(f"{key}: {item!r} is not an address or CIDR block") from None
    return tuple(value)


def _duration(value: object, shown: str, is_duration: bool) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{shown} is not a number")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value).strip()) if is_duration else None
        if match is None:
            try:
                seconds = float(str(value).strip())
            except ValueError:
                kind = "a duration such as 30s or 168h" if is_duration else "a number"
                raise ConfigError(f"{shown} is not {kind}") from None
        else:
            seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds < 0:
        raise ConfigError(f"{shown} must not be negative")
    return seconds


def _size(value: object, shown: str) -> int:
    """Bytes from 1048576, 512MiB, 10GiB, 1.5G (binary: KiB, MiB, Gi, G) or 2GB, 500MB (decimal)."""
    if isinstance(value, bool):
        raise ConfigError(f"{shown} is not a size")
    if isinstance(value, int):
        number = value
    else:
        match = _SIZE.match(str(value).strip())
        if match is None:
            raise ConfigError(f"{shown} is not a size such as 10GiB, 500MB or 1048576")
        amount, prefix, binary = match.groups()
        power = " kmgtp".index(prefix.lower() or " ")
        # G and GiB are binary, GB decimal: a bare letter means what `ls -h` and docker mean.
        decimal = not binary and str(value).strip()[-1:].lower() == "b" and power > 0
        number = int(float(amount) * (1000 if decimal else 1024) ** power)
    if number < 0:
        raise ConfigError(f"{shown} must not be negative")
    return number
