"""The defaults the docs quote are the defaults the service has."""

from __future__ import annotations

import re
from pathlib import Path

from nanobanana.server.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
# "`NANOBANANA_X`, default 16", "`NANOBANANA_X`, 512", "`NANOBANANA_X` (10)"
_QUOTED = re.compile(r"`NANOBANANA_([A-Z0-9_]+)`(?:, default |, | \()(\d+(?:\.\d+)?)\b(?! ?[a-z])")


def test_every_quoted_default_is_the_settings_default() -> None:
    fields = Settings.model_fields
    found = []
    for page in sorted(DOCS.glob("*.md")):
        for name, value in _QUOTED.findall(page.read_text()):
            field = fields[name.lower()]
            assert float(value) == float(field.default), f"{page.name}: NANOBANANA_{name}"
            found.append(name)
    assert {"MAX_CONCURRENT_JOBS_PER_USER", "MAX_CONCURRENT_JOBS"} <= set(found)
