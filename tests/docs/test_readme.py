"""Every command and snippet of README.md, run as written, in the order a reader meets them.

The blocks are read from README.md itself, so an edit there is what runs here. They run in a
fresh folder (also the home folder) with the installed ``nanobanana`` on the PATH, against the
servers the README itself starts: ``nanobanana emulator --port 8089`` and ``nanobanana serve
--port 8000`` (so those two ports must be free). The reader's context is given as the README
states it: provider keys in the environment pointed at the emulator, ``NB_TOKEN`` holding a
personal API token, ``photo.jpg`` and ``prompts.csv`` in the folder. Interactive commands get a
real terminal and their answers typed at their prompts.

Not run here: the JavaScript console snippet (``tests/browser/test_console.py`` runs it in a
browser), ``make test`` (it is what runs this), and the layer diagram.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Iterator
from functools import partial

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
    json_objects,
    photo,
    pngs,
    reading,
)

pytestmark = pytest.mark.timeout(300)
block_with = partial(block_in, "README.md")


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reader]:
    home = tmp_path_factory.mktemp("reader")
    photo(home / "photo.jpg")
    (home / "prompts.csv").write_text('prompt,aspect_ratio\n"a red fox",16:9\n"a blue whale",\n')
    with reading(home) as r:
        yield r


# -------------------------------------------------------------------------------- the runs
def test_the_emulator_section(reader: Reader) -> None:
    start = block_with("sh", "nanobanana emulator --port 8089 &")
    assert start.lines == ["nanobanana emulator --port 8089 &"]
    reader.start("emulator", start.text, EMULATOR)

    reader.python(block_with("python", "127.0.0.1:8089").text)
    assert [p.name for p in pngs(reader.home)] == ["fox-0.png"]

    reader.sh(block_with("sh", "OPENROUTER_BASE_URL=http://127.0.0.1:8089/api/v1").text)
    with Image.open(reader.home / "fox.png") as img:
        assert img.size == (1344, 768)


def test_the_cli_section(reader: Reader) -> None:
    block = block_with("sh", "nanobanana info ")
    for line in block.lines:
        command = line.split("  #", 1)[0].strip()
        words = shlex.split(command)
        if words[1] == "emulator":
            reader.start("emulator", line, EMULATOR)
        elif words[1] == "serve":
            reader.start("service", line, SERVICE)
        elif words[1:3] == ["users", "create"]:
            out = reader.in_terminal(line, [("Password", PASSWORD), ("Repeat", PASSWORD)])
            assert "Created admin 'alice'" in out
        elif words[1:3] == ["keys", "set"]:
            assert "Stored the openrouter key" in reader.sh(line, stdin=OPENROUTER_CANARY + "\n")
        elif words[1] == "mcp":  # a client would speak MCP on its stdin; none: it ends
            assert reader.sh(line, stdin="") == ""
        elif words[1:3] == ["profiles", "set"]:
            out = reader.sh(line, stdin="nb-CANARY-profile-token-0123456789\n")
            assert "Stored profile 'studio'" in out
        else:
            out = reader.sh(line)
            if words[1] == "models":
                assert "gemini-3.1-flash-image" in out
            if words[1] == "info":
                assert "make the sky purple" in out
    assert len(pngs(reader.home / "out")) == 2 + 2  # two from generate, one each batch row
    assert (reader.home / "edited.png").is_file()
    assert OPENROUTER_CANARY not in (reader.home / "service.log").read_text()


def test_the_web_service_curl_section(reader: Reader) -> None:
    out = reader.sh(block_with("sh", "/api/auth/register").text)
    answer = json_objects(out)[-1]  # curl -s prints each answer with no newline after it
    assert answer["prompt"] == "a banana" and len(answer["images"]) == 1
    assert base64.b64decode(answer["images"][0]).startswith(b"\x89PNG")


def test_the_openai_and_openrouter_client_section(reader: Reader) -> None:
    reader.env["NB_TOKEN"] = api_token("alice")
    sdk = block_with("python", "from openai import OpenAI")
    streaming = block_with("python", "stream=True")
    # The streaming example goes on with the `client` of the one before it.
    out = reader.python(sdk.text + "\n" + streaming.text)
    assert out.strip().splitlines()[0].startswith("data:image/png;base64,")

    for name in ("fox-0.png", "fox.png"):
        (reader.home / name).unlink(missing_ok=True)
    reader.python(
        block_with(
            "python", 'import base64, os, requests\nr = requests.post("http://127.0.0.1:8000'
        ).text
    )
    assert (reader.home / "fox-0.png").read_bytes()[:4] == b"\x89PNG"
    reader.sh(block_with("sh", "$NB_TOKEN").text)
    assert (reader.home / "fox.png").read_bytes()[:4] == b"\x89PNG"


def test_the_library_section(reader: Reader) -> None:
    first = block_with("python", "from nanobanana import Client\n\nwith")
    out = reader.python(first.text)
    lines = out.strip().splitlines()
    assert lines[:2] == ["2688 1536 image/png"] * 2
    assert lines[2].startswith("openrouter gemini-3-pro-image ")
    out = reader.python(block_with("python", "GenerationRequest(").text)
    assert out.split() == ["1344", "768"]  # 16:9 then 9:16, at 1K
    # The next example goes on with a client, as the first one made it.
    second = block_with("python", "client.stream(")
    out = reader.python(second.text, preamble="from nanobanana import Client\nclient = Client()\n")
    assert "done" in out.split() and "gemini-3.1-flash-image" in out


def test_the_install_section(reader: Reader) -> None:
    """In a clone, into a new virtual environment in the reader's home: the library and the
    CLI with no extras, and a first image from the built-in emulator."""
    block = block_with("sh", "pip install -c constraints.txt .")
    reader.sh(f"cd {shlex.quote(str(ROOT))}\n{block.text}", timeout=600)
    venv = reader.home / ".venvs" / "nanobanana"
    assert (reader.home / "red-fox.png").is_file()
    found = reader.sh(
        f"{venv}/bin/python -c 'import importlib.util as u; print(u.find_spec(\"fastapi\"))'"
    )
    assert found.strip() == "None"  # no extras: the service's packages are not there


def test_make_run(reader: Reader) -> None:
    block = block_with("sh", "make run")
    run = next(ln for ln in block.lines if ln.startswith("make run"))
    reader.stop("service")
    reader.start("make-run", f"cd {shlex.quote(str(ROOT))} && {run}", SERVICE)
    assert httpx.get(f"{SERVICE}/api/nano-banana/models", timeout=10).status_code == 401
    reader.stop("make-run")
