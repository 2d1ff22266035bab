"""ComfyUI node tests: the pack loaded from a ``custom_nodes`` folder, run against the emulator.

The environment is cleaned of real keys, base URLs, keys files and profiles; the emulator is
reached through ``OPENROUTER_BASE_URL`` / ``GEMINI_BASE_URL`` exactly as a ComfyUI user's
environment would point the library at a provider.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import nanobanana.comfyui

from .comfy import Executor, load_custom_node

OPENROUTER_CANARY = "sk-or-v1-CANARY-comfy-0123456789abcdef"
GEMINI_CANARY = "AIzaCANARY-comfy-0123456789abcdefghij"
TOKEN_CANARY = "nbt_CANARY-comfy-token-0123456789"
PACK_DIR = Path(nanobanana.comfyui.__file__).parent


@pytest.fixture
def emu_env(emu: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OPENROUTER_API_KEY", OPENROUTER_CANARY)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_CANARY)
    monkeypatch.setenv("OPENROUTER_BASE_URL", emu.openrouter_url)
    monkeypatch.setenv("GEMINI_BASE_URL", emu.gemini_url)
    return emu


@pytest.fixture
def pack(tmp_path: Path) -> Iterator[ModuleType]:
    """The node pack copied into a ``custom_nodes`` folder and loaded the way ComfyUI does."""
    custom_nodes = tmp_path / "ComfyUI" / "custom_nodes"
    target = custom_nodes / "nanobanana-comfyui"
    shutil.copytree(PACK_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    before = set(sys.modules)
    module = load_custom_node(target)
    yield module
    for name in set(sys.modules) - before:
        if name.startswith("nanobanana-comfyui"):
            del sys.modules[name]


@pytest.fixture
def comfy(pack: ModuleType) -> Executor:
    return Executor(pack.NODE_CLASS_MAPPINGS)


def generate_node(prompt: str, **inputs: Any) -> dict[str, Any]:
    """An API-format node with the defaults a freshly added node has in the ComfyUI editor."""
    node = {
        "class_type": "NanoBananaGenerate",
        "inputs": {
            "prompt": prompt,
            "model": "gemini-2.5-flash-image",
            "aspect_ratio": "1:1",
            "image_size": "auto",
            "seed": 0,
            "num_images": 1,
            "provider": "auto",
            "server_profile": "(local keys)",
            "negative_prompt": "",
        },
    }
    node["inputs"].update(inputs)
    return node


def edit_node(image: list[Any] | None, instruction: str, **inputs: Any) -> dict[str, Any]:
    node = {
        "class_type": "NanoBananaEdit",
        "inputs": {
            **({"image": image} if image is not None else {}),
            "instruction": instruction,
            "model": "gemini-2.5-flash-image",
            "aspect_ratio": "auto",
            "image_size": "auto",
            "seed": 0,
            "provider": "auto",
            "server_profile": "(local keys)",
        },
    }
    node["inputs"].update(inputs)
    return node
