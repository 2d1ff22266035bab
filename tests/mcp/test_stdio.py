"""``nanobanana mcp`` over stdio, driven by the official MCP Python client: the tools' schemas,
generate and edit with a resource link and a checked preview, progress, sessions with a
branch, results found again after a restart, errors that say what to do, cancellation, and no
key in any result, log or file."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import anyio
from PIL import Image as PILImage

from nanobanana.catalog import Catalog, expected_pixels
from nanobanana.files import read_provenance
from nanobanana.mcp.results import PREVIEW_SIDE

from .conftest import GEMINI_CANARY, OPENROUTER_CANARY, posts

TOOLS = {
    "generate_image",
    "edit_image",
    "continue_session",
    "branch_session",
    "list_models",
    "get_generation",
}


def _enum(schema: dict[str, Any], name: str) -> list[str]:
    prop = schema["properties"][name]
    return next(b["enum"] for b in prop["anyOf"] if b.get("type") == "string")


def _text(result: Any) -> str:
    return "\n".join(b.text for b in result.content if b.type == "text")


def _path(link: Any) -> Path:
    return Path(url2pathname(urlparse(link.uri).path))


def _sha12(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def _gemini_texts(request: dict[str, Any]) -> list[str]:
    return [p["text"] for c in request["body"]["contents"] for p in c["parts"] if "text" in p]


async def test_tools_are_listed_with_the_catalogs_choices(mcp_server: Any) -> None:
    async with mcp_server() as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    catalog = list(Catalog())
    for name in ("generate_image", "edit_image", "continue_session", "branch_session"):
        schema = tools[name].input_schema
        assert set(_enum(schema, "aspect_ratio")) == {r for s in catalog for r in s.aspect_ratios}
        assert set(_enum(schema, "image_size")) == {z for s in catalog for z in s.sizes}
        assert set(_enum(schema, "provider")) == {"openrouter", "google"}
        assert "prompt" in schema["required"]
    generate = tools["generate_image"].input_schema
    assert generate["required"] == ["prompt"]
    assert generate["properties"]["n"]["maximum"] == 4
    images = tools["edit_image"].input_schema["properties"]["images"]
    assert images["minItems"] == 1
    assert "file paths" in images["description"]
    assert "generation_id" in images["description"]
    # Which models take reference images, and how many.
    for spec in catalog:
        if spec.accepts_images:
            assert f"{spec.id} (up to {spec.max_input_images})" in tools["edit_image"].description
    assert tools["list_models"].annotations.read_only_hint is True
    assert tools["generate_image"].annotations.read_only_hint is False


async def test_generate_returns_the_file_a_small_preview_and_progress(
    mcp_server: Any, folder: Path, emu: Any
) -> None:
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async with mcp_server() as client:
        result = await client.call_tool(
            "generate_image",
            {
                "prompt": "a lighthouse at dusk",
                "aspect_ratio": "16:9",
                "image_size": "2K",
                "provider": "google",
            },
            progress_callback=on_progress,
        )
    assert not result.is_error, _text(result)
    text, link, shown = result.content
    assert (text.type, link.type, shown.type) == ("text", "resource_link", "image")

    # The link names the saved file: the full image, with its provenance.
    path = _path(link)
    assert path.parent == folder and path.is_file()
    data = path.read_bytes()
    assert link.size == len(data) and link.mime_type == "image/png"
    with PILImage.open(path) as img:
        assert img.size == expected_pixels("16:9", "2K")
        width, height = img.size
    provenance = read_provenance(path)
    assert provenance["prompt"] == "a lighthouse at dusk"
    assert provenance["aspect_ratio"] == "16:9" and provenance["provider"] == "google"

    # The preview: a small JPEG of the same picture, far under the clients' limits.
    small = base64.b64decode(shown.data)
    assert shown.mime_type == "image/jpeg"
    with PILImage.open(io.BytesIO(small)) as img:
        assert img.format == "JPEG"
        assert img.size[0] == PREVIEW_SIDE  # the longer side
        assert abs(img.size[1] - height * PREVIEW_SIDE / width) <= 1
    assert len(shown.data) < 60_000
    assert len(result.model_dump_json()) < 100_000  # the whole tool result

    facts = result.structured_content
    gid = facts["generation_id"]
    assert path.name == f"{gid}-1.png"
    assert facts["images"][0]["uri"] == link.uri
    assert facts["images"][0]["location"] == str(path)
    assert facts["images"][0]["size"] == len(data)
    assert (facts["images"][0]["width"], facts["images"][0]["height"]) == img_size(path)
    assert facts["provider"] == "google" and facts["aspect_ratio"] == "16:9"
    assert gid in text.text and str(path) in text.text

    # Progress came, growing, and said when the image arrived.
    values = [p[0] for p in progress]
    assert len(progress) >= 2 and values == sorted(values) and len(set(values)) == len(values)
    assert any("image 1 arrived" in (p[2] or "") for p in progress)
    assert len(posts(emu)) == 1


def img_size(path: Path) -> tuple[int, int]:
    with PILImage.open(path) as img:
        return img.size


async def test_full_size_image_only_when_asked(mcp_server: Any) -> None:
    async with mcp_server() as client:
        result = await client.call_tool(
            "generate_image", {"prompt": "a kite", "n": 2, "full_size": True}
        )
    assert not result.is_error, _text(result)
    kinds = [b.type for b in result.content]
    assert kinds == ["text", "resource_link", "image", "resource_link", "image"]
    for link, shown in (
        (result.content[1], result.content[2]),
        (result.content[3], result.content[4]),
    ):
        with PILImage.open(io.BytesIO(base64.b64decode(shown.data))) as img:
            assert img.size == img_size(_path(link))  # the whole image, not a preview
        assert shown.mime_type == "image/png"


async def test_edit_takes_paths_and_earlier_ids_and_results_outlive_the_server(
    mcp_server: Any, emu: Any, folder: Path
) -> None:
    async with mcp_server() as client:
        first = await client.call_tool(
            "generate_image", {"prompt": "a red cube", "provider": "google"}
        )
        gid = first.structured_content["generation_id"]
        path = first.structured_content["images"][0]["location"]
        edited = await client.call_tool(
            "edit_image",
            {"prompt": "make it blue", "images": [f"{gid}#1", path], "provider": "google"},
        )
    assert not edited.is_error, _text(edited)
    # Both references reached the model: the saved file's bytes, twice.
    sent = json.dumps(posts(emu)[-1]["body"])
    assert sent.count(f"sha256:{_sha12(Path(path).read_bytes())}") == 2
    assert edited.structured_content["generation_id"] != gid

    # Another server on the same folder finds both generations again.
    async with mcp_server() as client:
        again = await client.call_tool("get_generation", {"generation_id": gid})
        missing = await client.call_tool(
            "get_generation", {"generation_id": "20200101-000000-abcdef"}
        )
        by_id = await client.call_tool(
            "edit_image", {"prompt": "now green", "images": [gid], "provider": "google"}
        )
    assert not again.is_error and again.structured_content == first.structured_content
    assert [b.type for b in again.content] == ["text", "resource_link", "image"]
    assert missing.is_error and "No generation" in _text(missing)
    assert not by_id.is_error, _text(by_id)


async def test_a_session_continues_and_branches(mcp_server: Any, emu: Any) -> None:
    async with mcp_server("-p", "google") as client:
        t1 = await client.call_tool("continue_session", {"prompt": "a paper boat"})
        sid = t1.structured_content["session_id"]
        t1_id = t1.structured_content["generation_id"]
        t2 = await client.call_tool(
            "continue_session", {"prompt": "make it red", "session_id": sid}
        )
        t3 = await client.call_tool(
            "branch_session", {"prompt": "make it green", "session_id": sid, "turn_id": t1_id}
        )
        stray = await client.call_tool(
            "branch_session", {"prompt": "x", "session_id": sid, "turn_id": "nope"}
        )
        unknown = await client.call_tool(
            "continue_session", {"prompt": "x", "session_id": "s-000000000000"}
        )
    for turn in (t1, t2, t3):
        assert not turn.is_error, _text(turn)
        assert turn.structured_content["session_id"] == sid
    assert t1.structured_content["parent_id"] is None
    assert t2.structured_content["parent_id"] == t1_id
    assert t3.structured_content["parent_id"] == t1_id
    calls = posts(emu)
    assert len(calls) == 3
    assert _gemini_texts(calls[0])[-1].startswith("a paper boat")
    # Turn 2 sends turn 1 (the prompt and the answer); the branch sends turn 1, not turn 2.
    assert "a paper boat" in _gemini_texts(calls[1])[0]
    assert [t for t in _gemini_texts(calls[2]) if "make it red" in t] == []
    assert "a paper boat" in _gemini_texts(calls[2])[0]
    assert "make it green" in _gemini_texts(calls[2])[-1]
    assert stray.is_error and "turn_id" in _text(stray)
    assert unknown.is_error and "continue_session" in _text(unknown)


async def test_errors_say_what_to_do(mcp_server: Any) -> None:
    async with mcp_server(keys={}) as client:
        no_key = await client.call_tool("generate_image", {"prompt": "a fox"})
    assert no_key.is_error
    assert "OPENROUTER_API_KEY" in _text(no_key) and "nanobanana keys set" in _text(no_key)

    async with mcp_server() as client:
        bad_ratio = await client.call_tool(
            "generate_image", {"prompt": "a fox", "aspect_ratio": "7:3"}
        )
        blocked = await client.call_tool(
            "generate_image", {"prompt": "a fox [emulator:safety]", "provider": "google"}
        )
        fell_back = await client.call_tool(
            "generate_image", {"prompt": "a fox [emulator@gemini:quota]", "provider": "google"}
        )
    assert bad_ratio.is_error and "16:9" in _text(bad_ratio)
    assert blocked.is_error and "Rephrase" in _text(blocked)
    assert not fell_back.is_error, _text(fell_back)
    assert fell_back.structured_content["provider"] == "openrouter"
    assert any("fallback" in w for w in fell_back.structured_content["warnings"])

    async with mcp_server("--no-fallback") as client:
        quota = await client.call_tool(
            "generate_image", {"prompt": "a fox [emulator@gemini:quota]", "provider": "google"}
        )
    assert quota.is_error
    assert "Quota exhausted at google" in _text(quota) and "Retry" in _text(quota)


async def test_a_cancelled_call_stops_and_the_server_goes_on(
    mcp_server: Any, folder: Path, stderr_path: Path
) -> None:
    async with mcp_server() as client:
        with anyio.move_on_after(1.5) as scope:
            await client.call_tool("generate_image", {"prompt": "slow [emulator:latency:4]"})
        assert scope.cancelled_caught
        with anyio.fail_after(3):
            after = await client.call_tool("generate_image", {"prompt": "a quick one"})
        await anyio.sleep(4)  # past the time the slow answer would have come
    assert not after.is_error, _text(after)
    records = list((folder / ".nanobanana").glob("*.json"))
    assert [r.stem for r in records] == [after.structured_content["generation_id"]]
    assert "Traceback" not in stderr_path.read_text()


async def test_no_key_reaches_a_result_a_log_or_a_file(
    mcp_server: Any, folder: Path, stderr_path: Path
) -> None:
    canaries = {"OPENROUTER_API_KEY": OPENROUTER_CANARY, "GEMINI_API_KEY": GEMINI_CANARY}
    results = []
    async with mcp_server(keys=canaries) as client:
        first = await client.call_tool("generate_image", {"prompt": "a fox", "provider": "google"})
        gid = first.structured_content["generation_id"]
        results += [
            first,
            await client.call_tool("edit_image", {"prompt": "blue", "images": [gid]}),
            await client.call_tool("continue_session", {"prompt": "a boat"}),
            await client.call_tool("get_generation", {"generation_id": gid}),
            await client.call_tool("list_models", {}),
            await client.call_tool("generate_image", {"prompt": "x [emulator:server-error]"}),
        ]
    refused = {
        "OPENROUTER_API_KEY": OPENROUTER_CANARY.replace("CANARY", "invalidCANARY"),
        "GEMINI_API_KEY": GEMINI_CANARY.replace("CANARY", "invalidCANARY"),
    }
    async with mcp_server(keys=refused) as client:
        for provider in ("openrouter", "google"):
            denied = await client.call_tool(
                "generate_image", {"prompt": "a fox", "provider": provider}
            )
            assert denied.is_error
            results.append(denied)
    assert not results[0].is_error and not results[1].is_error
    seen = [r.model_dump_json() for r in results]
    seen.append(stderr_path.read_text())
    seen += [p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file()]
    for secret in (OPENROUTER_CANARY, GEMINI_CANARY, *refused.values()):
        for where in seen:
            assert secret not in where
            assert "CANARY" not in where
