"""What a user's install does: the CLI and the service run from a second environment that holds
only what ``make run`` installs (``RUN_EXTRAS``, pinned by ``constraints.txt``), never the test
tools.  The suite's own environment has more (httpx, openai, torch...), which once hid a crash
on every real install; here a module that ``src/`` imports but the run install lacks fails.

The environment is made by ``make test`` (``make run-env``); the upstream is the emulator.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from nanobanana.emulator import EmulatorServer

from ..core.test_discovery import UNLISTED, discovery_script
from ..support import clean_env, postgres_database, serve_process

ROOT = Path(__file__).resolve().parents[2]
RUN_ENV = Path(os.environ.get("NANOBANANA_RUN_ENV", ROOT / ".venv-run"))
OPENROUTER_CANARY = "sk-or-v1-CANARY-install-0123456789abcdef0123"
GEMINI_CANARY = "AIzaCANARY-install-0123456789abcdefghijklm"
PASSWORD = "correct horse battery"
#: A 1x1 PNG.
PNG_1PX = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
)
#: The ComfyUI nodes need torch and numpy, which only the comfyui extra brings.
OTHER_EXTRAS = ("nanobanana.comfyui",)


def run_env_bin(name: str) -> Path:
    path = RUN_ENV / "bin" / name
    if not path.exists():
        pytest.fail(
            f"{path} is missing: the run install is made by `make run-env` (part of `make test`)."
        )
    return path


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


# --------------------------------------------------------------------------- the environment
def test_the_run_install_has_no_test_tools() -> None:
    """Else this suite would prove nothing: httpx, pytest and openai come with the dev extra."""
    python = run_env_bin("python")
    code = (
        "import importlib.util as u\n"
        "print([m for m in ('httpx', 'pytest', 'openai', 'torch') if u.find_spec(m)])"
    )
    out = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=True, env=clean_env()
    )
    assert out.stdout.strip() == "[]"


def test_every_module_imports_in_the_run_install() -> None:
    python = run_env_bin("python")
    code = (
        "import importlib, pkgutil, nanobanana\n"
        f"skip = {OTHER_EXTRAS!r}\n"
        "names = [m.name for m in pkgutil.walk_packages(nanobanana.__path__, 'nanobanana.')]\n"
        "names = [n for n in names if not n.startswith(skip) and not n.endswith('__main__')]\n"
        "for n in names:\n"
        "    importlib.import_module(n)\n"
        "print(len(names))\n"
    )
    proc = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=False, env=clean_env()
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 50


# ----------------------------------------------------------------------------------- the CLI
@dataclass
class Run:
    code: int
    out: str
    err: str


def cli(tmp_path: Path, emu: EmulatorServer, *args: str) -> Run:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    proc = subprocess.run(
        [
            run_env_bin("nanobanana"),
            *args,
            "--openrouter-base-url",
            emu.openrouter_url,
            "--gemini-base-url",
            emu.gemini_url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=tmp_path,
        env=clean_env(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_DATA_HOME=str(home / ".local/share"),
            XDG_CACHE_HOME=str(home / ".cache"),
            OPENROUTER_API_KEY=OPENROUTER_CANARY,
            GEMINI_API_KEY=GEMINI_CANARY,
        ),
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.parametrize("provider", ["openrouter", "google"])
def test_cli_generates_with_each_provider(
    tmp_path: Path, emu: EmulatorServer, provider: str
) -> None:
    r = cli(tmp_path, emu, "generate", "a fox in the snow", "-p", provider, "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["provider"] == provider and not out["fallback_used"]
    files = [Path(f["path"]) for f in out["files"]]
    assert len(files) == 1 and files[0].parent == tmp_path
    assert files[0].read_bytes().startswith(b"\x89PNG")


def test_cli_google_quota_falls_back_to_openrouter(tmp_path: Path, emu: EmulatorServer) -> None:
    prompt = f"a fox [emulator:flaky:3:429:{uuid.uuid4().hex[:8]}]"
    r = cli(tmp_path, emu, "generate", prompt, "-p", "google", "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["provider"] == "openrouter" and out["fallback_used"] is True
    assert [a["provider"] for a in out["attempts"]] == ["google"] * 3 + ["openrouter"]


def test_cli_google_quota_without_fallback_is_a_clear_error(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    prompt = f"a fox [emulator:flaky:3:429:{uuid.uuid4().hex[:8]}]"
    r = cli(tmp_path, emu, "generate", prompt, "-p", "google", "--no-fallback")
    assert r.code == 3
    assert r.err.splitlines()[-1].startswith("error: ") and "429" in r.err


@pytest.mark.parametrize("provider", ["openrouter", "google"])
def test_cli_streams(tmp_path: Path, emu: EmulatorServer, provider: str) -> None:
    marker = uuid.uuid4().hex[:8]
    r = cli(tmp_path, emu, "generate", f"a fox {marker}", "-p", provider, "--stream", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["provider"] == provider
    [sent] = [q for q in emu.requests() if q["method"] == "POST" and marker in json.dumps(q)]
    streamed = sent["body"].get("stream") is True or "streamGenerateContent" in sent["path"]
    assert streamed, sent["path"]


# ------------------------------------------------------------------------------- the service
@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, emu: EmulatorServer
) -> Iterator[httpx.Client]:
    """``nanobanana serve`` from the run install, both providers on the emulator."""
    env = clean_env(
        NANOBANANA_OPENROUTER_BASE_URL=emu.openrouter_url,
        NANOBANANA_GEMINI_BASE_URL=emu.gemini_url,
    )
    data = tmp_path_factory.mktemp("run-install")
    with (
        serve_process(run_env_bin("nanobanana"), data, env, "--no-demo") as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        yield client


def sign_up(service: httpx.Client, keys: dict[str, str], name: str | None = None) -> dict[str, str]:
    """A new user with ``keys`` stored; the headers of the session token the web UI gets."""
    name = name or f"u{uuid.uuid4().hex[:10]}"
    body = {"username": name, "password": PASSWORD}
    assert service.post("/api/auth/register", json=body).status_code == 201
    r = service.post("/api/auth/login", json=body)
    assert r.status_code == 200, r.text
    service.cookies.clear()
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    for provider, key in keys.items():
        r = service.put(f"/api/settings/keys/{provider}", json={"api_key": key}, headers=headers)
        assert r.status_code == 200, r.text
    return headers


def test_service_google_quota_falls_back_to_openrouter(
    service: httpx.Client, emu: EmulatorServer
) -> None:
    headers = sign_up(service, {"openrouter": OPENROUTER_CANARY, "google": GEMINI_CANARY})
    marker = uuid.uuid4().hex[:8]
    r = service.post(
        "/api/nano-banana/generate",
        json={"prompt": f"a fox [emulator:flaky:3:429:{marker}]", "provider": "google"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["images"]) == 1
    assert base64.b64decode(body["images"][0]).startswith(b"\x89PNG")
    sent = [q for q in emu.requests() if q["method"] == "POST" and marker in json.dumps(q)]
    assert [q["service"] for q in sent] == ["gemini"] * 3 + ["openrouter"]


def test_service_google_quota_alone_is_a_429(service: httpx.Client) -> None:
    headers = sign_up(service, {"google": GEMINI_CANARY})
    r = service.post(
        "/api/nano-banana/generate",
        json={
            "prompt": f"a fox [emulator:flaky:3:429:{uuid.uuid4().hex[:8]}]",
            "provider": "google",
        },
        headers=headers,
    )
    assert r.status_code == 429, r.text


def test_service_key_test_says_google_refused_the_key(service: httpx.Client) -> None:
    headers = sign_up(service, {"google": "AIza-invalid-CANARY-0123456789"})
    r = service.post("/api/settings/keys/google/test", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is False
    assert r.json()["message"] == "The Google key was refused: Google does not accept it."


def test_service_key_test_asks_openrouter_for_the_key(service: httpx.Client) -> None:
    """GET /key from the run install: a refused key is reported refused (GET /models would
    have said "accepted"), a good one with what OpenRouter says it has spent."""
    refused = sign_up(service, {"openrouter": "sk-or-v1-invalid-CANARY-0123456789"})
    r = service.post("/api/settings/keys/openrouter/test", headers=refused)
    assert r.status_code == 200 and r.json()["ok"] is False, r.text
    assert r.json()["error_code"] == "upstream_auth" and "CANARY" not in r.text
    good = sign_up(service, {"openrouter": OPENROUTER_CANARY})
    r = service.post("/api/settings/keys/openrouter/test", headers=good)
    assert r.json()["ok"] is True and r.json()["credit_used"] is not None, r.text
    assert r.json()["message"].startswith("The OpenRouter key works: ")


def test_service_keeps_every_image_of_a_fan_out(service: httpx.Client) -> None:
    """Two images land one by one (file and row as each arrives) and are both served."""
    headers = sign_up(service, {"openrouter": OPENROUTER_CANARY})
    r = service.post(
        "/api/nano-banana/generate", json={"prompt": "two foxes", "num_images": 2}, headers=headers
    )
    assert r.status_code == 200 and len(r.json()["images"]) == 2, r.text
    job = service.get(f"/api/generations/{r.json()['id']}", headers=headers).json()
    assert sorted(i["index"] for i in job["images"]) == [0, 1]
    for image in job["images"]:
        head = service.head(image["url"], headers=headers)
        assert head.status_code == 200 and int(head.headers["content-length"]) == image["size"]


def test_service_picks_the_provider_with_a_key_on_every_face(service: httpx.Client) -> None:
    """One rule for the seed endpoint and the compatible ones: with only a Google key and no
    provider named, Google serves; the history says so."""
    headers = sign_up(service, {"google": GEMINI_CANARY})
    chat = {"messages": [{"role": "user", "content": "a fox"}], "modalities": ["image", "text"]}
    for path, body in (
        ("/api/nano-banana/generate", {"prompt": "a fox"}),
        ("/api/v1/chat/completions", chat),
    ):
        r = service.post(path, json=body, headers=headers)
        assert r.status_code == 200, r.text
        latest = service.get("/api/generations", params={"limit": 1}, headers=headers).json()
        assert latest["items"][0]["provider"] == "google", path


def test_service_reports_its_own_refusals(service: httpx.Client) -> None:
    """The service's errors (accounts, uploads, idempotency) rendered by each face, in the
    install users run: status, code and a message that says what to fix."""
    headers = sign_up(service, {"openrouter": OPENROUTER_CANARY}, name="refusals")
    r = service.post("/api/auth/login", json={"username": "refusals", "password": "wrong pw!"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_credentials"
    r = service.post(
        "/api/uploads",
        files={"file": ("a.png", base64.b64decode(PNG_1PX), "image/png")},
        data={"purpose": "x"},
        headers=headers,
    )
    assert r.status_code == 422 and "remove `purpose`" in r.json()["error"]["message"], r.text
    r = service.post(
        "/api/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "a fox"}], "modalities": ["image"]},
        headers={**headers, "Idempotency-Key": "tab\there"},
    )
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["error"]["message"], r.text


def test_serve_refuses_a_port_in_use_in_one_line(service: httpx.Client, tmp_path: Path) -> None:
    port = str(service.base_url.port)
    r = subprocess.run(
        [run_env_bin("nanobanana"), "serve", "--port", port, "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"error: Port {port} on 127.0.0.1 is")
    assert not (tmp_path / "d").exists()


def test_service_lists_models(service: httpx.Client) -> None:
    headers = sign_up(service, {"openrouter": OPENROUTER_CANARY})
    r = service.get("/api/nano-banana/models", headers=headers)
    assert r.status_code == 200, r.text
    models = r.json()["models"]
    assert {m["provider"] for m in models} == {"openrouter", "google"}
    assert {"gemini-3.1-flash-image", "gemini-3-pro-image"} <= {m["id"] for m in models}


async def test_mcp_server_from_the_run_install(tmp_path: Path, emu: EmulatorServer) -> None:
    """``nanobanana mcp`` as an agent's client starts it, from the install ``make run`` makes:
    the official MCP client over stdio, a generation and an edit of it."""
    from mcp.client.stdio import stdio_client

    from mcp import Client, StdioServerParameters

    home = tmp_path / "home"
    params = StdioServerParameters(
        command=str(run_env_bin("nanobanana")),
        args=[
            "mcp",
            "--openrouter-base-url",
            emu.openrouter_url,
            "--gemini-base-url",
            emu.gemini_url,
        ],
        cwd=tmp_path,
        env=clean_env(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_DATA_HOME=str(home / ".local/share"),
            OPENROUTER_API_KEY=OPENROUTER_CANARY,
            GEMINI_API_KEY=GEMINI_CANARY,
        ),
    )
    log = tmp_path / "stderr.txt"
    with log.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            made = await client.call_tool(
                "generate_image", {"prompt": "a fox", "provider": "google"}
            )
            gid = (made.structured_content or {}).get("generation_id")
            edited = await client.call_tool("edit_image", {"prompt": "at night", "images": [gid]})
    for result in (made, edited):
        assert not result.is_error, result.content
        [link] = [b for b in result.content if b.type == "resource_link"]
        assert link.uri.startswith((tmp_path / "nanobanana-images").as_uri())
    text = log.read_text()
    assert "Traceback" not in text and "CANARY" not in text


def test_cli_takes_the_design_notes_model_id(tmp_path: Path, emu: EmulatorServer) -> None:
    r = cli(tmp_path, emu, "generate", "a fox", "-m", "gemini-2.5-flash-image-preview", "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["model"] == "gemini-2.5-flash-image"
    assert any("retired preview id" in w for w in out["warnings"])


def test_cli_models_keeps_the_listings_for_later_runs(tmp_path: Path, emu: EmulatorServer) -> None:
    r = cli(tmp_path, emu, "models")
    assert r.code == 0, r.err
    kept = sorted((tmp_path / "home" / ".cache" / "nanobanana" / "models").glob("*.json"))
    assert [k.name.split("-")[0] for k in kept] == ["google", "openrouter"]
    listed = {m["id"] for k in kept for m in json.loads(k.read_text())["models"]}
    assert {"black-forest-labs/flux.2-pro", "gemini-3.1-flash-image"} <= listed
    assert not any(c in k.read_text() for k in kept for c in (OPENROUTER_CANARY, GEMINI_CANARY))


def test_a_model_only_a_listing_has_works_in_the_run_install(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    proc = subprocess.run(
        [run_env_bin("python"), "-c", discovery_script(emu, tmp_path / "cache")],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [UNLISTED, "1"]


def test_service_runs_the_design_notes_console_snippet(service: httpx.Client) -> None:
    """Signed in through the page, the notes' snippet returns images (run in Chromium)."""
    from playwright.sync_api import sync_playwright

    from ..browser.conftest import CHROMIUM, CHROMIUM_ARGS
    from ..browser.test_console import DESIGN_NOTE_SNIPPET, run_in_console

    name = f"u{uuid.uuid4().hex[:10]}"
    sign_up(service, {"openrouter": OPENROUTER_CANARY}, name=name)
    url = str(service.base_url).rstrip("/")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page()
            page.goto(f"{url}/login")
            page.get_by_label("Username").fill(name)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{url}/")
            answer = run_in_console(page, DESIGN_NOTE_SNIPPET)
        finally:
            browser.close()
    assert len(answer["images"]) == 1
    assert base64.b64decode(answer["images"][0]).startswith(b"\x89PNG")


