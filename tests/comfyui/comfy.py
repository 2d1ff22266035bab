"""A small stand-in for ComfyUI's node loader and executor, following its rules.

Loading: a folder in ``custom_nodes/`` is imported from its ``__init__.py`` under the folder's
name, and ``NODE_CLASS_MAPPINGS`` / ``NODE_DISPLAY_NAME_MAPPINGS`` are read from it.
Executing an API-format prompt (``{id: {"class_type", "inputs"}}``, links as ``[id, slot]``):
inputs are validated against ``INPUT_TYPES`` (combo values in their list, INT within
min/max, required inputs present), except those named as parameters of the node's
``VALIDATE_INPUTS``, which gets them instead and must return ``True`` (any other value is the
error), the node's ``FUNCTION`` is called with keyword arguments,
and outputs are cached: a node runs again only when its inputs, its ``IS_CHANGED`` value (if it
has one) or an upstream node changed.
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

WIDGET_TYPES = {"STRING", "INT", "FLOAT", "BOOLEAN"}


def load_custom_node(folder: Path) -> ModuleType:
    name = folder.name
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class TestImage:
    """A node of the harness: an IMAGE batch of solid colours (one per ``colors`` entry)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"colors": ("STRING", {}), "width": ("INT", {}), "height": ("INT", {})}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "make"
    CATEGORY = "test"

    def make(self, colors: str, width: int, height: int) -> tuple[torch.Tensor]:
        batch = []
        for c in colors.split(";"):
            rgb = torch.tensor([int(v) / 255 for v in c.split(",")], dtype=torch.float32)
            batch.append(rgb.expand(height, width, 3))
        return (torch.stack(batch),)


class ValidationFailed(Exception):
    pass


class Executor:
    def __init__(self, mappings: dict[str, Any]) -> None:
        self.mappings = {"TestImage": TestImage, **mappings}
        self.outputs: dict[str, tuple[Any, ...]] = {}
        self.old_prompt: dict[str, Any] = {}
        self.executed: list[str] = []

    def execute(self, prompt: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
        self.executed = []
        for node_id in prompt:
            self._validate(prompt, node_id)
        is_changed = {nid: self._is_changed(prompt, nid) for nid in prompt}
        seen: set[str] = set()
        for node_id in prompt:
            self._run(prompt, node_id, is_changed, seen)
        self.old_prompt = {
            nid: {**copy.deepcopy(n), "is_changed": is_changed[nid]} for nid, n in prompt.items()
        }
        return self.outputs

    def _validate(self, prompt: dict[str, Any], node_id: str) -> None:
        node = prompt[node_id]
        cls = self.mappings[node["class_type"]]
        types = cls.INPUT_TYPES()
        specs = {**types.get("required", {}), **types.get("optional", {})}
        for name in types.get("required", {}):
            if name not in node["inputs"]:
                raise ValidationFailed(f"{node_id}: required input {name} missing")
        custom: list[str] = []
        if hasattr(cls, "VALIDATE_INPUTS"):
            custom = inspect.getfullargspec(cls.VALIDATE_INPUTS).args
        for name, value in node["inputs"].items():
            if name not in specs:
                raise ValidationFailed(f"{node_id}: unknown input {name}")
            if name in custom:
                continue
            kind = specs[name][0]
            opts = specs[name][1] if len(specs[name]) > 1 else {}
            if isinstance(value, list):
                src = prompt[value[0]]
                produced = self.mappings[src["class_type"]].RETURN_TYPES[value[1]]
                if produced != kind:
                    raise ValidationFailed(f"{node_id}: {name} gets {produced}, wants {kind}")
            elif isinstance(kind, list):
                if value not in kind:
                    raise ValidationFailed(f"{node_id}: {name}: {value!r} not in list")
            elif kind == "INT" and not opts.get("min", value) <= value <= opts.get("max", value):
                raise ValidationFailed(f"{node_id}: {name} out of range")

        if custom:
            given = {k: v for k, v in node["inputs"].items() if k in custom}
            verdict = cls.VALIDATE_INPUTS(**given)
            if verdict is not True:
                raise ValidationFailed(f"{node_id}: {verdict}")

    def _is_changed(self, prompt: dict[str, Any], node_id: str) -> Any:
        cls = self.mappings[prompt[node_id]["class_type"]]
        if not hasattr(cls, "IS_CHANGED"):
            return ""
        consts = {k: v for k, v in prompt[node_id]["inputs"].items() if not isinstance(v, list)}
        return cls.IS_CHANGED(**consts)

    def _run(
        self, prompt: dict[str, Any], node_id: str, is_changed: dict[str, Any], seen: set[str]
    ) -> None:
        """Run the node unless its cached output still holds."""
        if node_id in seen:
            return
        seen.add(node_id)
        node = prompt[node_id]
        links = [v[0] for v in node["inputs"].values() if isinstance(v, list)]
        for src in links:
            self._run(prompt, src, is_changed, seen)
        upstream_ran = any(src in self.executed for src in links)
        old = self.old_prompt.get(node_id)
        changed = is_changed[node_id]
        cached = (
            node_id in self.outputs
            and not upstream_ran
            and old is not None
            and old["inputs"] == node["inputs"]
            and old["class_type"] == node["class_type"]
            and old["is_changed"] == changed
            and changed == changed  # NaN is never equal to itself: always runs
        )
        if cached:
            return
        cls = self.mappings[node["class_type"]]
        kwargs = {
            k: (self.outputs[v[0]][v[1]] if isinstance(v, list) else v)
            for k, v in node["inputs"].items()
        }
        self.outputs[node_id] = tuple(getattr(cls(), cls.FUNCTION)(**kwargs))
        self.executed.append(node_id)
