"""Conversational editing: a session is a tree of turns, and a turn continues from any other.

Generate, then "make the sky purple", then "now remove the car", go back a step and try another
idea: each ``send`` is one generation whose history is the path from the first turn to the
turn it continues (its parent), never the other branches.  What each provider needs to carry
the conversation on (Gemini's thought signatures, OpenRouter's ``reasoning_details``) is kept
with each turn and sent back as it came (docs/providers.md, "Conversations").

How much of a long path goes upstream is one rule, ``history_for``: the turns of the last
``HISTORY_IMAGE_TURNS`` steps go with their images (the references given and the images drawn);
older turns go as their text, and the model is told how many images each had.  A session of a
hundred turns sends no more images than one of three.

``AsyncSession`` keeps its turns in memory; the service keeps them in its database (one job per
turn) and rebuilds the same ``PriorTurn`` values from its files.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ValidationError
from .references import ReferenceInput, resolve_references
from .request import GenerationRequest
from .types import Image, PriorTurn, ReferenceImage, Result

if TYPE_CHECKING:
    from typing import Unpack

    from .client import AsyncClient, EventCallback, TurnOptions, _LoopThread

__all__ = [
    "HISTORY_IMAGE_TURNS",
    "AsyncSession",
    "Session",
    "Turn",
    "answering_image",
    "first_whole_turn",
    "history_for",
    "prior_turn",
]

#: How many of the most recent turns of a path are sent with their images.
HISTORY_IMAGE_TURNS = 3

_LATEST: Any = object()


@dataclass(eq=False)
class Turn:
    """One step of a session: what was asked, and what came back."""

    id: str
    #: The turn this one continued (``None``: the first of its branch).
    parent: Turn | None
    prompt: str
    #: The reference images the prompt came with, as sent.
    references: tuple[ReferenceImage, ...] = field(repr=False)
    result: Result = field(repr=False)

    @property
    def text(self) -> str:
        return self.result.text

    @property
    def images(self) -> list[Any]:
        return self.result.images

    @property
    def provider(self) -> str:
        return self.result.provider

    @property
    def model(self) -> str:
        return self.result.model

    def path(self) -> list[Turn]:
        """The turns from the first to this one: the history a turn after it is sent."""
        path: list[Turn] = []
        turn: Turn | None = self
        while turn is not None:
            path.append(turn)
            turn = turn.parent
        return path[::-1]

    def prior(self) -> PriorTurn:
        """This turn as a later call sends it back (``prior_turn``)."""
        return prior_turn(self.result, self.references)


def answering_image(result: Result) -> Image | None:
    """The image a later turn continues from: the first of the request.  A turn of several
    images continues from it: each image was its own call, and one answer is what the model
    said."""
    return min(result.images, key=lambda i: i.index) if result.images else None


def prior_turn(result: Result, references: tuple[ReferenceImage, ...] = ()) -> PriorTurn:
    """A generation as the next turn of its conversation sends it back."""
    first = answering_image(result)
    return PriorTurn(
        prompt=result.effective_prompt,
        references=references,
        text=result.text,
        images=(
            (ReferenceImage(first.data, first.mime_type, first.width, first.height),)
            if first is not None
            else ()
        ),
        provider=result.provider,
        model=result.provider_model,
        continuation=first.continuation if first is not None else None,
    )


def first_whole_turn(length: int, image_turns: int = HISTORY_IMAGE_TURNS) -> int:
    """The index of the first turn of a path of ``length`` turns sent with its images."""
    if image_turns < 0:
        raise ValueError("image_turns must be 0 or more")
    return max(length - image_turns, 0)


def history_for(
    path: Sequence[PriorTurn], *, image_turns: int = HISTORY_IMAGE_TURNS
) -> tuple[PriorTurn, ...]:
    """The history sent for ``path`` (oldest first): the last ``image_turns`` turns as they
    are, the older ones without their images (``images_left_out`` counts them)."""
    cut = first_whole_turn(len(path), image_turns)
    older = [
        PriorTurn(
            prompt=t.prompt,
            text=t.text,
            provider=t.provider,
            model=t.model,
            continuation=t.continuation,
            images_left_out=t.images_left_out + len(t.references) + len(t.images),
        )
        for t in path[:cut]
    ]
    return (*older, *path[cut:])


class AsyncSession:
    """A conversation with one client: ``send`` a prompt, get a ``Turn``; every turn stays in
    the tree, and ``branch`` (or ``send(parent=...)``) continues from any of them.

    ``defaults`` are generation options every turn uses unless its ``send`` says otherwise
    (``model``, ``provider``, ``aspect_ratio``...)."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        image_turns: int = HISTORY_IMAGE_TURNS,
        **defaults: Unpack[TurnOptions],
    ) -> None:
        if isinstance(image_turns, bool) or not isinstance(image_turns, int) or image_turns < 0:
            raise ValidationError(
                f"image_turns must be a whole number, 0 or more; got {image_turns!r}.",
                field="image_turns",
            )
        self.client = client
        self.defaults = defaults
        self.image_turns = image_turns
        #: Every turn, in the order they were made.
        self.turns: list[Turn] = []
        #: The turn the next ``send`` continues (``None``: a new first turn).
        self.head: Turn | None = None
        self._ids = itertools.count(1)

    def branch(self, turn: Turn | None) -> AsyncSession:
        """Continue from ``turn`` (``None``: start over): the next ``send`` builds on it, and
        the turns after it stay in the tree."""
        if turn is not None and turn not in self.turns:
            raise ValidationError("That turn is not part of this session.", field="parent")
        self.head = turn
        return self

    def history(self, parent: Turn | None) -> tuple[PriorTurn, ...]:
        """What a turn continuing ``parent`` sends as its history."""
        path = parent.path() if parent is not None else []
        return history_for([t.prior() for t in path], image_turns=self.image_turns)

    async def send(
        self,
        prompt: str,
        *,
        images: Iterable[ReferenceInput] = (),
        parent: Turn | None = _LATEST,
        on_event: EventCallback | None = None,
        stream: bool = False,
        **options: Unpack[TurnOptions],
    ) -> Turn:
        """Make the next turn: ``prompt`` (with reference ``images``) continuing ``parent``
        (default: the head, the turn made last unless ``branch`` moved it).  A failed
        generation raises and adds no turn."""
        if parent is _LATEST:
            parent = self.head
        elif parent is not None and parent not in self.turns:
            raise ValidationError("That turn is not part of this session.", field="parent")
        references = await resolve_references(images)
        chosen: dict[str, Any] = {**self.defaults, **options}
        if chosen.get("image_options") is None:
            chosen.pop("image_options", None)
        request = GenerationRequest(
            prompt=prompt, images=references, history=self.history(parent), **chosen
        )
        result = await self.client.run(request, on_event=on_event, stream=stream)
        turn = Turn(f"t{next(self._ids)}", parent, prompt, references, result)
        self.turns.append(turn)
        self.head = turn
        return turn

    def children(self, turn: Turn | None) -> list[Turn]:
        """The turns that continue ``turn`` (``None``: the first turns of the session)."""
        return [t for t in self.turns if t.parent is turn]


class Session:
    """The blocking twin of ``AsyncSession`` (``Client.session()``)."""

    def __init__(self, thread: _LoopThread, session: AsyncSession) -> None:
        self._thread = thread
        self.aio = session

    @property
    def turns(self) -> list[Turn]:
        return self.aio.turns

    @property
    def head(self) -> Turn | None:
        return self.aio.head

    def branch(self, turn: Turn | None) -> Session:
        self.aio.branch(turn)
        return self

    def children(self, turn: Turn | None) -> list[Turn]:
        return self.aio.children(turn)

    def history(self, parent: Turn | None) -> tuple[PriorTurn, ...]:
        return self.aio.history(parent)

    def send(
        self,
        prompt: str,
        *,
        images: Iterable[ReferenceInput] = (),
        parent: Turn | None = _LATEST,
        **options: Unpack[TurnOptions],
    ) -> Turn:
        turn: Turn = self._thread.run(
            self.aio.send(prompt, images=images, parent=parent, **options)
        )
        return turn
