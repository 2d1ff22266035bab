"""The service layer knows no HTTP: what runs jobs loads no web framework.

A worker process (and any other face) must be able to take a request, run a job, store its
images and report its errors without FastAPI or Starlette; the HTTP face translates the
service's errors (``server/errors.py``) into answers.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from nanobanana.errors import NanobananaError
from nanobanana.server import errors as service_errors
from nanobanana.server.reports import SERVICE_STATUS, report_of

SERVICE_MODULES = [
    "nanobanana.server.errors",
    "nanobanana.server.reports",
    "nanobanana.server.services",
    "nanobanana.server.generation",
    "nanobanana.server.jobs",
    "nanobanana.server.uploads",
    "nanobanana.server.accounts",
    "nanobanana.server.keytest",
    "nanobanana.server.views",
    "nanobanana.server.events",
    "nanobanana.server.storage",
    "nanobanana.server.db.models",
]


def test_the_service_modules_load_no_web_framework() -> None:
    script = (
        "import importlib, sys\n"
        f"for name in {SERVICE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette')))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


ERRORS = [
    cls
    for cls in vars(service_errors).values()
    if isinstance(cls, type)
    and issubclass(cls, service_errors.ServiceError)
    and cls.code not in ("service_error", "invalid_upload")
]


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_every_service_error_is_in_the_tree_and_has_its_status(
    cls: type[service_errors.ServiceError],
) -> None:
    assert issubclass(cls, NanobananaError)
    assert cls.code in SERVICE_STATUS
    r = report_of(cls("Say what to do.", retry_after=3, job_id="j1"))
    assert (r.status, r.code, r.message) == (SERVICE_STATUS[cls.code], cls.code, "Say what to do.")
    assert r.details == {"job_id": "j1", "retry_after": 3}
    assert r.headers["Retry-After"] == "3"
