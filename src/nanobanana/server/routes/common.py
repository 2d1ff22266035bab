"""Shared route helpers: documented error responses, the service's public address, paging
cursors, the prompt search parameter."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query
from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import InstrumentedAttribute
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request

from ..db.models import is_object_id
from ..problems import ApiError
from ..schemas import NO_NUL, ErrorResponse
from ..settings import Settings

#: ``?q=``: words searched in the prompts (``db.models.prompt_contains``).  A NUL character is
#: refused (422) before any query: no database stores one.
PromptSearch = Annotated[
    str | None,
    Query(max_length=200, pattern=NO_NUL, description="Words in the prompt, case aside."),
]

_DESCRIPTIONS = {
    400: "Bad request (e.g. `missing_api_key`: add a key in the settings).",
    401: "Missing, invalid, expired or revoked token (`unauthorized`).",
    403: "Not allowed (`forbidden`, `account_disabled`).",
    404: "No such object, or not yours (`not_found`).",
    409: "Conflict (`idempotency_in_flight`, `username_taken`, `job_running`).",
    413: "Too large (`payload_too_large`, `image_too_large`).",
    422: "Invalid input (`validation_error`, `invalid_parameter` with `field` and `allowed`).",
    429: "Rate or quota limit (`quota_exceeded`, `too_many_attempts`); see `Retry-After`.",
    503: "The upstream provider failed (`upstream_failed`) or the service is stopping.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these statuses, plus any other 4XX, all in the error shape."""
    out: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorResponse, "description": _DESCRIPTIONS[code]} for code in codes
    }
    out["4XX"] = {"model": ErrorResponse, "description": "Any other client error."}
    return out


def public_root(request: Request, settings: Settings) -> str:
    """Where absolute links point: ``NANOBANANA_PUBLIC_URL``, else the address and port this
    connection arrived on (``""``, relative links, when there is none, as on a Unix socket).

    Never the ``Host`` header: a client could name any host there, and a link built from it
    would send the next client, bearer token and all, to that host."""
    if settings.public_url:
        return settings.public_url
    server = request.scope.get("server")
    if not server or server[1] is None:
        return ""
    host, port = server
    host = f"[{host}]" if ":" in host else host
    scheme = request.url.scheme  # https only from TLS or a trusted proxy's X-Forwarded-Proto
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + ("" if port == default else f":{port}")


def after_cursor(
    created_at: InstrumentedAttribute[datetime], row_id: InstrumentedAttribute[str], cursor: str
) -> ColumnElement[bool]:
    """Rows after ``cursor`` in newest-first order (``created_at`` then ``id``, descending)."""
    stamp, last_id = decode_cursor(cursor)
    return or_(created_at < stamp, and_(created_at == stamp, row_id < last_id))


def encode_cursor(created_at: datetime, row_id: str) -> str:
    """An opaque paging cursor: the last row's creation time and id (keyset paging)."""
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, row_id: str | None = None) -> tuple[datetime, str]:
    """``encode_cursor``'s parts again; the row id must be an object id, or match the regular
    expression ``row_id`` when given; anything else is a 422."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, last = raw.split("|", 1)
        when = datetime.fromisoformat(stamp)
        valid = re.fullmatch(row_id, last) if row_id else is_object_id(last)
        if when.tzinfo is None or not valid:
            raise ValueError("not a cursor")
        return when, last
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ApiError(422, "invalid_cursor", "The cursor is not one this API gave out.") from exc


class ObjectIdConvertor(Convertor[str]):
    """``{name:object_id}`` in a path: only an id as the service gives them out (32 lowercase
    hex characters) matches, so that ``/api/images/facets`` is never taken for an image's id."""

    regex = "[0-9a-f]{32}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("object_id", ObjectIdConvertor())
