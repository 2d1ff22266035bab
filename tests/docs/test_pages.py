"""The commands and snippets of docs/*.md, run as written (see test_readme for how).

Each page runs in a fresh home folder of its own. Where a page speaks of things the reader
has (an account ``ada``, a personal API token in ``$NB_TOKEN``, a running service), they are
made first, the way the page itself or the README says. Example files a page shows (a batch
CSV, JSON Lines) are the files its commands run on.

Not run here: the JavaScript console snippet (tests/browser/test_console.py runs it), the
test commands of web-ui.md and security.md (they are this suite), the ComfyUI install steps
(they need a ComfyUI checkout; tests/comfyui loads the pack as ComfyUI does), JSON and CSV
blocks that show a shape rather than a command (the CSV and JSON Lines of batch.md are run as
batch files).
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from .reader import (
    EMULATOR,
    OPENROUTER_CANARY,
    PASSWORD,
    ROOT,
    SERVICE,
    Reader,
    api_token,
    block_in,
    blocks_of,
    json_objects,
    photo,
    pngs,
    reading,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[Reader]:
    with reading(tmp_path) as r:
        yield r


def with_emulator(reader: Reader) -> None:
    reader.start("emulator", "nanobanana emulator --port 8089", EMULATOR)


def with_service(reader: Reader, *, user: str = "alice", password: str = PASSWORD) -> str:
    """The service the README starts, an account, and a personal API token in $NB_TOKEN."""
    with_emulator(reader)
    reader.start("service", "nanobanana serve --port 8000", SERVICE)
    with httpx.Client(base_url=SERVICE, timeout=30) as c:
        r = c.post("/api/auth/register", json={"username": user, "password": password})
        assert r.status_code == 201, r.text
    token = api_token(user, password)
    # "with the provider keys you stored in the settings"
    with httpx.Client(base_url=SERVICE, timeout=30) as c:
        r = c.put(
            "/api/settings/keys/openrouter",
            json={"api_key": OPENROUTER_CANARY},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200, r.text
    reader.env["NB_TOKEN"] = token
    return token


def run_lines(reader: Reader, page: str, needle: str) -> list[str]:
    """Each line of a shell block, one command at a time, as a reader types them."""
    outs = []
    for line in block_in(page, "sh", needle).lines:
        if line.startswith("nanobanana keys set"):
            outs.append(reader.in_terminal(line, [("API key", "sk-or-v1-CANARY-pages-000111")]))
        else:
            outs.append(reader.sh(line))
    return outs


# ------------------------------------------------------------------------------- cli.md
def test_cli_page(reader: Reader) -> None:
    with_emulator(reader)
    outs = run_lines(reader, "docs/cli.md", "nanobanana info fox.png")
    with Image.open(reader.home / "fox.png") as img:
        assert img.size == (2688, 1536)
    assert (reader.home / "fox-night.png").is_file()
    assert "a fox in the snow" in outs[3]  # nanobanana info fox.png
    assert "Stored the openrouter key" in outs[-1]


# ----------------------------------------------------------------------------- batch.md
def test_batch_page(reader: Reader) -> None:
    page = "docs/batch.md"
    (reader.home / "prompts.csv").write_text(block_in(page, "csv", "prompt,").text)
    (reader.home / "prompts.jsonl").write_text(block_in(page, "json", '"prompt"').text)
    (reader.home / "refs").mkdir()
    photo(reader.home / "refs" / "lighthouse.png")
    with_service(reader)
    reader.env["NANOBANANA_TOKEN"] = reader.env["NB_TOKEN"]  # "taken from $NANOBANANA_TOKEN"
    run_lines(reader, page, "nanobanana batch prompts.csv ")
    assert len(pngs(reader.home / "prompts-images")) == 3
    assert len(pngs(reader.home / "out")) == 3
    assert json.loads((reader.home / "report.json").read_text())["complete"] is True
    out = reader.python(block_in(page, "python", "BatchRunner").text)
    assert out.split()[0] == "0"  # everything was done by the first command: nothing paid twice


# ---------------------------------------------------------------------------- compat.md
def test_compat_page(reader: Reader) -> None:
    page = "docs/compat.md"
    with_service(reader, user="ada", password="correct horse battery")
    photo(reader.home / "photo.jpg")
    tokens = reader.sh(block_in(page, "sh", "/api/tokens").text)
    assert '"name":"my script"' in tokens.replace(": ", ":")

    reader.sh(block_in(page, "sh", '["message"]["images"][0]').text)
    assert (reader.home / "fox.png").read_bytes()[:4] == b"\x89PNG"
    stream = reader.sh(block_in(page, "sh", "curl -sN").text)
    assert "data: [DONE]" in stream

    reader.python(block_in(page, "python", "import base64, json, os, requests").text)
    assert (reader.home / "fox-0.png").read_bytes()[:4] == b"\x89PNG"
    assert (reader.home / "owl.png").read_bytes()[:4] == b"\x89PNG"

    out = reader.python(block_in(page, "python", '/api/v1", api_key').text)
    provider, cost = out.split()  # print(body["provider"], body["usage"]["cost"])
    assert provider and float(cost) > 0
    with Image.open(reader.home / "lighthouse.png") as img:
        assert img.width * 4 == img.height  # 1:4

    reader.sh(block_in(page, "sh", "/v1/images/generations").text)
    assert (reader.home / "purple.png").read_bytes()[:4] == b"\x89PNG"
    for name in ("fox-0.png", "fox-1.png", "owl.png"):
        (reader.home / name).unlink(missing_ok=True)
    out = reader.python(block_in(page, "python", "from openrouter import").text)
    cost, ids = out.splitlines()[:2]
    assert float(cost) > 0 and "google/gemini-3.1-flash-image" in ids
    for name in ("fox-0.png", "fox-1.png", "owl.png"):
        assert (reader.home / name).read_bytes()[:4] == b"\x89PNG"
    reader.python(block_in(page, "python", "client.images.edit").text)
    assert (reader.home / "fox-1.png").read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------------------- server.md
def test_server_page(reader: Reader) -> None:
    page = "docs/server.md"
    with_emulator(reader)
    for line in block_in(page, "sh", "make run").lines:
        command = line.split("  #", 1)[0].strip()
        if command == "make run":
            reader.start("service", f"cd {shlex.quote(str(ROOT))} && {command}", SERVICE)
            reader.stop("service")
        elif command.startswith("nanobanana serve"):
            reader.start("service", command, SERVICE)
            assert httpx.get(f"{SERVICE}/healthz", timeout=5).status_code == 200
        elif command.startswith("nanobanana users create"):
            out = reader.in_terminal(command, [("Password", PASSWORD), ("Repeat", PASSWORD)])
            assert "Created admin 'alice'" in out
    out = reader.sh(block_in(page, "sh", "/api/auth/register").text)
    answer = json_objects(out)[-1]
    assert answer["prompt"] == "a banana", out
    assert answer["synthetic"] is False and len(answer["images"]) == 1


# -------------------------------------------------------------------------- emulator.md
def test_emulator_page(reader: Reader) -> None:
    page = "docs/emulator.md"
    for line in block_in(page, "bash", "nanobanana emulator").lines:
        command = line.split("  #", 1)[0].strip()
        port = re.search(r"--port (\d+)", command)
        reader.start("emulator", command, f"http://127.0.0.1:{port.group(1) if port else 8090}")
        reader.stop("emulator")
    block = block_in(page, "python", "EmulatorServer")
    # Its last line serves until stopped: run it as a server, and the rest before it.
    *rest, last = block.text.rstrip().splitlines()
    assert last.startswith("serve(")
    reader.python("\n".join(rest))
    imports = block.text.splitlines()[0]
    reader.start(
        "emulator", f"python -c {shlex.quote(imports + chr(10) + last)}", "http://127.0.0.1:8089"
    )


# ------------------------------------------------------------------------- providers.md
def test_providers_page_signatures_are_the_real_ones() -> None:
    from nanobanana.providers.gemini import GeminiProvider
    from nanobanana.providers.openrouter import OpenRouterProvider

    text = block_in("docs/providers.md", "text", "OpenRouterProvider(").text
    text = re.sub(r"(\d+) MiB", r"\1 * 2**20", text)
    # Written as calls; read as the definitions they show.
    text = re.sub(r"(?ms)^(\w+)\((.*?)\)$", r"def \1(\2): ...", text)
    documented = {f.name: f.args for f in ast.parse(text).body if isinstance(f, ast.FunctionDef)}
    for cls in (OpenRouterProvider, GeminiProvider):
        args = documented[cls.__name__]
        real = inspect.signature(cls.__init__).parameters
        names = [a.arg for a in (*args.args, *args.kwonlyargs)]
        assert names == [p for p in real if p != "self"], cls.__name__
        for a, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
            assert default is not None
            assert eval(ast.unparse(default)) == real[a.arg].default, (cls.__name__, a.arg)


# -------------------------------------------------------------------------- sessions.md
def test_sessions_page(reader: Reader) -> None:
    with_emulator(reader)
    out = reader.python(block_in("docs/sessions.md", "python", "client.session(").text)
    assert out.strip() == "['t1', 't2', 't3', 't4'] True"
    with Image.open(reader.home / "autumn.png") as img:
        assert img.format == "PNG"
    out = reader.sh(block_in("docs/sessions.md", "sh", "nanobanana chat").text)
    assert out.splitlines()[-3:] == [
        "  t1  a red fox in the snow",
        "    t2  make the sky purple",
        "*   t3  make it autumn",
    ]
    assert sorted(p.name for p in (reader.home / "fox-session").iterdir()) == [
        "t1.png",
        "t2.png",
        "t3.png",
    ]
    # The service part, with the README's $TOKEN.
    reader.env["TOKEN"] = with_service(reader)
    out = reader.sh(block_in("docs/sessions.md", "sh", "/api/sessions").text)
    tree = json_objects(out)[-1]
    fox, purple, autumn = tree["turns"]
    assert fox["prompt"] == "a red fox in the snow" and fox["parent_turn_id"] is None
    assert purple["parent_turn_id"] == fox["id"] and autumn["parent_turn_id"] == fox["id"]
    assert tree["latest_turn_id"] == autumn["id"]
    assert all(t["status"] == "succeeded" and len(t["images"]) == 1 for t in tree["turns"])


# ------------------------------------------------------------------------------- mcp.md
def test_mcp_page(reader: Reader) -> None:
    out = reader.python(block_in("docs/mcp.md", "python", "StdioServerParameters").text)
    tools, first, kinds = out.strip().splitlines()
    assert tools == str(
        sorted(
            [
                "branch_session",
                "continue_session",
                "edit_image",
                "generate_image",
                "get_generation",
                "list_models",
            ]
        )
    )
    assert first == (
        "1 image from gemini-3.1-flash-image via openrouter (synthetic: the built-in "
        "emulator, nothing billed)."
    )
    assert kinds == "['text', 'resource_link', 'image']"
    [saved] = pngs(reader.home / "nanobanana-images")
    with Image.open(saved) as img:
        assert img.size == (1344, 768)  # 16:9
    # The client configurations are what the clients read: the command and its arguments.
    configs = [b for b in blocks_of("docs/mcp.md") if b.lang == "json"]
    assert len(configs) == 3
    for block in configs:
        servers = json.loads(block.text)
        entry = (servers.get("mcpServers") or servers["servers"])["nanobanana"]
        if "url" in entry:  # the service's /mcp, with a token
            assert entry["url"].endswith("/mcp")
            assert entry["headers"]["Authorization"].startswith("Bearer ")
        else:
            assert entry["command"].endswith("/nanobanana") and entry["args"][0] == "mcp"
    remote = block_in("docs/mcp.md", "sh", "--transport http").text
    assert "/mcp" in remote and "Authorization: Bearer $NB_TOKEN" in remote
    assert "claude mcp add" in block_in("docs/mcp.md", "sh", "nanobanana mcp").text
    codex = tomllib.loads(block_in("docs/mcp.md", "toml", "mcp_servers").text)
    assert codex["mcp_servers"]["nanobanana"]["args"] == ["mcp"]
