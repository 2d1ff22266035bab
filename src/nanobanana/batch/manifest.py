"""The batch manifest: an append-only JSON Lines log beside the outputs.

Each line is one event about one row (``running``, ``submitted``, ``done``, ``failed``); a row's
state is its last event.  Appending (with ``fsync``) instead of rewriting one JSON document means
a run killed at any moment leaves every earlier event intact; a torn last line is ignored.

Images land write-ahead (``stage``, then ``land``): each is written in full and fsynced under a
hidden staging name, then the event naming it is logged, then it is renamed into place.  So a
file visible under its final name is always in the log, and an image logged by a run killed
before the rename is put in place when the manifest is next opened: an image paid for is never
asked for again.  A row interrupted before ``done`` runs again for the images it still lacks.
In server mode the job id is logged as ``submitted`` as soon as the server accepts it, so a
resumed run waits for that job instead of paying for a new one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from ..errors import UsageError
from ..files import Pieces, atomic_write, user_file_mode

__all__ = ["MANIFEST_NAME", "Manifest", "RowState"]

MANIFEST_NAME = "manifest.jsonl"
MANIFEST_VERSION = 1

Status = Literal["running", "submitted", "done", "failed"]


@dataclass
class RowState:
    """What the manifest knows about one row."""

    key: str
    fingerprint: str
    status: Status
    #: Saved files by image index (0-based), names relative to the output folder.
    files: dict[int, str] = field(default_factory=dict)
    job_id: str | None = None
    error: str | None = None
    error_code: str | None = None
    #: How many runs of this row ended in ``failed`` (names server idempotency keys).
    failures: int = 0

    @property
    def interrupted(self) -> bool:
        """A local call was under way when the run stopped: it may have been billed."""
        return self.status == "running"


_STAGED = ".landing"


def staging_name(name: str) -> str:
    """Where an image waits, complete, until the event naming it is logged."""
    return f".{name}{_STAGED}"


class Manifest:
    """Load the log, answer "what is this row's state", append events."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.states: dict[str, RowState] = {}
        #: USD recorded by every finished event, previous runs included.
        self.recorded_cost = 0.0
        #: The batch file the manifest was started for (from its first line).
        self.source: str | None = None
        self._fh: TextIO | None = None

    @classmethod
    def open(cls, folder: Path, *, source: str) -> Manifest:
        folder.mkdir(parents=True, exist_ok=True)
        manifest = cls(folder / MANIFEST_NAME)
        manifest._load()
        manifest._drop_torn_tail()
        manifest._finish_landings()
        new = not manifest.path.exists() or manifest.path.stat().st_size == 0
        manifest._fh = manifest.path.open("a", encoding="utf-8")
        if new:
            manifest._write({"type": "batch", "version": MANIFEST_VERSION, "source": source})
            manifest.source = source
        return manifest

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drop_torn_tail(self) -> None:
        """Cut a last line a crash left unfinished, so the next event starts on its own line."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.path.open("r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)

    # --------------------------------------------------------------------------- reading
    def _load(self) -> None:
        if not self.path.exists():
            return
        for event in self._events():
            if event.get("type") == "batch":
                if event.get("version", MANIFEST_VERSION) > MANIFEST_VERSION:
                    raise UsageError(
                        f"{self.path} was written by a newer nanobanana; upgrade to resume it."
                    )
                self.source = event.get("source")
                continue
            if event.get("type") == "row":
                self._apply(event)

    def _events(self) -> Iterator[dict[str, Any]]:
        lines = self.path.read_text("utf-8").splitlines()
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                if i == len(lines) - 1:
                    continue  # torn by a crash mid-write: that event never happened
                raise UsageError(
                    f"{self.path} line {i + 1} is damaged; fix or delete that line to resume."
                ) from None
            if isinstance(event, dict):
                yield event

    def _apply(self, event: dict[str, Any]) -> None:
        key = str(event["key"])
        status: Status = event["status"]
        prev = self.states.get(key)
        same = prev is not None and prev.fingerprint == event["fingerprint"]
        state = RowState(key=key, fingerprint=event["fingerprint"], status=status)
        if same and prev is not None:
            state.files = dict(prev.files)
            state.failures = prev.failures
            state.job_id = prev.job_id
        state.files.update({int(i): str(f) for i, f in event.get("files", {}).items()})
        if "job_id" in event:
            state.job_id = event["job_id"]
        if status == "failed":
            state.failures += 1
            state.error = event.get("error")
            state.error_code = event.get("error_code")
        if status in ("done", "failed"):
            self.recorded_cost += float(event.get("cost") or 0.0)
        self.states[key] = state

    def _finish_landings(self) -> None:
        """Rename into place each logged image a run stopped before renaming (one look at the
        folder, not one per logged file)."""
        folder = self.path.parent
        logged = {name for state in self.states.values() for name in state.files.values()}
        for staged in folder.glob(staging_name("*")):
            name = staged.name.removeprefix(".").removesuffix(_STAGED)
            if name in logged:
                os.replace(staged, folder / name)

    # --------------------------------------------------------------------------- writing
    def stage(self, name: str, data: bytes | Pieces) -> None:
        """Write an image, complete and fsynced, under its hidden staging name; ``land`` logs
        it and moves it into place.  Touches only that file, so it may run in a thread."""
        atomic_write(self.path.parent / staging_name(name), data, mode=user_file_mode())

    def land(
        self, key: str, fingerprint: str, status: Status, files: Mapping[int, str], **fields: Any
    ) -> RowState:
        """Log the staged ``files`` (image index -> file name) with one event, then rename
        them into place: an image is never visible under its name before it is logged."""
        state = self.record(key, fingerprint, status, files=dict(files), **fields)
        folder = self.path.parent
        for name in files.values():
            os.replace(folder / staging_name(name), folder / name)
        return state

    def record(self, key: str, fingerprint: str, status: Status, **fields: Any) -> RowState:
        """Append one event and apply it; returns the row's new state."""
        event: dict[str, Any] = {
            "type": "row",
            "key": key,
            "fingerprint": fingerprint,
            "status": status,
        }
        event.update({k: v for k, v in fields.items() if v is not None})
        event["at"] = round(time.time(), 3)
        if "files" in event:
            event["files"] = {str(i): f for i, f in event["files"].items()}
        self._write(event)
        self._apply(event)
        return self.states[key]

    def _write(self, event: dict[str, Any]) -> None:
        if self._fh is None:
            raise RuntimeError("the manifest is closed")
        self._fh.write(json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
