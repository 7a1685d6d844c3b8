"""Build a `Config` from YAML text, environment variables and overrides, checking every value."""

from __future__ import annotations

import dataclasses
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
_DURATION: Final = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)?$")
_UNITS: Final = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_KEYS: Final = {"draintimeout", "age", "interval", "timeout", "backoff"}
_TRUE: Final = {"true", "yes", "on", "1"}
_FALSE: Final = {"false", "no", "off", "0"}

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
    return build(Config, data, "")


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
        path = known.get(name)
        if path is not None:
            _set_path(data, list(path), _EnvValue(name, value))
            continue
        for section in _RAW_SECTIONS:
            head = f"{ENV_PREFIX}{section.upper()}_"
            if name.startswith(head) and len(name) > len(head):
                rest = name[len(head) :].lower().split("_")
                _set_path(data, [section, *rest], _yaml_scalar(value))


class _EnvValue(str):
    """A string from the environment, remembered so errors can name the variable."""

    variable: str

    def __new__(cls, variable: str, value: str) -> _EnvValue:
        obj = super().__new__(cls, value)
        obj.variable = variable
        return obj


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
    return cls(**values)


def _convert(hint: Any, value: object, key: str) -> object:
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key)  # type: ignore[arg-type]  # a dataclass type
    origin = typing.get_origin(hint)
    shown = f"{key}: {value!r}"
    if isinstance(value, _EnvValue):
        shown += f" (from {value.variable})"
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(f"{shown} is not a boolean (true or false)")
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
    if origin is tuple:
        if value is None:
            return ()
        item_hint = typing.get_args(hint)[0]
        if item_hint is str:
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ConfigError(f"{shown} is not a list of strings")
            return tuple(items)
        if dataclasses.is_dataclass(item_hint):
            if not isinstance(value, list):
                raise ConfigError(f"{shown} is not a list")
            return tuple(build(item_hint, item, f"{key}[{i}]") for i, item in enumerate(value))  # type: ignore[arg-type]  # a dataclass type
        if not isinstance(value, list):
            raise ConfigError(f"{shown} is not a list")
        for item in value:
            if not isinstance(item, Mapping):
                raise ConfigError(f"{key}: {item!r} is not a mapping")
        return tuple(dict(item) for item in value)
    raise ConfigError(f"{key}: unsupported type {hint!r}")  # pragma: no cover


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
