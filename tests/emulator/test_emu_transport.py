"""Transport faults as a client really sees them: truncation, RST, hang-up, slow drip, latency."""

from __future__ import annotations

import socket
import time

import aiohttp
import httpx
import orjson
import pytest

from nanobanana.emulator import EmulatorServer

from .helpers import CHAT, GEMINI_HEADERS, OR_HEADERS, chat_body, gemini_body, gen_path


def _raw_request(emu: EmulatorServer, scenario: str, timeout: float = 5.0) -> socket.socket:
    """Send a chat completion over a bare socket (so nothing is hidden by a client library)."""
    body = orjson.dumps(chat_body())
    head = (
        f"POST {CHAT} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {OR_HEADERS['Authorization']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-Emulator-Scenario: {scenario}\r\nConnection: close\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", emu.port), timeout=timeout)
    sock.sendall(head + body)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    data = bytearray()
    while chunk := sock.recv(1 << 20):
        data += chunk
    return bytes(data)


def test_truncated_declares_more_than_it_sends(emu: EmulatorServer) -> None:
    with _raw_request(emu, "truncated") as sock:
        data = _read_all(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    declared = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    assert head.startswith(b"HTTP/1.1 200")
    assert len(body) == declared // 2 and declared > 1_000_000
    assert emu.requests()[-1]["status"] == 200


def test_truncated_with_httpx(emu: EmulatorServer) -> None:
    with pytest.raises(httpx.RemoteProtocolError, match="peer closed connection"):
        httpx.post(
            emu.url + CHAT,
            json=chat_body(),
            headers={**OR_HEADERS, "X-Emulator-Scenario": "truncated"},
        )


def test_reset_sends_rst_after_reading_the_request(emu: EmulatorServer) -> None:
    with _raw_request(emu, "reset") as sock, pytest.raises(ConnectionResetError):
        _read_all(sock)
    seen = emu.requests()[-1]
    assert seen["scenario"] == ["reset"] and seen["body"]["model"] == chat_body()["model"]
    with pytest.raises(httpx.ReadError):
        httpx.post(
            emu.url + CHAT, json=chat_body(), headers={**OR_HEADERS, "X-Emulator-Scenario": "reset"}
        )


@pytest.mark.parametrize(
    ("scenario", "error"),
    [
        ("reset", aiohttp.ClientOSError),
        ("hangup", aiohttp.ServerDisconnectedError),
        ("truncated", aiohttp.ClientPayloadError),
    ],
)
async def test_faults_with_aiohttp(
    emu: EmulatorServer, scenario: str, error: type[Exception]
) -> None:
    headers = {**GEMINI_HEADERS, "X-Emulator-Scenario": scenario}
    async with aiohttp.ClientSession() as session:
        with pytest.raises(error):
            async with session.post(emu.url + gen_path(), json=gemini_body(), headers=headers) as r:
                await r.read()


def test_hangup_closes_without_a_byte(emu: EmulatorServer) -> None:
    with _raw_request(emu, "hangup") as sock:
        assert _read_all(sock) == b""
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        httpx.post(
            emu.url + CHAT,
            json=chat_body(),
            headers={**OR_HEADERS, "X-Emulator-Scenario": "hangup"},
        )


def test_slow_drip_trickles_the_body(emu: EmulatorServer) -> None:
    start = time.monotonic()
    with httpx.stream(
        "POST",
        emu.url + CHAT,
        json=chat_body(),
        headers={**OR_HEADERS, "X-Emulator-Scenario": "slow-drip:0.1:600000"},
    ) as r:
        assert r.status_code == 200
        first_byte = time.monotonic() - start
        body = r.read()
    total = time.monotonic() - start
    assert first_byte < 0.5
    assert total >= 0.2  # ~1.7 MB in 600 kB pieces: 3 pieces, so 2 waits of 0.1 s
    assert orjson.loads(body)["choices"][0]["message"]["images"]


def test_slow_drip_defeats_a_per_read_timeout_but_stops_when_the_client_leaves(
    emu: EmulatorServer,
) -> None:
    headers = {**OR_HEADERS, "X-Emulator-Scenario": "slow-drip:0.05"}
    start = time.monotonic()
    with httpx.stream("POST", emu.url + CHAT, json=chat_body(), headers=headers, timeout=2.0) as r:
        received = 0
        for piece in r.iter_raw():
            received += len(piece)
            if time.monotonic() - start > 0.6:
                break
    assert 2 <= received < 100  # one byte per 0.05 s: no read ever timed out
    # The server noticed the disconnect and is free for the next request.
    assert httpx.get(emu.url + "/_emulator/health", timeout=2).status_code == 200


def test_latency_is_cut_short_by_a_client_timeout(emu: EmulatorServer) -> None:
    headers = {**GEMINI_HEADERS, "X-Emulator-Scenario": "latency:30"}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(emu.url + gen_path(), json=gemini_body(), headers=headers, timeout=0.3)
    deadline = time.monotonic() + 5
    while emu.requests()[-1]["status"] is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emu.requests()[-1]["status"] == 499  # gave up waiting when the client left
