"""``ServerClient``: submit generation jobs to a nanobanana server, wait, fetch the images."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

from .. import errors as _errors
from ..errors import NanobananaError
from ..request import GenerationRequest
from ..types import Image
from .jobs import SERVER, Job, ServerError, error_from_payload
from .profiles import ServerProfile, normalize_url

__all__ = ["ServerClient"]

DEFAULT_TIMEOUT = 60.0
#: Longest wait for one job (the server's own deadline is shorter).
DEFAULT_WAIT = 900.0
POLL_START = 0.25
POLL_MAX = 2.0
#: Transient failures (connection, 429, 502-504) retried per request; safe for GETs and for a
#: POST that carries an idempotency key.
MAX_TRANSIENT_RETRIES = 3
MAX_RETRY_AFTER = 30.0
MAX_REDIRECTS = 3
#: Library argument name -> the server's field name.
WIRE_NAMES = {"n": "num_images"}
#: Largest image accepted from a server.
MAX_IMAGE_BYTES = 64 * 1024 * 1024


class ServerClient:
    """Async client of a nanobanana server's generation API (aiohttp)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        wait_timeout: float = DEFAULT_WAIT,
        session: Any = None,
    ) -> None:
        self.base_url = normalize_url(base_url)
        self._token = token
        self.timeout = timeout
        self.wait_timeout = wait_timeout
        self._session = session
        self._own_session = session is None
        self._sleep = asyncio.sleep

    @classmethod
    def from_profile(cls, profile: ServerProfile, **kw: Any) -> ServerClient:
        return cls(profile.url, profile.token, **kw)

    def __repr__(self) -> str:
        return f"ServerClient({self.base_url!r})"

    async def __aenter__(self) -> ServerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    def _http(self) -> Any:
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._own_session = True
        return self._session

    def _headers(self, url: str) -> dict[str, str]:
        # The token is for this server only: never for another origin a job may point at.
        ours, theirs = urlsplit(self.base_url), urlsplit(url)
        same = (ours.scheme, ours.hostname, ours.port) == (
            theirs.scheme,
            theirs.hostname,
            theirs.port,
        )
        return {"Authorization": f"Bearer {self._token}"} if same else {}

    # ----------------------------------------------------------------------------- API
    async def create_generation(
        self, request: GenerationRequest, *, idempotency_key: str | None = None
    ) -> Job:
        """Submit a job; returns it as accepted (usually ``queued``).

        ``request.images``: data URLs or upload ids (the server reads no files of this
        machine)."""
        body = _body(request)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_timeout
        delay = POLL_START
        while True:
            status, data = await self._request(
                "POST",
                "/api/generations",
                json_body=body,
                headers=headers,
                retry=idempotency_key is not None,
            )
            # 409: the first request with this key is still being accepted; once it is, the
            # server answers with that job instead of starting another.
            if status == 409 and idempotency_key and loop.time() < deadline:
                await self._sleep(delay)
                delay = min(delay * 1.5, POLL_MAX)
                continue
            if status >= 400:
                raise self._refusal(status, data)
            return Job.from_json(data)

    async def get_generation(self, job_id: str) -> Job:
        status, data = await self._request("GET", f"/api/generations/{job_id}", retry=True)
        if status >= 400:
            raise self._refusal(status, data)
        return Job.from_json(data)

    async def cancel_generation(self, job_id: str) -> Job:
        """Cancel a job and return it as it ended (``error["code"]`` ``job_cancelled``; asking
        again answers the same).  One still queued is never sent; a running one has its call
        stopped, nothing more is sent, the provider may bill what was
        (``error["may_be_billed"]``), and the images that had arrived are kept.  A job that
        had already ended raises (HTTP 409 ``job_finished``)."""
        status, data = await self._request("POST", f"/api/generations/{job_id}/cancel", retry=True)
        if status >= 400:
            raise self._refusal(status, data)
        return Job.from_json(data)

    async def wait(self, job_id: str) -> Job:
        """Poll until the job ends; return it if it made images, else raise its error."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_timeout
        delay = POLL_START
        while True:
            job = await self.get_generation(job_id)
            if job.finished:
                break
            if loop.time() + delay > deadline:
                raise ServerError(
                    f"Job {job_id} did not finish within {self.wait_timeout:.0f} s; it may "
                    "still finish on the server.",
                    provider=SERVER,
                )
            await self._sleep(delay)
            delay = min(delay * 1.5, POLL_MAX)
        if job.succeeded and job.images:
            return job
        raise error_from_payload(job.error, status=job.status, provider=job.provider)

    async def fetch_images(self, job: Job) -> list[Image]:
        from ..imaging import inspect_image

        out = []
        for pos, img in enumerate(job.images):
            data = await self.download(img.url)
            try:
                mime, width, height = inspect_image(data)
            except ValueError as exc:
                raise ServerError(
                    f"Image {pos + 1} of job {job.id} is not a valid image ({exc}).",
                    provider=SERVER,
                ) from exc
            out.append(Image(data=data, mime_type=mime, width=width, height=height, index=pos))
        return out

    async def download(self, url: str) -> bytes:
        """An image's bytes.  Redirects (e.g. to object storage) are followed by hand, so the
        token is re-decided for every hop: it goes only to the server's own origin."""
        for _ in range(MAX_REDIRECTS + 1):
            status, data = await self._request("GET", url, raw=True, retry=True)
            location = data if status in (301, 302, 303, 307, 308) else None
            if not isinstance(location, str):
                break
            url = urljoin(url, location)
        if status >= 400 or not isinstance(data, bytes):
            raise ServerError(
                f"Downloading an image from the server failed with HTTP {status}.",
                provider=SERVER,
                status=status,
            )
        return data

    async def run(
        self, request: GenerationRequest, *, idempotency_key: str | None = None
    ) -> tuple[Job, list[Image]]:
        """Submit, wait and download: the server-side twin of ``AsyncClient.run``."""
        job = await self.create_generation(request, idempotency_key=idempotency_key)
        job = await self.wait(job.id)
        return job, await self.fetch_images(job)

    async def create_session(self, title: str | None = None) -> str:
        """Start an editing session on the server (docs/sessions.md); its id."""
        body = {"title": title} if title else {}
        status, data = await self._request("POST", "/api/sessions", json_body=body)
        if status >= 400:
            raise self._refusal(status, data)
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise ServerError("The server's answer is not an editing session.", provider=SERVER)
        return data["id"]

    async def add_turn(
        self,
        session_id: str,
        request: GenerationRequest,
        *,
        parent_turn_id: str | None,
        idempotency_key: str | None = None,
    ) -> tuple[Job, list[Image]]:
        """The next turn of a session, continuing ``parent_turn_id`` (``None``: a new first
        turn); the server sends the path that led to it.  Waits for the images (the server
        answers once the turn has ended) and downloads them."""
        body = {**_body(request), "parent_turn_id": parent_turn_id}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        status, data = await self._request(
            "POST",
            f"/api/sessions/{session_id}/turns",
            json_body=body,
            headers=headers,
            retry=idempotency_key is not None,
            seconds=self.wait_timeout,
        )
        if status >= 400:
            raise self._refusal(status, data)
        job = Job.from_json(data)
        return job, await self.fetch_images(job)

    async def generate(
        self, prompt: str, *, idempotency_key: str | None = None, **params: Any
    ) -> tuple[Job, list[Image]]:
        """``run`` with the request's fields as arguments, as ``AsyncClient.generate``."""
        request = GenerationRequest(prompt=prompt, **params)
        return await self.run(request, idempotency_key=idempotency_key)

    # ----------------------------------------------------------------------------- HTTP
    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        raw: bool = False,
        retry: bool = False,
        seconds: float | None = None,
    ) -> tuple[int, Any]:
        """``seconds``: the time this request may take instead of the client's ``timeout``
        (a call that waits for a generation)."""
        import aiohttp

        url = urljoin(self.base_url + "/", path.lstrip("/")) if "://" not in path else path
        hdrs = {**self._headers(url), **(headers or {})}
        # Only when given: aiohttp reads ``timeout=None`` as "no timeout at all".
        longer = {"timeout": aiohttp.ClientTimeout(total=seconds)} if seconds else {}
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._http().request(
                    method, url, json=json_body, headers=hdrs, allow_redirects=False, **longer
                ) as resp:
                    if (
                        retry
                        and resp.status in (429, 502, 503, 504)
                        and attempt <= MAX_TRANSIENT_RETRIES
                    ):
                        await self._sleep(_retry_after(resp.headers.get("Retry-After"), attempt))
                        continue
                    if raw and 300 <= resp.status < 400 and "Location" in resp.headers:
                        return resp.status, resp.headers["Location"]
                    if raw:
                        return resp.status, await _read_capped(resp)
                    text = await resp.text()
                    try:
                        return resp.status, json.loads(text) if text else None
                    except ValueError:
                        return resp.status, {"detail": text[:200]}
            except (aiohttp.ClientError, TimeoutError) as exc:
                if retry and attempt <= MAX_TRANSIENT_RETRIES:
                    await self._sleep(_retry_after(None, attempt))
                    continue
                raise ServerError(
                    f"Cannot reach the nanobanana server at {self.base_url} "
                    f"({type(exc).__name__}).",
                    provider=SERVER,
                    sent=method == "GET",
                ) from exc

    def _refusal(self, status: int, data: Any) -> NanobananaError:
        detail = _detail(data)
        if status in (401, 403):
            return ServerError(
                f"The server at {self.base_url} refused the token (HTTP {status}): check the "
                "profile's token or $NANOBANANA_TOKEN.",
                provider=SERVER,
                status=status,
            )
        if status == 404:
            return ServerError(
                f"Not found on {self.base_url} (HTTP 404){': ' + detail if detail else ''}.",
                provider=SERVER,
                status=status,
            )
        if status in (400, 409, 413, 422) or (isinstance(data, dict) and "error" in data):
            err = data.get("error") if isinstance(data, dict) else None
            if isinstance(err, dict) and err.get("code"):
                return error_from_payload(err, provider=SERVER)
            return _errors.ValidationError(f"The server refused the request: {detail}")
        return ServerError(
            f"The server answered HTTP {status}{': ' + detail if detail else ''}.",
            provider=SERVER,
            status=status,
            retryable=status >= 500 or status == 429,
        )


def _body(request: GenerationRequest) -> dict[str, Any]:
    """A request as the server's generate body.  Empty values are left out: a server from
    before a field was added still takes the body."""
    fields = {**request.record(), "images": list(request.images)}
    return {WIRE_NAMES.get(k, k): v for k, v in fields.items() if v not in (None, [], {})}


def _detail(data: Any) -> str:
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        detail = data.get("detail")
        if isinstance(detail, list):  # FastAPI validation errors
            return "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}"
                for d in detail
                if isinstance(d, dict)
            )
        if detail:
            return str(detail)
    return ""


def _retry_after(value: str | None, attempt: int) -> float:
    try:
        delay = float(value) if value else 0.5 * 2 ** (attempt - 1)
    except ValueError:
        delay = 0.5 * 2 ** (attempt - 1)
    return max(0.0, min(delay, MAX_RETRY_AFTER))


async def _read_capped(resp: Any) -> bytes:
    data = bytearray()
    async for chunk in resp.content.iter_chunked(1 << 16):
        data += chunk
        if len(data) > MAX_IMAGE_BYTES:
            raise ServerError("An image from the server is too large.", provider=SERVER)
    return bytes(data)
