"""The backend of ``nanobanana mcp`` (stdio): the library, with every image kept in a folder.

A generation gets an id (``20261207-093012-1f3a9c``, sortable by time); its images are
``<folder>/<id>-<k>.<ext>``, each written the moment it arrives (a call cancelled while other
images are still coming loses none that arrived) and rewritten at the end with the whole
request's provenance, and ``<folder>/.nanobanana/<id>.json`` records the rest, so
``get_generation`` and references to earlier results work after a restart too.

Sessions live as long as the server process (``nanobanana.conversation``); their turns are
generations like any other.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

from ..client import AsyncClient
from ..conversation import AsyncSession, Turn
from ..errors import MissingKeyError, ValidationError
from ..files import atomic_write, file_data, user_file_mode, write_new_file
from ..providers import INFOS
from ..references import ReferenceInput
from ..request import GenerationRequest
from ..types import Image, ImageEvent, Result, StreamEvent
from .results import Outcome, SavedImage, failed_images
from .tools import LATEST, Progress, event_message

__all__ = ["LocalBackend"]

#: A generation id, optionally with the image wanted (``<id>#2``: its second image).
_ID = re.compile(r"(?P<id>\d{8}-\d{6}-[0-9a-f]{6})(?:#(?P<k>\d+))?")
RECORDS = ".nanobanana"


class LocalBackend:
    """Tools over an ``AsyncClient``, the images saved in ``folder``."""

    references_help = (
        "file paths (absolute, or relative to the folder the server started in), http(s) URLs, or "
        "the generation_id of an earlier result (<id>#2 for its second image)"
    )

    def __init__(self, client: AsyncClient, folder: Path) -> None:
        self.client = client
        self.folder = folder
        self.sessions: dict[str, AsyncSession] = {}
        #: Generation id -> the session turn it was (its session's id, the turn).
        self.turns: dict[str, tuple[str, Turn]] = {}

    # ------------------------------------------------------------------------ tools
    async def generate(
        self, request: GenerationRequest, references: list[str], progress: Progress
    ) -> Outcome:
        request = request.with_(images=tuple(await self._references(references)))
        generation_id = _new_id()
        arrivals = _Arrivals(self.folder, generation_id, progress)
        result = await self.client.run(request, on_event=arrivals.on_event)
        return await self._keep(generation_id, result, arrivals)

    async def turn(
        self,
        request: GenerationRequest,
        references: list[str],
        session_id: str | None,
        parent_id: str | None,
        progress: Progress,
    ) -> Outcome:
        refs = await self._references(references)
        sid, session, parent = self._session(session_id, parent_id)
        generation_id = _new_id()
        arrivals = _Arrivals(self.folder, generation_id, progress)
        # ``None`` leaves the choice to the client's defaults, as for any generation.
        turn = await session.send(
            request.prompt,
            images=refs,
            parent=parent,
            on_event=arrivals.on_event,
            model=request.model,
            provider=request.provider,
            aspect_ratio=request.aspect_ratio,
            image_size=request.image_size,
        )
        turn.id = generation_id  # a turn is named by its generation
        self.turns[generation_id] = (sid, turn)
        parent_generation = turn.parent.id if turn.parent is not None else None
        return await self._keep(generation_id, turn.result, arrivals, sid, parent_generation)

    async def generation(self, generation_id: str) -> Outcome:
        outcome = await asyncio.to_thread(self._read, generation_id)
        if outcome is None:
            raise ValidationError(
                f"No generation {generation_id!r} in {self.folder}: pass a generation_id an "
                "earlier result of this server returned.",
                field="generation_id",
            )
        return outcome

    async def models(self) -> list[Any]:
        return await self.client.models(live=False)

    def missing_key_advice(self, exc: MissingKeyError) -> str:
        envs = " or ".join(INFOS[exc.provider].key_env_vars)
        return (
            f"No {exc.provider} API key. Set {envs} in this MCP server's environment (the "
            f"'env' of its entry in the client's configuration), or run `nanobanana keys set "
            f"{exc.provider}` once in a terminal; then restart the server. Or start it with "
            "--emulator for synthetic images without a key."
        )

    # ------------------------------------------------------------------------ helpers
    def _record_path(self, generation_id: str) -> Path:
        return self.folder / RECORDS / f"{generation_id}.json"

    def _session(
        self, session_id: str | None, parent_id: str | None
    ) -> tuple[str, AsyncSession, Turn | None]:
        """The session a turn goes to (a new one for ``None``), and the turn it continues."""
        if session_id is None:
            sid = f"s-{secrets.token_hex(6)}"
            self.sessions[sid] = self.client.session()
            return sid, self.sessions[sid], None
        session = self.sessions.get(session_id)
        if session is None:
            raise ValidationError(
                f"No session {session_id!r} in this server: sessions last as long as the "
                "server process. Start a new one with continue_session (no session_id), "
                "passing the last image's generation_id in images.",
                field="session_id",
            )
        if parent_id == LATEST:
            return session_id, session, session.head
        found = self.turns.get(parent_id or "")
        if found is None or found[0] != session_id:
            raise ValidationError(
                f"Session {session_id} has no turn {parent_id!r}: turn_id is the "
                "generation_id of one of its turns.",
                field="turn_id",
            )
        return session_id, session, found[1]

    async def _references(self, items: list[str]) -> list[ReferenceInput]:
        return [await self._reference(item) for item in items]

    async def _reference(self, item: str) -> ReferenceInput:
        text = item.strip()
        match = _ID.fullmatch(text)
        earlier = await asyncio.to_thread(self._read, match["id"]) if match else None
        if match and earlier is not None:
            k = int(match["k"] or 1)
            chosen = [i for i in earlier.images if i.index == k - 1]
            if not chosen:
                raise ValidationError(
                    f"Generation {match['id']} has no image {k} (it has {len(earlier.images)}).",
                    field="images",
                )
            return chosen[0].data
        if text.startswith(("http://", "https://", "data:")):
            return text
        return await asyncio.to_thread(_existing_file, text)

    def _read(self, generation_id: str) -> Outcome | None:
        """A generation kept in the folder (``None``: no such generation)."""
        match = _ID.fullmatch(generation_id.strip())
        record = self._record_path(match["id"]) if match else None
        if record is None or not record.is_file():
            return None
        facts = json.loads(record.read_text())
        images = [
            SavedImage(**i, data=Path(i["location"]).read_bytes())
            for i in facts.pop("images")
            if Path(i["location"]).is_file()  # a file deleted since is left out
        ]
        facts = {k: v for k, v in facts.items() if k in Outcome.__dataclass_fields__}
        return Outcome(**facts, images=images)

    async def _keep(
        self,
        generation_id: str,
        result: Result,
        arrivals: _Arrivals,
        session_id: str | None = None,
        parent_id: str | None = None,
    ) -> Outcome:
        saved = await asyncio.to_thread(arrivals.finish, result.images)
        outcome = Outcome(
            generation_id=generation_id,
            prompt=result.prompt,
            model=result.model,
            provider=result.provider,
            images=saved,
            text=result.text,
            aspect_ratio=result.aspect_ratio,
            image_size=result.image_size,
            cost=result.cost,
            cost_is_estimate=result.cost_is_estimate,
            warnings=[
                *result.warnings,
                *failed_images((f.index, f.error) for f in result.failures),
            ],
            synthetic=result.synthetic,
            session_id=session_id,
            parent_id=parent_id,
        )
        record = json.dumps(outcome.facts(), indent=1).encode()
        await asyncio.to_thread(atomic_write, self._record_path(generation_id), record)
        return outcome


def _existing_file(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_file():
        raise ValidationError(
            f"No file {text!r} (looked in {path.resolve().parent}). Pass a file path, an "
            "http(s) URL, or a generation_id an earlier result returned.",
            field="images",
        )
    return path


def _new_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


class _Arrivals:
    """Saves each image the moment it arrives, and tells progress about it."""

    def __init__(self, folder: Path, generation_id: str, progress: Progress) -> None:
        self.folder = folder
        self.generation_id = generation_id
        self.progress = progress
        self.paths: dict[int, Path] = {}

    async def on_event(self, event: StreamEvent) -> None:
        if isinstance(event, ImageEvent) and event.image.index not in self.paths:
            self.paths[event.image.index] = await asyncio.to_thread(self._save, event.image)
        said = event_message(event)
        if said is not None:
            await self.progress(*said)

    def _save(self, image: Image) -> Path:
        name = f"{self.generation_id}-{image.index + 1}{image.extension}"
        return write_new_file(self.folder / name, file_data(image))

    def finish(self, images: list[Image]) -> list[SavedImage]:
        """Every image saved, with the whole request's provenance now known."""
        out = []
        for image in images:
            path = self.paths.get(image.index)
            if path is None:
                path = self._save(image)
            else:
                atomic_write(path, file_data(image), mode=user_file_mode())
            path = path.resolve()
            out.append(
                SavedImage(
                    index=image.index,
                    uri=path.as_uri(),
                    location=str(path),
                    mime_type=image.mime_type,
                    width=image.width,
                    height=image.height,
                    size=path.stat().st_size,
                    data=image.data,
                )
            )
        return out
