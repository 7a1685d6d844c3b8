"""Per-layer progress of `berth pull` and `berth push`.

On a terminal: rich progress bars, one per layer, with bytes, speed and time left, and
docker's words for each state ("Already exists", "Pull complete", "Layer already exists",
"Mounted from ..."). Otherwise (piped, TERM=dumb): plain lines, one per state change and at
most one a second per layer in transfer. rich is imported only when a terminal shows it.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Literal, TextIO

from puller import Phase, ProgressEvent

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

Kind = Literal["pull", "push"]


class Display:
    """Receives progress events; `finish()` (or `close()` on failure) ends the display."""

    changed = False  # a pull downloaded or unpacked something

    def __call__(self, event: ProgressEvent) -> None:
        raise NotImplementedError

    def note(self, text: str) -> None:
        """A line of its own (above the bars on a terminal)."""
        raise NotImplementedError

    def finish(self) -> None:
        return None


def open_display(out: TextIO, kind: Kind) -> Display:
    if out.isatty() and os.environ.get("TERM", "") != "dumb":
        return RichDisplay(out, kind)
    return PlainDisplay(out, kind)


def _short(event: ProgressEvent) -> str:
    return event.digest.hex[:12]


def _changes(event: ProgressEvent) -> bool:
    return event.phase is Phase.DOWNLOADED or (event.phase is Phase.UNPACKED and not event.detail)


class PlainDisplay(Display):
    def __init__(self, out: TextIO, kind: Kind) -> None:
        self._out = out
        self._kind = kind
        self._started: dict[str, float] = {}
        self._last: dict[str, float] = {}

    def note(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    def __call__(self, event: ProgressEvent) -> None:
        short = _short(event)
        self.changed = self.changed or _changes(event)
        phase = event.phase
        if phase in (Phase.DOWNLOADING, Phase.PUSHING):
            started = self._started.setdefault(short, time.monotonic())
            elapsed = max(time.monotonic() - started, 0.1)
            verb = "downloading" if phase is Phase.DOWNLOADING else "pushing"
            text = (
                f"{verb} {_size(event.done)}/{_size(event.total)} "
                f"{_size(int(event.done / elapsed))}/s"
            )
            self._emit(short, text, force=False)
            return
        self._emit(short, self._text(event, short), force=True)

    def _text(self, event: ProgressEvent, short: str) -> str:
        phase = event.phase
        if phase is Phase.RESOLVED:
            return f"resolved {event.digest} ({event.total} layers)"
        if phase is Phase.DOWNLOADED:
            elapsed = time.monotonic() - self._started.get(short, time.monotonic())
            return f"downloaded {_size(event.total)} in {elapsed:.1f}s"
        if phase is Phase.RETRYING:
            return f"retrying at {_size(event.done)}: {event.detail}"
        if phase is Phase.UNPACKED and event.detail:
            return "snapshot exists"
        if self._kind == "push":
            return _PUSH_WORDS.get(phase, str(phase.value)).format(detail=event.detail)
        return str(phase.value)

    def _emit(self, key: str, text: str, *, force: bool) -> None:
        now = time.monotonic()
        if force or now - self._last.get(key, 0.0) >= 1.0:
            self._last[key] = now
            print(f"{key}: {text}", file=self._out, flush=True)


_PUSH_WORDS = {
    Phase.PREPARING: "Preparing",
    Phase.EXISTS: "Layer already exists",
    Phase.PUSHED: "Pushed",
    Phase.MOUNTED: "Mounted from {detail}",
}

_PULL_STATES = {
    Phase.EXISTS: "Already exists",
    Phase.DOWNLOADING: "Downloading",
    Phase.DOWNLOADED: "Download complete",
    Phase.UNPACKING: "Extracting",
    Phase.UNPACKED: "Pull complete",
}
_PUSH_STATES = {**_PUSH_WORDS, Phase.PUSHING: "Pushing"}


class RichDisplay(Display):
    """One rich progress task per layer, shown live until `finish`."""

    def __init__(self, out: TextIO, kind: Kind) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._kind = kind
        self._progress: Progress = Progress(
            TextColumn("{task.fields[layer]}: {task.fields[state]:<22}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(file=out),
            refresh_per_second=8,
        )
        self._tasks: dict[str, TaskID] = {}
        self._existed: set[str] = set()
        self._progress.start()

    def note(self, text: str) -> None:
        self._progress.console.print(text, markup=False, highlight=False)

    def __call__(self, event: ProgressEvent) -> None:
        self.changed = self.changed or _changes(event)
        phase, short = event.phase, _short(event)
        if phase is Phase.RESOLVED:
            self.note(f"Resolved {event.digest} ({event.total} layers)")
            return
        task = self._tasks.get(short)
        if task is None:
            task = self._progress.add_task("", total=event.total or None, layer=short, state="")
            self._tasks[short] = task
        if phase is Phase.EXISTS:
            self._existed.add(short)
        if phase is Phase.RETRYING:
            state = f"Retrying ({event.detail})"[:22]
        elif phase is Phase.UNPACKED and short in self._existed:
            state = "Already exists"
        elif phase in (Phase.UNPACKING, Phase.UNPACKED):
            state = _PULL_STATES[phase]
            self._progress.update(task, state=state)
            return
        else:
            states = _PUSH_STATES if self._kind == "push" else _PULL_STATES
            state = states.get(phase, phase.value).format(detail=event.detail)
        if phase in (Phase.DOWNLOADING, Phase.PUSHING, Phase.RETRYING):
            self._progress.update(task, completed=event.done, total=event.total, state=state)
        elif phase is Phase.PREPARING:
            self._progress.update(task, completed=0, total=event.total, state=state)
        else:
            self._progress.update(task, completed=event.total, total=event.total, state=state)

    def finish(self) -> None:
        self._progress.stop()


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000
    return f"{n:.1f}GB"
