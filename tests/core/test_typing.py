"""The library as a typed package: ``py.typed``, and ``Client`` with ``AsyncClient``'s signatures.

A user's script is checked with ``mypy --strict``, as a user would: what is right passes, a
misspelt argument of either client is an error.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nanobanana
from nanobanana import AsyncClient, Client
from nanobanana.client import GenerateOptions

RIGHT = """
from nanobanana import AsyncClient, Client, Result


def main() -> None:
    with Client(openrouter_api_key="sk-or-v1-x", provider="openrouter") as client:
        result: Result = client.generate("a fox", aspect_ratio="16:9", n=2)
        print(result.cost, result.usage.cost_is_estimate, client.models("google"))
        for event in client.stream("a fox", image_size="2K", seed=3):
            print(event.type)


async def amain() -> None:
    async with AsyncClient(google_api_key="AIza-x", fallback=False) as client:
        result = await client.generate("a fox", image_size="2K")
        print(result.images[0].width)
        async for event in client.stream("a fox", negative_prompt="rain"):
            print(event.type)
"""

MISSPELT = """
from nanobanana import AsyncClient, Client

client = Client(opnrouter_api_key="sk-or-v1-x")
client.generate("a fox", aspect="16:9")
client.stream("a fox", sead=3)


async def amain() -> None:
    aclient = AsyncClient(gogle_api_key="x")
    await aclient.generate("a fox", num_images=2)
"""


def mypy_strict(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )


def test_the_package_says_it_is_typed() -> None:
    assert (Path(nanobanana.__file__).parent / "py.typed").is_file()


def test_a_users_script_passes_mypy_strict(tmp_path: Path) -> None:
    run = mypy_strict(tmp_path, RIGHT)
    assert run.returncode == 0, run.stdout + run.stderr


def test_misspelt_arguments_of_both_clients_are_type_errors(tmp_path: Path) -> None:
    run = mypy_strict(tmp_path, MISSPELT)
    assert run.returncode == 1
    for wrong in ("opnrouter_api_key", "aspect", "sead", "gogle_api_key", "num_images"):
        assert f'Unexpected keyword argument "{wrong}"' in run.stdout, run.stdout


@pytest.mark.parametrize("name", ["__init__", "generate", "models", "check_key"])
def test_client_methods_have_the_async_signatures(name: str) -> None:
    sync, async_ = (
        inspect.signature(getattr(Client, name)),
        inspect.signature(getattr(AsyncClient, name)),
    )
    assert list(sync.parameters.values()) == list(async_.parameters.values())


def test_stream_takes_what_generate_takes() -> None:
    generate = inspect.signature(AsyncClient.generate).parameters
    options = {p for p in generate if p not in ("self", "prompt", "on_event", "stream")}
    assert set(GenerateOptions.__annotations__) == options


def test_a_misspelt_argument_names_the_client_method_at_run_time() -> None:
    with pytest.raises(TypeError, match=r"^Client.__init__\(\): .*'opnrouter_api_key'"):
        Client(opnrouter_api_key="x")  # type: ignore[call-arg]
    with (
        Client(api_keys={}, env={}, use_keys_file=False) as client,
        pytest.raises(TypeError, match=r"^Client.generate\(\): .*'aspect'"),
    ):
        client.generate("a fox", aspect="16:9")  # type: ignore[call-arg]


def test_dir_shows_the_public_names() -> None:
    assert {"Client", "AsyncClient", "Result", "read_provenance", "errors"} <= set(dir(nanobanana))


def test_every_attribute_the_readme_names_exists() -> None:
    """The README's paragraphs on results and errors name attributes: each one is where the
    README says (a name in the ``images (...)`` aside on ``Image``, the others on ``Result``)."""
    from nanobanana import Image, Result, Usage, errors

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("A `Result` holds")
    paragraph = readme[start : readme.index("\n\n", readme.index("Errors form one tree"))]
    opens = paragraph.index("`images` (") + len("`images` (")
    aside = paragraph[opens : paragraph.index(")", paragraph.index("`to_pil()`") + 9)]
    on_image = set(re.findall(r"`([a-z_]+)(?:\(\))?`", aside))
    names = re.findall(r"`([A-Za-z_][\w.]*)(?:\(\))?`", paragraph)
    assert len(names) > 20 and {"data", "width", "to_pil"} <= on_image
    owners = {"nanobanana": nanobanana, "result": Result, "image": Image, "usage": Usage}
    for name in names:
        owner, _, attr = name.rpartition(".")
        if name[0].isupper():
            assert name == "Result" or hasattr(errors, name), name
        elif owner:
            assert hasattr(owners[owner], attr), name
        else:
            assert hasattr(Image if name in on_image else Result, name), name


def test_every_client_argument_a_message_or_the_docs_name_exists() -> None:
    """The missing-key message and the README name arguments to pass: the client takes each."""
    from nanobanana.providers import PROVIDERS, missing_key

    root = Path(__file__).resolve().parents[2]
    texts = [str(missing_key(p)) for p in PROVIDERS]
    texts += [(root / "README.md").read_text(), *(p.read_text() for p in root.glob("docs/*.md"))]
    named = {arg for text in texts for arg in re.findall(r"(?:Client\(|pass )(\w+)=", text)}
    assert {"openrouter_api_key", "google_api_key"} <= named
    parameters = inspect.signature(AsyncClient.__init__).parameters
    for arg in named:
        assert arg in parameters, arg
    with Client(openrouter_api_key="sk-or-v1-x", google_api_key="AIza-x", env={}) as client:
        assert client.aio.has_key("openrouter") and client.aio.has_key("google")
