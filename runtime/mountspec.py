"""`-v`, `--mount` and `--tmpfs` as docker parses them, into `MountRequest` values (pure code).

What each flag may say (docker run's reference; errors worded as docker words them):

    -v /host:/dst[:ro|rw][,PROPAGATION]     bind mount (the host dir is made if missing)
    -v NAME:/dst[:ro|rw|nocopy]             named volume, created on first use
    -v /dst[:ro]                            anonymous volume
    --tmpfs /dst[:OPT,...]                  tmpfs (noexec,nosuid,nodev plus OPTs)
    --mount type=bind|volume|tmpfs,source=..,target=..,readonly,bind-propagation=..,
            volume-nocopy,volume-label=K=V,volume-driver=local,tmpfs-size=..,tmpfs-mode=..
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from runtime.containers import check_name
from runtime.options import OptionError, parse_size

PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
VOLUME_NAME_HELP = (
    'includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" '
    "are allowed. If you intended to pass a host directory, use absolute path"
)
# What --tmpfs accepts after the colon: mount(8) flags and tmpfs(5) options.
_TMPFS_FLAGS = frozenset(
    ("ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync", "async",
     "dirsync", "atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime",
     "strictatime", "nostrictatime")
)  # fmt: skip
_TMPFS_DATA = frozenset(("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"))
_TMPFS_DEFAULTS = ("nosuid", "nodev", "noexec")


def check_volume_name(name: str) -> str:
    """Docker's rule for a local volume's name (a container name's); raises OptionError with
    docker's message."""
    try:
        return check_name(name)
    except ValueError:
        raise OptionError(f'create {name}: "{name}" {VOLUME_NAME_HELP}') from None


@dataclass(frozen=True, slots=True)
class MountRequest:
    """One mount asked for on the command line. `source` is a host path (bind), a volume
    name or "" for an anonymous volume (volume), "" (tmpfs). `options` are the tmpfs's."""

    type: str  # bind | volume | tmpfs
    source: str
    target: str
    readonly: bool = False
    propagation: str = ""
    nocopy: bool = False
    options: tuple[str, ...] = ()
    mode: str = ""  # docker's Mode column in `inspect`'s Mounts: what the user wrote
    flag: str = "-v"  # which flag asked for it: -v, --mount or --tmpfs
    labels: tuple[tuple[str, str], ...] = ()  # --mount volume-label: for a volume made now
    spec: str = field(default="", compare=False)  # as given: inspect's HostConfig.Binds/Tmpfs


def _absolute(path: str) -> str:
    if not path.startswith("/"):
        raise OptionError(f"invalid mount path: '{path}' mount path must be absolute")
    return path


def _target(path: str) -> str:
    _absolute(path)
    if path.rstrip("/") == "":
        raise OptionError("invalid specification: destination can't be '/'")
    return path


def _modes(text: str, spec: str) -> tuple[bool, str, bool]:
    """(readonly, propagation, nocopy) from `-v`'s third field, e.g. `ro,rslave`."""
    readonly, propagation, nocopy = False, "", False
    for mode in text.split(","):
        if mode in ("ro", "rw"):
            readonly = mode == "ro"
        elif mode in PROPAGATIONS:
            propagation = mode
        elif mode == "nocopy":
            nocopy = True
        elif mode in ("z", "Z"):
            raise OptionError(f"invalid mode: {mode} (no SELinux relabeling here)")
        else:
            raise OptionError(f"invalid mode: {mode}")
    return readonly, propagation, nocopy


def _is_mode(text: str) -> bool:
    return all(m in ("ro", "rw", "nocopy", *PROPAGATIONS) for m in text.split(","))


def parse_volume_flag(spec: str) -> MountRequest:
    """`-v`: a bind mount, a named volume or an anonymous one."""
    return replace(_parse_volume_flag(spec), spec=spec)


def _parse_volume_flag(spec: str) -> MountRequest:
    parts = spec.split(":")
    if any(p == "" for p in parts):
        raise OptionError(f"invalid spec: {spec}: empty section between colons")
    if len(parts) == 2 and parts[1] and _is_mode(parts[1]) and parts[0].startswith("/"):
        parts = ["", parts[0], parts[1]]  # /dst:ro, an anonymous volume
    elif len(parts) == 1:
        parts = ["", parts[0]]
    if len(parts) not in (2, 3):
        raise OptionError(f"invalid volume specification: '{spec}'")
    source = parts[0]
    try:
        target = _target(parts[1])
    except OptionError as exc:
        if not parts[1].startswith("/"):
            raise
        kind = "bind" if source.startswith("/") else "volume"
        raise OptionError(
            f"invalid volume specification: '{spec}': invalid mount config for type "
            f'"{kind}": {exc}'
        ) from None
    mode = parts[2] if len(parts) == 3 else ""
    readonly, propagation, nocopy = _modes(mode, spec) if mode else (False, "", False)
    if source.startswith("/"):
        if nocopy:
            raise OptionError(f"invalid mode: nocopy (only for volumes): '{spec}'")
        return MountRequest("bind", source, target, readonly, propagation or "rprivate", mode=mode)
    if propagation:
        raise OptionError(f"invalid mode: {propagation} (only for bind mounts): '{spec}'")
    if source:
        check_volume_name(source)
    return MountRequest("volume", source, target, readonly, nocopy=nocopy, mode=mode)


def _bool(key: str, value: str | None) -> bool:
    if value is None:
        return True
    lowered = value.lower()
    if lowered in ("1", "true"):
        return True
    if lowered in ("0", "false"):
        return False
    raise OptionError(f"invalid value for {key}: {value}")


def _mount_error(spec: str, message: str) -> OptionError:
    return OptionError(f'invalid argument "{spec}" for "--mount" flag: {message}')


def parse_mount_flag(spec: str) -> MountRequest:
    """`--mount type=...,source=...,target=...`: docker's CSV of key=value fields."""
    fields: list[tuple[str, str | None]] = []
    for item in spec.split(","):
        name, eq, given = item.partition("=")
        name = name.strip().lower()
        if not eq and name not in ("readonly", "ro", "volume-nocopy"):
            raise _mount_error(spec, f"invalid field '{item}' must be a key=value pair")
        fields.append((name, given if eq else None))
    kind, source, target = "volume", "", ""
    labels: list[tuple[str, str]] = []
    readonly = nocopy = False
    propagation, size, mode = "", "", ""
    seen_bind = seen_volume = seen_tmpfs = False
    try:
        for key, value in fields:
            text = value or ""
            if key == "type":
                kind = text.lower()
            elif key in ("source", "src"):
                source = text
            elif key in ("target", "dst", "destination"):
                target = text
            elif key in ("readonly", "ro"):
                readonly = _bool(key, value)
            elif key == "bind-propagation":
                propagation, seen_bind = text.lower(), True
            elif key == "volume-nocopy":
                nocopy, seen_volume = _bool(key, value), True
            elif key == "volume-label":
                label, _, label_value = text.partition("=")
                labels.append((label, label_value))
                seen_volume = True
            elif key == "volume-driver":
                if text != "local":
                    raise OptionError(f"invalid value for {key}: {text} (only local)")
                seen_volume = True
            elif key == "tmpfs-size":
                seen_tmpfs = True
                try:
                    size = str(parse_size(text))
                except OptionError:
                    raise OptionError(f"invalid value for {key}: {text}") from None
            elif key == "tmpfs-mode":
                seen_tmpfs = True
                try:
                    if not 0 <= int(text, 8) <= 0o7777:
                        raise ValueError(text)
                except ValueError:
                    raise OptionError(f"invalid value for {key}: {text}") from None
                mode = format(int(text, 8), "o")
            else:
                raise OptionError(f"unexpected key '{key}' in '{key}={text}'")
        if not target:
            raise OptionError("target is required")
        for seen, prefix, owner in (
            (seen_bind, "bind", "bind"),
            (seen_volume, "volume", "volume"),
            (seen_tmpfs, "tmpfs", "tmpfs"),
        ):
            if seen and kind != owner:
                raise OptionError(f"cannot mix '{prefix}-*' options with mount type '{kind}'")
    except OptionError as exc:
        raise _mount_error(spec, str(exc)) from None
    checked = _checked_mount(kind, source, target, readonly, propagation, nocopy, size, mode)
    return replace(checked, labels=tuple(labels))


def _checked_mount(
    kind: str,
    source: str,
    target: str,
    readonly: bool,
    propagation: str,
    nocopy: bool,
    size: str,
    mode: str,
) -> MountRequest:
    """What dockerd checks of a --mount the CLI let through."""
    where = f'invalid mount config for type "{kind}"'
    if kind not in ("bind", "volume", "tmpfs"):
        raise OptionError(f"{where}: mount type unknown")
    try:
        _target(target)
    except OptionError as exc:
        raise OptionError(f"{where}: {exc}") from None
    if kind == "bind":
        if not source:
            raise OptionError(f"{where}: field Source must not be empty")
        try:
            _absolute(source)
        except OptionError as exc:
            raise OptionError(f"{where}: {exc}") from None
        if propagation and propagation not in PROPAGATIONS:
            raise OptionError(f"{where}: invalid propagation mode: {propagation}")
        return MountRequest(
            "bind", source, target, readonly, propagation or "rprivate", flag="--mount"
        )
    if kind == "tmpfs":
        if source:
            raise OptionError(f"{where}: field Source must not be specified")
        options = [*_TMPFS_DEFAULTS, *(["ro"] if readonly else [])]
        options += [f"size={size}"] if size else []
        options += [f"mode={mode}"] if mode else []
        return MountRequest("tmpfs", "", target, readonly, options=tuple(options), flag="--mount")
    if source:
        check_volume_name(source)
    return MountRequest("volume", source, target, readonly, nocopy=nocopy, mode="z", flag="--mount")


def parse_tmpfs_flag(spec: str) -> MountRequest:
    """`--tmpfs /dst[:opts]`: docker mounts it noexec, nosuid and nodev unless told."""
    target, _, text = spec.partition(":")
    _target(target)
    options = list(_TMPFS_DEFAULTS)
    for option in filter(None, text.split(",")):
        key, eq, value = option.partition("=")
        if option not in _TMPFS_FLAGS and not (key in _TMPFS_DATA and eq and value):
            raise OptionError(f'invalid tmpfs option ["{option}"]')
        opposite = {"exec": "noexec", "suid": "nosuid", "dev": "nodev"}.get(option)
        if opposite in options:
            options.remove(opposite)
        options.append(option)
    return MountRequest(
        "tmpfs", "", target, "ro" in options, options=tuple(options), flag="--tmpfs", spec=spec
    )


def check_unique(requests: list[MountRequest]) -> None:
    """Two mounts on one target: docker's `Duplicate mount point`."""
    seen: set[str] = set()
    for request in requests:
        target = request.target.rstrip("/") or "/"
        if target in seen:
            raise OptionError(f"Duplicate mount point: {target}")
        seen.add(target)
