"""Fixtures shared by the whole suite.

``emulator``: one offline emulator of the OpenRouter and Gemini APIs for the session, on a free
loopback port (``nanobanana.emulator.EmulatorServer``).  ``emu``: the same server with its
recorded requests, generation stats and ``flaky`` counters cleared before the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nanobanana.emulator import EmulatorServer


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture
def emu(emulator: EmulatorServer) -> EmulatorServer:
    emulator.reset()
    return emulator
