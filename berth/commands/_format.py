"""`--format` as docker takes it, for the part people use: `json`, `{{json .}}`,
`{{.Field.Sub}}` and `{{json .Field}}` amid plain text. Anything else is a usage error."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from berth.cli import CommandError

_ACTION = re.compile(r"\{\{\s*(json\s+)?\.([A-Za-z0-9_.]*)\s*\}\}")


def _field(value: Any, path: str, template: str) -> Any:
    for key in filter(None, path.split(".")):
        if not isinstance(value, Mapping) or key not in value:
            raise CommandError(f"template: {template}: can't evaluate field {key}", status=2)
        value = value[key]
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<no value>"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def render(template: str, value: Mapping[str, Any]) -> str:
    if template.strip() == "json":
        return json.dumps(value)
    out, end = [], 0
    for match in [*_ACTION.finditer(template), None]:
        text = template[end : match.start() if match else None]
        if "{{" in text or "}}" in text:
            supported = "only {{.Field}} and {{json .}}"
            raise CommandError(f"template: {template}: {supported}", status=2)
        out.append(text)
        if match:
            found = _field(value, match.group(2), template)
            out.append(json.dumps(found) if match.group(1) else _text(found))
            end = match.end()
    return "".join(out)
