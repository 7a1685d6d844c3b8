"""Resolve `USER[:GROUP]` through the image's own /etc/passwd and /etc/group, as runc does.

Names must exist in the files; numeric ids need not. Supplementary groups are the primary
group plus, only when no group was given explicitly, the groups that list the user by name
(what `docker run -u` gives).
"""

from __future__ import annotations

from typing import NamedTuple


class UserError(ValueError):
    """The user or group named does not exist in the image."""


class ExecUser(NamedTuple):
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


class _Passwd(NamedTuple):
    name: str
    uid: int
    gid: int
    home: str


class _Group(NamedTuple):
    name: str
    gid: int
    members: tuple[str, ...]


def _rows(text: str, width: int) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        fields += [""] * (width - len(fields))
        rows.append(fields)
    return rows


def parse_passwd(text: str) -> list[_Passwd]:
    out = []
    for f in _rows(text, 7):
        if f[2].isdigit() and f[3].isdigit():
            out.append(_Passwd(f[0], int(f[2]), int(f[3]), f[5]))
    return out


def parse_group(text: str) -> list[_Group]:
    out = []
    for f in _rows(text, 4):
        if f[2].isdigit():
            members = tuple(m.strip() for m in f[3].split(",") if m.strip())
            out.append(_Group(f[0], int(f[2]), members))
    return out


def resolve_user(spec: str | None, passwd: str | None, group: str | None) -> ExecUser:
    """The ids to run as. `passwd`/`group` are the image's files (None when absent)."""
    spec = spec or ""
    user_part, _, group_part = spec.partition(":")
    users = parse_passwd(passwd or "")
    groups = parse_group(group or "")

    entry: _Passwd | None = None
    if user_part == "":
        entry = next((u for u in users if u.uid == 0), None)
        uid, gid, home = 0, 0, entry.home if entry else "/"
    elif user_part.isdigit():
        uid = int(user_part)
        entry = next((u for u in users if u.uid == uid), None)
        gid, home = (entry.gid, entry.home) if entry else (0, "/")
    else:
        entry = next((u for u in users if u.name == user_part), None)
        if entry is None:
            raise UserError(f"unable to find user {user_part}: no matching entries in passwd file")
        uid, gid, home = entry.uid, entry.gid, entry.home

    members: tuple[int, ...] = ()
    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            found = next((g for g in groups if g.name == group_part), None)
            if found is None:
                raise UserError(
                    f"unable to find group {group_part}: no matching entries in group file"
                )
            gid = found.gid
    elif entry is not None:
        members = tuple(g.gid for g in groups if entry.name in g.members)
    # docker lists the primary group among the supplementary ones too
    additional = tuple(dict.fromkeys((gid, *members)))
    return ExecUser(uid, gid, additional, home or "/")
