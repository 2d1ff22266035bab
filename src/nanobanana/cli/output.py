"""Where generated images go, and what is printed about them.

Files are never overwritten silently: an explicit ``-o`` file that exists is refused before the
paid call (unless ``--force``), and at save time a name is claimed with ``os.link``, which fails
instead of replacing, so a file that appeared meanwhile is kept and the image takes the next free
name.  Default names are ``nanobanana-<timestamp>-<i>.<ext>`` in the current folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..types import Image, Result, file_extension, flat_dict

IMAGE_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
IMAGE_SUFFIXES[".webp"] = "image/webp"


@dataclass
class SavedFile:
    path: Path
    image: Image
    #: Set when the planned name was taken and another one was used.
    renamed_from: Path | None = None


@dataclass
class OutputTarget:
    """``-o``: a folder (default: the current one) or a file name."""

    folder: Path
    file: Path | None = None
    force: bool = False
    prefix: str = "nanobanana"

    @classmethod
    def parse(cls, value: str | None, *, force: bool = False) -> OutputTarget:
        if not value:
            return cls(folder=Path.cwd(), force=force)
        path = Path(value).expanduser().absolute()
        if value.endswith(("/", os.sep)) or path.is_dir() or not path.suffix:
            return cls(folder=path, force=force)
        return cls(folder=path.parent, file=path, force=force)

    def planned(self, n: int, stamp: str) -> list[Path]:
        """The names images 0..n-1 will get (before any collision handling)."""
        if self.file is not None:
            if n == 1:
                return [self.file]
            return [
                self.file.with_name(f"{self.file.stem}-{i + 1}{self.file.suffix}") for i in range(n)
            ]
        return [self.folder / f"{self.prefix}-{stamp}-{i + 1}.png" for i in range(n)]

    def precheck(self, n: int) -> None:
        """Before anything is paid for: a writable folder, and no explicit name already taken."""
        if self.folder.exists() and not self.folder.is_dir():
            raise UsageError(f"{self.folder} is a file, not a folder; choose another -o.")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"Cannot create {self.folder} ({exc.strerror}); choose another -o."
            ) from exc
        try:  # a real write: access() says yes to root, also where nothing can be created
            with tempfile.NamedTemporaryFile(dir=self.folder, prefix=".nanobanana-check-"):
                pass
        except OSError as exc:
            raise UsageError(
                f"Cannot create a file in {self.folder} ({exc.strerror}); choose another -o."
            ) from None
        if self.file is not None and self.file.suffix.lower() != ".png":
            raise UsageError(
                f"-o {self.file.name}: images are saved as the model sends them (PNG for the "
                "Gemini models), with their provenance inside; name a .png file (and convert it "
                f"afterwards if you need {self.file.suffix}), or end a folder name with /."
            )
        if self.file is None or self.force:
            return
        taken = [p for p in self.planned(n, "") if p.exists()]
        if taken:
            raise UsageError(
                f"{taken[0]} already exists; choose another -o, or pass --force to overwrite it."
            )

    def save(self, images: list[Image], *, n: int, stamp: str | None = None) -> list[SavedFile]:
        stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
        return [self.save_one(img, n=n, stamp=stamp) for img in images]

    def save_one(self, img: Image, *, n: int, stamp: str) -> SavedFile:
        from ..files import file_data, write_new_file

        names = self.planned(n, stamp)
        planned = names[img.index] if img.index < len(names) else names[-1]
        planned = _with_real_suffix(planned, img.mime_type)
        path = write_new_file(
            planned, file_data(img), overwrite=self.force and self.file is not None
        )
        return SavedFile(path, img, renamed_from=planned if path != planned else None)


class ArrivalSaver:
    """Saves each image the moment it arrives, so a Ctrl-C (or a crash) while the other images
    of the request are still coming loses none that was paid for; at the end each file is
    rewritten in place with the whole request's provenance (its cost, time and attempts)."""

    def __init__(self, target: OutputTarget, n: int) -> None:
        self.target = target
        self.n = n
        self.stamp = time.strftime("%Y%m%d-%H%M%S")
        self.saved: dict[int, SavedFile] = {}

    def on_image(self, img: Image) -> None:
        if img.index not in self.saved:
            self.saved[img.index] = self.target.save_one(img, n=self.n, stamp=self.stamp)

    def finish(self, images: list[Image]) -> list[SavedFile]:
        from ..files import atomic_write, file_data, user_file_mode

        out = []
        for img in images:
            early = self.saved.get(img.index)
            if early is None:
                out.append(self.target.save_one(img, n=self.n, stamp=self.stamp))
                continue
            atomic_write(early.path, file_data(img), mode=user_file_mode())
            early.image = img
            out.append(early)
        return out


def _with_real_suffix(path: Path, mime: str) -> Path:
    """Keep the user's name, but never put PNG bytes in a ``.jpg`` (or the reverse)."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES and IMAGE_SUFFIXES[suffix] != mime:
        return path.with_suffix(f".{file_extension(mime)}")
    return path


# ------------------------------------------------------------------------------- reporting
def result_json(result: Result, saved: list[SavedFile]) -> dict[str, Any]:
    """The machine-readable result: everything but image bytes."""
    return {
        "files": [
            {
                "path": str(s.path.resolve()),
                "index": s.image.index,
                "width": s.image.width,
                "height": s.image.height,
                "mime_type": s.image.mime_type,
                "bytes": s.path.stat().st_size,
            }
            for s in saved
        ],
        "model": result.model,
        "provider": result.provider,
        "provider_model": result.provider_model,
        "prompt": result.prompt,
        "effective_prompt": result.effective_prompt,
        "negative_prompt": result.negative_prompt,
        "aspect_ratio": result.aspect_ratio,
        "image_size": result.image_size,
        "seed": result.seed,
        "thinking": result.thinking,
        "google_search": result.google_search,
        "image_options": result.image_options,
        "grounding": None if result.grounding is None else result.grounding.to_dict(),
        "text": result.text,
        "finish_reason": result.finish_reason,
        "cost": result.usage.cost,
        "cost_is_estimate": result.usage.cost_is_estimate,
        "usage": flat_dict(result.usage),
        "attempts": [flat_dict(a) for a in result.attempts],
        "fallback_used": result.fallback_used,
        "failures": [flat_dict(f) for f in result.failures],
        "warnings": list(result.warnings),
        "elapsed_s": round(result.elapsed_s, 3),
        "first_image_s": None if result.first_image_s is None else round(result.first_image_s, 3),
        "synthetic": result.synthetic,
    }


def summary_lines(result: Result, saved: list[SavedFile]) -> list[str]:
    lines = []
    for s in saved:
        kind = s.image.mime_type.split("/")[-1].upper()
        lines.append(f"Saved {_display(s.path)} ({s.image.width}x{s.image.height} {kind})")
    facts = [f"{result.model} via {result.provider}"]
    if result.usage.cost is not None and not result.synthetic:
        est = "~" if result.usage.cost_is_estimate else ""
        facts.append(f"{est}${result.usage.cost:.4f}")
    facts.append(f"{result.elapsed_s:.1f} s")
    if result.synthetic:
        facts.append("synthetic")
    lines.append(" · ".join(facts))
    if result.image_options:
        lines.append(
            "Options: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in result.image_options.items())
        )
    if result.grounding is not None:
        if result.grounding.queries:
            lines.append("Searched: " + "; ".join(result.grounding.queries))
        lines.extend(f"Source: {s.title or s.url} <{s.url}>" for s in result.grounding.sources)
    return lines


def _display(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return str(path)
