"""H0: property-based tests of every operation against the app's own OpenAPI schema, in process.

Each generated case is sent three times: with a valid token (a user who has keys, upstream =
the emulator), with another user's token, and with no token.  Every check schemathesis runs by
default is on (no server error, status codes, content types, headers and bodies conform to the
schema, negative data rejected, auth not ignored, use after free...), and two of ours: no stored
key in any answer, and a 405's ``Allow`` names every method of the path.  Two phases: fuzzing
(``test_every_operation``) and coverage (``test_the_coverage_phase``: boundary and invalid
values one parameter at a time, wrong content types, and the methods a path does not take,
which is the only phase where the ``unsupported_method`` check runs).

Settings that differ from production, and why: login rate limits are raised (every case comes
from one address, and hundreds of generated bad logins would otherwise lock out the fresh
logins this test needs), so are the per-user generation limits (so that generation cases reach
the upstream instead of a 429), and Argon2 uses OWASP's minimum profile (speed).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from schemathesis import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from nanobanana.emulator import EmulatorServer
from nanobanana.server.app import create_app
from nanobanana.server.settings import Settings

from .conftest import GOOGLE_CANARY, OPENROUTER_CANARY, PASSWORD, make_settings

pytestmark = pytest.mark.timeout(300)
#: Operations whose valid input depends on more than the schema can say: which aspect ratios
#: and sizes a model takes depends on the model (the catalog), whether an uploaded file is a
#: real PNG is not a JSON Schema property, and a paging cursor is valid only if the API made
#: it.  For them the ``positive_data_acceptance`` check is left out; the 4xx answers they give
#: are tested one by one in test_seed, test_uploads and test_jobs.
CROSS_FIELD = {
    "POST /api/nano-banana/generate",
    "POST /api/generations",
    "PUT /api/settings/defaults",
    "POST /api/uploads",
    "GET /api/generations",  # `cursor` is an opaque token only the API makes
    "GET /api/images",  # the same; and a time in since/until needs its offset
    "GET /api/auth/tokens",  # the same
    "GET /api/tokens",
    "PUT /api/settings/webhook",  # whether a URL's address is public is no schema property
    "GET /api/usage",  # a range must not end before it starts; 2026-02-30 is no day
    "GET /api/admin/usage",
}
#: The OpenRouter- and OpenAI-compatible endpoints answer parameter errors with 400, as the
#: dialects they speak do (``invalid_request_error``); positive_data_acceptance expects 422.
COMPAT_PREFIXES = ("POST /api/v1/", "GET /api/v1/", "POST /v1/", "GET /v1/")
#: Operations that need stored keys (other generated cases delete them).
NEEDS_KEYS = {
    "POST /api/nano-banana/generate",
    "POST /api/generations",
    "POST /api/settings/keys/{provider}/test",
}
#: Examples per operation and mode (each sent three times).
EXAMPLES = 15


@pytest.fixture(scope="module")
def st_app(
    tmp_path_factory: pytest.TempPathFactory, fast_emulator: EmulatorServer
) -> Iterator[Any]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    settings = make_settings(
        tmp,
        f"sqlite+aiosqlite:///{tmp / 'db.sqlite'}",
        fast_emulator,
        login_max_failures_per_account=10**6,
        login_max_failures_per_address=10**6,
        max_queued_jobs_per_user=1000,
        generations_per_minute=10**6,
        max_concurrent_jobs=16,
    )
    app = create_app(settings)
    try:
        yield app
    finally:
        asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def st_schema(st_app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", st_app)


@pytest.fixture(scope="module")
def tokens(st_app: Any) -> dict[str, str]:
    with asgi.get_client(st_app) as client:

        def login(name: str) -> str:
            client.post("/api/auth/register", json={"username": name, "password": PASSWORD})
            r = client.post("/api/auth/login", json={"username": name, "password": PASSWORD})
            assert r.status_code == 200, r.text
            token: str = r.json()["access_token"]
            return token

        main, other = login("owner"), login("intruder")
        client.cookies.clear()

        def restore_keys() -> None:
            # Generated cases delete and overwrite keys; generation cases need real ones.
            for token in (main, other):
                for provider, key in (("openrouter", OPENROUTER_CANARY), ("google", GOOGLE_CANARY)):
                    r = client.put(
                        f"/api/settings/keys/{provider}",
                        json={"api_key": key},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    assert r.status_code == 200

        restore_keys()

        def fresh(name: str) -> str:
            r = client.post("/api/auth/login", json={"username": name, "password": PASSWORD})
            client.cookies.clear()
            token: str = r.json()["access_token"]
            return token

    return {"main": main, "other": other, "fresh": fresh, "restore_keys": restore_keys}  # type: ignore[dict-item]


def no_secret(ctx: Any, response: Any, case: Any) -> bool:
    """K2 over every generated exchange: no stored key in any response body or header."""
    seen = response.content + repr(response.headers).encode()
    for canary in (OPENROUTER_CANARY, GOOGLE_CANARY):
        assert canary.encode() not in seen, f"{canary[:8]}... leaked by {case.method} {case.path}"
    return True


def allow_names_every_method(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 405's ``Allow`` names every method the schema documents for the path (schemathesis'
    own ``unsupported_method`` check only asks that there is one)."""
    if response.status_code != 405:
        return None
    allow = ",".join(response.headers.get("allow", []))
    allowed = {m.strip() for m in allow.split(",") if m.strip()}
    documented = {m.upper() for m in case.operation.schema.raw_schema["paths"][case.path]}
    missing = documented - allowed
    assert not missing, f"405 on {case.method} {case.path}: Allow {allow!r} lacks {missing}"
    return True


