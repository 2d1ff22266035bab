"""What the user sees while a generation runs, on stderr.

On a terminal: a rich live line with a spinner, elapsed time, images done, attempts and any
fallback.  Elsewhere (pipes, CI, tests): no animation, only one plain line per failed attempt
that was followed by a retry or a fallback, so logs stay readable and stdout stays clean for
``--json``.  The last failure is not printed: the error line that ends the run says it.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from ..types import Attempt, AttemptEvent, ImageEvent, StreamEvent


class Progress:
    def __init__(self, *, live: bool, n: int, label: str) -> None:
        self.live_enabled = live
        self.n = n
        self.label = label
        self.started = time.monotonic()
        self.images = 0
        self.attempts: list[Attempt] = []
        self.providers_tried: list[str] = []
        self._live: Any = None
        self._spinner: Any = None
        #: Per image: a failed attempt not yet reported (we learn what followed it later).
        self._pending: dict[int, Attempt] = {}

    # ---------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        if not self.live_enabled:
            return
        from rich.console import Console
        from rich.live import Live
        from rich.spinner import Spinner

        self._spinner = Spinner("dots")
        console = Console(file=sys.stderr)
        # redirect_stdout=False: streamed model text must reach stdout, not the status console.
        self._live = Live(
            self,
            console=console,
            refresh_per_second=8,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.live_enabled = False
        self._pending.clear()

    def __rich__(self) -> Any:
        from rich.text import Text

        # One line, cut with an ellipsis: a wrapped status line redraws badly (rich's Spinner
        # puts its text in a grid cell, which wraps, so the frame and the text are joined here).
        line = Text.assemble(self._spinner.render(time.monotonic()), " ", self._line())
        line.no_wrap = True
        line.overflow = "ellipsis"
        return line

    # ------------------------------------------------------------------------------- events
    def on_event(self, event: StreamEvent) -> None:
        if isinstance(event, ImageEvent):
            self.images += 1
        elif isinstance(event, AttemptEvent):
            att = event.attempt
            self.attempts.append(att)
            if att.provider not in self.providers_tried:
                self.providers_tried.append(att.provider)
            before = self._pending.pop(att.index, None)
            if before is not None and self._live is None:
                print(_attempt_line(before, att), file=sys.stderr, flush=True)
            if att.status != "ok":
                self._pending[att.index] = att

    def _line(self) -> str:
        elapsed = time.monotonic() - self.started
        parts = [self.label, f"{elapsed:.1f} s"]
        if self.n > 1:
            parts.append(f"{self.images}/{self.n} images")
        failed = [a for a in self.attempts if a.status != "ok"]
        if len(self.providers_tried) > 1:
            parts.append("fallback " + " → ".join(self.providers_tried))
        if failed:
            n = len(self.attempts)
            parts.append(f"{n} attempt{'s' if n > 1 else ''}, {len(failed)} failed")
            parts.append(f"last: {failed[-1].provider} {failed[-1].error_code or 'error'}")
        return " · ".join(parts)


def _attempt_line(failed: Attempt, then: Attempt) -> str:
    what = failed.error_code or failed.status
    detail = f": {' '.join((failed.error or '').split())}" if failed.error else ""
    follow = "retried" if then.provider == failed.provider else f"fell back to {then.provider}"
    return f"{failed.provider} attempt failed [{what}]{detail} ({follow})"
