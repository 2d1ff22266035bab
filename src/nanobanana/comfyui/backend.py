"""What a node run does: call the library locally or a nanobanana server, and explain failures.

Keys never come from a node: locally they come from the environment ComfyUI was started with or
the keys file (``nanobanana keys set``); with a server profile the server uses the keys its user
stored there, with its fallback, and the job lands in the gallery.

ComfyUI calls node functions on its own thread, sometimes one that already runs an event loop,
so the async work runs on a private thread with its own loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from nanobanana.errors import (
    BlockedError,
    ContentError,
    MissingKeyError,
    NanobananaError,
    QuotaError,
    UsageError,
)
from nanobanana.request import GenerationRequest
from nanobanana.types import PriorTurn

__all__ = [
    "LOCAL",
    "NodeResult",
    "NodeSession",
    "explain",
    "profile_choices",
    "run_requests",
    "run_turn",
]

log = logging.getLogger("nanobanana.comfyui")

#: The server-profile choice meaning "run here, with keys from the environment or keys file".
LOCAL = "(local keys)"
T = TypeVar("T")


@dataclass
class NodeResult:
    images: list[bytes]
    text: str
    #: Parameters and outcome (no secret): the node's ``info`` output.
    info: dict[str, Any]


@dataclass(frozen=True)
class NodeSession:
    """A conversation an Edit node continues (its ``session`` input and output): a value, so
    wiring one session output into two nodes makes two branches.  Locally it holds the path
    of turns itself; with a server profile, the server's session and the turn to continue."""

    #: ``LOCAL`` or the server profile the session runs on.
    where: str
    turns: tuple[PriorTurn, ...] = ()
    server_session: str | None = None
    turn_id: str | None = None


def profile_choices(env: Mapping[str, str] | None = None) -> list[str]:
    """``LOCAL`` and the names in the profiles file, for the node's drop-down."""
    from nanobanana.remote import ProfilesFile, profiles_file_path

    try:
        names = ProfilesFile(profiles_file_path(env)).names()
    except NanobananaError as exc:
        # The node list must still load; choosing a profile will then show this error.
        log.warning("Nano Banana: server profiles unavailable: %s", exc)
        names = []
    return [LOCAL, *names]


def run_requests(
    requests: list[GenerationRequest], *, profile: str, env: Mapping[str, str] | None = None
) -> list[NodeResult]:
    """Run the requests concurrently; all must succeed (a node has no partial output)."""
    env = dict(os.environ) if env is None else env
    try:
        if profile == LOCAL:
            return _run_sync(_local(requests, env))
        return _run_sync(_remote(requests, profile, env))
    except NanobananaError as exc:
        explain(exc, profile=profile)
        raise


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nanobanana-node") as pool:
        return pool.submit(asyncio.run, coro).result()


async def _local(requests: list[GenerationRequest], env: Mapping[str, str]) -> list[NodeResult]:
    from nanobanana.client import AsyncClient

    async with AsyncClient(env=env) as client:

        async def one(req: GenerationRequest) -> NodeResult:
            result = await client.run(req)
            info = {
                **result.provenance(),
                "where": "local",
                "images": [{"width": i.width, "height": i.height} for i in result.images],
                "warnings": result.warnings,
                "failures": [f.error for f in result.failures],
            }
            return NodeResult([img.data for img in result.images], result.text, info)

        return list(await asyncio.gather(*(one(r) for r in requests)))


async def _remote(
    requests: list[GenerationRequest], profile: str, env: Mapping[str, str]
) -> list[NodeResult]:
    from nanobanana.imaging import to_data_url
    from nanobanana.references import resolve_references
    from nanobanana.remote import ServerClient, resolve_server

    server = resolve_server(profile=profile, env=env)
    async with ServerClient.from_profile(server) as client:

        async def one(req: GenerationRequest) -> NodeResult:
            # The server reads no files of this machine: references go inline.
            refs = tuple(to_data_url(r) for r in await resolve_references(req.images))
            job, images = await client.run(req.with_(images=refs))
            info = {
                "where": "server",
                "server": server.url,
                "profile": profile,
                "job_id": job.id,
                "prompt": req.prompt,
                "model": job.model,
                "provider": job.provider,
                "cost": job.cost,
                "seed": req.seed,
                "thinking": req.thinking,
                "google_search": req.google_search,
                "image_options": dict(req.image_options),
                "images": [{"width": i.width, "height": i.height} for i in images],
                "warnings": job.warnings,
            }
            return NodeResult([img.data for img in images], job.text, info)

        return list(await asyncio.gather(*(one(r) for r in requests)))


