"""Reading a batch file: CSV or JSON Lines, one generation request per row.

Columns (CSV header or JSON keys; case, spaces and dashes do not matter):

``prompt`` (required), ``name``, ``model``, ``provider``, ``aspect_ratio`` (``aspect``,
``ratio``), ``image_size`` (``size``), ``n`` (``count``), ``negative_prompt`` (``negative``),
``seed``, ``images`` (``image``, ``references``: paths or URLs, ``|``-separated in CSV, a list
in JSON).  An unknown column is an error, so a typo never silently drops a parameter.

Every row is checked before anything is sent: a bad file costs nothing.  Relative image paths
are resolved against the batch file's folder, so a run does not depend on the working directory.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from ..catalog import image_options_from
from ..errors import UsageError
from ..request import GenerationRequest

__all__ = ["BatchRow", "named_models", "parse_rows", "read_rows"]

T = TypeVar("T")

COLUMN_ALIASES: dict[str, str] = {
    "prompt": "prompt",
    "name": "name",
    "model": "model",
    "provider": "provider",
    "aspect_ratio": "aspect_ratio",
    "aspect": "aspect_ratio",
    "ratio": "aspect_ratio",
    "image_size": "image_size",
    "size": "image_size",
    "n": "n",
    "count": "n",
    "negative_prompt": "negative_prompt",
    "negative": "negative_prompt",
    "seed": "seed",
    "thinking": "thinking",
    "thinking_level": "thinking",
    "google_search": "google_search",
    "search": "google_search",
    "image_options": "image_options",
    "options": "image_options",
    "images": "images",
    "image": "images",
    "references": "images",
}
#: Separator of several reference images in one CSV cell.
CSV_IMAGE_SEPARATOR = "|"
MAX_ROW_IMAGES = 10
MAX_SEED = 2**31 - 1
MAX_NAME_CHARS = 80
SLUG_CHARS = 40
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


#: The request fields every fingerprint has held from the first manifests on.
_FINGERPRINTED = frozenset(
    ("prompt", "model", "provider", "aspect_ratio", "image_size", "n", "negative_prompt", "seed")
)


def _default(f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    return None if f.default_factory is MISSING else f.default_factory()


#: Each request field's default (``None`` for those without one).
_DEFAULTS = {f.name: _default(f) for f in fields(GenerationRequest)}


@dataclass(frozen=True)
class BatchRow:
    """One request of a batch, with everything that decides what is paid for."""

    #: 1-based position among the file's rows.
    index: int
    #: Line of the file the row starts on (for messages).
    line: int
    #: What to generate: the row's cells over the command line's defaults.  Its reference
    #: images are absolute paths or URLs.
    request: GenerationRequest
    name: str | None = None
    #: What identifies each reference for the fingerprint: a file's content digest (so moving
    #: the folder changes nothing, editing the image does), or the URL.
    image_ids: tuple[str, ...] = field(default=(), repr=False)

    @property
    def key(self) -> str:
        """The row's identity in the manifest: its ``name``, else its position."""
        return self.name or f"{self.index:04d}"

    @property
    def stem(self) -> str:
        """File name stem: ``<name>``, or ``<index>-<prompt slug>``."""
        if self.name:
            return self.name
        slug = slugify(self.request.prompt)
        return f"{self.index:04d}-{slug}" if slug else f"{self.index:04d}"

    def file_name(self, image_index: int, extension: str) -> str:
        """``<stem>.png`` for a one-image row, ``<stem>-<i>.png`` (1-based) otherwise."""
        if self.request.n == 1:
            return f"{self.stem}{extension}"
        return f"{self.stem}-{image_index + 1}{extension}"

    @property
    def fingerprint(self) -> str:
        """Changes when anything that is paid for changes: a done row whose fingerprint
        differs from the manifest's is generated again.  A request field added later counts
        only when it differs from its default, so that an upgrade does not redo every finished
        row."""
        params = {
            k: v
            for k, v in self.request.record().items()
            if k in _FINGERPRINTED or v != _DEFAULTS.get(k)
        }
        params["images"] = list(self.image_ids)
        blob = json.dumps(params, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def slugify(text: str, limit: int = SLUG_CHARS) -> str:
    """``"A fox, in the snow!"`` -> ``"a-fox-in-the-snow"`` (ASCII, at most ``limit`` chars)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    out = ""
    for w in words:
        nxt = f"{out}-{w}" if out else w
        if len(nxt) > limit:
            break
        out = nxt
    return out or (words[0][:limit] if words else "")


def read_rows(
    path: Path,
    defaults: GenerationRequest | None = None,
    check: Callable[[BatchRow], list[str]] | None = None,
) -> list[BatchRow]:
    """Read and check every row of a CSV / JSON Lines file; raise ``UsageError`` naming every
    problem of every row (``check``: more problems of each row, e.g. its model).  ``defaults``
    fills the cells a row leaves empty (its prompt is not used)."""
    try:
        text = path.read_text("utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"Batch file {path} does not exist.") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"Batch file {path} is not UTF-8 text.") from exc
    except OSError as exc:
        raise UsageError(f"Cannot read batch file {path}: {exc.strerror}.") from exc
    return parse_rows(
        text,
        name=path.name,
        base_dir=path.parent,
        fmt=_format_of(path, text),
        defaults=defaults,
        check=check,
    )


def named_models(path: Path) -> set[str]:
    """The models a batch file's rows name, read leniently (``read_rows`` reports what is
    wrong with the file): what to look up before the rows are checked against the catalog."""
    try:
        text = path.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return set()
    ignored: list[tuple[int, str]] = []
    fmt = _format_of(path, text)
    records = (
        _csv_records(text, path.name, ignored)
        if fmt == "csv"
        else _jsonl_records(text, path.name, ignored)
    )
    return {
        r["model"].strip()
        for _, r in records
        if isinstance(r.get("model"), str) and r["model"].strip()
    }


def _format_of(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "jsonl" if text.lstrip().startswith(("{", "[")) else "csv"


#: Problems listed before "(and N more)".
MAX_PROBLEMS_SHOWN = 50


def parse_rows(
    text: str,
    *,
    name: str = "batch",
    base_dir: Path | None = None,
    fmt: str = "csv",
    defaults: GenerationRequest | None = None,
    check: Callable[[BatchRow], list[str]] | None = None,
) -> list[BatchRow]:
    """The rows of ``text``, or a ``UsageError`` listing every problem found, one line each
    (an unknown column, and every fault of every row), so that one run shows them all."""
    problems: list[tuple[int, str]] = []
    raw = list(
        _csv_records(text, name, problems) if fmt == "csv" else _jsonl_records(text, name, problems)
    )
    if not raw and not problems:
        raise UsageError(f"{name} has no rows.")
    defaults = defaults or GenerationRequest(prompt="")
    rows: list[BatchRow] = []
    for pos, (line, record) in enumerate(raw, start=1):
        row, faults = _row(pos, line, record, defaults, base_dir)
        if check is not None:
            faults += check(row)
        problems += [(line, fault) for fault in faults]
        if not faults:
            rows.append(row)
    seen: dict[str, int] = {}
    for row in rows:
        if row.key in seen:
            problems.append(
                (
                    row.line,
                    f"the name {row.key!r} is already used on line {seen[row.key]}; names must "
                    "be unique (they name the output files).",
                )
            )
        seen.setdefault(row.key, row.line)
    if problems:
        problems.sort(key=lambda p: p[0])
        lines = [f"{name} line {line}: {message}" for line, message in problems]
        shown = lines[:MAX_PROBLEMS_SHOWN]
        if len(lines) > len(shown):
            shown.append(f"(and {len(lines) - len(shown)} more)")
        count = f"{len(lines)} problem{'s' if len(lines) > 1 else ''}"
        raise UsageError(f"{name} has {count}; nothing was sent:\n" + "\n".join(shown))
    return rows


def _csv_records(
    text: str, name: str, problems: list[tuple[int, str]]
) -> Iterable[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise UsageError(f"{name} is not valid CSV: {exc}.") from exc
    columns = [_column(h, 1, problems) for h in header]
    line = reader.line_num
    try:
        for cells in reader:
            start, line = line + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(columns):
                problems.append((start, f"{len(cells)} cells but the header has {len(columns)}."))
                continue
            yield (
                start,
                {c: v for c, v in zip(columns, cells, strict=False) if c is not None and v.strip()},
            )
    except csv.Error as exc:
        raise UsageError(f"{name} line {reader.line_num}: not valid CSV: {exc}.") from exc


def _jsonl_records(
    text: str, name: str, problems: list[tuple[int, str]]
) -> Iterable[tuple[int, dict[str, Any]]]:
    stripped = text.lstrip()
    if stripped.startswith("["):  # a plain JSON array of objects is accepted too
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"{name} is not valid JSON: {exc}.") from exc
        for i, item in enumerate(items, start=1):
            record = _json_object(item, i, problems)
            if record is not None:
                yield i, record
        return
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            problems.append((lineno, f"not valid JSON ({exc.args[0]})."))
            continue
        record = _json_object(item, lineno, problems)
        if record is not None:
            yield lineno, record


def _json_object(item: Any, line: int, problems: list[tuple[int, str]]) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        problems.append((line, "each row must be a JSON object."))
        return None
    out = {}
    for k, v in item.items():
        if v is None or (isinstance(v, str) and not v.strip()):
            continue
        column = _column(str(k), line, problems)
        if column is not None:
            out[column] = v
    return out


def _column(header: str, line: int, problems: list[tuple[int, str]]) -> str | None:
    norm = re.sub(r"[\s-]+", "_", header.strip().lower())
    column = COLUMN_ALIASES.get(norm)
    if column is None:
        known = ", ".join(sorted(set(COLUMN_ALIASES.values())))
        problems.append((line, f"unknown column {header!r}. Known columns: {known}."))
    return column


def _row(
    index: int,
    line: int,
    record: Mapping[str, Any],
    defaults: GenerationRequest,
    base_dir: Path | None,
) -> tuple[BatchRow, list[str]]:
    """The row and every problem it has (not only the first)."""
    problems: list[str] = []

    def read_field(read: Callable[..., T], *args: Any) -> T | None:
        try:
            return read(*args)
        except UsageError as exc:
            problems.append(exc.message)
            return None

    prompt = record.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        problems.append("the prompt is empty.")
    images = read_field(_images, record.get("images"), base_dir) or []
    name = read_field(_name, record.get("name"))
    texts = {
        key: read_field(_text, record, key)
        for key in (
            "model",
            "provider",
            "aspect_ratio",
            "image_size",
            "negative_prompt",
            "thinking",
        )
    }
    n = read_field(_int, record, "n", 1, 10) if "n" in record else defaults.n
    seed = read_field(_int, record, "seed", 0, MAX_SEED) if "seed" in record else defaults.seed
    search = read_field(_bool, record, "google_search")
    options = read_field(_options, record.get("image_options"))
    # Built even with problems (a field that failed takes its default), so that the catalog
    # check can name the row's other problems too; only a row without any is run.
    row = BatchRow(
        index=index,
        line=line,
        request=defaults.with_(
            prompt=prompt.strip() if isinstance(prompt, str) else "",
            model=texts["model"] or defaults.model,
            provider=texts["provider"] or defaults.provider,
            aspect_ratio=texts["aspect_ratio"] or defaults.aspect_ratio,
            image_size=texts["image_size"] or defaults.image_size,
            n=n if n is not None else defaults.n,
            negative_prompt=texts["negative_prompt"] or defaults.negative_prompt,
            seed=seed,
            thinking=texts["thinking"] or defaults.thinking,
            google_search=defaults.google_search if search is None else search,
            image_options=defaults.image_options if options is None else options,
            images=tuple(path for path, _ in images),
        ),
        name=name,
        image_ids=tuple(ident for _, ident in images),
    )
    return row, problems


def _text(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise UsageError(f"{key} must be text, not {type(value).__name__}.")
    return value.strip() or None


def _options(value: Any) -> dict[str, Any] | None:
    """Image options: a JSON object (in a CSV cell, its text); they replace the command
    line's (``None``: the row has none of its own)."""
    return None if value is None else image_options_from(value)