def _operations() -> list[Any]:
    """(operation, mode) pairs, read from the schema at collection time (building the app does
    no I/O).  Negative data only where there is input to break.

    (schemathesis' own ``from_fixture`` parametrisation does not run under pytest 9, so the
    operations are parametrised here and each one is driven with ``as_strategy``.)"""
    paths = create_app(Settings(demo=False)).openapi()["paths"]
    out = []
    for path, ops in paths.items():
        for method, op in ops.items():
            label = f"{method.upper()} {path}"
            out.append(pytest.param(label, GenerationMode.POSITIVE, id=f"{label}-positive"))
            if op.get("parameters") or op.get("requestBody"):
                out.append(pytest.param(label, GenerationMode.NEGATIVE, id=f"{label}-negative"))
    return out


@pytest.mark.parametrize(("label", "mode"), _operations())
def test_every_operation(
    label: str, mode: GenerationMode, st_schema: Any, tokens: dict[str, Any]
) -> None:
    operation = st_schema.find_operation_by_label(label)
    assert operation is not None

    @given(case=operation.as_strategy(generation_mode=mode))
    @hyp_settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        if label in NEEDS_KEYS:
            tokens["restore_keys"]()
        validate_as_everyone(case, label, tokens)

    run()


def validate_as_everyone(case: Any, label: str, tokens: dict[str, Any]) -> None:
    """Send ``case`` as its owner, as another user and with no token; every check runs on
    each answer (``positive_data_acceptance`` aside where ``CROSS_FIELD`` or a dialect says)."""
    main, other = tokens["main"], tokens["other"]
    if case.path == "/api/auth/logout":
        # Logging out must not revoke the tokens the other cases use.
        main, other = tokens["fresh"]("owner"), tokens["fresh"]("intruder")
    lenient = label in CROSS_FIELD or label.startswith(COMPAT_PREFIXES)
    excluded = [positive_data_acceptance] if lenient else []
    # A negative case may be one whose only fault is a missing Authorization header: sent
    # with a token (which this function adds) it is a valid request, and rightly answered.
    # The call without a token still checks that it is refused.
    no_header = "Authorization" not in (case.headers or {})
    for token in (main, other, None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        restored = [negative_data_rejection] if token and no_header else []
        case.call_and_validate(
            headers=headers,
            excluded_checks=[*excluded, *restored],
            additional_checks=[no_secret, allow_names_every_method],
        )


def _labels() -> list[str]:
    paths = create_app(Settings(demo=False)).openapi()["paths"]
    return [f"{method.upper()} {path}" for path, ops in paths.items() for method in ops]


@pytest.mark.parametrize("label", _labels())
def test_the_coverage_phase(label: str, st_schema: Any, tokens: dict[str, Any]) -> None:
    """Schemathesis' coverage phase: each parameter's boundary and invalid values, one at a
    time, the wrong content types, and every HTTP method the path does not take (answered
    405 with an ``Allow`` header naming all the methods it does: the ``unsupported_method``
    check runs only here)."""
    operation = st_schema.find_operation_by_label(label)
    cases = list(
        st_schema.iter_coverage_cases(
            operation,
            generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
            generation_config=st_schema.config.generation_for(
                operation=operation, phase="coverage"
            ),
        )
    )
    assert cases
    if label in NEEDS_KEYS:
        tokens["restore_keys"]()
    for case in cases:
        validate_as_everyone(case, label, tokens)