def run_turn(
    request: GenerationRequest,
    *,
    profile: str,
    session: NodeSession | None,
    env: Mapping[str, str] | None = None,
) -> tuple[NodeResult, NodeSession]:
    """One turn of a session (a new one when ``session`` is None): locally with the path as
    history, or as the next turn of the server's session."""
    env = dict(os.environ) if env is None else env
    if session is not None and session.where != profile:
        where = "local keys" if session.where == LOCAL else f"the server profile {session.where!r}"
        raise UsageError(
            f"This session runs with {where}: give this node the same server profile as the "
            "node that started the session."
        )
    try:
        if profile == LOCAL:
            return _run_sync(_local_turn(request, session, env))
        return _run_sync(_remote_turn(request, profile, session, env))
    except NanobananaError as exc:
        explain(exc, profile=profile)
        raise


async def _local_turn(
    request: GenerationRequest, session: NodeSession | None, env: Mapping[str, str]
) -> tuple[NodeResult, NodeSession]:
    from nanobanana.client import AsyncClient
    from nanobanana.conversation import history_for, prior_turn
    from nanobanana.references import resolve_references

    path = session.turns if session is not None else ()
    refs = await resolve_references(request.images)
    async with AsyncClient(env=env) as client:
        result = await client.run(request.with_(images=refs, history=history_for(path)))
    turn = prior_turn(result, refs)
    info = {
        **result.provenance(),
        "where": "local",
        "turn": len(path) + 1,
        "images": [{"width": i.width, "height": i.height} for i in result.images],
        "warnings": result.warnings,
    }
    node = NodeResult([img.data for img in result.images], result.text, info)
    return node, NodeSession(LOCAL, (*path, turn))


async def _remote_turn(
    request: GenerationRequest, profile: str, session: NodeSession | None, env: Mapping[str, str]
) -> tuple[NodeResult, NodeSession]:
    from nanobanana.imaging import to_data_url
    from nanobanana.references import resolve_references
    from nanobanana.remote import ServerClient, resolve_server

    server = resolve_server(profile=profile, env=env)
    refs = tuple(to_data_url(r) for r in await resolve_references(request.images))
    async with ServerClient.from_profile(server) as client:
        session_id = session.server_session if session is not None else None
        if session_id is None:
            session_id = await client.create_session()
        parent = session.turn_id if session is not None else None
        job, images = await client.add_turn(
            session_id, request.with_(images=refs), parent_turn_id=parent
        )
    info = {
        "where": "server",
        "server": server.url,
        "profile": profile,
        "session_id": session_id,
        "job_id": job.id,
        "prompt": request.prompt,
        "model": job.model,
        "provider": job.provider,
        "cost": job.cost,
        "images": [{"width": i.width, "height": i.height} for i in images],
        "warnings": job.warnings,
    }
    node = NodeResult([img.data for img in images], job.text, info)
    return node, NodeSession(profile, server_session=session_id, turn_id=job.id)


def explain(exc: NanobananaError, *, profile: str) -> None:
    """Reword the error for someone looking at a ComfyUI error dialog (type is kept)."""
    message = " ".join(str(exc).split())
    if isinstance(exc, MissingKeyError):
        from nanobanana.providers import INFOS

        envs = " or ".join(INFOS[exc.provider].key_env_vars)
        message = (
            f"No {exc.provider} API key. Keys never go in a node (they would be saved in the "
            f"workflow): set {envs} in the environment ComfyUI starts from, run "
            f"`nanobanana keys set {exc.provider}`, or choose a server profile."
        )
    elif isinstance(exc, QuotaError):
        message = f"Quota exceeded at {exc.provider}: {message}"
        if profile == LOCAL:
            message += " Wait and queue again, or add a key for the other provider so it can "
            message += "take over (fallback)."
    elif isinstance(exc, ContentError):
        what = "Blocked" if isinstance(exc, BlockedError) else "No image"
        who = f" by {exc.provider}" if exc.provider else ""
        reason = exc.reason or exc.finish_reason
        message = f"{what}{who}" + (f" (reason: {reason})" if reason else "") + f": {message}"
        if exc.text and exc.text.strip() not in message:
            message += f" The model said: {' '.join(exc.text.split())}"
    exc.message = message
    exc.args = (message,)
