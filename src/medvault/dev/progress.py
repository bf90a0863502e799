"""A progress bar on the terminal for long development runs (``medvault seed``).

``TerminalProgress`` is a progress callback, told (phase, units done, units in all): a click
progress bar on stderr with the position, the time left, the phase and the rate. The runs take
any such callback (``medvault.dev.seed.Progress``) and do not import click themselves; this is
the one the command line gets.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

__all__ = ["TerminalProgress"]


class TerminalProgress:
    """A click progress bar on stderr, opened on the first report with work to do."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.monotonic()
        self.phase = ""
        self.done = 0
        self.bar: Any = None

    def __call__(self, phase: str, done: int, total: int) -> None:
        if self.bar is None and total:
            self.bar = click.progressbar(
                length=total,
                label=self.label,
                file=sys.stderr,
                show_eta=True,
                show_pos=True,
                item_show_func=lambda _: self._status(),
            )
            self.bar.__enter__()
        step, self.done, self.phase = done - self.done, done, phase
        if self.bar is not None:
            self.bar.update(step, phase)

    def _status(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return f"{self.phase}, {self.done / elapsed:,.0f} ops/s"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
