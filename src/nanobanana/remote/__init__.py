"""A client of a nanobanana server, and the server profiles that say how to reach one.

A *profile* is a name for a server URL and a personal API token, kept in a small JSON file
(``$NANOBANANA_PROFILES_FILE`` or ``<user config dir>/nanobanana/profiles.json``, mode 0600)::

    {"profiles": {"studio": {"url": "https://images.example.com", "token": "..."}}}

so a ComfyUI workflow or a batch command names ``studio`` and never holds the token.  Jobs run
on the server with the user's stored provider keys and fallback, and land in the gallery.

Routes used: ``POST /api/generations`` (202, a job), ``GET /api/generations/{id}`` (the job,
polled until it ends) and the image URLs the job lists.  The token goes only to the server's own
origin (an image URL or a redirect to another host is fetched without it), only in the
``Authorization`` header, and never into a message.

Errors: talking to the server (unreachable, token refused, an answer that is not a job) raises
``ServerError``, an ``UpstreamError``; a job that ran and failed raises the error its code names
(``QuotaError``, ``BlockedError``, ...), exactly as the library would have.

Modules: ``profiles`` (the file, and which server with which token), ``jobs`` (what the server
answers, and its errors), ``client`` (``ServerClient``).
"""

from __future__ import annotations

from .client import ServerClient
from .jobs import Job, JobImage, ServerError, error_from_payload
from .profiles import (
    ProfilesFile,
    ServerProfile,
    normalize_url,
    profiles_file_path,
    resolve_server,
)

__all__ = [
    "Job",
    "JobImage",
    "ProfilesFile",
    "ServerClient",
    "ServerError",
    "ServerProfile",
    "error_from_payload",
    "normalize_url",
    "profiles_file_path",
    "resolve_server",
]
