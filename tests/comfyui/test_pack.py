"""The node pack as ComfyUI sees it: how it loads, what it declares, and what a saved
workflow holding its nodes contains (never a secret)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .comfy import Executor, load_custom_node
from .conftest import GEMINI_CANARY, OPENROUTER_CANARY, PACK_DIR, TOKEN_CANARY, generate_node

LOADER = (
    "import importlib.util, sys\n"
    "from pathlib import Path\n"
    "folder = Path(sys.argv[1])\n"
    "spec = importlib.util.spec_from_file_location(folder.name, folder / '__init__.py')\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "sys.modules[folder.name] = module\n"
    "spec.loader.exec_module(module)\n"
    "names = module.NODE_DISPLAY_NAME_MAPPINGS.values()\n"
    "print(sorted(module.NODE_CLASS_MAPPINGS), sorted(names))\n"
    "print('torch' in sys.modules, 'aiohttp' in sys.modules)\n"
)
WIDGET_TYPES = {"STRING", "INT", "FLOAT", "BOOLEAN"}
LINK_TYPES = {"IMAGE", "NANOBANANA_SESSION"}
SECRET_NAME = re.compile(r"key|token|secret|password|auth", re.IGNORECASE)


def run_loader(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LOADER, str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_copied_folder_loads_without_torch(tmp_path: Path) -> None:
    target = tmp_path / "custom_nodes" / "nanobanana-comfyui"
    shutil.copytree(PACK_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    proc = run_loader(target)
    assert proc.returncode == 0, proc.stderr
    names, loaded = proc.stdout.splitlines()
    assert names == (
        "['NanoBananaEdit', 'NanoBananaGenerate'] ['Nano Banana Edit', 'Nano Banana Generate']"
    )
    assert loaded == "False False"  # listing nodes imports neither torch nor an HTTP client


def test_a_symlinked_folder_loads(tmp_path: Path) -> None:
    link = tmp_path / "custom_nodes" / "nanobanana_nodes"
    link.parent.mkdir(parents=True)
    link.symlink_to(PACK_DIR, target_is_directory=True)
    module = load_custom_node(link)
    try:
        assert set(module.NODE_CLASS_MAPPINGS) == {"NanoBananaGenerate", "NanoBananaEdit"}
    finally:
        for name in [n for n in sys.modules if n.startswith("nanobanana_nodes")]:
            del sys.modules[name]


def test_a_folder_named_nanobanana_is_refused_clearly(tmp_path: Path) -> None:
    target = tmp_path / "custom_nodes" / "nanobanana"
    shutil.copytree(PACK_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    proc = run_loader(target)
    assert proc.returncode != 0
    assert "Rename the custom_nodes folder" in proc.stderr


def _check_spec(name: str, spec: Any) -> None:
    assert isinstance(spec, tuple) and 1 <= len(spec) <= 2, name
    kind = spec[0]
    opts = spec[1] if len(spec) == 2 else {}
    assert isinstance(opts, dict), name
    if isinstance(kind, list):  # a combo
        assert kind and all(isinstance(v, str) for v in kind), name
        assert opts.get("default", kind[0]) in kind, name
    else:
        assert kind in WIDGET_TYPES | LINK_TYPES, (name, kind)
    if kind == "INT":
        assert opts["min"] <= opts["default"] <= opts["max"], name


def test_node_classes_follow_the_protocol(pack: ModuleType) -> None:
    for class_name, cls in pack.NODE_CLASS_MAPPINGS.items():
        assert class_name in pack.NODE_DISPLAY_NAME_MAPPINGS
        types = cls.INPUT_TYPES()
        assert set(types) <= {"required", "optional", "hidden"} and types["required"]
        for section in ("required", "optional"):
            for name, spec in types.get(section, {}).items():
                _check_spec(name, spec)
                assert not SECRET_NAME.search(name), f"{class_name}.{name} looks like a secret"
        assert isinstance(cls.RETURN_TYPES, tuple)
        assert len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES)
        assert callable(getattr(cls(), cls.FUNCTION))
        assert cls.CATEGORY == "Nano Banana"
        # Caching must stay ComfyUI's (on inputs): no IS_CHANGED that defeats it.
        assert not hasattr(cls, "IS_CHANGED")
    gen = pack.NODE_CLASS_MAPPINGS["NanoBananaGenerate"].INPUT_TYPES()
    seed = gen["required"]["seed"]
    assert seed[0] == "INT" and seed[1]["control_after_generate"] is True
    assert seed[1]["max"] == 0xFFFFFFFFFFFFFFFF
    assert gen["required"]["prompt"] == ("STRING", gen["required"]["prompt"][1])
    assert gen["required"]["prompt"][1]["multiline"] is True
    assert "16:9" in gen["required"]["aspect_ratio"][0] and "4K" in gen["required"]["image_size"][0]
    assert gen["optional"]["images"][0] == "IMAGE"
    edit = pack.NODE_CLASS_MAPPINGS["NanoBananaEdit"]
    # An image to edit, or a session to continue: either may be connected.
    assert edit.INPUT_TYPES()["optional"]["image"][0] == "IMAGE"
    assert edit.INPUT_TYPES()["optional"]["session"][0] == "NANOBANANA_SESSION"
    assert edit.RETURN_TYPES == ("IMAGE", "STRING", "STRING", "NANOBANANA_SESSION")


def test_profiles_appear_as_choices_without_their_tokens(
    pack: ModuleType, isolated_env: Path
) -> None:
    from nanobanana.remote import ProfilesFile

    ProfilesFile(isolated_env / "profiles.json").set(
        "studio", "https://images.example.com", TOKEN_CANARY
    )
    choices = pack.NODE_CLASS_MAPPINGS["NanoBananaGenerate"].INPUT_TYPES()["required"][
        "server_profile"
    ][0]
    assert choices == ["(local keys)", "studio"]
    assert TOKEN_CANARY not in json.dumps(
        {k: c.INPUT_TYPES() for k, c in pack.NODE_CLASS_MAPPINGS.items()}, default=str
    )
    # An unreadable profiles file must not break the node list.
    os.chmod(isolated_env / "profiles.json", 0o644)
    choices = pack.NODE_CLASS_MAPPINGS["NanoBananaEdit"].INPUT_TYPES()["required"][
        "server_profile"
    ][0]
    assert choices == ["(local keys)"]


def ui_workflow(prompt: dict[str, Any], mappings: dict[str, Any]) -> dict[str, Any]:
    """The editor's saved form: each node's widget values in input order (what ComfyUI also
    embeds in every PNG it saves)."""
    nodes = []
    for node_id, node in prompt.items():
        types = mappings[node["class_type"]].INPUT_TYPES()
        order = [*types.get("required", {}), *types.get("optional", {})]
        widgets = [
            node["inputs"][n]
            for n in order
            if n in node["inputs"] and not isinstance(node["inputs"][n], list)
        ]
        nodes.append({"id": node_id, "type": node["class_type"], "widgets_values": widgets})
    return {"nodes": nodes, "extra": {}, "version": 0.4}


def test_a_saved_workflow_holds_no_secret(
    pack: ModuleType, comfy: Executor, emu_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt = {
        "1": {"class_type": "TestImage", "inputs": {"colors": "255,0,0", "width": 8, "height": 8}},
        "2": generate_node("a lighthouse", images=["1", 0], negative_prompt="fog", seed=42),
        "3": {
            "class_type": "NanoBananaEdit",
            "inputs": {
                "image": ["2", 0],
                "instruction": "at night",
                "model": "gemini-2.5-flash-image",
                "aspect_ratio": "auto",
                "image_size": "auto",
                "seed": 1,
                "provider": "google",
                "server_profile": "(local keys)",
            },
        },
    }
    outputs = comfy.execute(prompt)
    saved = json.dumps(
        {
            "prompt": prompt,  # the API form, sent to /prompt and kept in history
            "workflow": ui_workflow(prompt, comfy.mappings),
            "text_outputs": [outputs[n][1:3] for n in ("2", "3")],  # text and info strings
        }
    )
    for secret in (OPENROUTER_CANARY, GEMINI_CANARY, OPENROUTER_CANARY[-8:], GEMINI_CANARY[-8:]):
        assert secret not in saved
    info = json.loads(outputs["2"][2])
    assert info["provider"] == "openrouter" and info["seed"] == 42
    assert json.loads(outputs["3"][2])["provider"] == "google"