def _int(record: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = record[key]
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise UsageError(f"{key} must be a whole number, not {record[key]!r}.") from None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{key} must be a whole number from {low} to {high}; got {value!r}.")
    return value


_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})


def _bool(record: Mapping[str, Any], key: str) -> bool | None:
    """A yes/no cell (``true``, ``yes``, ``1``...; empty: the default)."""
    value = record.get(key)
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if not text:
        return None
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise UsageError(f"{key} must be true or false, not {value!r}.")


def _name(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    # Names become file names: nothing that could leave the output folder or hide a file.
    if not _NAME_RE.match(text) or len(text) > MAX_NAME_CHARS or text.endswith("."):
        raise UsageError(
            f"name {text!r} must be letters, digits, '.', '_' or '-' (at most "
            f"{MAX_NAME_CHARS}), starting with a letter or digit."
        )
    return text


def _images(value: Any, base_dir: Path | None) -> list[tuple[str, str]]:
    if value is None:
        return []
    if isinstance(value, str):
        items = [v.strip() for v in value.split(CSV_IMAGE_SEPARATOR)]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise UsageError("images must be a path or URL, or a list of them.")
    items = [i for i in items if i]
    if len(items) > MAX_ROW_IMAGES:
        raise UsageError(f"at most {MAX_ROW_IMAGES} reference images per row; got {len(items)}.")
    return [_resolve_image(i, base_dir) for i in items]


def _resolve_image(item: str, base_dir: Path | None) -> tuple[str, str]:
    """(what to send, what identifies it): a URL is both; a file is its path and digest."""
    if item.startswith(("http://", "https://")):
        return item, item
    if item.startswith("data:"):
        return item, "sha256:" + hashlib.sha256(item.encode("ascii", "replace")).hexdigest()[:16]
    path = Path(item).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except FileNotFoundError:
        raise UsageError(f"reference image {item!r} does not exist ({path}).") from None
    except OSError as exc:
        raise UsageError(f"cannot read reference image {item!r}: {exc.strerror}.") from exc
    return str(path.resolve()), f"sha256:{digest}"