def test_service_serves_its_api_docs_offline(service: httpx.Client) -> None:
    page = service.get("/docs")
    assert page.status_code == 200
    for asset in re.findall(r'(?:src|href)="(/docs-assets/[^"]+)"', page.text):
        r = service.get(asset)
        assert r.status_code == 200 and len(r.content) > 1000, asset
    assert "swagger-ui-bundle.js" in page.text


@pytest.mark.postgres
def test_web_and_worker_processes_from_the_run_install(tmp_path: Path, emu: EmulatorServer) -> None:
    """The scale-out from what `make run` installs: `nanobanana serve` with
    NANOBANANA_JOBS=external and a `nanobanana worker` on one PostgreSQL database; the design
    notes' request is answered with the image the worker made, and SIGTERM stops the worker
    cleanly."""
    with postgres_database() as database:
        env = clean_env(
            NANOBANANA_OPENROUTER_BASE_URL=emu.openrouter_url,
            NANOBANANA_GEMINI_BASE_URL=emu.gemini_url,
            NANOBANANA_DATABASE_URL=database,
            NANOBANANA_JOBS="external",
            NANOBANANA_MASTER_KEYS=Fernet.generate_key().decode(),
        )
        data = tmp_path / "data"
        with serve_process(run_env_bin("nanobanana"), data, env, "--no-demo") as url:
            log_path = tmp_path / "worker.log"
            with log_path.open("w") as log:
                worker = subprocess.Popen(
                    [run_env_bin("nanobanana"), "worker", "--data-dir", str(data)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**env, "NANOBANANA_DEMO": "false"},
                )
            try:
                with httpx.Client(base_url=url, timeout=60) as service:
                    h = sign_up(service, {"openrouter": OPENROUTER_CANARY})
                    r = service.post(
                        "/api/nano-banana/generate", json={"prompt": "a red fox"}, headers=h
                    )
                    assert r.status_code == 200, r.text
                    [image] = r.json()["images"]
                    assert base64.b64decode(image).startswith(b"\x89PNG")
            finally:
                worker.terminate()
                code = worker.wait(timeout=30)
        text = log_path.read_text()
        assert code == 0, text
        assert "Traceback" not in text and "succeeded" in text
        assert OPENROUTER_CANARY not in text
