"""What a nanobanana server answers: generation jobs, and the errors they end with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import errors as _errors
from ..errors import NanobananaError, ServerError, UpstreamError, UsageError

__all__ = ["Job", "JobImage", "ServerError", "error_from_payload"]

#: The ``provider`` of errors about the server itself.
SERVER = "server"
#: Job statuses that mean "not finished yet"; anything else is an outcome.
RUNNING_STATUSES = frozenset({"queued", "pending", "running", "submitted", "started"})
SUCCESS_STATUSES = frozenset({"succeeded", "success", "done", "completed", "partial"})


@dataclass
class JobImage:
    url: str
    index: int = 0
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass
class Job:
    """A generation job as the server reports it."""

    id: str
    status: str
    images: list[JobImage] = field(default_factory=list)
    cost: float | None = None
    provider: str | None = None
    model: str | None = None
    text: str = ""
    warnings: list[str] = field(default_factory=list)
    #: Why some of the requested images did not come (partial success), one per image.
    failures: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def finished(self) -> bool:
        return self.status not in RUNNING_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCESS_STATUSES or (bool(self.images) and self.error is None)

    @classmethod
    def from_json(cls, data: Any) -> Job:
        if not isinstance(data, dict) or not data.get("id") or not data.get("status"):
            raise ServerError("The server's answer is not a generation job.", provider=SERVER)
        images = []
        for i, img in enumerate(data.get("images") or []):
            if isinstance(img, dict) and isinstance(img.get("url"), str):
                images.append(
                    JobImage(
                        url=img["url"],
                        index=int(img.get("index", i)),
                        mime_type=img.get("mime_type"),
                        width=img.get("width"),
                        height=img.get("height"),
                    )
                )
        usage: dict[str, Any] = data["usage"] if isinstance(data.get("usage"), dict) else {}
        cost = data.get("cost", usage.get("cost"))
        err = data.get("error")
        if isinstance(err, str):
            err = {"message": err}
        return cls(
            id=str(data["id"]),
            status=str(data["status"]).lower(),
            images=images,
            cost=float(cost) if isinstance(cost, int | float) else None,
            provider=data.get("provider"),
            model=data.get("model"),
            text=data.get("text") or "",
            warnings=[str(w) for w in data.get("warnings") or []],
            failures=[
                str(f.get("error") or "no image")
                for f in data.get("failures") or []
                if isinstance(f, dict)
            ],
            error=err if isinstance(err, dict) else None,
            raw=data,
        )


def _error_classes() -> dict[str, type[NanobananaError]]:
    out: dict[str, type[NanobananaError]] = {}
    for name in _errors.__all__:
        cls = getattr(_errors, name)
        out.setdefault(cls.code, cls)
    # The most specific class for codes several classes share.
    out["no_image"] = _errors.NoImageError
    out["content_blocked"] = _errors.BlockedError
    return out


def error_from_payload(
    err: Mapping[str, Any] | None, *, status: str = "failed", provider: str | None = None
) -> NanobananaError:
    """Rebuild the library's exception from a job's error (``{code, message, ...}``)."""
    err = err or {}
    code = str(err.get("code") or ("content_blocked" if status == "blocked" else "error"))
    message = str(err.get("message") or f"The job ended as {status}.")
    prov = str(err.get("provider") or provider or SERVER)
    cls = _error_classes().get(code, UpstreamError)
    if issubclass(cls, _errors.ContentError):
        return cls(
            message,
            provider=prov,
            reason=err.get("reason"),
            text=err.get("text"),
            finish_reason=err.get("finish_reason"),
        )
    if issubclass(cls, _errors.MissingKeyError):
        return cls(prov, message)
    if issubclass(cls, _errors.ValidationError):
        return cls(message, field=err.get("field"))
    if issubclass(cls, UsageError):
        return cls(message)
    if issubclass(cls, UpstreamError):
        exc = cls(message, provider=prov, status=err.get("status"))
        exc.code = code
        exc.may_be_billed = bool(err.get("may_be_billed", exc.may_be_billed))
        return exc
    exc_any = UpstreamError(message, provider=prov)
    exc_any.code = code
    return exc_any
