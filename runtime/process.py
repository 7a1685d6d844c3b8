"""The last steps before exec in the container: capabilities, no_new_privs, user, exec.

Mirrors runc's finalizeNamespace: drop the bounding set while still root, keep capabilities
across setuid, set the spec's sets, then exec with the container's PATH.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from typing import Any, NoReturn

from runtime import _linux, capabilities


class ExecError(Exception):
    """The process could not be started; `code` is docker's exit status for it (126/127)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _set_capabilities(caps: Mapping[str, Any]) -> None:
    bounding = capabilities.mask(caps.get("bounding") or [])
    for cap in range(_linux.last_cap() + 1):
        if not bounding & (1 << cap):
            _linux.prctl(_linux.PR_CAPBSET_DROP, cap)


def _switch_user(user: Mapping[str, Any], caps: Mapping[str, Any]) -> None:
    _linux.prctl(_linux.PR_SET_KEEPCAPS, 1)
    os.setgroups([int(g) for g in user.get("additionalGids") or []])
    os.setgid(int(user.get("gid", 0)))
    os.setuid(int(user.get("uid", 0)))
    _linux.prctl(_linux.PR_SET_KEEPCAPS, 0)
    _linux.capset(
        capabilities.mask(caps.get("effective") or []),
        capabilities.mask(caps.get("permitted") or []),
        capabilities.mask(caps.get("inheritable") or []),
    )


def _environ(env: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in env:
        key, _, value = entry.partition("=")
        out[key] = value
    return out


def execute(process: Mapping[str, Any], *, keep_stdin: bool) -> NoReturn:
    """Become the container process. Raises ExecError if the program cannot be executed."""
    os.chdir(process.get("cwd") or "/")
    if not keep_stdin:
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    caps = process.get("capabilities") or {}
    _set_capabilities(caps)
    _switch_user(process.get("user") or {}, caps)
    if process.get("noNewPrivileges"):
        _linux.prctl(_linux.PR_SET_NO_NEW_PRIVS, 1)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)  # Python ignores some; ignored stays ignored on exec
    args = list(process["args"])
    try:
        os.execvpe(args[0], args, _environ(list(process.get("env") or [])))
    except FileNotFoundError:
        if "/" in args[0]:
            raise ExecError(
                127, f'exec: "{args[0]}": stat {args[0]}: no such file or directory'
            ) from None
        raise ExecError(127, f'exec: "{args[0]}": executable file not found in $PATH') from None
    except PermissionError:
        raise ExecError(126, f'exec: "{args[0]}": permission denied') from None
    except OSError as exc:
        raise ExecError(126, f'exec: "{args[0]}": {exc.strerror}') from None
